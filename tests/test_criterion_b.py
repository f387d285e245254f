"""Criterion-B measures checked against independent computations.

Tolerances are stated per test. Reference figures:
- analytic areas of ellipsoidal caps and quadrangles (authalic-latitude formula, WGS84);
- brute-force cell counting written out in plain Python from the definitions;
- shapely unions of circles for subpopulations;
- ConR 1.x published figures for *Berlinia bruneelii* in ConR's example data set
  (``dataset.ex``, gdauby/ConR): EOO 2,635,042 km2 (tests/testthat/test-1.R,
  ``expect_equal(2635042, EOO[1,1])``) and AOO 404 km2 (tests/testthat/test-3.R,
  ``expect_equal(404, Results[1,2])``). Its 147 records (105 unique) are copied below.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Geod, Transformer

from cami_geo.status import criterion_b as cb

A = 6378137.0
F = 1 / 298.257223563
E2 = F * (2 - F)
E = math.sqrt(E2)
B2 = A * A * (1 - E2)

BERLINIA = """
    -4.466670,11.416700 -5.666670,29.350000 3.883330,18.683300 4.483330,20.300000
    -2.766670,18.483300 -1.266670,24.550000 3.283330,12.466700 2.783330,16.433300
    -5.516670,13.366700 -2.483330,28.850000 4.366670,18.583300 3.900000,17.883300
    0.766667,24.450000 0.766667,24.450000 3.016670,12.366700 3.016670,12.366700 4.483330,20.300000
    -2.116670,14.066700 -2.116670,14.083300 -1.600000,13.150000 1.216670,19.816700
    -5.466670,16.500000 -9.650000,20.400000 0.633333,14.900000 0.633333,14.900000
    0.633333,14.900000 3.616670,11.583300 -4.933330,14.850000 -6.000000,18.500000
    4.000000,22.250000 0.766667,24.450000 0.766667,24.450000 -1.633330,20.650000 0.900000,14.833300
    -0.683333,22.316700 0.466667,20.950000 -0.033333,20.966700 -0.033333,20.966700
    -1.633330,20.650000 1.066670,20.066700 -0.700000,22.600000 -4.850000,21.916700
    -4.850000,21.916700 -5.133330,15.100000 -4.666670,15.433300 -4.666670,15.433300
    -0.833333,18.000000 -2.416670,25.100000 2.366670,16.150000 2.600000,16.116700
    -2.516670,15.483300 -3.000000,15.466700 2.783330,16.266700 2.350000,16.150000
    -4.383330,15.300000 -4.383330,15.300000 0.583333,24.783300 -4.266670,15.283300
    3.900000,17.933300 4.350000,18.600000 -2.733330,18.133300 -3.016670,16.933300
    -3.700000,18.666700 -5.900000,23.283300 -5.633330,15.666700 -4.333330,15.500000
    -11.266700,26.800000 -6.116670,19.100000 -3.266670,12.550000 -3.483330,12.316700
    -1.000000,12.333300 1.500000,11.166700 3.900000,17.933300 -5.033330,15.233300
    -3.266670,17.366700 -3.266670,17.366700 -5.683330,15.400000 -3.266670,17.366700
    -5.116670,15.133300 -5.116670,15.133300 -5.116670,15.133300 -2.216670,14.033300
    -10.816700,26.766700 2.933330,11.166700 3.333330,11.500000 0.200000,10.900000
    -1.950000,11.466700 3.550000,11.616700 2.700000,16.116700 3.550000,11.616700
    -1.600000,13.150000 0.633333,14.900000 0.633333,14.900000 0.633333,14.900000 2.350000,16.150000
    -0.833333,12.700000 -1.616670,13.833300 4.266670,11.633300 -2.324440,13.660600
    2.202870,16.504000 -0.176306,12.538400 -2.209000,14.032000 -0.182000,12.545000
    3.900000,17.933300 3.900000,17.933300 -2.166670,14.050000 -2.210000,14.032200
    2.816670,11.133300 2.933330,11.166700 -1.566670,14.200000 3.333330,11.500000 -1.600000,9.950000
    -4.466670,15.283300 2.350000,16.150000 2.350000,16.150000 2.783330,16.266700 2.783330,16.266700
    3.016670,16.183300 2.160170,16.153000 2.160170,16.254800 2.150000,21.500000 1.216670,19.816700
    0.296667,12.605000 -2.198780,14.029600 -2.026670,14.050600 4.433330,10.366700
    4.433330,10.366700 -4.266670,15.283300 -0.083333,11.950000 1.483330,9.566670
    -0.833333,12.700000 -2.316670,13.666700 -4.266670,15.283300 -3.000000,12.500000
    3.750000,12.250000 3.900000,17.933300 3.900000,17.933300 2.816670,11.133300 -1.566670,14.200000
    -4.266670,15.283300 3.883330,18.000000 2.197120,16.179800 -0.750000,18.116700
    4.250000,11.750000 -1.950000,11.466700 1.183330,13.183300 1.350000,12.950000
"""


def berlinia():
    pts = np.array([[float(v) for v in p.split(",")] for p in BERLINIA.split()])
    return pts[:, 1], pts[:, 0]  # lon, lat


def q(phi_deg):
    """Authalic function: area (m2) per radian of longitude between the equator and phi."""
    s = math.sin(math.radians(phi_deg))
    return B2 * (s / (2 * (1 - E2 * s * s)) + math.log((1 + E * s) / (1 - E * s)) / (4 * E))


def quadrangle_km2(lon1, lon2, lat1, lat2):
    return math.radians(lon2 - lon1) * (q(lat2) - q(lat1)) / 1e6


# --- ConR published figures ----------------------------------------------------------
def test_conr_reproduces_published_berlinia_figures():
    lon, lat = berlinia()
    assert cb.unique_points(lon, lat)[0].size == 105
    # ConR reports EOO rounded to the km2 and AOO as a multiple of 4 km2.
    assert round(cb.eoo_km2(lon, lat, "conr")) == 2635042
    assert cb.aoo(lon, lat, "conr").aoo_km2 == 404.0


# --- EOO ------------------------------------------------------------------------------
def test_quadrangle_formula_matches_geod_on_a_densified_box():
    # guards the analytic reference itself: a 1 x 1 degree box densified to 0.001 degree
    box = shapely.segmentize(shapely.box(66, 47, 67, 48), 0.001)
    area = abs(Geod(ellps="WGS84").geometry_area_perimeter(box)[0]) / 1e6
    assert area == pytest.approx(quadrangle_km2(66, 67, 47, 48), rel=1e-6)


def test_iucn_eoo_of_a_polar_cap_equals_the_analytic_cap_area():
    # 3600 points on the 80 N parallel plus the pole: the hull is the cap (chord loss < 1e-6).
    lon = np.linspace(-180, 180, 3600, endpoint=False)
    lat = np.full_like(lon, 80.0)
    lon, lat = np.append(lon, 0.0), np.append(lat, 90.0)
    cap = 2 * math.pi * (q(90) - q(80)) / 1e6
    assert cb.eoo_km2(lon, lat, "iucn") == pytest.approx(cap, rel=1e-5)


def test_iucn_eoo_is_the_same_across_the_antimeridian():
    rng = np.random.default_rng(1)
    lon = rng.uniform(-10, 10, 400)
    lat = rng.uniform(60, 70, 400)
    here = cb.eoo_km2(lon, lat, "iucn")
    moved = ((lon + 360) % 360) - 180  # the same shape at 170 E..170 W
    assert moved.min() < -169 and moved.max() > 169
    assert cb.eoo_km2(moved, lat, "iucn") == pytest.approx(here, rel=1e-9)
    # ConR's hull in degrees goes the wrong way round there (its edges cross the antimeridian)
    assert cb.eoo_km2(moved, lat, "conr") < 0.1 * here


def test_iucn_eoo_covers_a_wide_quadrangle_where_the_degree_hull_loses_area():
    # 45-90 E x 40-55 N, points every 0.05 degree along the boundary (DOMAIN.md section 4)
    t = np.arange(45, 90.0001, 0.05)
    s = np.arange(40, 55.0001, 0.05)
    lon = np.concatenate([t, t, np.full_like(s, 45), np.full_like(s, 90)])
    lat = np.concatenate([np.full_like(t, 40), np.full_like(t, 55), s, s])
    exact = quadrangle_km2(45, 90, 40, 55)
    iucn = cb.eoo_km2(lon, lat, "iucn")
    conr = cb.eoo_km2(lon, lat, "conr")
    # the spherical hull holds the quadrangle (northern parallel bulges less than the geodesic)
    assert iucn >= exact * (1 - 1e-6)
    assert iucn < exact * 1.10  # the geodesic over the 45-degree northern edge adds ~8 %
    assert conr < iucn * 0.95  # the degree hull drops > 5 % here


def test_one_two_and_collinear_points():
    one = cb.measures([66.0], [47.0], "iucn")
    assert (one.n_unique, one.aoo_km2, one.eoo_km2) == (1, 4.0, 4.0)
    assert "1 unique point" in one.eoo_flag
    assert cb.eoo_km2([66.0], [47.0], "iucn") == 0.0
    assert math.isnan(cb.eoo_km2([66.0], [47.0], "conr"))
    two = cb.measures([66.0, 67.0], [47.0, 47.0], "conr")
    assert (two.aoo_km2, two.eoo_km2) == (8.0, 8.0) and "2 unique points" in two.eoo_flag
    # three points on a meridian (a great circle), 0.5 degree apart
    lon, lat = [66.0, 66.0, 66.0], [47.0, 47.5, 48.0]
    assert cb.eoo_km2(lon, lat, "iucn") < 1e-6
    m = cb.measures(lon, lat, "iucn")
    assert (m.aoo_km2, m.eoo_km2) == (12.0, 12.0) and m.eoo_flag.startswith("EOO set to AOO")
    mc = cb.measures(lon, lat, "conr")
    assert (mc.aoo_km2, mc.eoo_km2) == (12.0, 12.0)


def test_duplicates_and_invalid_coordinates_are_ignored():
    lon = [66.0, 66.0, 66.0, np.nan, 200.0 - 360.0]
    lat = [47.0, 47.0, 47.0, 10.0, 95.0]
    assert cb.unique_points(lon, lat)[0].size == 1


def test_points_beyond_a_hemisphere_have_no_iucn_eoo():
    lon = [0.0, 120.0, -120.0, 0.0]
    lat = [0.0, 0.0, 0.0, 10.0]
    assert math.isnan(cb.eoo_km2(lon, lat, "iucn"))
    assert "hemisphere" in cb.measures(lon, lat, "iucn").eoo_flag


# --- AOO and locations ---------------------------------------------------------------
def _brute_iucn_counts(lon, lat, cell_m, k):
    crs = cb.laea_crs(*cb.unique_points(lon, lat))
    x, y = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(lon, lat)
    counts = []
    for i in range(k):
        for j in range(k):
            ox, oy = i * cell_m / k, j * cell_m / k
            counts.append(len({(math.floor((a - ox) / cell_m), math.floor((b - oy) / cell_m))
                               for a, b in zip(x, y)}))
    return counts


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_iucn_aoo_equals_brute_force_counting_over_16_origins(seed):
    rng = np.random.default_rng(seed)
    lon = rng.normal(70, 0.05, 300)
    lat = rng.normal(45, 0.05, 300)
    counts = _brute_iucn_counts(lon, lat, 2000.0, 4)
    res = cb.aoo(lon, lat, "iucn")
    assert res.n_grids == 16
    assert res.aoo_km2 == 4 * min(counts)
    assert res.aoo_km2_median == 4 * float(np.median(counts))
    assert res.aoo_km2_max == 4 * max(counts)


def test_iucn_cells_are_true_2km_on_the_ground():
    lon, lat = np.array([60.0, 80.0]), np.array([40.0, 55.0])
    crs = cb.laea_crs(lon, lat)
    inv = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    geod = Geod(ellps="WGS84")
    # a cell's sides: 2000 m within 0.5 m at the centre; 800 km away within 0.5 % (LAEA
    # stretches radially and shrinks tangentially by the same factor), area within 0.01 %
    for cx, cy, tol in [(0, 0, 0.5), (800e3, 0, 10), (0, -800e3, 10)]:
        (x0, y0), (x1, y1), (x2, y2) = [inv.transform(cx + dx, cy + dy) for dx, dy in
                                         [(0, 0), (2000, 0), (0, 2000)]]
        sx, sy = geod.inv(x0, y0, x1, y1)[2], geod.inv(x0, y0, x2, y2)[2]
        assert sx == pytest.approx(2000, abs=tol) and sy == pytest.approx(2000, abs=tol)
        assert sx * sy == pytest.approx(4e6, rel=1e-4)


def test_laea_transformer_is_the_operation_proj_finds():
    # cb._transformer builds the LAEA pipeline itself (no PROJ operation search): the same
    # definition and bit-identical coordinates as Transformer.from_crs, poles, -0 and
    # the antimeridian included
    rng = np.random.default_rng(3)
    centres = [(0.0, 0.0), (-0.00001, -0.00001), (90.0, 0.0), (-90.0, 179.99999), (45.12345, -180.0),
               *zip(rng.uniform(-90, 90, 40), rng.uniform(-180, 180, 40))]
    x, y = rng.uniform(-180, 180, 500), rng.uniform(-90, 90, 500)
    for lat0, lon0 in centres:
        crs = cb.LAEA_CRS.format(lat0=lat0, lon0=lon0)
        ref = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
        got = cb._transformer(crs)
        assert got.definition == ref.definition
        for a, b in zip(got.transform(x, y), ref.transform(x, y)):
            assert np.array_equal(a, b, equal_nan=True)


def _brute_conr_count(lon, lat, s):
    x, y = Transformer.from_crs("EPSG:4326", cb.CONR_CRS, always_xy=True).transform(lon, lat)
    best = None
    for h in range(4):
        left = math.floor(min(x)) - h * s / 4 - 2 * s
        top = math.floor(max(y)) + h * s / 4 + 2 * s
        n = len({(math.floor((a - left) / s), math.floor((top - b) / s)) for a, b in zip(x, y)})
        best = n if best is None else min(best, n)
    return best


@pytest.mark.parametrize("seed", [0, 1])
def test_conr_aoo_and_locations_equal_the_stated_algorithm(seed):
    rng = np.random.default_rng(seed)
    lon = rng.normal(70, 0.2, 400)
    lat = rng.normal(45, 0.2, 400)
    assert cb.aoo(lon, lat, "conr").aoo_km2 == 4 * _brute_conr_count(lon, lat, 2000.0)
    assert cb.locations(lon, lat, "conr") == _brute_conr_count(lon, lat, 10000.0)


def test_locations_of_points_25km_apart_are_one_each():
    lat = 45 + np.arange(6) * 25.0 / 111.0
    lon = np.full(6, 70.0)
    assert cb.locations(lon, lat, "iucn") == 6
    assert cb.locations(lon, lat, "conr") == 6


# --- subpopulations ---------------------------------------------------------------------
def _union_count(lon, lat, crs, r_m):
    x, y = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(lon, lat)
    circles = shapely.buffer(shapely.points(np.column_stack([x, y])), r_m, quad_segs=64)
    return len(shapely.get_parts(shapely.union_all(circles))), np.column_stack([x, y])


@pytest.mark.parametrize("method", ["iucn", "conr"])
@pytest.mark.parametrize("seed", [3, 4, 5, 6])
def test_subpopulations_equal_the_union_of_5km_circles(method, seed):
    rng = np.random.default_rng(seed)
    lon = rng.uniform(70, 71.5, 60)
    lat = rng.uniform(45, 46, 60)
    crs = cb.CONR_CRS if method == "conr" else cb.laea_crs(*cb.unique_points(lon, lat))
    expected, xy = _union_count(lon, lat, crs, 5000.0)
    d = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    if np.any(np.abs(d - 10000.0) < 20.0):
        pytest.skip("a pair is within 20 m of tangency, where polygonised circles differ")
    assert cb.subpopulations(lon, lat, method) == expected
    assert 1 < expected < 60  # the case is not trivial


def test_subpopulations_of_hand_made_points():
    # two points 8 km apart (one subpopulation), a third 30 km away (another)
    lat0 = 45.0
    dlat = 8.0 / 111.13
    assert cb.subpopulations([70, 70, 70], [lat0, lat0 + dlat, lat0 + 0.3], "iucn") == 2
    assert cb.subpopulations([70], [lat0], "iucn") == 1
    assert cb.subpopulations([], [], "iucn") == 0


# --- category -----------------------------------------------------------------------------
def test_category_en_with_documented_decline():
    code, note = cb.category_b(3000, 300, 4, decline="v")
    assert code == "preliminary: EN B1ab(v)+B2ab(v)"
    assert "30,000" in note and "3,000" in note


def test_category_uses_the_least_severe_of_area_and_locations():
    code, _ = cb.category_b(80, 8, 4, decline="iii")  # CR areas but 4 locations: EN
    assert code == "preliminary: EN B1ab(iii)+B2ab(iii)"
    code, _ = cb.category_b(15000, 300, 3, decline="v")  # B1 VU, B2 EN
    assert code == "preliminary: EN B2ab(v)"


def test_category_without_decline_states_only_the_area_band():
    code, note = cb.category_b(3000, 300, 4)
    assert code == "preliminary: meets B1+B2 area threshold for EN; conditions not assessed"
    assert "decline not documented" in note
    code, _ = cb.category_b(15000, 300, 4)
    assert code == ("preliminary: meets B1 area threshold for VU and B2 area threshold for EN; "
                    "conditions not assessed")


def test_category_nt_and_lc_name_the_cutoffs():
    code, note = cb.category_b(25000, 2500, 30, decline="v")
    assert code == "preliminary: NT (B)" and "30,000" in note
    code, note = cb.category_b(25000, 2500, 30, nt_eoo_km2=20001, nt_aoo_km2=2001)
    assert code == "preliminary: LC (B)" and "20,001" in note
    code, _ = cb.category_b(3000, 300, 12, decline="v")
    assert code.startswith("preliminary: NT")


# --- tables --------------------------------------------------------------------------------
def test_assess_table_ignores_absences_and_orders_columns():
    df = pd.DataFrame({
        "scientificName": ["A a"] * 4 + ["B b"],
        "decimalLatitude": ["47.0", "47.5", "48,0", "10.0", "47.0"],
        "decimalLongitude": [66.0, 67.0, 66.0, 100.0, 66.0],
        "occurrenceStatus": ["present", "PRESENT", "", "absent", "notDetected"],
    })
    out = cb.assess_table(df, "iucn")
    assert list(out.columns[:7]) == cb.ASSESS_COLUMNS
    a = out.set_index("taxon").loc["A a"]
    assert a["n_unique"] == 3
    assert a["eoo_km2"] == pytest.approx(cb.eoo_km2([66, 67, 66], [47, 47.5, 48], "iucn"), rel=1e-12)
    b = out.set_index("taxon").loc["B b"]
    assert b["n_unique"] == 0 and math.isnan(b["eoo_km2"]) and b["category_b"] == ""


def _brute_components(xy, d):
    """Union-find over every pair closer than d (O(n^2), independent of the fast paths)."""
    n = len(xy)
    parent = list(range(n))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    dist = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    for i, j in zip(*np.nonzero(np.triu(dist <= d, 1))):
        parent[find(i)] = find(j)
    return len({find(i) for i in range(n)})


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_subpopulation_paths_equal_brute_force(seed):
    from cami_geo.status.criterion_b import _components, _prune_covered

    rng = np.random.default_rng(seed)
    # dense clusters plus scattered points: > 1000 points, so covered circles are pruned
    k = 6
    centres = rng.uniform(-150e3, 150e3, (k, 2))
    which = rng.integers(0, k, 2500)
    xy = np.vstack([centres[which] + rng.normal(0, 1, (2500, 2)) * rng.uniform(0.5e3, 4e3, k)[which, None],
                    rng.uniform(-200e3, 200e3, (300, 2))])
    from scipy.spatial import cKDTree

    # dense enough for the pruning path, and pruning drops points
    assert cb._pairs_per_point(cKDTree(xy), xy, 10000.0) > cb.PAIRS_PER_POINT_MAX
    assert _prune_covered(xy, 5000.0).sum() < len(xy)
    assert _components(xy[:, 0], xy[:, 1], 10000.0) == _brute_components(xy, 10000.0)
    # <= 1000 dense points: no pruning, more than 20 pairs per point, so the Delaunay path
    dense = rng.normal(0, 6e3, (900, 2))
    assert cb._pairs_per_point(cKDTree(dense), dense, 10000.0) > cb.PAIRS_PER_POINT_MAX
    assert _components(dense[:, 0], dense[:, 1], 10000.0) == _brute_components(dense, 10000.0)
    # dense collinear points in 3 runs 20 km apart: Delaunay fails, the points are joined along the line
    xs = np.concatenate([rng.uniform(0, 3e4, 300), rng.uniform(5e4, 8e4, 300), rng.uniform(1e5, 1.3e5, 300)])
    line = np.column_stack([xs, 0.5 * xs + 7.0])
    assert _components(line[:, 0], line[:, 1], 10000.0) == _brute_components(line, 10000.0) == 3


@pytest.mark.parametrize("method", ["iucn", "conr"])
def test_aoo_cells_layer_matches_the_aoo_and_covers_every_point(method):
    rng = np.random.default_rng(11)
    lon = rng.normal(70, 0.05, 200)
    lat = rng.normal(45, 0.05, 200)
    cells = cb.aoo_cells(lon, lat, method)
    res = cb.aoo(lon, lat, method)
    assert len(cells) * 4 == res.aoo_km2 and cells["n_points"].sum() == 200
    x, y = Transformer.from_crs("EPSG:4326", cells.crs, always_xy=True).transform(lon, lat)
    union = shapely.union_all(cells.geometry.values)
    assert shapely.covers(union, shapely.points(np.column_stack([x, y]))).all()
    assert np.allclose(cells.geometry.area, 4e6)


# --- properties (hypothesis) ------------------------------------------------------------------
from hypothesis import given, settings, strategies as st  # noqa: E402


@st.composite
def point_sets(draw):
    n = draw(st.integers(3, 40))
    lon0 = draw(st.floats(-180, 180))
    lat0 = draw(st.floats(-70, 70))
    spread = draw(st.floats(0.01, 10))
    dx = draw(st.lists(st.floats(-1, 1), min_size=n, max_size=n))
    dy = draw(st.lists(st.floats(-1, 1), min_size=n, max_size=n))
    lon = ((lon0 + np.asarray(dx) * spread + 180) % 360) - 180
    lat = np.clip(lat0 + np.asarray(dy) * spread, -89, 89)
    return lon, lat


@settings(max_examples=60, deadline=None)
@given(point_sets(), st.floats(-180, 180))
def test_iucn_eoo_does_not_depend_on_where_the_longitudes_start(pts, shift):
    lon, lat = pts
    a = cb.eoo_km2(lon, lat, "iucn")
    b = cb.eoo_km2(((lon + shift + 180) % 360) - 180, lat, "iucn")
    assert b == pytest.approx(a, rel=1e-6, abs=1e-6)


@settings(max_examples=60, deadline=None)
@given(point_sets())
def test_measures_stay_within_their_bounds(pts):
    lon, lat = pts
    m = cb.measures(lon, lat, "iucn")
    n = m.n_unique
    assert 4 <= m.aoo_km2 <= 4 * n and m.aoo_km2 <= m.aoo_km2_median <= m.aoo_km2_max
    assert 1 <= m.n_locations <= n and 1 <= m.n_subpopulations <= n
    assert m.eoo_km2 >= m.aoo_km2 or math.isnan(m.eoo_km2)
    # the spherical hull of a subset lies inside the hull of the set
    if n >= 6:
        whole = cb.eoo_km2(lon, lat, "iucn")
        part = cb.eoo_km2(lon[: len(lon) // 2], lat[: len(lat) // 2], "iucn")
        assert part <= whole * (1 + 1e-9) + 1e-9


def test_aoo_points_of_is_none_when_every_point_is_usable():
    rng = np.random.default_rng(11)
    lon, lat = rng.uniform(60, 62, 500), rng.uniform(45, 46, 500)
    usable = rng.random(500) < 0.8
    assert cb.aoo_points_of(lon, lat, np.ones(500, dtype=bool)) is None
    sub = cb.aoo_points_of(lon, lat, usable)
    assert np.array_equal(sub[0], lon[usable]) and np.array_equal(sub[1], lat[usable])
    # None (all usable) gives the same figures as passing every point again
    assert cb.measures(lon, lat, aoo_points=None) == cb.measures(lon, lat, aoo_points=(lon, lat))
