"""tender_rounds.cancel_message: staff cancel a tender round with a message to the invited
installers (cancelled_at was already there)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 09:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

# Keep SQLite's tables AUTOINCREMENT (0009) when a batch operation copies one.
SQLITE_IDS = {'sqlite_autoincrement': True}


def upgrade():
    with op.batch_alter_table('tender_rounds', schema=None, table_kwargs=SQLITE_IDS) as batch_op:
        batch_op.add_column(sa.Column('cancel_message', sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table('tender_rounds', schema=None, table_kwargs=SQLITE_IDS) as batch_op:
        batch_op.drop_column('cancel_message')
