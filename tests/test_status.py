"""Status stages and their parts, on inputs built here (no shared data).

Reference figures are computed independently: analytic ellipsoidal quadrangle areas and
meridian arcs (WGS84), brute-force pixel selection for raster summaries, closed-form
population sums and an exact exponential series for the fitted trend.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from scipy.integrate import quad

from cami_geo import config as cfg
from cami_geo.model import POPULATION_COLUMNS
from cami_geo.status import criterion_b as cb
from cami_geo.status.actions import action_needs
from cami_geo.status.pipeline import (BY_COUNTRY_COLUMNS, SPECIES_COLUMNS, add_change,
                                      run_status_species_stage, run_status_tables_stage)
from cami_geo.status.population import fit_trend, population_by_country, species_population

REPO = Path(__file__).resolve().parents[1]
A = 6378137.0
F = 1 / 298.257223563
E2 = F * (2 - F)
E = math.sqrt(E2)
B2 = A * A * (1 - E2)


def q(phi):
    s = math.sin(math.radians(phi))
    return B2 * (s / (2 * (1 - E2 * s * s)) + math.log((1 + E * s) / (1 - E * s)) / (4 * E))


def quadrangle_km2(lon1, lon2, lat1, lat2):
    return math.radians(lon2 - lon1) * (q(lat2) - q(lat1)) / 1e6


def meridian_arc_km(lat1, lat2):
    f = lambda p: A * (1 - E2) / (1 - E2 * math.sin(p) ** 2) ** 1.5
    return quad(f, math.radians(lat1), math.radians(lat2))[0] / 1000.0


def box(*b):
    return shapely.segmentize(shapely.box(*b), 0.01)


# --- population --------------------------------------------------------------------------
def _pop(rows):
    df = pd.DataFrame(rows)
    for c in POPULATION_COLUMNS:
        if c not in df:
            df[c] = ""
    return df


def test_latest_national_estimate_never_adds_subpopulations_of_that_year():
    pop = _pop([
        {"iso3": "KAZ", "year": 2022, "estimate_best": 1318000, "scope": "national", "source": "s1"},
        {"iso3": "KAZ", "year": 2024, "estimate_best": 2833600, "scope": "national", "source": "s2"},
        {"iso3": "KAZ", "year": 2024, "estimate_best": 63600, "scope": "subpopulation:Ustyurt"},
    ])
    r = population_by_country(pop, ["KAZ"]).iloc[0]
    assert r["population_best"] == 2833600 and r["population_year"] == 2024
    assert r["population_source"] == "s2" and r["population_scope"] == "national"
    assert "not added" in r["population_note"]


def test_subpopulations_are_summed_only_without_a_national_row():
    pop = _pop([
        {"iso3": "UZB", "year": 2023, "estimate_min": 400, "estimate_best": 500, "estimate_max": 600,
         "scope": "subpopulation:Ustyurt"},
        {"iso3": "UZB", "year": 2020, "estimate_best": 50, "scope": "subpopulation:Ustyurt"},
        {"iso3": "UZB", "year": 2024, "estimate_best": 300, "scope": "subnational:Karakalpakstan"},
    ])
    r = population_by_country(pop, ["UZB"]).iloc[0]
    assert (r["population_best"], r["population_min"], r["population_max"]) == (800, 700, 900)
    assert r["population_note"] == ("sum of 2 subnational/subpopulation estimates (2023-2024); "
                                    "no national estimate")


def test_conflicting_estimates_are_shown_side_by_side():
    pop = _pop([
        {"iso3": "KGZ", "year": 2024, "estimate_best": 285, "scope": "national", "source": "source A"},
        {"iso3": "KGZ", "year": 2024, "estimate_best": 511, "scope": "national", "source": "source B"},
    ])
    r = population_by_country(pop, ["KGZ"]).iloc[0]
    assert (r["population_best"], r["population_min"], r["population_max"]) == (285, 285, 511)
    assert "conflicting estimates for 2024: 285 (source A); 511 (source B)" in r["population_note"]


def test_trend_as_reported_else_log_linear_fit():
    years = np.arange(2010, 2024)
    values = 10000 * 0.95 ** (years - 2010)
    trend, method, rate = fit_trend(years, values, trend_years=10)
    assert trend == "decreasing" and rate == pytest.approx(-0.05, abs=1e-12)
    assert "2014-2023" in method and "-5.0 %/yr" in method
    assert fit_trend([2020], [5], trend_years=10)[0] == ""
    assert fit_trend([2020, 2023], [100, 10], trend_years=10)[0] == ""  # 2 estimates: no fit
    pop = _pop([{"iso3": "MNG", "year": 2020, "estimate_best": 100, "scope": "national", "trend": "Stable"},
                {"iso3": "MNG", "year": 2021, "estimate_best": 50, "scope": "national", "trend": ""},
                {"iso3": "MNG", "year": 2023, "estimate_best": 10, "scope": "national", "trend": ""}])
    r = population_by_country(pop, ["MNG"]).iloc[0]
    assert r["trend"] == "decreasing" and r["trend_method"].startswith("log-linear")
    pop.loc[2, "trend"] = "Stable"  # reported with the latest estimate: taken as reported
    r = population_by_country(pop, ["MNG"]).iloc[0]
    assert (r["trend"], r["trend_method"]) == ("stable", "as reported")


def test_best_from_an_interval_is_its_midpoint_and_said_so():
    pop = _pop([{"iso3": "TJK", "year": 2022, "estimate_min": 350, "estimate_max": 450, "scope": "national"},
                {"iso3": "RUS", "year": 2024, "estimate_min": 87, "scope": "national"}])
    r = population_by_country(pop, ["TJK", "RUS"]).set_index("iso3")
    assert r.at["TJK", "population_best"] == 400 and "midpoint of 350-450" in r.at["TJK", "population_note"]
    assert math.isnan(r.at["RUS", "population_best"]) and r.at["RUS", "population_min"] == 87
    assert "only a minimum (87)" in r.at["RUS", "population_note"]


def test_species_trend_needs_coverage():
    from cami_geo.status.population import species_trend

    bc = pd.DataFrame({"population_best": [100.0, 900.0], "trend": ["increasing", ""]})
    trend, how = species_trend(bc, "decreasing")
    assert trend == "decreasing" and "10% of the estimated population" in how
    bc["trend"] = ["increasing", "decreasing"]
    assert species_trend(bc, "")[0] == "decreasing"


def test_species_population_sums_national_figures():
    bc = pd.DataFrame({"iso3": ["A", "B", "C", "D"], "population_best": [100.0, 50.0, np.nan, np.nan],
                       "population_min": [80.0, np.nan, np.nan, 7.0],
                       "population_max": [120.0, np.nan, np.nan, np.nan], "population_unit": ["individuals"] * 4,
                       "population_year": [2024, 2020, np.nan, 2023]})
    s = species_population(bc)
    assert (s["population_best"], s["population_min"]) == (157, 137) and math.isnan(s["population_max"])
    assert "3 of 4 Range States" in s["population_note"]
    assert "counted at their minimum, upper bound unknown: D (at least 7)" in s["population_note"]
    assert s["n_range_states_with_estimate"] == 3
    s = species_population(bc.iloc[:3])
    assert (s["population_best"], s["population_min"], s["population_max"]) == (150, 130, 170)


# --- action rules and change ---------------------------------------------------------------
RULES = [
    {"id": "no_recent_estimate", "description": "No population estimate for at least {years} years", "years": 6},
    {"id": "records_but_no_estimate", "description": "Records this cycle but no population estimate"},
    {"id": "declining_with_threats", "description": "Declining and at least {min_threats} threats",
     "min_threats": 3},
    {"id": "complete_barrier", "description": "Range crossed by a complete barrier"},
]


def test_action_rules_fire_on_their_thresholds_only():
    bc = pd.DataFrame([
        {"species": "S", "species_slug": "s", "iso3": "AAA", "years_since_estimate": 6, "population_year": 2020,
         "population_best": 10, "n_records": 0, "trend": "decreasing", "trend_method": "as reported",
         "n_threats": 3, "n_complete_barriers": 0},
        {"species": "S", "species_slug": "s", "iso3": "BBB", "years_since_estimate": 5, "population_year": 2021,
         "population_best": 10, "n_records": 4, "trend": "decreasing", "trend_method": "as reported",
         "n_threats": 2, "n_complete_barriers": 2},
        {"species": "S", "species_slug": "s", "iso3": "CCC", "years_since_estimate": np.nan,
         "population_year": np.nan, "population_best": np.nan, "n_records": 7, "trend": "",
         "trend_method": "", "n_threats": 0, "n_complete_barriers": 0},
        {"species": "S", "species_slug": "s", "iso3": "DDD", "years_since_estimate": 1,  # "at least 40"
         "population_year": 2025, "population_best": np.nan, "n_records": 7, "trend": "",
         "trend_method": "", "n_threats": 0, "n_complete_barriers": 0},
    ])
    out = action_needs(bc, RULES, 2026)
    fired = set(zip(out["iso3"], out["rule"]))
    assert fired == {("AAA", "no_recent_estimate"), ("AAA", "declining_with_threats"),
                     ("BBB", "complete_barrier"), ("CCC", "no_recent_estimate"),
                     ("CCC", "records_but_no_estimate")}
    row = out[(out["iso3"] == "AAA") & (out["rule"] == "no_recent_estimate")].iloc[0]
    assert row["flag"].startswith("No population estimate for at least 6 years: last estimate 2020")
    assert json.loads(row["figures"])["years_since_estimate"] == 6


def test_unknown_rule_is_a_config_error():
    from cami_geo.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown rule id 'nope'"):
        action_needs(pd.DataFrame([{"iso3": "A"}]), [{"id": "nope", "description": "x"}])


def test_change_since_previous_cycle():
    cur = pd.DataFrame({"species_slug": ["s", "s"], "iso3": ["A", "B"], "population_best": [150.0, 5.0],
                        "eoo_km2": [10.0, 1.0], "aoo_km2": [4.0, 4.0], "n_records": [3, 1]})
    prev = pd.DataFrame({"species_slug": ["s"], "iso3": ["A"], "population_best": [100.0], "cycle": [2023]})
    out = add_change(cur, prev).set_index("iso3")
    assert out.at["A", "population_best_change"] == 50 and out.at["A", "previous_cycle"] == 2023
    assert math.isnan(out.at["B", "population_best_prev"])
    assert "eoo_km2_change" not in out  # not in the previous table


# --- the two stages on a built tree -------------------------------------------------------------
KAZ_BOX = (66, 47, 68, 49)
UZB_BOX = (63, 41, 64, 42)


def _points(n, b, seed):
    rng = np.random.default_rng(seed)
    return rng.uniform(b[0] + 0.05, b[2] - 0.05, n), rng.uniform(b[1] + 0.05, b[3] - 0.05, n)


def _occ_frame():
    klon, klat = _points(50, KAZ_BOX, 1)
    ulon, ulat = _points(5, UZB_BOX, 2)
    rlon, rlat = _points(2, (45, 46, 46, 47), 3)
    alon, alat = _points(3, KAZ_BOX, 4)
    lon = np.concatenate([klon, ulon, rlon, alon])
    lat = np.concatenate([klat, ulat, rlat, alat])
    n = lon.size
    iso3 = ["KAZ"] * 40 + [""] * 10 + ["UZB"] * 5 + ["RUS"] * 2 + ["KAZ"] * 3
    status = ["present"] * 57 + ["absent"] * 3
    year = [2015 + (i % 10) for i in range(n)]
    df = pd.DataFrame({
        "record_id": [f"r{i}" for i in range(n)], "submission": ["demo"] * n, "cycle": [2026] * n,
        "synthetic": [i < 5 for i in range(n)], "species": ["Saiga tatarica"] * n,
        "species_slug": ["saiga_tatarica"] * n, "iso3": iso3, "decimal_latitude": lat,
        "decimal_longitude": lon, "year": year, "occurrence_status": status,
        "coordinate_uncertainty_m": [100.0] * n,
    })
    return gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")


def _threats():
    rows = [
        ("4.1", shapely.LineString([(67, 46.5), (67, 48.8)]), "complete barrier", "saiga_tatarica"),
        ("3.2", box(66.2, 47.5, 66.4, 47.7), "", "saiga_tatarica"),
        ("5.1.1", shapely.Point(67.5, 48.5), "", ""),
        ("4.1", shapely.LineString([(75, 50), (76, 50)]), "complete barrier", "saiga_tatarica"),  # outside
        ("2.3", shapely.Point(67.2, 48.2), "", "panthera_uncia"),  # another species
    ]
    return gpd.GeoDataFrame({"iucn_code": [r[0] for r in rows], "barrier_class": [r[2] for r in rows],
                             "species_slug": [r[3] for r in rows], "submission": "demo"},
                            geometry=[r[1] for r in rows], crs="EPSG:4326")


def _range():
    return gpd.GeoDataFrame({"presence": [1, 1, 5], "origin": [1, 1, 1], "seasonal": [1, 1, 1],
                             "species_slug": ["saiga_tatarica"] * 3},
                            geometry=[box(*KAZ_BOX), box(*UZB_BOX), box(100, 45, 102, 46)], crs="EPSG:4326")


def _population(path):
    years = list(range(2015, 2024))
    rows = [
        {"iso3": "KAZ", "year": 2022, "estimate_best": 1318000, "scope": "national", "source": "s1"},
        {"iso3": "KAZ", "year": 2024, "estimate_best": 2833600, "scope": "national", "source": "s2"},
        {"iso3": "KAZ", "year": 2024, "estimate_best": 63600, "scope": "subpopulation:Ural", "source": "s2"},
        {"iso3": "UZB", "year": 2023, "estimate_min": 400, "estimate_best": 500, "estimate_max": 600,
         "scope": "subpopulation:Ustyurt"},
        {"iso3": "UZB", "year": 2024, "estimate_best": 300, "scope": "subnational:Karakalpakstan"},
        {"iso3": "TKM", "year": 2024, "estimate_best": 285, "scope": "national", "source": "source A"},
        {"iso3": "TKM", "year": 2024, "estimate_best": 511, "scope": "national", "source": "source B"},
    ] + [{"iso3": "MNG", "year": y, "estimate_best": 10000 * 0.95 ** (y - 2015), "scope": "national",
          "source": "mng"} for y in years]
    df = _pop(rows)
    df["species"], df["species_slug"], df["unit"], df["cycle"] = "Saiga tatarica", "saiga_tatarica", "individuals", 2026
    df.to_csv(path, index=False)


def _raster(path):
    import rasterio
    from rasterio.transform import from_origin

    import warnings

    lon_c = 60.05 + 0.1 * np.arange(100)
    data = np.tile(lon_c.astype("float32"), (100, 1))
    data[15:20, 61:64] = -9999  # nodata inside the KAZ box (lat 48.0-48.5, lon 66.1-66.4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)  # rasterio's own affine use
        transform = from_origin(60, 50, 0.1, 0.1)
    with rasterio.open(path, "w", driver="GTiff", width=100, height=100, count=1, dtype="float32",
                       crs="EPSG:4326", transform=transform, nodata=-9999) as ds:
        ds.write(data, 1)
    return data, lon_c, 49.95 - 0.1 * np.arange(100)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    d = tmp_path_factory.mktemp("status")
    gpkg = d / "saiga_tatarica.gpkg"
    _occ_frame().to_file(gpkg, layer="occurrences", driver="GPKG")
    _threats().to_file(gpkg, layer="threats", driver="GPKG")
    _range().to_file(gpkg, layer="range", driver="GPKG")
    only_occ = d / "camelus_ferus.gpkg"
    _occ_frame().to_file(only_occ, layer="occurrences", driver="GPKG")  # no threats / range layers
    _population(d / "population.csv")
    data, lon_c, lat_c = _raster(d / "hf.tif")
    pd.DataFrame([{"submission": "demo", "source_file": "hf.tif", "name": "Human footprint",
                   "path": str(d / "hf.tif"), "crs": "EPSG:4326", "width": 100, "height": 100,
                   "synthetic": True}]).to_csv(d / "rasters.csv", index=False)
    settings = cfg.load(REPO, d)
    settings["cycle"] = 2026
    params = {"settings": settings, "version": "test"}
    outs = {}
    for slug, clean in (("saiga_tatarica", gpkg), ("camelus_ferus", only_occ)):
        o = {k: str(d / "status" / slug / f"{k}.csv") for k in ("by_country", "species", "threats")}
        run_status_species_stage({"clean": str(clean), "population": str(d / "population.csv"),
                                  "rasters": str(d / "rasters.csv"),
                                  "boundaries": str(REPO / "data/raw/boundaries/countries.gpkg")}, o, params)
        outs[slug] = o
    prev = d / "prev.csv"
    pd.DataFrame({"species": ["Saiga tatarica"], "species_slug": ["saiga_tatarica"], "iso3": ["KAZ"],
                  "cycle": [2023], "population_best": [1000000], "n_records": [10]}).to_csv(prev, index=False)
    tables = {k: str(d / f"{k}.csv") for k in ("by_country", "by_species", "threats", "actions")}
    run_status_tables_stage({k: [outs[s][k2] for s in outs] for k, k2 in
                             (("by_country", "by_country"), ("species", "species"), ("threats", "threats"))}
                            | {"previous": [str(prev)]}, tables, params)
    return {"dir": d, "outs": outs, "tables": tables, "raster": (data, lon_c, lat_c), "occ": _occ_frame()}


def _bc(tree, slug="saiga_tatarica"):
    return pd.read_csv(tree["outs"][slug]["by_country"]).set_index("iso3")


def test_by_country_has_every_range_state_and_the_contract_columns(tree):
    bc = _bc(tree)
    assert sorted(bc.index) == ["KAZ", "MNG", "RUS", "TKM", "UZB"]
    cols = list(pd.read_csv(tree["outs"]["saiga_tatarica"]["by_country"]).columns)
    assert cols[:len(BY_COUNTRY_COLUMNS)] == BY_COUNTRY_COLUMNS
    empty = _bc(tree, "camelus_ferus")
    assert sorted(empty.index) == ["CHN", "MNG"] and empty["data_gap"].all()
    assert (empty["n_records"] == 0).all() and empty["eoo_km2"].isna().all()


def test_records_counts_years_and_synthetic(tree):
    bc = _bc(tree)
    assert bc.at["KAZ", "n_records"] == 50  # 10 rows without iso3 placed by their point
    assert bc.at["KAZ", "n_absences"] == 3
    assert (bc.at["KAZ", "first_year"], bc.at["KAZ", "last_year"]) == (2015, 2024)
    assert bc.at["KAZ", "synthetic_records"] == 5
    assert bc.at["RUS", "n_records"] == 2 and not bc.at["RUS", "data_gap"]
    assert bc.at["MNG", "n_records"] == 0 and not bc.at["MNG", "data_gap"]  # it has estimates this cycle


def test_eoo_aoo_per_country_use_present_records_only(tree):
    bc = _bc(tree)
    occ = tree["occ"]
    kaz = occ.iloc[:50]
    m = cb.measures(kaz["decimal_longitude"], kaz["decimal_latitude"], "iucn")
    assert bc.at["KAZ", "eoo_km2"] == pytest.approx(m.eoo_km2, rel=1e-12)
    assert bc.at["KAZ", "aoo_km2"] == m.aoo_km2 == 200  # 50 points, none sharing a 2 km cell
    assert math.isnan(bc.at["MNG", "eoo_km2"])


def test_range_area_and_share_on_the_ellipsoid(tree):
    bc = _bc(tree)
    kaz, uzb = quadrangle_km2(66, 68, 47, 49), quadrangle_km2(63, 64, 41, 42)
    assert bc.at["KAZ", "range_area_km2"] == pytest.approx(kaz, rel=1e-5)
    assert bc.at["UZB", "range_area_km2"] == pytest.approx(uzb, rel=1e-5)
    assert bc.at["KAZ", "range_share"] == pytest.approx(kaz / (kaz + uzb), rel=1e-5)
    assert bc.at["MNG", "range_area_km2"] == 0  # only a presence-5 polygon there


def test_population_columns(tree):
    bc = _bc(tree)
    assert bc.at["KAZ", "population_best"] == 2833600 and bc.at["KAZ", "years_since_estimate"] == 2
    assert bc.at["UZB", "population_best"] == 800 and "no national estimate" in bc.at["UZB", "population_note"]
    assert "285 (source A); 511 (source B)" in bc.at["TKM", "population_note"]
    assert bc.at["MNG", "trend"] == "decreasing" and "-5.0 %/yr" in bc.at["MNG", "trend_method"]
    assert math.isnan(bc.at["RUS", "population_best"])


def test_threats_within_range(tree):
    th = pd.read_csv(tree["outs"]["saiga_tatarica"]["threats"])
    kaz = th[th["iso3"] == "KAZ"].set_index("iucn_code")
    assert sorted(kaz.index.astype(str)) == ["3.2", "4.1", "5.1.1"]
    assert kaz.at["4.1", "length_km"] == pytest.approx(meridian_arc_km(47, 48.8), rel=1e-6)
    assert kaz.at["4.1", "n_complete_barriers"] == 1 and kaz.at["4.1", "iucn_name"] == "Roads & railroads"
    assert kaz.at["3.2", "area_km2"] == pytest.approx(quadrangle_km2(66.2, 66.4, 47.5, 47.7), rel=1e-5)
    assert kaz.at["5.1.1", "n_features"] == 1
    bc = _bc(tree)
    assert bc.at["KAZ", "n_threats"] == 3 and bc.at["KAZ", "n_complete_barriers"] == 1
    assert bc.at["KAZ", "main_threats"].startswith("3.2 ")
    # 5 km each side of the road inside the box, plus a half disc at its end
    expected = (10 * meridian_arc_km(47, 48.8) + math.pi * 25 / 2) / quadrangle_km2(66, 68, 47, 49)
    assert bc.at["KAZ", "infrastructure_buffer_share"] == pytest.approx(expected, rel=0.01)


def test_raster_summary_equals_brute_force_pixel_selection(tree):
    data, lon_c, lat_c = tree["raster"]
    inside = ((lon_c[None, :] > 66) & (lon_c[None, :] < 68)) & ((lat_c[:, None] > 47) & (lat_c[:, None] < 49))
    vals = np.broadcast_to(data, inside.shape)[inside]
    assert (vals == -9999).sum() == 15
    vals = vals[vals != -9999]
    bc = _bc(tree)
    assert bc.at["KAZ", "raster_human_footprint_mean"] == pytest.approx(vals.mean(), abs=1e-4)
    assert bc.at["KAZ", "raster_human_footprint_p90"] == pytest.approx(np.percentile(vals, 90), abs=1e-4)
    assert bc.at["KAZ", "raster_human_footprint_p10"] == pytest.approx(np.percentile(vals, 10), abs=1e-4)
    assert bc.at["KAZ", "raster_human_footprint_p50"] == pytest.approx(np.percentile(vals, 50), abs=1e-4)
    assert math.isnan(bc.at["MNG", "raster_human_footprint_mean"])


def test_species_row(tree):
    sp = pd.read_csv(tree["outs"]["saiga_tatarica"]["species"]).iloc[0]
    assert list(pd.read_csv(tree["outs"]["saiga_tatarica"]["species"]).columns) == SPECIES_COLUMNS
    assert sp["population_best"] == pytest.approx(2833600 + 800 + 285 + 10000 * 0.95 ** 8, rel=1e-9)
    assert sp["population_min"] == pytest.approx(2833600 + 700 + 285 + 10000 * 0.95 ** 8, rel=1e-9)
    assert sp["n_range_states"] == 5 and sp["n_range_states_with_data"] == 5
    occ = tree["occ"].iloc[:57]
    m = cb.measures(occ["decimal_longitude"], occ["decimal_latitude"], "iucn")
    assert sp["eoo_km2"] == pytest.approx(m.eoo_km2, rel=1e-12) and sp["aoo_km2"] == m.aoo_km2
    assert sp["category_b"].startswith("preliminary") and sp["trend"] == "increasing"
    assert sp["n_records"] == 57 and sp["synthetic_records"] == 5


def test_tables_stage(tree):
    t = tree["tables"]
    bc = pd.read_csv(t["by_country"])
    assert len(bc) == 7 and set(bc["species_slug"]) == {"saiga_tatarica", "camelus_ferus"}
    kaz = bc[(bc["species_slug"] == "saiga_tatarica") & (bc["iso3"] == "KAZ")].iloc[0]
    assert kaz["population_best_prev"] == 1000000 and kaz["population_best_change"] == 1833600
    assert kaz["n_records_change"] == 40 and kaz["previous_cycle"] == 2023
    assert len(pd.read_csv(t["by_species"])) == 2
    ts = pd.read_csv(t["threats"])
    assert list(ts.columns) == ["species", "species_slug", "iso3", "iucn_code", "iucn_name", "n_features",
                                "length_km", "area_km2", "n_complete_barriers"]
    act = pd.read_csv(t["actions"])
    fired = set(zip(act["species_slug"], act["iso3"], act["rule"]))
    assert ("saiga_tatarica", "KAZ", "complete_barrier") in fired
    assert ("saiga_tatarica", "RUS", "records_but_no_estimate") in fired
    assert ("camelus_ferus", "CHN", "no_recent_estimate") in fired
    assert ("saiga_tatarica", "KAZ", "no_recent_estimate") not in fired


def test_locations_from_threat_features():
    from cami_geo.status.threats import threat_locations

    # 3 records 30 km apart inside one threat polygon, 2 records 25 km apart along a road
    # (1 km off it), 2 records 50 km apart elsewhere: 1 + 1 + 2 locations
    d = 30 / 111.2
    lon = [66.2, 66.2 + d, 66.2 + 2 * d / 1.0 * 0.5, 67.0 + 1 / 75.9, 67.0 + 1 / 75.9, 69.0, 69.0]
    lat = [47.2, 47.2, 47.6, 48.0, 48.0 + 25 / 111.2, 47.0, 47.0 + 50 / 111.2]
    thr = gpd.GeoDataFrame({"iucn_code": ["3.2", "4.1", "5.1.1"]},
                           geometry=[shapely.box(66.1, 47.1, 66.9, 47.9),
                                     shapely.LineString([(67, 47.5), (67, 48.8)]), shapely.Point(69, 47)],
                           crs="EPSG:4326")
    crs = cb.laea_crs(np.array(lon), np.array(lat))
    n, note = threat_locations(lon, lat, thr, buffer_km=5, crs=crs)
    assert n == 4 and note.startswith("2 threat feature(s)")
    assert cb.locations(lon, lat, "iucn") == 7  # the grid alone
    assert threat_locations(lon, lat, thr.iloc[:0], buffer_km=5, crs=crs)[0] == 7


def test_points_in_some_box_are_those_of_a_brute_force_check():
    from cami_geo.status.threats import _in_some_box

    rng = np.random.default_rng(3)
    x, y = rng.uniform(0, 100, 2000), rng.uniform(0, 100, 2000)
    x[:5], y[:5] = 10.0, 20.0  # on a box corner: inside
    bounds = np.array([[10, 20, 30, 25], [50, 0, 51, 100], [np.nan] * 4, [70, 70, 60, 80]])
    want = np.zeros(len(x), dtype=bool)
    for x0, y0, x1, y1 in bounds:
        want |= (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)
    got = _in_some_box(x, y, bounds)
    assert got.tolist() == np.flatnonzero(want).tolist() and want[:5].all()
    assert _in_some_box(x[:0], y[:0], bounds).size == 0 and _in_some_box(x, y, bounds[:0]).size == 0


def test_stage_with_missing_layers_and_empty_tables(tmp_path):
    gpkg = tmp_path / "x.gpkg"
    gpd.GeoDataFrame({"iucn_code": ["4.1"]}, geometry=[shapely.LineString([(100, 44), (101, 44)])],
                     crs="EPSG:4326").to_file(gpkg, layer="threats", driver="GPKG")
    (tmp_path / "pop.csv").write_text(",".join(POPULATION_COLUMNS) + "\n", encoding="utf-8")
    (tmp_path / "rasters.csv").write_text("submission,source_file,name,path,crs,width,height,synthetic\n")
    settings = cfg.load(REPO, tmp_path)
    outs = {k: str(tmp_path / "status" / "camelus_ferus" / f"{k}.csv") for k in ("by_country", "species", "threats")}
    run_status_species_stage({"clean": str(gpkg), "population": str(tmp_path / "pop.csv"),
                              "rasters": str(tmp_path / "rasters.csv"),
                              "boundaries": str(REPO / "data/raw/boundaries/countries.gpkg")},
                             outs, {"settings": settings})
    bc = pd.read_csv(outs["by_country"]).set_index("iso3")
    assert sorted(bc.index) == ["CHN", "MNG"] and bc["data_gap"].all()
    # no range geometry: threats counted over the whole country (the line is in MNG)
    assert bc.at["MNG", "n_threats"] == 1 and bc.at["CHN", "n_threats"] == 0
    sp = pd.read_csv(outs["species"]).iloc[0]
    assert sp["n_records"] == 0 and pd.isna(sp["eoo_km2"]) and pd.isna(sp["category_b"])


def test_hull_range_across_the_antimeridian_is_split_and_keeps_its_area():
    from cami_geo.status.ranges import geodesic_area_km2, hull_polygon

    rng = np.random.default_rng(7)
    lon = ((rng.uniform(170, 190, 300) + 180) % 360) - 180
    lat = rng.uniform(64, 68, 300)
    geom = hull_polygon(lon, lat)
    minx, _, maxx, _ = geom.bounds
    assert geom.is_valid and minx >= -180 and maxx <= 180 and len(shapely.get_parts(geom)) == 2
    # densified every 25 km: the planar pieces measure like the geodesic hull within 0.01 %
    assert geodesic_area_km2(geom) == pytest.approx(cb.eoo_km2(lon, lat, "iucn"), rel=1e-4)


def test_trend_uses_midpoints_of_years_with_only_an_interval():
    """Mongolian saiga: 2014 and 2018 have a best estimate, 2020-2023 only min and max.
    The trend must use the midpoints of those years, not only the two old figures."""
    from cami_geo.status.population import population_by_country

    pop = pd.DataFrame({
        "species_slug": "saiga_tatarica", "iso3": "MNG",
        "year": [2014, 2018, 2020, 2021, 2023],
        "estimate_min": [None, None, 4000, 7000, 14000],
        "estimate_best": [13000, 3600, None, None, None],
        "estimate_max": [None, None, 6000, 9000, 17000],
        "unit": "individuals", "method": "survey", "source": "s", "scope": "national", "trend": "",
    })
    out = population_by_country(pop, ["MNG"], trend_years=10).set_index("iso3").loc["MNG"]
    assert out["population_best"] == 15500  # midpoint of 14,000-17,000
    assert out["trend"] == "increasing"
    assert "2014-2023 (5 estimates" in out["trend_method"]
