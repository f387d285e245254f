"""Generalisation of sensitive locations for the public copy (cami_geo.sensitivity).

What users depend on: a published coordinate is the centre of its grid cell at the
effective level (computed here independently with exact decimal arithmetic), never finer;
the uncertainty grows by at least the distance the point moved (checked with
pyproj.Geod); a submission can ask for more protection but never for less than its
species' registry default; withheld records carry no coordinates; no row is dropped.
"""

from __future__ import annotations

import math
from decimal import ROUND_FLOOR, Decimal

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod

from cami_geo.errors import InputError
from cami_geo.model import OCCURRENCE_COLUMNS, THREAT_COLUMNS
from cami_geo.registry import SENSITIVITY_LEVELS, load_registry
from cami_geo.sensitivity import (
    CELL_SIZE_DEG,
    cell_size_deg,
    effective_levels,
    finer_than_allowed,
    finest_coordinate_step_deg,
    generalise_occurrences,
    generalise_threats,
    max_decimals_allowed,
    normalise_level,
    snap_to_cell_centre,
)

GEOD = Geod(ellps="WGS84")
SIZES = {"0.001deg": "0.001", "0.01deg": "0.01", "0.1deg": "0.1", "1deg": "1"}


def centre_decimal(value: float, level: str) -> float:
    """Independent cell centre: exact decimal floor of value / size, plus half a cell."""
    size = Decimal(SIZES[level])
    k = (Decimal(repr(value)) / size).to_integral_value(rounding=ROUND_FLOOR)
    return float((k + Decimal("0.5")) * size)


def occurrences(lon, lat, *, slug="saiga_tatarica", sensitivity=None, **extra) -> gpd.GeoDataFrame:
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    n = len(lon)
    data = {c: [None] * n for c in OCCURRENCE_COLUMNS}
    data.update(record_id=[f"r{i:04d}" for i in range(n)], species_slug=[slug] * n, iso3=["KAZ"] * n,
                year=[2025] * n, event_date=["2025-05-01"] * n, decimal_longitude=lon, decimal_latitude=lat,
                coordinate_uncertainty_m=[30.0] * n, locality=["Kyzylkum well 3"] * n,
                recorded_by=["A. Ranger"] * n, sensitivity=[sensitivity] * n)
    data.update(extra)
    return gpd.GeoDataFrame(data, geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")


REG_EXACT = load_registry({"species": [{"scientific_name": "Capra sibirica", "common_name": "Siberian ibex",
                                        "range_states_iso3": ["KGZ", "KAZ"], "default_sensitivity": "exact"}]})
"""Registry with an extra species whose default is 'exact' (none of the shipped ones is)."""


@pytest.fixture(scope="module")
def reg_exact():
    return REG_EXACT


# -- levels -------------------------------------------------------------------------------

def test_level_helpers():
    assert [normalise_level(v) for v in ("0.1", "0.1 deg", "1 Degree", " WITHHELD ", "0.01°")] == \
        ["0.1deg", "0.1deg", "1deg", "withheld", "0.01deg"]
    assert normalise_level(None) is None and normalise_level(float("nan")) is None
    with pytest.raises(InputError, match="not one of exact, 0.001deg"):
        normalise_level("0.2deg")
    assert [max_decimals_allowed(lv) for lv in SENSITIVITY_LEVELS] == [None, 4, 3, 2, 1, 0]
    assert cell_size_deg("exact") == 0 and math.isinf(cell_size_deg("withheld"))


def test_snap_examples_and_edges():
    got = snap_to_cell_centre(np.array([45.2, 45.199999, -0.0001, 0.0, 90.0, -90.0]), 0.1, limit=90)
    assert got.tolist() == [45.25, 45.15, -0.05, 0.05, 89.95, -89.95]
    lon = snap_to_cell_centre(np.array([180.0, -180.0, 179.99]), 1.0, limit=180)
    assert lon.tolist() == [179.5, -179.5, 179.5]


# -- snapping against an independent computation --------------------------------------------

@settings(max_examples=150, deadline=None)
@given(lon=st.floats(-179.999, 179.999, allow_nan=False), lat=st.floats(-89.999, 89.999, allow_nan=False),
       level=st.sampled_from(list(SIZES)))
def test_snapped_to_cell_centre_and_uncertainty_covers_the_move(lon, lat, level):
    gdf = occurrences([lon], [lat], sensitivity=level, slug="capra_sibirica")
    out = generalise_occurrences(gdf, REG_EXACT)
    plon, plat = out.decimal_longitude.iloc[0], out.decimal_latitude.iloc[0]
    # independent cell centre, within 1e-9 degree (0.1 mm: float representation only); a
    # value within a millionth of a cell of its edge (1.999 stored as 1.99899999999999989;
    # the implementation rounds value / size to 6 decimals before flooring) may go to
    # either neighbouring cell
    tol = 1e-6 * float(SIZES[level])
    for got, value in ((plon, lon), (plat, lat)):
        expected = {centre_decimal(value - tol, level), centre_decimal(value + tol, level)}
        assert any(got == pytest.approx(e, abs=1e-9) for e in expected), (got, expected)
    assert out.geometry.x.iloc[0] == plon and out.geometry.y.iloc[0] == plat
    # the published value prints with no more decimals than the level allows
    for got in (plon, plat):
        assert len(repr(float(got)).split(".")[1]) <= max_decimals_allowed(level)
    # uncertainty raised by N >= the geodesic distance the point moved
    raised = out.coordinate_uncertainty_m.iloc[0] - 30.0
    moved = GEOD.inv(lon, lat, plon, plat)[2]
    assert raised >= moved - 1e-6
    assert f"uncertainty raised by {int(raised)} m" in out.data_generalizations.iloc[0]



@pytest.mark.parametrize("level", list(SIZES))
@pytest.mark.parametrize("lat", [0.3, 35.123, 48.77, -62.4, 79.9])
def test_uncertainty_increase_is_half_the_cell_diagonal(level, lat):
    """N equals half the WGS84 geodesic diagonal of the cell (SW to NE corner / 2) within
    0.5 % + 1 m: the code takes the centre-to-farthest-corner distance, rounded up, which
    differs from half a corner-to-corner geodesic only by the cell's curvature."""
    out = generalise_occurrences(occurrences([66.6], [lat], sensitivity=level, slug="capra_sibirica"), REG_EXACT)
    size = CELL_SIZE_DEG[level]
    cy, cx = out.decimal_latitude.iloc[0], out.decimal_longitude.iloc[0]
    half_diag = GEOD.inv(cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2)[2] / 2
    raised = out.coordinate_uncertainty_m.iloc[0] - 30.0
    assert raised == pytest.approx(half_diag, rel=0.005, abs=1.0)
    assert raised == math.ceil(raised)
    # and it covers every corner of the cell
    corners = [(cx + dx * size / 2, cy + dy * size / 2) for dx in (-1, 1) for dy in (-1, 1)]
    assert raised >= max(GEOD.inv(cx, cy, x, y)[2] for x, y in corners)


def test_unknown_uncertainty_becomes_the_rounding_error():
    gdf = occurrences([66.61, 66.61], [45.01, 45.01], sensitivity="0.1deg", slug="capra_sibirica")
    gdf["coordinate_uncertainty_m"] = [np.nan, 0.0]
    out = generalise_occurrences(gdf, REG_EXACT)
    assert out.coordinate_uncertainty_m.iloc[0] == out.coordinate_uncertainty_m.iloc[1] > 6000


# -- which level applies ------------------------------------------------------------------

def test_submission_cannot_weaken_the_species_default(registry):
    # saiga default 0.1deg; cheetah withheld; camel 1deg
    asked = pd.Series(["exact", "0.01deg", "1deg", None, "exact", "0.1deg", "withheld"])
    slugs = pd.Series(["saiga_tatarica", "saiga_tatarica", "saiga_tatarica", "saiga_tatarica",
                       "acinonyx_jubatus_venaticus", "camelus_ferus", "panthera_uncia"])
    got = effective_levels(asked, slugs, registry).tolist()
    assert got == ["0.1deg", "0.1deg", "1deg", "0.1deg", "withheld", "1deg", "withheld"]


def test_exact_request_for_a_sensitive_species_is_generalised(registry):
    out = generalise_occurrences(occurrences([66.6123, 67.0001], [45.0123, 44.9876], sensitivity="exact"), registry)
    assert (out.sensitivity == "0.1deg").all()
    assert out.decimal_longitude.tolist() == [66.65, 67.05]
    assert out.decimal_latitude.tolist() == [45.05, 44.95]
    assert out.locality.isna().all()
    assert (out.information_withheld == "Locality text withheld for species protection").all()
    assert out.data_generalizations.str.startswith(
        "Coordinates generalised to 0.1 degree grid (cell centre) for species protection; uncertainty raised by ").all()
    assert out.recorded_by.tolist() == ["A. Ranger"] * 2  # kept unless withheld


def test_exact_keeps_everything(reg_exact):
    gdf = occurrences([74.123456], [42.654321], sensitivity="exact", slug="capra_sibirica")
    out = generalise_occurrences(gdf, reg_exact)
    cols = [c for c in OCCURRENCE_COLUMNS if c != "sensitivity"]
    pd.testing.assert_frame_equal(pd.DataFrame(out[cols]), pd.DataFrame(gdf[cols]), check_dtype=False)
    assert out.geometry.iloc[0].equals(gdf.geometry.iloc[0])


def test_unknown_species_and_bad_level(registry):
    out = generalise_occurrences(occurrences([70.12345], [40.12345], slug="not_registered"), registry)
    assert out.sensitivity.iloc[0] == "0.1deg"
    with pytest.raises(InputError, match=r"'0.5deg' \(record r0000\) is not one of"):
        generalise_occurrences(occurrences([70.1], [40.1], sensitivity="0.5deg"), registry)


# -- withheld -----------------------------------------------------------------------------

def test_withheld_leaves_no_coordinates(registry):
    gdf = occurrences([59.1234, 60.5], [35.4321, 36.1], slug="acinonyx_jubatus_venaticus", sensitivity="0.01deg")
    gdf["iso3"] = "IRN"
    gdf["data_generalizations"] = ["already rounded by the SFP", None]
    out = generalise_occurrences(gdf, registry)
    assert len(out) == 2 and (out.sensitivity == "withheld").all()
    assert out.geometry.isna().all()
    assert out.decimal_latitude.isna().all() and out.decimal_longitude.isna().all()
    assert out.coordinate_uncertainty_m.isna().all()
    for col in ("locality", "recorded_by", "event_date"):
        assert out[col].isna().all(), col
    assert out.iso3.tolist() == ["IRN", "IRN"] and out.year.tolist() == [2025, 2025]
    assert out.information_withheld.str.contains("withheld for species protection; country and year kept").all()
    assert out.data_generalizations.tolist() == [
        "already rounded by the SFP; Coordinates withheld for species protection",
        "Coordinates withheld for species protection"]
    # the input frame is untouched (the restricted copy keeps the precise record)
    assert gdf.decimal_latitude.tolist() == [35.4321, 36.1] and gdf.geometry.notna().all()


# -- scanning a public copy ------------------------------------------------------------------

def test_public_copy_scan_finds_nothing_finer_than_allowed(registry, reg_exact):
    rng = np.random.default_rng(20260501)
    n = 20_000
    slugs = np.array(sorted(reg_exact.species))
    gdf = occurrences(rng.uniform(40, 120, n), rng.uniform(25, 56, n))
    gdf["species_slug"] = slugs[rng.integers(0, len(slugs), n)]
    gdf["sensitivity"] = np.array(list(SENSITIVITY_LEVELS) + [None], dtype=object)[rng.integers(0, 7, n)]
    out = generalise_occurrences(gdf, reg_exact)
    assert len(out) == n and out.index.equals(gdf.index)
    for coords in (out.decimal_longitude, out.decimal_latitude, out.geometry.x, out.geometry.y):
        assert not finer_than_allowed(coords, out.sensitivity).any()
    for level in SIZES:
        sel = out.sensitivity == level
        assert sel.any()
        assert finest_coordinate_step_deg(out.decimal_longitude[sel]) >= CELL_SIZE_DEG[level] / 2
        assert finest_coordinate_step_deg(out.geometry.y[sel]) >= CELL_SIZE_DEG[level] / 2
    # the scanner does see precise input
    assert finest_coordinate_step_deg(gdf.decimal_longitude) < 1e-4
    assert finer_than_allowed(gdf.decimal_longitude, gdf.sensitivity.fillna("0.1deg")).sum() > n * 0.5


def test_scanner_examples():
    assert finest_coordinate_step_deg([45.5, 61.5]) == 0.5
    assert finest_coordinate_step_deg([45.15, 45.123]) == 0.001
    assert finest_coordinate_step_deg([np.nan, None]) == math.inf
    assert finer_than_allowed([45.5, 45.0, 45.25], "1deg").tolist() == [False, True, True]
    assert finer_than_allowed([1.0, np.nan], "withheld").tolist() == [True, False]


def test_million_records_vectorised(registry):
    """10^6 records generalise in well under a minute (about 5 s on 2 cores)."""
    import time

    rng = np.random.default_rng(1)
    n = 1_000_000
    gdf = occurrences(rng.uniform(40, 120, n), rng.uniform(25, 56, n))
    t0 = time.perf_counter()
    out = generalise_occurrences(gdf, registry)
    assert time.perf_counter() - t0 < 60
    assert len(out) == n and (out.sensitivity == "0.1deg").all()


# -- threats --------------------------------------------------------------------------------

def threats(rows) -> gpd.GeoDataFrame:
    data = {c: [None] * len(rows) for c in THREAT_COLUMNS}
    data["record_id"] = [f"t{i}" for i in range(len(rows))]
    for key in ("iucn_code", "species_slug", "iso3", "name"):
        data[key] = [r[key] for r in rows]
    data["event_date"] = ["2025-02-03"] * len(rows)
    data["year"] = [2025] * len(rows)
    return gpd.GeoDataFrame(data, geometry=[r["geometry"] for r in rows], crs="EPSG:4326")


def test_poaching_points_generalised_others_kept(registry):
    line = shapely.LineString([(66.123, 45.321), (66.987, 45.789)])
    rows = [
        dict(iucn_code="5.1.1", species_slug="saiga_tatarica", iso3="KAZ", name="snare line camp", geometry=shapely.Point(66.1234, 45.4321)),
        dict(iucn_code="5.1.1", species_slug="saiga_tatarica", iso3="KAZ", name="road", geometry=line),
        dict(iucn_code="4.1", species_slug="saiga_tatarica", iso3="KAZ", name="checkpoint", geometry=shapely.Point(66.1234, 45.4321)),
        dict(iucn_code="5.1.3", species_slug="", iso3="IRN", name="kill site", geometry=shapely.Point(57.1234, 33.4321)),
        dict(iucn_code="5.1", species_slug="camelus_ferus", iso3="MNG", name="carcass",
             geometry=shapely.MultiPoint([(96.123, 44.321), (96.987, 44.789)])),
    ]
    gdf = threats(rows)
    out = generalise_threats(gdf, registry)
    assert len(out) == 5
    assert out.geometry.iloc[0].equals(shapely.Point(66.15, 45.45))
    assert out.name.iloc[0] is None and out["flags"].iloc[0] == "generalised_0.1deg"
    assert out.geometry.iloc[1].equals(line) and out.name.iloc[1] == "road"
    assert out.geometry.iloc[2].equals(gdf.geometry.iloc[2]) and out.name.iloc[2] == "checkpoint"
    # no species: coarsest default of species listed in IRN (Asiatic cheetah: withheld)
    assert out.geometry.iloc[3] is None and out.event_date.iloc[3] is None and out.year.iloc[3] == 2025
    assert out.geometry.iloc[4].equals(shapely.MultiPoint([(96.5, 44.5), (96.5, 44.5)]))
    coords = shapely.get_coordinates(out.geometry.dropna().iloc[[0, 3]].values)
    assert not finer_than_allowed(coords[:, 0], ["0.1deg", "1deg", "1deg"]).any()


def test_threat_sensitivity_column_may_only_coarsen(registry):
    gdf = threats([dict(iucn_code="5.1.1", species_slug="saiga_tatarica", iso3="KAZ", name=None,
                        geometry=shapely.Point(66.1234, 45.4321))] * 2)
    gdf["sensitivity"] = ["exact", "1deg"]
    out = generalise_threats(gdf, registry)
    assert out.geometry.iloc[0].equals(shapely.Point(66.15, 45.45))
    assert out.geometry.iloc[1].equals(shapely.Point(66.5, 45.5))
