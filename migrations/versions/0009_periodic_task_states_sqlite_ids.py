"""periodic_task_states: how each scheduler task fared in its last round (read by /healthz);
on SQLite every table with an integer id becomes AUTOINCREMENT, so ids (and the outbox keys
and Stripe idempotency keys made of them) are never given out again after a row is deleted

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 21:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    _refuse_with_sqlite_foreign_keys_on()
    op.create_table('periodic_task_states',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('last_run_at', sa.DateTime(), nullable=False),
    sa.Column('last_success_at', sa.DateTime(), nullable=True),
    sa.Column('failing_since', sa.DateTime(), nullable=True),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_periodic_task_states'))
    )
    _sqlite_autoincrement(True)


def downgrade():
    _refuse_with_sqlite_foreign_keys_on()
    _sqlite_autoincrement(False)
    op.drop_table('periodic_task_states')


def _sqlite_autoincrement(on):
    """SQLite cannot alter a primary key: each table is copied into a new one with (or without)
    AUTOINCREMENT, its constraints and indexes as they are. PostgreSQL needs nothing."""
    bind = op.get_bind()
    if bind.dialect.name != 'sqlite':
        return
    tables = bind.execute(sa.text(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "AND name != 'alembic_version' ORDER BY name"
    )).all()
    # Foreign keys were never enforced on SQLite: rows may refer to rows long gone. The copy must
    # not add to them (it keeps every row as it is).
    broken_before = len(bind.exec_driver_sql('PRAGMA foreign_key_check').all())
    inspector = sa.inspect(bind)
    for name, sql in tables:
        if inspector.get_pk_constraint(name)['constrained_columns'] != ['id']:
            continue  # no id of its own (association tables, one row per neighbourhood)
        if ('AUTOINCREMENT' in sql.upper()) == on:
            continue
        with op.batch_alter_table(name, recreate='always', table_kwargs={'sqlite_autoincrement': on}):
            pass
    problems = bind.exec_driver_sql('PRAGMA foreign_key_check').all()
    if len(problems) > broken_before:
        raise RuntimeError(f'foreign keys broken by copying the tables: {problems[:5]}')


def _refuse_with_sqlite_foreign_keys_on():
    """Copying a table drops the old one; with foreign keys on, that would delete (cascade) the
    rows that refer to it. env.py turns them off while migrating; refuse before changing
    anything otherwise (SQLite does not undo DDL)."""
    bind = op.get_bind()
    if bind.dialect.name == 'sqlite' and bind.exec_driver_sql('PRAGMA foreign_keys').scalar():
        raise RuntimeError('SQLite foreign keys must be off while migrating (see migrations/env.py)')
