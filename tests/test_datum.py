"""GCJ-02 <-> WGS-84 against published reference pairs (eviltransform, coordtransform)."""

from __future__ import annotations

import pytest

from bot.routing.datum import (
    distance_m,
    gcj02_to_wgs84,
    out_of_china,
    to_wgs84,
    wgs84_to_gcj02,
)

# (wgs lat, wgs lon, gcj lat, gcj lon): googollee/eviltransform's test suite
EVILTRANSFORM = [
    (31.1774276, 121.5272106, 31.17530398364597, 121.531541859215),  # Shanghai
    (22.543847, 113.912316, 22.540796131694766, 113.9171764808363),  # Shenzhen
    (39.911954, 116.377817, 39.91334545536069, 116.38404722455657),  # Beijing
]
# wandergis/coordtransform README: wgs84togcj02(116.404, 39.915)
COORDTRANSFORM = [(39.915, 116.404, 39.91640428150164, 116.41024449916938)]
REFERENCE = EVILTRANSFORM + COORDTRANSFORM


@pytest.mark.parametrize(("wlat", "wlon", "glat", "glon"), REFERENCE)
def test_wgs_to_gcj_matches_reference(wlat: float, wlon: float, glat: float, glon: float) -> None:
    lat, lon = wgs84_to_gcj02(wlat, wlon)
    assert lat == pytest.approx(glat, abs=1e-9)
    assert lon == pytest.approx(glon, abs=1e-9)


@pytest.mark.parametrize(("wlat", "wlon", "glat", "glon"), REFERENCE)
def test_gcj_to_wgs_inverts_to_reference(
    wlat: float, wlon: float, glat: float, glon: float
) -> None:
    lat, lon = gcj02_to_wgs84(glat, glon)
    assert distance_m(lat, lon, wlat, wlon) < 0.01  # eviltransform's exact mode promises 0.5 m


def test_round_trip_across_china_is_sub_millimetre() -> None:
    worst = 0.0
    for lat10 in range(190, 540, 25):
        for lon10 in range(740, 1350, 35):
            lat, lon = lat10 / 10 + 0.123, lon10 / 10 + 0.456
            back = gcj02_to_wgs84(*wgs84_to_gcj02(lat, lon))
            worst = max(worst, distance_m(lat, lon, *back))
    assert worst < 0.001


def test_offset_near_fushan_is_hundreds_of_metres() -> None:
    # the reason a WeChat location must be converted before the point-in-polygon test
    g = wgs84_to_gcj02(35.97, 111.85)
    assert 300 < distance_m(35.97, 111.85, *g) < 1000


def test_outside_china_is_unchanged() -> None:
    assert out_of_china(51.5, -0.12)
    assert wgs84_to_gcj02(51.5, -0.12) == (51.5, -0.12)
    assert gcj02_to_wgs84(40.7, -74.0) == (40.7, -74.0)


def test_to_wgs84_by_datum_name() -> None:
    assert to_wgs84(35.97, 111.85, "wgs84") == (35.97, 111.85)
    assert to_wgs84(35.97, 111.85, "GCJ-02") == gcj02_to_wgs84(35.97, 111.85)
    with pytest.raises(ValueError, match="datum"):
        to_wgs84(35.97, 111.85, "bd09")


def test_distance() -> None:
    # one degree of latitude is about 111.2 km
    assert distance_m(35.0, 111.0, 36.0, 111.0) == pytest.approx(111_195, rel=1e-3)
