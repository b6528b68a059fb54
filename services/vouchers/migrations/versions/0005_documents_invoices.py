"""sealed documents of vouchers and reimbursements, invoices attached to reimbursement requests

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21
"""

import ambito_common.db
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('document_counters',
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('last_number', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('year')
    )
    op.create_table('sealed_documents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source_ref', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('reimbursement_id', sa.Integer(), nullable=True),
    sa.Column('voucher_id', sa.Integer(), nullable=True),
    sa.Column('register_year', sa.Integer(), nullable=False),
    sa.Column('register_number', sa.Integer(), nullable=False),
    sa.Column('created_at', ambito_common.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('package_requested_at', ambito_common.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('package_id', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('protocol_number', sa.String(length=60), nullable=True),
    sa.Column('protocol_date', sa.String(length=20), nullable=True),
    sa.Column('rejection_code', sa.String(length=60), nullable=True),
    sa.Column('rejection_reason', sa.String(length=2000), nullable=False),
    sa.Column('updated_at', ambito_common.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('requested', 'packaged', 'delivered', 'registered', 'rejected')",
                       name='sealed_document_status'),
    sa.ForeignKeyConstraint(['reimbursement_id'], ['reimbursement_requests.id'], ),
    sa.ForeignKeyConstraint(['voucher_id'], ['vouchers.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('register_year', 'register_number'),
    sa.UniqueConstraint('source_ref')
    )
    with op.batch_alter_table('sealed_documents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sealed_documents_reimbursement_id'), ['reimbursement_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_sealed_documents_voucher_id'), ['voucher_id'], unique=False)

    op.create_table('reimbursement_invoices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('media_type', sa.String(length=60), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('uploaded_by', sa.String(length=120), nullable=False),
    sa.Column('uploaded_at', ambito_common.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('size > 0', name='invoice_not_empty'),
    sa.ForeignKeyConstraint(['request_id'], ['reimbursement_requests.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('reimbursement_invoices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reimbursement_invoices_request_id'), ['request_id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('reimbursement_invoices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reimbursement_invoices_request_id'))
    op.drop_table('reimbursement_invoices')
    with op.batch_alter_table('sealed_documents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sealed_documents_voucher_id'))
        batch_op.drop_index(batch_op.f('ix_sealed_documents_reimbursement_id'))
    op.drop_table('sealed_documents')
    op.drop_table('document_counters')
