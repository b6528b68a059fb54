"""one co-payment rule (the comune's), vouchers' state reported to intake

A voucher's co-payment becomes the family's hourly share (cents per hour, the comune's
rule in ambito_common.copayment) instead of a percent from the fund's
``copayment_bands`` rule, which is dropped. Existing vouchers keep their value: their
percent becomes the equivalent hourly amount of their own tariff.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('vouchers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('copayment_hourly', sa.Integer(), nullable=False, server_default='0'))
    op.execute('UPDATE vouchers SET copayment_hourly = (tariff * copayment_percent + 50) / 100')
    with op.batch_alter_table('vouchers', schema=None) as batch_op:
        batch_op.drop_constraint('voucher_copayment', type_='check')
        batch_op.drop_column('copayment_percent')
        batch_op.alter_column('copayment_hourly', server_default=None)
        batch_op.create_check_constraint('voucher_copayment_hourly', 'copayment_hourly >= 0')
    op.execute("DELETE FROM fund_rules WHERE kind = 'copayment_bands'")


def downgrade() -> None:
    with op.batch_alter_table('vouchers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('copayment_percent', sa.Integer(), nullable=False, server_default='0'))
    op.execute('UPDATE vouchers SET copayment_percent = '
               'CASE WHEN tariff > 0 THEN (copayment_hourly * 100 + tariff / 2) / tariff ELSE 0 END')
    with op.batch_alter_table('vouchers', schema=None) as batch_op:
        batch_op.drop_constraint('voucher_copayment_hourly', type_='check')
        batch_op.drop_column('copayment_hourly')
        batch_op.alter_column('copayment_percent', server_default=None)
        batch_op.create_check_constraint('voucher_copayment', 'copayment_percent BETWEEN 0 AND 100')
