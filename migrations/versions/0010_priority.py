"""ticket priority (紧急 / 一般): urgent tickets have deadlines of their own

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 15:30:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # tickets already open keep their deadlines: they were all normal
    with op.batch_alter_table('tickets') as batch:
        batch.add_column(sa.Column('priority', sa.String(length=8), nullable=False,
                                   server_default='normal'))


def downgrade() -> None:
    with op.batch_alter_table('tickets') as batch:
        batch.drop_column('priority')
