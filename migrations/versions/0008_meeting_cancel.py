"""meetings.sequence, cancelled_at, cancel_message: staff edit and cancel meetings, and the
calendar files sent with the emails about it replace the event imported before

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 09:15:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('meetings', schema=None) as batch_op:
        # server_default: the meetings already planned start at SEQUENCE 0, as their .ics did.
        batch_op.add_column(sa.Column('sequence', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('cancelled_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('cancel_message', sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table('meetings', schema=None) as batch_op:
        batch_op.drop_column('cancel_message')
        batch_op.drop_column('cancelled_at')
        batch_op.drop_column('sequence')
