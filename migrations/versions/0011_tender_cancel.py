"""tender_rounds.cancel_message: staff cancel a tender round with a message to the invited
installers (cancelled_at was already there)

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-05 09:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('tender_rounds', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cancel_message', sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table('tender_rounds', schema=None) as batch_op:
        batch_op.drop_column('cancel_message')
