"""Partner units (协同单位): property companies, owners' committees and departments a ticket
can be handed to (转办) while its grid worker stays responsible for it."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base

PARTNER_KINDS = ("property", "committee", "department")  # 物业公司 | 业委会 | 部门


class Partner(Base):
    """One row of partners.csv, keyed on its code."""

    __tablename__ = "partners"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # PARTNER_KINDS
    aliases: Mapped[list[str]] = mapped_column(JSON, default=list)  # 简称
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class PartnerArea(Base):
    """Where a partner serves: a grid, a place (by its name in places.csv), or, with neither,
    the whole county (a county department)."""

    __tablename__ = "partner_areas"

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), index=True)
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id"))
    place: Mapped[str] = mapped_column(String(128), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class PartnerContact(Base):
    """A person who acts for a partner on tickets handed to it (any channel they bind on)."""

    __tablename__ = "partner_contacts"
    __table_args__ = (UniqueConstraint("partner_id", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # "import" rows follow partners.csv; "invite" rows are never removed by an import
    source: Mapped[str] = mapped_column(String(8), default="invite")
