"""PEC send attempt recorded before the SMTP conversation

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

import ambito_common.db
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('package', sa.Column('sending_since', ambito_common.db.UTCDateTime(timezone=True),
                                       nullable=True))


def downgrade() -> None:
    op.drop_column('package', 'sending_since')
