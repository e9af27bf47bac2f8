"""co-reports (附议): a ticket can follow another one it was merged into

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 15:50:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('tickets') as batch:
        batch.add_column(sa.Column('merged_into_id', sa.Integer(), nullable=True))
        batch.create_foreign_key('fk_tickets_merged_into_id_tickets', 'tickets',
                                 ['merged_into_id'], ['id'])
        batch.create_index('ix_tickets_merged_into_id', ['merged_into_id'])


def downgrade() -> None:
    with op.batch_alter_table('tickets') as batch:
        batch.drop_index('ix_tickets_merged_into_id')
        batch.drop_constraint('fk_tickets_merged_into_id_tickets', type_='foreignkey')
        batch.drop_column('merged_into_id')
