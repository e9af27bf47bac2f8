"""robot_reply_urls and webhook_cursors: the WeCom robots' shared memory

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 14:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'robot_reply_urls',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('chat_id', sa.String(length=64), nullable=False),
        sa.Column('msgid', sa.String(length=96), nullable=False),
        sa.Column('url', sa.Text(), nullable=False),
        sa.Column('expires_at', models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column('used_at', models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_robot_reply_urls')),
        sa.UniqueConstraint('msgid', name=op.f('uq_robot_reply_urls_msgid')),
    )
    op.create_index('ix_robot_reply_urls_chat', 'robot_reply_urls', ['chat_id', 'expires_at'])
    op.create_table(
        'webhook_cursors',
        sa.Column('key', sa.String(length=32), nullable=False),
        sa.Column('event_id', sa.Integer(), nullable=False),
        sa.Column('outbox_id', sa.Integer(), nullable=False),
        sa.Column('digest_day', sa.String(length=10), nullable=False),
        sa.Column('recent', sa.JSON(), nullable=False),
        sa.Column('paused_until', models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column('holder', sa.String(length=64), nullable=True),
        sa.Column('lease_until', models.base.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('key', name=op.f('pk_webhook_cursors')),
    )


def downgrade() -> None:
    op.drop_table('webhook_cursors')
    op.drop_index('ix_robot_reply_urls_chat', table_name='robot_reply_urls')
    op.drop_table('robot_reply_urls')
