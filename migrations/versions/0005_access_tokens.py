"""access_tokens: platform access tokens shared by every process (WeChat)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 10:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'access_tokens',
        sa.Column('key', sa.String(length=96), nullable=False),
        sa.Column('token', sa.Text(), nullable=True),
        sa.Column('expires_at', models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column('refreshing_until', models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column('updated_at', models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('key', name=op.f('pk_access_tokens')),
    )


def downgrade() -> None:
    op.drop_table('access_tokens')
