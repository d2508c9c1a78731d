"""matching_runs.status 'approving': staff asked to approve the proposal and a job is creating
its orders (an approval is no longer one request); matching_runs.cost_cents and
proposed_assignments.cost_cents BIGINT: a city's proposal costs more than 2^31 cents

Revision ID: 0017
Revises: 0015
Create Date: 2026-12-12 10:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0017'
down_revision = '0015'
branch_labels = None
depends_on = None

# Keep SQLite's tables AUTOINCREMENT (0009) when a batch operation copies one.
SQLITE_IDS = {'sqlite_autoincrement': True}

BEFORE = ('queued', 'running', 'proposed', 'approved', 'superseded', 'failed')
AFTER = ('queued', 'running', 'proposed', 'approving', 'approved', 'superseded', 'failed')


def _status(values):
    return sa.Enum(*values, name='runstatus', native_enum=False, create_constraint=True, length=30)


def upgrade():
    with op.batch_alter_table('matching_runs', schema=None, table_kwargs=SQLITE_IDS) as batch_op:
        batch_op.alter_column(
            'status', existing_type=_status(BEFORE), type_=_status(AFTER), existing_nullable=False
        )
        batch_op.alter_column(
            'cost_cents', existing_type=sa.Integer(), type_=sa.BigInteger(), existing_nullable=True
        )
    with op.batch_alter_table('proposed_assignments', schema=None, table_kwargs=SQLITE_IDS) as batch_op:
        batch_op.alter_column(
            'cost_cents', existing_type=sa.Integer(), type_=sa.BigInteger(), existing_nullable=True
        )


def downgrade():
    # A run being approved when going back is counted as approved: its orders exist.
    op.execute("UPDATE matching_runs SET status = 'approved' WHERE status = 'approving'")
    with op.batch_alter_table('proposed_assignments', schema=None, table_kwargs=SQLITE_IDS) as batch_op:
        batch_op.alter_column(
            'cost_cents', existing_type=sa.BigInteger(), type_=sa.Integer(), existing_nullable=True
        )
    with op.batch_alter_table('matching_runs', schema=None, table_kwargs=SQLITE_IDS) as batch_op:
        batch_op.alter_column(
            'cost_cents', existing_type=sa.BigInteger(), type_=sa.Integer(), existing_nullable=True
        )
        batch_op.alter_column(
            'status', existing_type=_status(AFTER), type_=_status(BEFORE), existing_nullable=False
        )
