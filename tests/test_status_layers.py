"""GIS layers per species (cami_geo.status.layers): COG validity, the AOO grid against
criterion B, equal-area CRS, threat density totals, empty inputs.

Reference figures are independent of the code under test: AOO cell counts from
:mod:`cami_geo.status.criterion_b` (and the ``species.csv`` of the status stage), lengths from
``pyproj.Geod`` on the input lines, analytic ellipsoidal quadrangle areas, and a per-point
look-up of the raster at every record.
"""

from __future__ import annotations

import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import rasterio
import shapely
from pyproj import CRS, Geod

from cami_geo import config as cfg
from cami_geo.status import criterion_b as cb
from cami_geo.status.layers import aoo_grid, run_status_layers_stage, write_species_layers
from cami_geo.status.pipeline import run_status_species_stage
from cami_geo.status.ranges import range_area_by_season, seasonal_ranges

REPO = Path(__file__).resolve().parents[1]
BOUNDARIES = str(REPO / "data/raw/boundaries/countries.gpkg")
GEOD = Geod(ellps="WGS84")
KAZ_BOX = (66, 47, 68, 49)
UZB_BOX = (63, 41, 64, 42)

A = 6378137.0
F = 1 / 298.257223563
E2 = F * (2 - F)
E = math.sqrt(E2)
B2 = A * A * (1 - E2)


def quadrangle_km2(lon1, lon2, lat1, lat2):
    def q(phi):
        s = math.sin(math.radians(phi))
        return B2 * (s / (2 * (1 - E2 * s * s)) + math.log((1 + E * s) / (1 - E * s)) / (4 * E))
    return math.radians(lon2 - lon1) * (q(lat2) - q(lat1)) / 1e6


def box(*b):
    return shapely.segmentize(shapely.box(*b), 0.01)


def _occ(n=400, seed=1, bad_uncertainty=5):
    rng = np.random.default_rng(seed)
    lon = np.concatenate([rng.uniform(66.1, 67.9, n), rng.uniform(63.1, 63.9, 20)])
    lat = np.concatenate([rng.uniform(47.1, 48.9, n), rng.uniform(41.1, 41.9, 20)])
    lon[:10], lat[:10] = lon[10:20], lat[10:20]  # duplicates: n_records > n_unique
    m = lon.size
    unc = np.full(m, 100.0)
    unc[20:20 + bad_uncertainty] = 50000.0  # kept out of AOO (checks.max_uncertainty_m 20 km)
    status = np.array(["present"] * m, dtype=object)
    status[-3:] = "absent"
    df = pd.DataFrame({
        "record_id": [f"r{i}" for i in range(m)], "submission": "demo", "cycle": 2026, "synthetic": False,
        "species": "Saiga tatarica", "species_slug": "saiga_tatarica",
        "iso3": ["KAZ"] * n + ["UZB"] * 20, "decimal_latitude": lat, "decimal_longitude": lon,
        "year": 2020, "occurrence_status": status, "coordinate_uncertainty_m": unc,
    })
    return gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")


THREAT_LINES = [shapely.LineString([(66.5, 47.2), (67.5, 48.7), (67.9, 48.9)]),
                shapely.LineString([(63.2, 41.5), (63.8, 41.6)])]
THREAT_POINTS = [shapely.Point(67.5, 48.5), shapely.Point(66.31, 47.77), shapely.Point(63.5, 41.5)]
THREAT_POLY = box(66.2, 47.5, 66.4, 47.7)


def _threats():
    geoms = THREAT_LINES + THREAT_POINTS + [THREAT_POLY, shapely.Point(67.2, 48.2)]
    return gpd.GeoDataFrame({"iucn_code": ["4.1", "4.1", "5.1.1", "5.1.1", "5.1.1", "3.2", "2.3"],
                             "barrier_class": ["complete barrier", "", "", "", "", "", ""],
                             "species_slug": ["saiga_tatarica"] * 4 + ["", "saiga_tatarica", "panthera_uncia"],
                             "submission": "demo"}, geometry=geoms, crs="EPSG:4326")


def _range():
    return gpd.GeoDataFrame({"presence": [1, 1, 1, 5], "origin": 1, "seasonal": [2, 3, 1, 1],
                             "species_slug": "saiga_tatarica"},
                            geometry=[box(66, 47, 68, 48.2), box(66, 47.8, 68, 49), box(*UZB_BOX),
                                      box(100, 45, 102, 46)], crs="EPSG:4326")


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    s = cfg.load(REPO, tmp_path_factory.mktemp("cfg"))
    s["cycle"] = 2026
    return s


@pytest.fixture(scope="module")
def built(tmp_path_factory, settings):
    d = tmp_path_factory.mktemp("layers")
    clean = d / "saiga_tatarica.gpkg"
    _occ().to_file(clean, layer="occurrences", driver="GPKG")
    _threats().to_file(clean, layer="threats", driver="GPKG")
    _range().to_file(clean, layer="range", driver="GPKG")
    status = {k: str(d / "status" / "saiga_tatarica" / f"{k}.csv") for k in ("by_country", "species", "threats")}
    run_status_species_stage({"clean": str(clean), "boundaries": BOUNDARIES}, status,
                             {"settings": settings, "version": "test"})
    out = {"gpkg": str(d / "layers" / "saiga_tatarica.gpkg"), "aoo_grid": str(d / "aoo" / "saiga_tatarica.tif"),
           "threat_density": str(d / "threats" / "saiga_tatarica.tif")}
    run_status_layers_stage({"clean": str(clean), "boundaries": BOUNDARIES, "by_country": status["by_country"]},
                            out, {"settings": settings, "version": "test"})
    return {"dir": d, "clean": clean, "out": out, "status": status, "occ": _occ()}


def _aoo_points(occ, max_unc=20000):
    ok = (occ["occurrence_status"] == "present") & (occ["coordinate_uncertainty_m"] <= max_unc)
    return occ["decimal_longitude"][ok].to_numpy(), occ["decimal_latitude"][ok].to_numpy()


def _assert_cog(path):
    with rasterio.open(path) as ds:
        prof = ds.profile
        assert prof["driver"] == "GTiff" and prof["tiled"] is True
        assert prof["blockxsize"] == prof["blockysize"] == 512
        assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        crs = CRS.from_wkt(ds.crs.to_wkt())
        assert not crs.is_geographic and crs.is_projected
        return ds.read(), ds.transform, crs, ds.tags(), ds.descriptions, ds.nodata, ds.overviews(1)


def _is_equal_area(crs: CRS) -> bool:
    m = crs.coordinate_operation.method_name.lower()
    return "lambert azimuthal equal area" in m or "albers" in m


# --- the AOO grid -----------------------------------------------------------------------
def test_aoo_tif_is_a_restricted_cog_in_an_equal_area_crs(built):
    data, _, crs, tags, desc, nodata, _ = _assert_cog(built["out"]["aoo_grid"])
    assert data.dtype == np.uint8 and nodata == 255 and set(np.unique(data)) == {0, 1}
    assert _is_equal_area(crs)
    assert tags["access"] == "restricted" and "RESTRICTED" in tags["TIFFTAG_IMAGEDESCRIPTION"]
    assert "occupancy" in desc[0]
    # a one-cell margin of zeros on every side
    assert not data[0, 0].any() and not data[0, -1].any() and not data[0, :, 0].any() and not data[0, :, -1].any()


def test_occupied_cells_equal_the_criterion_b_aoo(built):
    data, transform, crs, *_ = _assert_cog(built["out"]["aoo_grid"])
    assert transform.a == 2000 and transform.e == -2000
    lon, lat = _aoo_points(built["occ"])
    # independent: the AOO of the status stage, and criterion B on the same points in the same CRS
    sp = pd.read_csv(built["status"]["species"]).iloc[0]
    n_occ = int((data == 1).sum())
    assert n_occ * 4 == sp["aoo_km2"]
    pres = built["occ"][built["occ"]["occurrence_status"] == "present"]
    crs_all = cb.laea_crs(*cb.unique_points(pres["decimal_longitude"], pres["decimal_latitude"]))
    x, y = cb.project(*cb.unique_points(lon, lat), crs_all)
    assert n_occ == int(cb.shifted_cell_counts(x, y, 2000.0, 4).min())
    assert CRS.from_user_input(crs_all).equals(crs)
    # every AOO record falls in an occupied pixel
    r, c = rasterio.transform.rowcol(transform, x, y)
    assert (data[0][np.asarray(r), np.asarray(c)] == 1).all()
    # the gpkg cells: same count, same CRS, all records counted
    cells = gpd.read_file(built["out"]["gpkg"], layer="aoo_cells")
    assert len(cells) == n_occ and cells["cell_id"].is_unique
    assert cells["n_records"].sum() == lon.size and cells["n_unique"].sum() == x.size
    assert CRS.from_user_input(cells.crs).equals(crs) and _is_equal_area(CRS.from_user_input(cells.crs))
    assert np.allclose(cells.geometry.area, 4e6)
    assert shapely.covered_by(shapely.points(x, y), shapely.union_all(cells.geometry.values)).all()


@pytest.mark.parametrize("method", ["iucn", "conr"])
def test_aoo_grid_matches_criterion_b_on_a_wide_spread(method, tmp_path):
    rng = np.random.default_rng(11)
    lon = np.concatenate([rng.uniform(50, 80, 3000), rng.uniform(60.0, 60.05, 200)])
    lat = np.concatenate([rng.uniform(40, 52, 3000), rng.uniform(45.0, 45.05, 200)])
    g = aoo_grid(lon, lat, method)
    assert g.n_cells * 4 == cb.aoo(lon, lat, method).aoo_km2
    assert g.cells["n_records"].sum() == lon.size
    from cami_geo.status.layers import write_aoo_tif

    write_aoo_tif(g, tmp_path / "a.tif", slug="x")
    data, *_, ov = _assert_cog(tmp_path / "a.tif")
    assert int((data == 1).sum()) == g.n_cells
    assert ov, "an image larger than one tile has overviews"


# --- threat density -----------------------------------------------------------------------
def test_threat_density_totals_equal_the_inputs(built):
    data, transform, crs, tags, desc, nodata, _ = _assert_cog(built["out"]["threat_density"])
    assert data.dtype == np.float32 and data.shape[0] == 3 and transform.a == 10000
    assert "count" in desc[0] and "km" in desc[1] and "km2" in desc[2]
    assert _is_equal_area(crs)
    _, aoo_t, aoo_crs, *_ = _assert_cog(built["out"]["aoo_grid"])
    assert aoo_crs.equals(crs)
    # species' own and unattributed features only (the 2.3 point is another species')
    assert data[0].sum(dtype="float64") == pytest.approx(len(THREAT_POINTS), rel=1e-6)
    length = sum(GEOD.geometry_length(g) for g in THREAT_LINES) / 1000.0
    assert data[1].sum(dtype="float64") == pytest.approx(length, rel=1e-6)
    area = quadrangle_km2(66.2, 66.4, 47.5, 47.7)
    assert data[2].sum(dtype="float64") == pytest.approx(area, rel=1e-3)
    # the extent covers the range bounds, cells aligned on 10 km
    assert transform.c % 10000 == 0 and transform.f % 10000 == 0


def test_threat_points_land_in_their_cells(built):
    data, transform, crs, *_ = _assert_cog(built["out"]["threat_density"])
    p = np.array([[g.x, g.y] for g in THREAT_POINTS])
    x, y = cb.project(p[:, 0], p[:, 1], crs.to_wkt())
    r, c = rasterio.transform.rowcol(transform, x, y)
    assert (data[0][np.asarray(r), np.asarray(c)] >= 1).all()


# --- GeoPackage ---------------------------------------------------------------------------
def test_gpkg_layers_range_by_season_and_country(built):
    layers = {str(n) for n in pyogrio.list_layers(built["out"]["gpkg"])[:, 0]}
    assert layers == {"range", "aoo_cells", "summary_by_country"}
    rl = gpd.read_file(built["out"]["gpkg"], layer="range")
    assert rl.crs.to_epsg() == 4326
    allr = rl[rl["seasonal"].isna()].set_index("iso3")
    assert allr.at["KAZ", "area_km2"] == pytest.approx(quadrangle_km2(66, 68, 47, 49), rel=1e-4)
    assert allr.at["UZB", "area_km2"] == pytest.approx(quadrangle_km2(63, 64, 41, 42), rel=1e-4)
    bc = pd.read_csv(built["status"]["by_country"]).set_index("iso3")
    assert allr.at["KAZ", "area_km2"] == pytest.approx(bc.at["KAZ", "range_area_km2"], rel=1e-9)
    s = rl[rl["seasonal"].notna()]
    assert sorted(s["seasonal"].astype(int).unique()) == [1, 2, 3]
    kaz2 = s[(s["seasonal"] == 2) & (s["iso3"] == "KAZ")]
    assert kaz2["area_km2"].iloc[0] == pytest.approx(quadrangle_km2(66, 68, 47, 48.2), rel=1e-4)
    assert kaz2["seasonal_name"].iloc[0] == "breeding season"
    # the extinct polygon (presence 5) is not there
    assert rl.total_bounds[2] < 90


def test_summary_by_country_has_the_by_country_figures(built):
    sm = gpd.read_file(built["out"]["gpkg"], layer="summary_by_country").set_index("iso3")
    bc = pd.read_csv(built["status"]["by_country"]).set_index("iso3")
    assert sorted(sm.index) == sorted(bc.index)
    for col in ("n_records", "n_absences", "eoo_km2", "aoo_km2", "range_area_km2", "n_threats", "data_gap",
                "population_best"):
        assert col in sm.columns
    pd.testing.assert_series_equal(sm["aoo_km2"].sort_index(), bc["aoo_km2"].sort_index(), check_dtype=False)
    assert sm.crs.to_epsg() == 4326 and sm.loc["KAZ"].geometry is not None


def test_summary_without_by_country_computes_the_same_figures(built, settings, tmp_path):
    o = {"gpkg": str(tmp_path / "s.gpkg"), "aoo_grid": str(tmp_path / "a.tif"),
         "threat_density": str(tmp_path / "t.tif")}
    write_species_layers(built["clean"], BOUNDARIES, settings, "saiga_tatarica", gpkg_out=o["gpkg"],
                         aoo_tif_out=o["aoo_grid"], threat_tif_out=o["threat_density"])
    sm = gpd.read_file(o["gpkg"], layer="summary_by_country").set_index("iso3").sort_index()
    bc = pd.read_csv(built["status"]["by_country"]).set_index("iso3").sort_index()
    for col in ("n_records", "n_absences", "eoo_km2", "aoo_km2", "range_area_km2", "range_share", "n_threats",
                "n_complete_barriers"):
        np.testing.assert_allclose(sm[col].astype(float), bc[col].astype(float), rtol=1e-9, equal_nan=True)


def test_seasonal_ranges_in_ranges_module():
    from cami_geo.boundaries import load_boundaries

    s = seasonal_ranges(_range())
    assert sorted(s) == [1, 2, 3]
    countries = load_boundaries(BOUNDARIES, layer="countries", id_field="iso3").reindex(["KAZ", "UZB"])
    df = range_area_by_season(_range(), countries).set_index(["seasonal", "iso3"])
    assert df.at[(3, "KAZ"), "range_area_km2"] == pytest.approx(quadrangle_km2(66, 68, 47.8, 49), rel=1e-4)
    assert df.at[(1, "UZB"), "range_share"] == pytest.approx(1.0, rel=1e-6)


def test_union_of_polygons_takes_the_coverage_union_of_a_valid_coverage():
    """Range States sharing edges: the coverage union, the same point set as union_all."""
    from cami_geo.boundaries import load_boundaries
    from cami_geo.status.ranges import union_of_polygons

    rs = load_boundaries(BOUNDARIES, layer="countries", id_field="iso3").reindex(["KAZ", "UZB", "TKM"])
    geoms = rs.geometry.values
    assert shapely.coverage_is_valid(np.asarray(geoms))
    u = union_of_polygons(geoms)
    assert shapely.normalize(u).equals_exact(shapely.normalize(shapely.union_all(np.asarray(geoms))), 0)
    assert union_of_polygons([]) is None and union_of_polygons([None]) is None


@pytest.mark.parametrize("b", [shapely.box(1, 0, 3, 2),   # overlaps the first square
                               shapely.box(2, 0, 3, 1)])  # shares part of an edge, vertices unmatched
def test_union_of_polygons_falls_back_to_union_all_when_not_a_coverage(b):
    from cami_geo.status.ranges import union_of_polygons

    a = shapely.box(0, 0, 2, 2)
    assert not shapely.coverage_is_valid(np.asarray([a, b]))
    u = union_of_polygons([a, b])
    assert u.is_valid and u.geom_type == "Polygon"
    assert u.area == pytest.approx(shapely.union(a, b).area)
    assert shapely.normalize(u).equals_exact(shapely.normalize(shapely.union_all([a, b])), 0)


# --- empty inputs -------------------------------------------------------------------------
def _layer_counts(path):
    return {str(n): pyogrio.read_info(path, layer=str(n))["features"] for n in pyogrio.list_layers(path)[:, 0]}


def test_empty_inputs_give_valid_files(tmp_path, settings):
    clean = tmp_path / "camelus_ferus.gpkg"  # no layers at all: the file does not exist
    o = {"gpkg": str(tmp_path / "out" / "camelus_ferus.gpkg"), "aoo_grid": str(tmp_path / "a.tif"),
         "threat_density": str(tmp_path / "t.tif")}
    run_status_layers_stage({"clean": str(clean), "boundaries": BOUNDARIES}, o, {"settings": settings})
    counts = _layer_counts(o["gpkg"])
    assert counts["range"] == 0 and counts["aoo_cells"] == 0
    assert counts["summary_by_country"] == 2  # CHN, MNG, with country polygons
    for k in ("aoo_grid", "threat_density"):
        data, *_, nodata, _ = _assert_cog(o[k])
        assert data.shape[1:] == (1, 1) and (data == nodata).all()


def test_range_without_threats_or_records_gives_a_zero_density(tmp_path, settings):
    clean = tmp_path / "c.gpkg"
    _range().to_file(clean, layer="range", driver="GPKG")
    gpd.GeoDataFrame({"iucn_code": pd.Series(dtype=str)}, geometry=gpd.GeoSeries([], crs="EPSG:4326")) \
        .to_file(clean, layer="threats", driver="GPKG")
    o = {"gpkg": str(tmp_path / "saiga_tatarica.gpkg"), "aoo_grid": str(tmp_path / "a.tif"),
         "threat_density": str(tmp_path / "t.tif")}
    run_status_layers_stage({"clean": str(clean), "boundaries": BOUNDARIES}, o, {"settings": settings})
    data, transform, crs, *_ = _assert_cog(o["threat_density"])
    assert data.shape[1] > 10 and data.shape[2] > 10 and (data == 0).all()
    assert _is_equal_area(crs)
    a, *_ = _assert_cog(o["aoo_grid"])
    assert a.shape[1:] == (1, 1)
    counts = _layer_counts(o["gpkg"])
    assert counts["aoo_cells"] == 0 and counts["range"] > 0


def test_hull_range_with_a_part_outside_the_range_states(tmp_path, settings):
    """Only records: the range is the EOO hull; pieces per Range State plus the remainder
    (here in China, not a saiga Range State) add up to the hull's area."""
    from cami_geo.status.ranges import geodesic_area_km2, hull_polygon

    rng = np.random.default_rng(5)
    lon, lat = rng.uniform(78, 84, 300), rng.uniform(43, 47, 300)
    df = pd.DataFrame({"species_slug": "saiga_tatarica", "decimal_longitude": lon, "decimal_latitude": lat,
                       "occurrence_status": "present", "iso3": "", "year": 2020, "cycle": 2026,
                       "coordinate_uncertainty_m": 10.0, "synthetic": False})
    clean = tmp_path / "c.gpkg"
    gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326").to_file(
        clean, layer="occurrences", driver="GPKG")
    o = {"gpkg": str(tmp_path / "saiga_tatarica.gpkg"), "aoo_grid": str(tmp_path / "a.tif"),
         "threat_density": str(tmp_path / "t.tif")}
    info = run_status_layers_stage({"clean": str(clean), "boundaries": BOUNDARIES}, o, {"settings": settings})
    assert info is None
    rl = gpd.read_file(o["gpkg"], layer="range")
    assert rl["seasonal"].isna().all() and rl["range_source"].str.startswith("EOO hull").all()
    assert "" in set(rl["iso3"].fillna("")) and "KAZ" in set(rl["iso3"])
    total = geodesic_area_km2(hull_polygon(lon, lat))
    assert rl["area_km2"].sum() == pytest.approx(total, rel=1e-6)
    assert rl["share"].sum() == pytest.approx(1.0, rel=1e-6)
    desc = pyogrio.read_info(o["gpkg"], layer="aoo_cells")["layer_metadata"]["DESCRIPTION"]
    assert "RESTRICTED" in desc
    data, *_ = _assert_cog(o["aoo_grid"])
    assert int((data == 1).sum()) * 4 == cb.aoo(lon, lat).aoo_km2
    t, *_ = _assert_cog(o["threat_density"])
    assert (t == 0).all() and t.shape[1] > 1


def test_layers_rewritten_from_the_same_data_are_the_same_bytes(built, settings, tmp_path):
    """The GeoPackage of GIS layers has fixed timestamps: writing it again a second later gives
    the same file (a re-run that changed nothing changes no checksum)."""
    import time

    first = Path(built["out"]["gpkg"]).read_bytes()
    time.sleep(1.1)  # GeoPackage timestamps have millisecond resolution; the clock must move
    out = {k: str(tmp_path / Path(v).name) for k, v in built["out"].items()}
    run_status_layers_stage({"clean": str(built["clean"]), "boundaries": BOUNDARIES,
                             "by_country": built["status"]["by_country"]}, out, {"settings": settings, "version": "test"})
    assert Path(out["gpkg"]).read_bytes() == first
