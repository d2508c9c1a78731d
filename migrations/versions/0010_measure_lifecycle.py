"""registration_measures.withdrawn_at and withdrawal_reason, status_changes.registration_measure_id:
each measure of a household has a lifecycle of its own and can be withdrawn alone;
order_lines.registration_id and registration_measure_id nullable (ON DELETE SET NULL): an erased
resident's work stays in the installer's order without the person. On SQLite, rows left pointing
at deleted rows while foreign keys were not enforced are settled as their ON DELETE rule says.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-10 10:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

# Keep SQLite's tables AUTOINCREMENT (0009) when a batch operation copies one.
SQLITE_IDS = {'sqlite_autoincrement': True}


def upgrade():
    with op.batch_alter_table('registration_measures', schema=None, table_kwargs=SQLITE_IDS) as batch_op:
        batch_op.add_column(sa.Column('withdrawn_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('withdrawal_reason', sa.Text(), nullable=True))

    with op.batch_alter_table('status_changes', schema=None, table_kwargs=SQLITE_IDS) as batch_op:
        batch_op.add_column(sa.Column('registration_measure_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f('fk_status_changes_registration_measure_id_registration_measures'),
            'registration_measures', ['registration_measure_id'], ['id'], ondelete='SET NULL',
        )

    with op.batch_alter_table('order_lines', schema=None, table_kwargs=SQLITE_IDS) as batch_op:
        batch_op.drop_constraint('fk_order_lines_registration_id_registrations', type_='foreignkey')
        batch_op.drop_constraint(
            'fk_order_lines_registration_measure_id_registration_measures', type_='foreignkey'
        )
        batch_op.alter_column('registration_id', existing_type=sa.Integer(), nullable=True)
        batch_op.alter_column('registration_measure_id', existing_type=sa.Integer(), nullable=True)
        batch_op.create_foreign_key(
            batch_op.f('fk_order_lines_registration_id_registrations'),
            'registrations', ['registration_id'], ['id'], ondelete='SET NULL',
        )
        batch_op.create_foreign_key(
            batch_op.f('fk_order_lines_registration_measure_id_registration_measures'),
            'registration_measures', ['registration_measure_id'], ['id'], ondelete='SET NULL',
        )

    if op.get_bind().dialect.name == 'sqlite':
        _settle_dangling_rows()


def _settle_dangling_rows():
    """SQLite did not enforce foreign keys before this revision: an erasure left, for example,
    order lines and notes pointing at deleted registrations. Apply each key's own ON DELETE
    rule to such rows now (PostgreSQL always enforced them, so it has none)."""
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    keys = []
    for table in inspector.get_table_names():
        for fk in inspector.get_foreign_keys(table):
            rule = (fk.get('options') or {}).get('ondelete', '').upper()
            if rule in ('CASCADE', 'SET NULL') and len(fk['constrained_columns']) == 1:
                keys.append(
                    (table, fk['constrained_columns'][0], fk['referred_table'],
                     fk['referred_columns'][0], rule)
                )
    # A cascade can leave new rows without their parent: go round until nothing changes.
    for _ in range(10):
        changed = 0
        for table, column, parent, parent_column, rule in keys:
            dangling = (
                f'"{column}" IS NOT NULL AND "{column}" NOT IN '
                f'(SELECT "{parent_column}" FROM "{parent}")'
            )
            if rule == 'CASCADE':
                result = bind.execute(sa.text(f'DELETE FROM "{table}" WHERE {dangling}'))
            else:
                result = bind.execute(
                    sa.text(f'UPDATE "{table}" SET "{column}" = NULL WHERE {dangling}')
                )
            changed += result.rowcount or 0
        if not changed:
            break


def downgrade():
    # Detached lines (of erased residents) cannot point at anyone again: they go, with what
    # hangs on them (foreign keys are off while SQLite migrates, so nothing cascades by itself).
    detached = 'SELECT id FROM order_lines WHERE registration_id IS NULL OR registration_measure_id IS NULL'
    op.execute(f'DELETE FROM quote_items WHERE quote_id IN (SELECT id FROM quotes WHERE line_id IN ({detached}))')
    op.execute(f'UPDATE payments SET quote_id = NULL WHERE quote_id IN (SELECT id FROM quotes WHERE line_id IN ({detached}))')
    for table in ('quotes', 'site_surveys', 'installer_reviews'):
        op.execute(f'DELETE FROM {table} WHERE line_id IN ({detached})')
    op.execute(f'DELETE FROM order_lines WHERE id IN ({detached})')
    with op.batch_alter_table('order_lines', schema=None, table_kwargs=SQLITE_IDS) as batch_op:
        batch_op.drop_constraint('fk_order_lines_registration_measure_id_registration_measures', type_='foreignkey')
        batch_op.drop_constraint('fk_order_lines_registration_id_registrations', type_='foreignkey')
        batch_op.alter_column('registration_measure_id', existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column('registration_id', existing_type=sa.Integer(), nullable=False)
        batch_op.create_foreign_key(
            batch_op.f('fk_order_lines_registration_measure_id_registration_measures'),
            'registration_measures', ['registration_measure_id'], ['id'], ondelete='CASCADE',
        )
        batch_op.create_foreign_key(
            batch_op.f('fk_order_lines_registration_id_registrations'),
            'registrations', ['registration_id'], ['id'], ondelete='CASCADE',
        )

    with op.batch_alter_table('status_changes', schema=None, table_kwargs=SQLITE_IDS) as batch_op:
        batch_op.drop_constraint(
            'fk_status_changes_registration_measure_id_registration_measures', type_='foreignkey'
        )
        batch_op.drop_column('registration_measure_id')

    with op.batch_alter_table('registration_measures', schema=None, table_kwargs=SQLITE_IDS) as batch_op:
        batch_op.drop_column('withdrawal_reason')
        batch_op.drop_column('withdrawn_at')
