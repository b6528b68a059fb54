"""sad supplements, protocol rejections, voucher outcome

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

import ambito_common.db
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sad_supplements',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.String(length=36), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('created_at', ambito_common.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('register_code', sa.String(length=50), nullable=False),
    sa.Column('register_year', sa.Integer(), nullable=False),
    sa.Column('register_number', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('package_requested_at', ambito_common.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('package_id', sa.String(length=64), nullable=True),
    sa.Column('protocol_number', sa.String(length=64), nullable=True),
    sa.Column('protocol_date', sa.Date(), nullable=True),
    sa.Column('rejection_code', sa.String(length=64), nullable=True),
    sa.Column('rejection_reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['request_id'], ['sad_requests.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('register_code', 'register_year', 'register_number'),
    sa.UniqueConstraint('request_id', 'number')
    )
    with op.batch_alter_table('sad_supplements', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sad_supplements_request_id'), ['request_id'], unique=False)

    with op.batch_alter_table('sad_attachments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('supplement_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_sad_attachments_supplement_id'), ['supplement_id'], unique=False)
        batch_op.create_foreign_key('fk_sad_attachments_supplement_id', 'sad_supplements',
                                    ['supplement_id'], ['id'], ondelete='SET NULL')

    with op.batch_alter_table('sad_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rejection_code', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('rejection_reason', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('vouchers', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('waiting_position', sa.Integer(), nullable=True))

    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rejection_code', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('rejection_reason', sa.Text(), nullable=True))

    with op.batch_alter_table('application_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('notified_at', ambito_common.db.UTCDateTime(timezone=True),
                                      nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('application_events', schema=None) as batch_op:
        batch_op.drop_column('notified_at')

    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.drop_column('rejection_reason')
        batch_op.drop_column('rejection_code')

    with op.batch_alter_table('sad_requests', schema=None) as batch_op:
        batch_op.drop_column('waiting_position')
        batch_op.drop_column('vouchers')
        batch_op.drop_column('rejection_reason')
        batch_op.drop_column('rejection_code')

    with op.batch_alter_table('sad_attachments', schema=None) as batch_op:
        batch_op.drop_constraint('fk_sad_attachments_supplement_id', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_sad_attachments_supplement_id'))
        batch_op.drop_column('supplement_id')

    with op.batch_alter_table('sad_supplements', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sad_supplements_request_id'))

    op.drop_table('sad_supplements')
