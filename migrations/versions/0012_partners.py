"""partner units (协同单位): partners, where they serve, their contacts; tickets.partner_id

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 16:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'partners',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('code', sa.String(length=32), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('aliases', sa.JSON(), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_partners')),
        sa.UniqueConstraint('code', name=op.f('uq_partners_code')),
    )
    op.create_table(
        'partner_areas',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('partner_id', sa.Integer(), nullable=False),
        sa.Column('grid_id', sa.Integer(), nullable=True),
        sa.Column('place', sa.String(length=128), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(['partner_id'], ['partners.id'],
                                name=op.f('fk_partner_areas_partner_id_partners')),
        sa.ForeignKeyConstraint(['grid_id'], ['grids.id'],
                                name=op.f('fk_partner_areas_grid_id_grids')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_partner_areas')),
    )
    op.create_index(op.f('ix_partner_areas_partner_id'), 'partner_areas', ['partner_id'])
    op.create_table(
        'partner_contacts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('partner_id', sa.Integer(), nullable=False),
        sa.Column('person_id', sa.Integer(), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('source', sa.String(length=8), nullable=False),
        sa.ForeignKeyConstraint(['partner_id'], ['partners.id'],
                                name=op.f('fk_partner_contacts_partner_id_partners')),
        sa.ForeignKeyConstraint(['person_id'], ['people.id'],
                                name=op.f('fk_partner_contacts_person_id_people')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_partner_contacts')),
        sa.UniqueConstraint('partner_id', 'person_id',
                            name=op.f('uq_partner_contacts_partner_id_person_id')),
    )
    op.create_index(op.f('ix_partner_contacts_partner_id'), 'partner_contacts', ['partner_id'])
    op.create_index(op.f('ix_partner_contacts_person_id'), 'partner_contacts', ['person_id'])
    with op.batch_alter_table('tickets') as batch:
        batch.add_column(sa.Column('partner_id', sa.Integer(), nullable=True))
        batch.create_foreign_key('fk_tickets_partner_id_partners', 'partners',
                                 ['partner_id'], ['id'])
        batch.create_index('ix_tickets_partner_id', ['partner_id'])


def downgrade() -> None:
    with op.batch_alter_table('tickets') as batch:
        batch.drop_index('ix_tickets_partner_id')
        batch.drop_constraint('fk_tickets_partner_id_partners', type_='foreignkey')
        batch.drop_column('partner_id')
    op.drop_index(op.f('ix_partner_contacts_person_id'), table_name='partner_contacts')
    op.drop_index(op.f('ix_partner_contacts_partner_id'), table_name='partner_contacts')
    op.drop_table('partner_contacts')
    op.drop_index(op.f('ix_partner_areas_partner_id'), table_name='partner_areas')
    op.drop_table('partner_areas')
    op.drop_table('partners')
