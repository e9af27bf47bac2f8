"""offered choices: what a number answers on a channel without buttons

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 11:10:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'offered_choices',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('chat_id', sa.String(length=64), nullable=False),
        sa.Column('user_id', sa.String(length=64), nullable=False),
        sa.Column('actions', sa.JSON(), nullable=False),
        sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_offered_choices')),
        sa.UniqueConstraint('channel', 'chat_id', 'user_id',
                            name=op.f('uq_offered_choices_channel_chat_id_user_id')),
    )


def downgrade() -> None:
    op.drop_table('offered_choices')
