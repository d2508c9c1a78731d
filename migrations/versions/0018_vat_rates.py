"""vat_rates: the Dutch VAT rates quotes may use, as data with their source and the days they
apply, per desk (its staff keep them), seeded for every desk with the three rates of today;
quote_items.vat_rate no longer checks against the constant (0, 9, 21) but only that it is a percentage

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 09:00:00

"""
from datetime import date, datetime, timezone

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

# Keep SQLite's tables AUTOINCREMENT (0009) when a batch operation copies one.
SQLITE_IDS = {'sqlite_autoincrement': True}

SOURCE = (
    'https://www.belastingdienst.nl/wps/wcm/connect/bldcontentnl/belastingdienst/zakelijk/btw/'
    'tarieven_en_vrijstellingen/'
)
# The rates as they are when this migration is written (a migration does not import the
# application; a desk made later starts with ``coop.orders.vat_rates.STARTING_RATES``); from
# here on each desk's staff keep them. 21% since 1 October 2012, 9% since 1 January 2019
# (6% before), 0% since the Wet op de omzetbelasting 1968 came into force.
RATES = [
    (21, 'Algemeen tarief (hoog tarief)', 'Standard rate', date(2012, 10, 1)),
    (
        9,
        'Verlaagd tarief (laag tarief), o.a. arbeid voor het isoleren van woningen ouder dan 2 jaar',
        'Reduced rate, e.g. labour for insulating homes older than 2 years',
        date(2019, 1, 1),
    ),
    (0, 'Nultarief', 'Zero rate', date(1969, 1, 1)),
]


def upgrade():
    vat_rates = op.create_table(
        'vat_rates',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('organisation_id', sa.Integer(), nullable=False),
        sa.Column('percent', sa.Integer(), nullable=False),
        sa.Column('name_nl', sa.String(length=200), nullable=False),
        sa.Column('name_en', sa.String(length=200), nullable=False),
        sa.Column('source', sa.String(length=500), nullable=False),
        sa.Column('valid_from', sa.Date(), nullable=False),
        sa.Column('valid_until', sa.Date(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('ended_at', sa.DateTime(), nullable=True),
        sa.Column('ended_by_id', sa.Integer(), nullable=True),
        sa.CheckConstraint('percent BETWEEN 0 AND 100', name=op.f('ck_vat_rates_percent_range')),
        sa.CheckConstraint(
            'valid_until IS NULL OR valid_until >= valid_from',
            name=op.f('ck_vat_rates_ends_after_start'),
        ),
        sa.ForeignKeyConstraint(
            ['organisation_id'], ['organisations.id'],
            name=op.f('fk_vat_rates_organisation_id_organisations'), ondelete='CASCADE',
        ),
        sa.ForeignKeyConstraint(
            ['created_by_id'], ['users.id'],
            name=op.f('fk_vat_rates_created_by_id_users'), ondelete='SET NULL',
        ),
        sa.ForeignKeyConstraint(
            ['ended_by_id'], ['users.id'],
            name=op.f('fk_vat_rates_ended_by_id_users'), ondelete='SET NULL',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_vat_rates')),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f('ix_vat_rates_organisation_id'), 'vat_rates', ['organisation_id'], unique=False
    )
    now = datetime.now(timezone.utc).replace(tzinfo=None)  # stored as naive UTC
    desks = op.get_bind().execute(sa.text('SELECT id FROM organisations')).scalars().all()
    op.bulk_insert(
        vat_rates,
        [
            {
                'organisation_id': desk,
                'percent': percent,
                'name_nl': name_nl,
                'name_en': name_en,
                'source': SOURCE,
                'valid_from': valid_from,
                'valid_until': None,
                'created_at': now,
            }
            for desk in desks
            for percent, name_nl, name_en, valid_from in RATES
        ],
    )
    with op.batch_alter_table('quote_items', schema=None, table_kwargs=SQLITE_IDS) as batch_op:
        batch_op.drop_constraint(op.f('ck_quote_items_dutch_vat_rate'), type_='check')
        batch_op.create_check_constraint(
            op.f('ck_quote_items_vat_rate_range'), 'vat_rate BETWEEN 0 AND 100'
        )


def downgrade():
    other = op.get_bind().execute(
        sa.text('SELECT COUNT(*) FROM quote_items WHERE vat_rate NOT IN (0, 9, 21)')
    ).scalar()
    if other:
        # The old constraint would refuse them; rewriting a sent quote's VAT is not ours to do.
        raise RuntimeError(
            f'{other} quote rows use a VAT rate other than 0, 9 or 21 percent: '
            'the constraint of 0017 cannot come back'
        )
    with op.batch_alter_table('quote_items', schema=None, table_kwargs=SQLITE_IDS) as batch_op:
        batch_op.drop_constraint(op.f('ck_quote_items_vat_rate_range'), type_='check')
        batch_op.create_check_constraint(
            op.f('ck_quote_items_dutch_vat_rate'), 'vat_rate IN (0, 9, 21)'
        )
    op.drop_index(op.f('ix_vat_rates_organisation_id'), table_name='vat_rates')
    op.drop_table('vat_rates')
