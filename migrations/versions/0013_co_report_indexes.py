"""indexes for finding a co-report's ticket: by grid and place, by grid and latitude

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 17:05:00
"""
from __future__ import annotations

from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # without them intake read every ticket not merged (by ix_tickets_merged_into_id) per batch
    op.create_index('ix_tickets_grid_place', 'tickets', ['grid_id', 'place_text'])
    op.create_index('ix_tickets_grid_lat', 'tickets', ['grid_id', 'lat'])


def downgrade() -> None:
    op.drop_index('ix_tickets_grid_lat', table_name='tickets')
    op.drop_index('ix_tickets_grid_place', table_name='tickets')
