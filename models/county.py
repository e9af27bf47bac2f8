from __future__ import annotations

from datetime import date

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class Community(Base):
    __tablename__ = "communities"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    extra: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)


class Grid(Base):
    __tablename__ = "grids"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"), index=True)
    micro_grids: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    extra: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)


class Place(Base):
    """One row of places.csv: a named place (or a number range of it) in one grid."""

    __tablename__ = "places"

    id: Mapped[int] = mapped_column(primary_key=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id"), index=True)
    name: Mapped[str] = mapped_column(String(128), index=True)
    aliases: Mapped[list[str]] = mapped_column(JSON, default=list)
    kind: Mapped[str] = mapped_column(String(32), default="")
    numbers: Mapped[str] = mapped_column(String(256), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Boundary(Base):
    """A grid's polygon as GeoJSON geometry, always stored in WGS-84."""

    __tablename__ = "boundaries"

    id: Mapped[int] = mapped_column(primary_key=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id"), unique=True)
    geometry: Mapped[dict[str, object]] = mapped_column(JSON)
    source_datum: Mapped[str] = mapped_column(String(8), default="wgs84")
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class CountyMeta(Base):
    """Single row; `version` bumps on each import so every instance reloads its index."""

    __tablename__ = "county_meta"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=0)
    source: Mapped[str] = mapped_column(Text, default="")


class CalendarDay(Base):
    """A county's own word on a day (holidays.yaml): off, or a weekend day worked (调休).

    Takes precedence over the chinesecalendar package, which knows a year only once its
    maintainers publish it; the State Council announces the schedule in the late autumn before.
    """

    __tablename__ = "calendar_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    workday: Mapped[bool] = mapped_column(Boolean)
