"""the web desk's one-time sign-in links (hashed)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 15:30:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'desk_links',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('person_id', sa.Integer(), nullable=False),
        sa.Column('identity_id', sa.Integer(), nullable=True),
        sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column('expires_at', models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column('used_at', models.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['identity_id'], ['identities.id'],
                                name=op.f('fk_desk_links_identity_id_identities')),
        sa.ForeignKeyConstraint(['person_id'], ['people.id'],
                                name=op.f('fk_desk_links_person_id_people')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_desk_links')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_desk_links_token_hash')),
    )
    op.create_index('ix_desk_links_person_created', 'desk_links', ['person_id', 'created_at'])


def downgrade() -> None:
    op.drop_index('ix_desk_links_person_created', table_name='desk_links')
    op.drop_table('desk_links')
