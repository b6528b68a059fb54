"""PEC delivery state, routing limits and replies

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

import ambito_common.db
import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('package', sa.Column('registration_key', sa.String(length=100), nullable=True))
    op.add_column('package', sa.Column('size_limit', sa.BigInteger(), nullable=True))
    op.add_column('package', sa.Column('sent_at', ambito_common.db.UTCDateTime(timezone=True), nullable=True))
    op.add_column('package', sa.Column('delivery_attempts', sa.Integer(), nullable=False,
                                       server_default='0'))
    op.add_column('package', sa.Column('delivery_error', sa.String(length=1000), nullable=True))
    op.add_column('package', sa.Column('rejection_code', sa.String(length=50), nullable=True))
    op.add_column('package', sa.Column('rejection_reason', sa.String(length=1000), nullable=True))
    op.create_index(op.f('ix_package_message_id'), 'package', ['message_id'], unique=False)
    op.create_index(op.f('ix_package_registration_key'), 'package', ['registration_key'], unique=False)
    op.create_table('package_reply',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('package_id', sa.String(length=36), nullable=False),
    sa.Column('received_at', ambito_common.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('channel', sa.String(length=20), nullable=False),
    sa.Column('media_type', sa.String(length=100), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['package_id'], ['package.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_package_reply_package_id'), 'package_reply', ['package_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_package_reply_package_id'), table_name='package_reply')
    op.drop_table('package_reply')
    op.drop_index(op.f('ix_package_registration_key'), table_name='package')
    op.drop_index(op.f('ix_package_message_id'), table_name='package')
    for column in ('rejection_reason', 'rejection_code', 'delivery_error', 'delivery_attempts', 'sent_at',
                   'size_limit', 'registration_key'):
        op.drop_column('package', column)
