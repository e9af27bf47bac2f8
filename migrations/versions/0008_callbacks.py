"""random call-backs (回访): households that may be called, and each week's calls

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 15:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'callback_households',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=160), nullable=False),
        sa.Column('grid_id', sa.Integer(), nullable=False),
        sa.Column('address', sa.String(length=128), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('phone', sa.String(length=32), nullable=False),
        sa.Column('source', sa.String(length=8), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('updated_at', models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['grid_id'], ['grids.id'],
                                name=op.f('fk_callback_households_grid_id_grids')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_callback_households')),
        sa.UniqueConstraint('key', name=op.f('uq_callback_households_key')),
    )
    op.create_index(op.f('ix_callback_households_grid_id'), 'callback_households', ['grid_id'])
    op.create_table(
        'callback_calls',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('number', sa.String(length=24), nullable=False),
        sa.Column('week', sa.String(length=8), nullable=False),
        sa.Column('household_id', sa.Integer(), nullable=False),
        sa.Column('grid_id', sa.Integer(), nullable=False),
        sa.Column('community_id', sa.Integer(), nullable=False),
        sa.Column('ticket_id', sa.Integer(), nullable=True),
        sa.Column('drawn_at', models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column('outcome', sa.String(length=12), nullable=False),
        sa.Column('community_rating', sa.String(length=12), nullable=False),
        sa.Column('worker_rating', sa.String(length=12), nullable=False),
        sa.Column('committee_rating', sa.String(length=12), nullable=False),
        sa.Column('note', sa.Text(), nullable=False),
        sa.Column('recorded_at', models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column('recorded_by', sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(['household_id'], ['callback_households.id'],
                                name=op.f('fk_callback_calls_household_id_callback_households')),
        sa.ForeignKeyConstraint(['grid_id'], ['grids.id'],
                                name=op.f('fk_callback_calls_grid_id_grids')),
        sa.ForeignKeyConstraint(['community_id'], ['communities.id'],
                                name=op.f('fk_callback_calls_community_id_communities')),
        sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'],
                                name=op.f('fk_callback_calls_ticket_id_tickets')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_callback_calls')),
        sa.UniqueConstraint('number', name=op.f('uq_callback_calls_number')),
        sa.UniqueConstraint('week', 'household_id',
                            name=op.f('uq_callback_calls_week_household_id')),
    )
    op.create_index(op.f('ix_callback_calls_household_id'), 'callback_calls', ['household_id'])
    op.create_index('ix_callback_calls_recorded', 'callback_calls', ['recorded_at'])


def downgrade() -> None:
    op.drop_index('ix_callback_calls_recorded', table_name='callback_calls')
    op.drop_index(op.f('ix_callback_calls_household_id'), table_name='callback_calls')
    op.drop_table('callback_calls')
    op.drop_index(op.f('ix_callback_households_grid_id'), table_name='callback_households')
    op.drop_table('callback_households')
