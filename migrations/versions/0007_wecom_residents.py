"""wecom 居民上报: pushed grids, pulled reports, their steps, call-back contacts, sync state

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 14:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'wecom_grids',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=12), nullable=False),
        sa.Column('our_id', sa.Integer(), nullable=False),
        sa.Column('wecom_id', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('parent_wecom_id', sa.String(length=64), nullable=False),
        sa.Column('admins', sa.JSON(), nullable=False),
        sa.Column('members', sa.JSON(), nullable=False),
        sa.Column('updated_at', models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_wecom_grids')),
        sa.UniqueConstraint('kind', 'our_id', name=op.f('uq_wecom_grids_kind_our_id')),
        sa.UniqueConstraint('wecom_id', name=op.f('uq_wecom_grids_wecom_id')),
    )
    op.create_table(
        'wecom_orders',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('order_id', sa.String(length=64), nullable=False),
        sa.Column('ticket_id', sa.Integer(), nullable=False),
        sa.Column('wecom_grid_id', sa.String(length=64), nullable=False),
        sa.Column('created_time', sa.Integer(), nullable=False),
        sa.Column('steps', sa.Integer(), nullable=False),
        sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'],
                                name=op.f('fk_wecom_orders_ticket_id_tickets')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_wecom_orders')),
        sa.UniqueConstraint('order_id', name=op.f('uq_wecom_orders_order_id')),
        sa.UniqueConstraint('ticket_id', name=op.f('uq_wecom_orders_ticket_id')),
    )
    op.create_table(
        'wecom_order_steps',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('order_id', sa.String(length=64), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('process_type', sa.Integer(), nullable=False),
        sa.Column('status', sa.Integer(), nullable=False),
        sa.Column('solved_time', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_wecom_order_steps')),
        sa.UniqueConstraint('order_id', 'seq', name=op.f('uq_wecom_order_steps_order_id_seq')),
    )
    op.create_table(
        'resident_contacts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('ticket_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=128), nullable=False),
        sa.Column('mobile', sa.String(length=32), nullable=False),
        sa.Column('source', sa.String(length=16), nullable=False),
        sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'],
                                name=op.f('fk_resident_contacts_ticket_id_tickets')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_resident_contacts')),
        sa.UniqueConstraint('ticket_id', name=op.f('uq_resident_contacts_ticket_id')),
    )
    op.create_table(
        'wecom_sync_state',
        sa.Column('key', sa.String(length=32), nullable=False),
        sa.Column('done_until', sa.Integer(), nullable=False),
        sa.Column('since', sa.Integer(), nullable=False),
        sa.Column('run_started', sa.Integer(), nullable=True),
        sa.Column('page_cursor', sa.Text(), nullable=False),
        sa.Column('updated_at', models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('key', name=op.f('pk_wecom_sync_state')),
    )


def downgrade() -> None:
    op.drop_table('wecom_sync_state')
    op.drop_table('resident_contacts')
    op.drop_table('wecom_order_steps')
    op.drop_table('wecom_orders')
    op.drop_table('wecom_grids')
