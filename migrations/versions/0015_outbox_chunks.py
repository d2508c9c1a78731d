"""outbox_jobs.handed_as: the RQ job that carries a row (rows go to workers in chunks);
an index on update_deliveries (update_id, status) for the last delivery's check

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-12 09:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

# Keep SQLite's tables AUTOINCREMENT (0009) when a batch operation copies one.
SQLITE_IDS = {'sqlite_autoincrement': True}


def upgrade():
    with op.batch_alter_table('outbox_jobs', schema=None, table_kwargs=SQLITE_IDS) as batch_op:
        batch_op.add_column(sa.Column('handed_as', sa.String(length=100), nullable=True))
    op.create_index(
        'ix_update_deliveries_update_id_status',
        'update_deliveries',
        ['update_id', 'status'],
        unique=False,
    )


def downgrade():
    op.drop_index('ix_update_deliveries_update_id_status', table_name='update_deliveries')
    with op.batch_alter_table('outbox_jobs', schema=None, table_kwargs=SQLITE_IDS) as batch_op:
        batch_op.drop_column('handed_as')
