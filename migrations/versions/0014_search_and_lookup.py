"""registrations.search_text with a trigram index (staff find "Öztürk" by typing "ozturk"),
payments.received_on (the day a bank transfer arrived), organisations.address_lookup (a desk
can switch off filling in street and town from the BAG)

Revision ID: 0014
Revises: 0012
Create Date: 2026-12-06 10:00:00

"""
import re
import unicodedata

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0014'
down_revision = '0012'
branch_labels = None
depends_on = None

# Keep SQLite's tables AUTOINCREMENT (0009) when a batch operation copies one.
SQLITE_IDS = {'sqlite_autoincrement': True}

# The folding of coop.registrations.search as it was when this migration was written (a
# migration does not import the application: it runs against the code of the day it is applied).
_LETTERS = str.maketrans(
    {
        "ø": "o", "æ": "ae", "œ": "oe", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "ı": "i",
        "’": "'", "‘": "'", "ʼ": "'", "`": "'", "‐": "-", "‑": "-", "–": "-",
    }
)


def _fold(text):
    decomposed = unicodedata.normalize("NFKD", (text or "").casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"\s+", " ", plain.translate(_LETTERS)).strip()


def _search_text(name, email, street, number, addition, postcode, city):
    postcode = postcode or ""
    parts = [name, email, street, f"{number}{addition or ''}", postcode, postcode.replace(" ", ""), city]
    return _fold(" ".join(str(part) for part in parts if part))


def upgrade():
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        # A trusted extension since PostgreSQL 13: the database's owner may create it.
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    with op.batch_alter_table('registrations', schema=None, table_kwargs=SQLITE_IDS) as batch_op:
        batch_op.add_column(sa.Column('search_text', sa.Text(), server_default='', nullable=False))

    connection = op.get_bind()
    rows = connection.execute(
        sa.text(
            "SELECT r.id, u.name, u.email, h.street, h.house_number, h.house_number_addition, "
            "h.postcode, h.city FROM registrations r "
            "JOIN users u ON u.id = r.user_id JOIN households h ON h.id = r.household_id"
        )
    ).fetchall()
    update = sa.text("UPDATE registrations SET search_text = :text WHERE id = :id")
    for start in range(0, len(rows), 5000):
        connection.execute(
            update,
            [{"id": row[0], "text": _search_text(*row[1:])} for row in rows[start:start + 5000]],
        )

    with op.batch_alter_table('registrations', schema=None, table_kwargs=SQLITE_IDS) as batch_op:
        batch_op.create_index(
            'ix_registrations_search_text',
            ['search_text'],
            unique=False,
            postgresql_using='gin',
            postgresql_ops={'search_text': 'gin_trgm_ops'},
        )
    with op.batch_alter_table('payments', schema=None, table_kwargs=SQLITE_IDS) as batch_op:
        batch_op.add_column(sa.Column('received_on', sa.Date(), nullable=True))
    with op.batch_alter_table('organisations', schema=None, table_kwargs=SQLITE_IDS) as batch_op:
        batch_op.add_column(
            sa.Column('address_lookup', sa.Boolean(), server_default=sa.true(), nullable=False)
        )


def downgrade():
    with op.batch_alter_table('organisations', schema=None, table_kwargs=SQLITE_IDS) as batch_op:
        batch_op.drop_column('address_lookup')
    with op.batch_alter_table('payments', schema=None, table_kwargs=SQLITE_IDS) as batch_op:
        batch_op.drop_column('received_on')
    with op.batch_alter_table('registrations', schema=None, table_kwargs=SQLITE_IDS) as batch_op:
        batch_op.drop_index(
            'ix_registrations_search_text',
            postgresql_using='gin',
            postgresql_ops={'search_text': 'gin_trgm_ops'},
        )
        batch_op.drop_column('search_text')
