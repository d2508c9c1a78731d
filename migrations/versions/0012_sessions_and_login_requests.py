"""users.session_epoch: logging out, a new password, two-factor login switched and a
deactivated account end every session of that account; login_link_requests: the login form does
the same work for every address, and a job sends the link when a resident has it

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-10 10:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

# Keep SQLite's tables AUTOINCREMENT (0009) when a batch operation copies one.
SQLITE_IDS = {'sqlite_autoincrement': True}


def upgrade():
    with op.batch_alter_table('users', schema=None, table_kwargs=SQLITE_IDS) as batch_op:
        # server_default: sessions of existing accounts carry epoch 0 from their next login on.
        batch_op.add_column(sa.Column('session_epoch', sa.Integer(), server_default='0', nullable=False))

    op.create_table(
        'login_link_requests',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('email', sa.String(length=254), nullable=False),
        sa.Column('language', sa.String(length=5), nullable=False),
        sa.Column('next_path', sa.String(length=300), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_login_link_requests')),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table('login_link_requests', schema=None, table_kwargs=SQLITE_IDS) as batch_op:
        batch_op.create_index(batch_op.f('ix_login_link_requests_created_at'), ['created_at'], unique=False)


def downgrade():
    with op.batch_alter_table('login_link_requests', schema=None, table_kwargs=SQLITE_IDS) as batch_op:
        batch_op.drop_index(batch_op.f('ix_login_link_requests_created_at'))
    op.drop_table('login_link_requests')

    with op.batch_alter_table('users', schema=None, table_kwargs=SQLITE_IDS) as batch_op:
        batch_op.drop_column('session_epoch')
