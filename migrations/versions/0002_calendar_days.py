"""calendar days: a county's holidays and adjusted working days

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 17:55:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'calendar_days',
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('workday', sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint('day', name=op.f('pk_calendar_days')),
    )


def downgrade() -> None:
    op.drop_table('calendar_days')
