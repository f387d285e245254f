"""Interactive maps: content, offline self-containment, escaping, generalisation, determinism.

The fixtures here (small public GeoPackages and status tables written from scratch) are
also used by ``test_static_maps.py`` and ``test_maps_browser.py``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import LineString, Point, Polygon, box

from cami_geo.model import OCCURRENCE_COLUMNS, RANGE_COLUMNS, THREAT_COLUMNS

REPO = Path(__file__).resolve().parents[1]
BOUNDARIES = REPO / "data" / "raw" / "boundaries" / "countries.gpkg"

SPECIES = "panthera_uncia"
XSS_SCRIPT = "<script>window.__camiPwned = 1</script>"
XSS_IMG = "<img src=x onerror=\"window.__camiPwned=2\">"
XSS_TEMPLATE = "${window.__camiPwned=3}`\\"
PAYLOADS = (XSS_SCRIPT, XSS_IMG, XSS_TEMPLATE)

SETTINGS = {
    "cycle": 2026,
    "boundaries": {"layer": "countries", "id_field": "iso3"},
    "registry": {},
    "maps": {
        "disclaimer": ("The designations employed and the presentation of material on this map do not imply "
                       "the expression of any opinion whatsoever on the part of the Secretariat of the United "
                       "Nations concerning the legal status of any country, territory, city or any area or of "
                       "its authorities, or concerning the delimitation of its frontiers or boundaries."),
        "attribution": "Boundaries: Natural Earth (public domain). Data: CAMI Species Focal Points.",
        "online_tiles": False,
        "static_dpi": 300,
    },
}


def _frame(rows: list[dict], columns: list[str], geoms: list) -> gpd.GeoDataFrame:
    df = pd.DataFrame(rows)
    for c in columns:
        if c not in df.columns:
            df[c] = None
    return gpd.GeoDataFrame(df[columns], geometry=geoms, crs="EPSG:4326")


def occurrences(n_grid: int = 30, *, seed: int = 1, synthetic: bool = True, payloads: bool = True,
                sensitivity: str = "0.1deg") -> gpd.GeoDataFrame:
    """Snow-leopard-like occurrence records on a 0.1 deg public grid, with XSS payloads in text."""
    rng = np.random.default_rng(seed)
    rows, geoms = [], []
    for i in range(n_grid):
        lon = round(float(rng.uniform(74.0, 80.0)), 1)
        lat = round(float(rng.uniform(40.5, 42.5)), 1)
        text = PAYLOADS[i % 3] if payloads and i < 3 else f"Valley {i}"
        rows.append({"record_id": f"r{i}", "submission": "demo", "source_file": "occ.csv", "source_row": i + 2,
                     "cycle": 2026, "synthetic": synthetic and i % 2 == 0, "species": "Panthera uncia",
                     "species_slug": SPECIES, "iso3": "KGZ", "decimal_latitude": lat, "decimal_longitude": lon,
                     "coordinate_uncertainty_m": 7850.0, "event_date": f"2024-0{1 + i % 9}-15", "year": 2024,
                     "individual_count": 1, "basis_of_record": "MachineObservation", "occurrence_status": "present",
                     "locality": text, "recorded_by": PAYLOADS[(i + 1) % 3] if payloads and i < 3 else "Ranger team",
                     "sensitivity": sensitivity, "data_generalizations": "Coordinates generalised to 0.1 degree",
                     "information_withheld": ""})
        geoms.append(Point(lon, lat))
    # a withheld record (no public location) and an absence record
    rows.append({**rows[0], "record_id": "w1", "iso3": "TJK", "locality": "secret den", "synthetic": False,
                 "sensitivity": "withheld", "information_withheld": "Location withheld (sensitive species)"})
    geoms.append(None)
    rows.append({**rows[1], "record_id": "a1", "occurrence_status": "absent", "locality": "survey transect 7"})
    geoms.append(Point(76.3, 41.1))
    return _frame(rows, OCCURRENCE_COLUMNS, geoms)


def threats(payloads: bool = True) -> gpd.GeoDataFrame:
    rows = [
        {"iucn_code": "4.1", "iucn_name": "Roads & railroads", "threat_type": "road",
         "name": XSS_IMG if payloads else "Highway A", "barrier_class": "partial barrier", "year": 2023},
        {"iucn_code": "3.2", "iucn_name": "Mining & quarrying", "threat_type": "mine", "name": "Gold mine",
         "barrier_class": "", "year": 2022},
        {"iucn_code": "5.1.1", "iucn_name": "Intentional use", "threat_type": "poaching",
         "name": XSS_TEMPLATE if payloads else "Snare", "barrier_class": "", "year": 2024},
    ]
    for r in rows:
        r.update({"species": "Panthera uncia", "species_slug": SPECIES, "iso3": "KGZ", "synthetic": True,
                  "severity": "high"})
    geoms = [LineString([(74.5, 41.0), (76.0, 41.6), (78.5, 42.0)]),
             Polygon([(77.0, 41.5), (77.3, 41.5), (77.3, 41.7), (77.0, 41.7)]), Point(75.5, 41.5)]
    return _frame(rows, THREAT_COLUMNS, geoms)


def ranges() -> gpd.GeoDataFrame:
    rows = [{"species": "Panthera uncia", "species_slug": SPECIES, "iso3": "KGZ", "presence": 1, "origin": 1,
             "seasonal": 1, "name": "Tian Shan", "synthetic": True},
            {"species": "Panthera uncia", "species_slug": SPECIES, "iso3": "TJK", "presence": 3, "origin": 1,
             "seasonal": 2, "name": XSS_SCRIPT, "synthetic": True}]
    geoms = [box(73.5, 40.0, 80.0, 43.0), box(70.0, 37.5, 74.5, 39.5)]
    return _frame(rows, RANGE_COLUMNS, geoms)


def write_gpkg(path: Path, occ: gpd.GeoDataFrame, thr: gpd.GeoDataFrame, rng: gpd.GeoDataFrame) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    for name, frame in (("occurrences", occ), ("threats", thr), ("range", rng)):
        frame.to_file(path, layer=name, driver="GPKG")
    return path


def status_tables(folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rows = [
        {"species": "Panthera uncia", "species_slug": SPECIES, "iso3": "KGZ", "country": "Kyrgyzstan", "cycle": 2026,
         "n_records": 30, "population_best": 350, "population_min": 300, "population_max": 400,
         "population_year": 2023, "population_unit": "individuals", "population_method": "camera trapping",
         "population_source": XSS_SCRIPT, "trend": "stable", "eoo_km2": 123456, "aoo_km2": 120, "n_threats": 3,
         "main_threats": "4.1; 5.1.1", "data_gap": False, "synthetic_records": 15, "first_year": 2020,
         "last_year": 2024},
        {"species": "Panthera uncia", "species_slug": SPECIES, "iso3": "MNG", "country": "Mongolia", "cycle": 2026,
         "n_records": 0, "population_best": 1000, "population_year": 2021, "population_unit": "individuals",
         "trend": "unknown", "data_gap": True, "synthetic_records": 0},
        {"species": "Panthera uncia", "species_slug": SPECIES, "iso3": "TJK", "country": "Tajikistan", "cycle": 2026,
         "n_records": 1, "data_gap": False, "synthetic_records": 0},
        {"species": "Saiga tatarica", "species_slug": "saiga_tatarica", "iso3": "KAZ", "country": "Kazakhstan",
         "cycle": 2026, "n_records": 10, "population_best": 2800000, "population_year": 2025,
         "population_unit": "individuals", "trend": "increasing", "data_gap": False, "synthetic_records": 10},
    ]
    by_country = folder / "status_by_country.csv"
    pd.DataFrame(rows).to_csv(by_country, index=False)
    by_species = folder / "status_by_species.csv"
    pd.DataFrame([
        {"species": "Panthera uncia", "species_slug": SPECIES, "common_name": "Snow leopard", "cms_appendix": "I",
         "iucn_category": "VU", "population_best": 1350, "trend": "stable", "n_records": 31, "synthetic_records": 15},
        {"species": "Saiga tatarica", "species_slug": "saiga_tatarica", "common_name": "Saiga", "cms_appendix": "II",
         "iucn_category": "NT", "population_best": 2800000, "trend": "increasing", "n_records": 10,
         "synthetic_records": 10},
    ]).to_csv(by_species, index=False)
    return by_country, by_species


def species_job(root: Path, *, occ: gpd.GeoDataFrame | None = None, thr=None, rng=None,
                settings: dict | None = None, slug: str = SPECIES) -> tuple[dict, dict, dict]:
    """(inputs, outputs, params) of a map_species job laid out like the workflow's."""
    proc = root / "data" / "processed"
    public = write_gpkg(proc / "public" / "species" / f"{slug}.gpkg",
                        occurrences() if occ is None else occ, threats() if thr is None else thr,
                        ranges() if rng is None else rng)
    by_country, by_species = status_tables(proc)
    inputs = {"public": str(public), "by_country": str(by_country), "by_species": str(by_species),
              "boundaries": str(BOUNDARIES)}
    outputs = {"html": str(root / "maps" / "species" / f"{slug}.html"),
               "png": str(root / "maps" / "species" / f"{slug}.png"),
               "svg": str(root / "maps" / "species" / f"{slug}.svg"),
               "embed": str(root / "maps" / "embed" / f"species_{slug}.html")}
    return inputs, outputs, {"settings": settings or SETTINGS, "version": "test"}


def country_job(root: Path, iso3: str = "KGZ") -> tuple[dict, dict, dict]:
    proc = root / "data" / "processed"
    occ = occurrences()
    saiga = occurrences(5, seed=3, payloads=False).iloc[:5].copy()
    saiga["species"], saiga["species_slug"] = "Saiga tatarica", "saiga_tatarica"
    occ = pd.concat([occ, saiga], ignore_index=True)
    public = write_gpkg(proc / "public" / "clean.gpkg", gpd.GeoDataFrame(occ, crs="EPSG:4326"), threats(), ranges())
    by_country, _ = status_tables(proc)
    inputs = {"public": str(public), "by_country": str(by_country), "boundaries": str(BOUNDARIES)}
    outputs = {"html": str(root / "maps" / "country" / f"{iso3}.html"),
               "png": str(root / "maps" / "country" / f"{iso3}.png"),
               "svg": str(root / "maps" / "country" / f"{iso3}.svg"),
               "embed": str(root / "maps" / "embed" / f"country_{iso3}.html")}
    return inputs, outputs, {"settings": SETTINGS, "version": "test"}


def overview_job(root: Path) -> tuple[dict, dict, dict]:
    by_country, by_species = status_tables(root / "data" / "processed")
    inputs = {"by_country": str(by_country), "by_species": str(by_species), "boundaries": str(BOUNDARIES)}
    outputs = {"html": str(root / "maps" / "overview.html"), "png": str(root / "maps" / "overview.png"),
               "embed": str(root / "maps" / "embed" / "overview.html")}
    return inputs, outputs, {"settings": SETTINGS, "version": "test"}


# ----------------------------------------------------------------------------------------
# Shared built maps (module scope: each map is built once)


_BUILT: dict[str, tuple] = {}
"""Maps built once per test session and shared by the map test modules (they import these fixtures)."""


def _built(name: str, tmp_path_factory, make, run):
    if name not in _BUILT:
        root = tmp_path_factory.mktemp(name)
        job = make(root)
        run(*job)
        _BUILT[name] = job
    return _BUILT[name]


@pytest.fixture(scope="module")
def species_map(tmp_path_factory):
    from cami_geo.render.maps import run_map_species_stage

    return _built("species", tmp_path_factory, species_job, run_map_species_stage)


@pytest.fixture(scope="module")
def country_map(tmp_path_factory):
    from cami_geo.render.maps import run_map_country_stage

    return _built("country", tmp_path_factory, country_job, run_map_country_stage)


@pytest.fixture(scope="module")
def overview_map(tmp_path_factory):
    from cami_geo.render.maps import run_map_overview_stage

    return _built("overview", tmp_path_factory, overview_job, run_map_overview_stage)


def _html(job) -> str:
    return Path(job[1]["html"]).read_text(encoding="utf-8")


FETCHING = re.compile(r"""(?:<(?:script|img|iframe|link|source|video|audio|embed)\b[^>]*\b(?:src|href)\s*=\s*["']?"""
                      r"""(?:https?:)?//)|(?:url\(\s*["']?(?:https?:)?//)|(?:@import)""", re.IGNORECASE)


# ----------------------------------------------------------------------------------------
# Tests


@pytest.mark.parametrize("which", ["species_map", "country_map", "overview_map"])
def test_outputs_written_and_self_contained(which, request):
    job = request.getfixturevalue(which)
    outputs = job[1]
    for key, path in outputs.items():
        assert Path(path).exists() and Path(path).stat().st_size > 0, key
    html = _html(job)
    assert not FETCHING.search(html), FETCHING.search(html)
    assert "cdn.jsdelivr" not in html and "code.jquery.com" not in html and "bootstrapcdn" not in html
    assert "leaflet@1.9.3" in html
    assert 'src="' not in html.split("<body>")[0].replace("data:", "")  # no <script src> in the head
    # every map carries the disclaimer, the cycle, the source, the attribution, a legend and a scale
    assert "do not imply the expression of any opinion whatsoever" in html
    assert "cycle 2026" in html
    assert "Natural Earth (public domain)" in html
    assert "cami-legend" in html
    assert "L.control.scale" in html
    assert "L.control.layers" in html
    assert "Synthetic demo data" in html
    assert "Content-Security-Policy" in html and "default-src 'none'" in html


def test_no_synthetic_label_without_synthetic_data(tmp_path):
    from cami_geo.render.maps import build_species_content, read_table, render_html
    from cami_geo.boundaries import load_boundaries

    occ = occurrences(synthetic=False, payloads=False)
    thr = threats(payloads=False)
    thr["synthetic"] = False
    rng = ranges()
    rng["synthetic"] = False
    inputs, _, params = species_job(tmp_path, occ=occ, thr=thr, rng=rng)
    by_country = read_table(inputs["by_country"], "x")
    by_country["synthetic_records"] = 0
    content = build_species_content(inputs["public"], by_country, read_table(inputs["by_species"], "x"),
                                    load_boundaries(BOUNDARIES, layer="countries"), SETTINGS, "test", SPECIES)
    assert not content.synthetic
    assert "Synthetic demo data" not in render_html(content)


def test_payloads_escaped_in_html(species_map, country_map):
    for job in (species_map, country_map):
        html = _html(job)
        for raw in ("window.__camiPwned = 1</script>", "onerror=\"window", "${window.__camiPwned", "onerror=\\\"window"):
            assert raw not in html, raw
        # the escaped forms are there (the text is shown, not dropped)
        assert "&lt;script&gt;window.__camiPwned = 1&lt;/script&gt;" in html.replace("<\\/", "</")
        assert "&#36;{window.__camiPwned=3}&#96;&#92;" in html


def _points_parts(html: str) -> list[dict]:
    parts = []
    for m in re.finditer(r"camiAdd\([a-z_0-9]+, (\{\"kind\":\"cells\".*?)\);\n", html):
        parts.append(json.loads(m.group(1).replace("<\\/", "</")))
    return parts


def _decimals(v) -> int:
    text = repr(v)
    return len(text.split(".")[1]) if "." in text else 0


def test_point_coordinates_no_finer_than_public_grid(species_map, country_map):
    for job in (species_map, country_map):
        parts = _points_parts(_html(job))
        assert parts, "no occurrence layer found"
        for part in parts:
            for lat, lon, n, *_ in part["pts"]:
                assert _decimals(lat) <= 1 and _decimals(lon) <= 1, (lat, lon)
                assert n >= 1


def test_sensitive_species_coarse_grid_and_withheld(tmp_path):
    """A species generalised to 1 degree shows whole-degree cells only; withheld records no point."""
    from cami_geo.render.maps import run_map_species_stage

    occ = occurrences(40, sensitivity="1deg", payloads=False)
    located = occ.geometry.notna() & ~occ.geometry.is_empty
    occ.loc[located, "geometry"] = gpd.GeoSeries([Point(round(p.x), round(p.y)) for p in occ.geometry[located]],
                                                 index=occ.index[located], crs="EPSG:4326")
    inputs, outputs, params = species_job(tmp_path, occ=occ)
    run_map_species_stage(inputs, outputs, params)
    html = Path(outputs["html"]).read_text(encoding="utf-8")
    for part in _points_parts(html):
        for lat, lon, *_ in part["pts"]:
            assert isinstance(lat, int) and isinstance(lon, int)
    assert "secret den" not in html  # the withheld record's locality never reaches the page
    assert "locations withheld" in html


def test_precise_points_are_snapped_to_their_sensitivity(tmp_path):
    from cami_geo.render.maps import occurrence_cells

    occ = occurrences(10, payloads=False)
    occ["geometry"] = [Point(74.123456, 41.987654) if g is not None else None for g in occ.geometry]
    cells = occurrence_cells(occ)
    assert set(cells["lat"]) == {41.9} and set(cells["lon"]) == {74.1} and set(cells["step"]) == {0.1}


def test_cell_centres_kept_with_grid_decimals():
    """Public points at 0.1 deg cell centres (x.x5) become their cell's corner (one decimal);
    corner + half a cell gives the centre back."""
    from cami_geo.render.maps import occurrence_cells

    occ = occurrences(30, payloads=False)
    located = occ.geometry.notna()
    centres = [Point(round(p.x, 1) + 0.05, round(p.y, 1) + 0.05) if p is not None else None for p in occ.geometry]
    occ["geometry"] = centres
    cells = occurrence_cells(occ)
    assert all(_decimals(v) <= 1 for v in list(cells["lat"]) + list(cells["lon"]))
    got = {(round(a + s / 2, 2), round(b + s / 2, 2)) for a, b, s in zip(cells["lon"], cells["lat"], cells["step"])}
    want = {(round(p.x, 2), round(p.y, 2)) for p, ok in zip(centres, located) if p is not None}
    assert got == want


def test_million_records_aggregate_small(tmp_path):
    """1,000,000 records on a 0.01 deg grid: the page stays well under 5 MB."""
    import time

    from cami_geo.render.maps import MAX_CELLS, occurrence_cells

    rng = np.random.default_rng(7)
    n = 1_000_000
    lon = np.round(rng.uniform(50, 110, n), 2)
    lat = np.round(rng.uniform(35, 52, n), 2)
    occ = gpd.GeoDataFrame({"sensitivity": ["0.01deg"] * n, "synthetic": rng.random(n) < 0.5,
                            "year": rng.integers(2000, 2025, n), "locality": "x"},
                           geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")
    t0 = time.perf_counter()
    cells = occurrence_cells(occ)
    elapsed = time.perf_counter() - t0
    assert len(cells) <= MAX_CELLS
    assert cells["n"].sum() == n
    from cami_geo.render.maps import LayerSpec, _cells_part, _js_json

    size = len(_js_json(_cells_part(LayerSpec("x", "cells", cells))).encode())
    assert size < 3_000_000, size
    assert elapsed < 60, elapsed


def test_cell_cap_shared_by_the_layers_of_a_country_map(tmp_path, monkeypatch):
    """MAX_CELLS holds for a Range State map as a whole: a species whose cells fit its share
    keeps its own (0.1 deg) grid, the large ones are coarsened to fit what is left; the page
    and the grid note show those cells."""
    import cami_geo.render.maps as maps
    from cami_geo.render.maps import run_map_country_stage

    cap = 20
    monkeypatch.setattr(maps, "MAX_CELLS", cap)
    frames = []
    for slug, name, n_grid, seed in (("saiga_tatarica", "Saiga tatarica", 3, 3),
                                     ("panthera_uncia", "Panthera uncia", 40, 1),
                                     ("ovis_ammon", "Ovis ammon", 40, 2)):
        occ = occurrences(n_grid, seed=seed, payloads=False)
        occ["species"], occ["species_slug"] = name, slug
        frames.append(occ)
    occ = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs="EPSG:4326")
    inputs, outputs, params = country_job(tmp_path)
    write_gpkg(Path(inputs["public"]), occ, threats(), ranges())
    own_grid = {slug: maps.occurrence_cells(f[f["occurrence_status"] == "present"], max_cells=10**9)
                for slug, f in zip(("saiga_tatarica", "panthera_uncia", "ovis_ammon"), frames)}
    assert sum(len(c) for c in own_grid.values()) > cap  # the test needs layers that exceed the cap together

    run_map_country_stage(inputs, outputs, params)
    html = Path(outputs["html"]).read_text(encoding="utf-8")
    parts = {p["name"]: p for p in _points_parts(html)}
    assert sum(len(p["pts"]) for p in parts.values()) <= cap
    small = parts["Saiga tatarica: records"]
    assert small["steps"] == [0.1] and len(small["pts"]) == len(own_grid["saiga_tatarica"])
    for name in ("Panthera uncia: records", "Ovis ammon: records"):
        assert min(parts[name]["steps"]) > 0.1
    assert "aggregated to cells of 0.1&deg; or coarser" in html


def test_same_inputs_same_bytes(species_map, tmp_path):
    from cami_geo.render.maps import run_map_species_stage

    inputs, outputs, params = species_map
    again = {k: str(tmp_path / Path(v).name) for k, v in outputs.items()}
    again["embed"] = str(tmp_path / "embed" / "species.html")
    run_map_species_stage(inputs, again, params)
    for key in ("html", "png", "svg"):
        assert Path(outputs[key]).read_bytes() == Path(again[key]).read_bytes(), key


def test_embed_snippet(species_map, country_map, overview_map):
    for job, rel in ((species_map, f"../species/{SPECIES}.html"), (country_map, "../country/KGZ.html"),
                     (overview_map, "../overview.html")):
        text = Path(job[1]["embed"]).read_text(encoding="utf-8")
        m = re.search(r"<iframe [^>]*></iframe>", text)
        assert m, text
        tag = m.group(0)
        assert f'src="{rel}"' in tag
        assert 'title="CAMI map: ' in tag and 'sandbox="allow-scripts allow-popups"' in tag
        assert 'width="100%"' in tag and 'height="600"' in tag
        assert (Path(job[1]["embed"]).parent / rel).resolve() == Path(job[1]["html"]).resolve()


def test_country_map_lists_every_species(country_map, registry):
    html = _html(country_map)
    for slug in registry.species_in("KGZ"):
        assert registry.species[slug].scientific_name in html, slug
    assert "Saiga tatarica: records" in html  # recorded there although not listed


def test_overview_lists_species_per_state(overview_map, registry):
    html = _html(overview_map)
    assert "CAMI species per Range State" in html
    assert "Kyrgyzstan" in html and "Panthera uncia" in html


def test_empty_layers_still_draw(tmp_path):
    from cami_geo.render.maps import run_map_species_stage

    empty_occ = occurrences().iloc[0:0]
    inputs, outputs, params = species_job(tmp_path, occ=empty_occ, thr=threats().iloc[0:0], rng=ranges().iloc[0:0],
                                          slug="saiga_tatarica")
    run_map_species_stage(inputs, outputs, params)
    html = Path(outputs["html"]).read_text(encoding="utf-8")
    assert "Latest population estimate by Range State" in html
    assert Path(outputs["png"]).stat().st_size > 10_000


def test_missing_assets_one_sentence(monkeypatch, tmp_path):
    from cami_geo.errors import CamiGeoError
    from cami_geo.render import assets

    monkeypatch.setenv("CAMI_GEO_NODE_MODULES", str(tmp_path / "nowhere"))
    with pytest.raises(CamiGeoError) as err:
        assets.inline_head()
    msg = str(err.value)
    assert "make setup" in msg and "npm ci" in msg and "\n" not in msg


def test_restricted_copy_refused(tmp_path):
    from cami_geo.render.maps import MapError, read_public_layer

    path = write_gpkg(tmp_path / "restricted" / "clean.gpkg", occurrences(), threats(), ranges())
    with pytest.raises(MapError, match="only the public copy"):
        read_public_layer(path, "occurrences")


def test_missing_inputs_one_sentence(tmp_path):
    from cami_geo.errors import CamiGeoError
    from cami_geo.render.maps import run_map_species_stage

    inputs, outputs, params = species_job(tmp_path)
    inputs["by_country"] = str(tmp_path / "missing.csv")
    with pytest.raises(CamiGeoError, match="does not exist"):
        run_map_species_stage(inputs, outputs, params)


def test_same_bytes_in_another_process(species_map, tmp_path):
    """Another interpreter with another hash seed writes the very same files."""
    import os
    import subprocess
    import sys

    inputs, outputs, _ = species_map
    again = {k: str(tmp_path / k / Path(v).name) for k, v in outputs.items()}
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
            "import json, test_maps\n"
            "from cami_geo.render.maps import run_map_species_stage\n"
            f"run_map_species_stage(json.loads({json.dumps(json.dumps(inputs))}), "
            f"json.loads({json.dumps(json.dumps(again))}), "
            "{'settings': test_maps.SETTINGS, 'version': 'test'})\n")
    env = {**os.environ, "PYTHONHASHSEED": "4242"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=300)
    for key in ("html", "png", "svg"):
        assert Path(outputs[key]).read_bytes() == Path(again[key]).read_bytes(), key


def test_online_tiles_optional_and_off_at_start(tmp_path):
    """With maps.online_tiles the OpenStreetMap layer is offered but not loaded until switched on."""
    from cami_geo.render.maps import run_map_overview_stage

    settings = {**SETTINGS, "maps": {**SETTINGS["maps"], "online_tiles": True}}
    inputs, outputs, params = overview_job(tmp_path)
    params["settings"] = settings
    run_map_overview_stage(inputs, outputs, params)
    html = Path(outputs["html"]).read_text(encoding="utf-8")
    assert "OpenStreetMap (online only)" in html
    name = re.search(r"var (tile_layer_[0-9a-f]+) = L\.tileLayer", html).group(1)
    assert f"{name}.addTo(" not in html
    assert not FETCHING.search(html)


def test_withheld_species_shown_only_as_presence_per_range_state(tmp_path):
    """Every record withheld: no point at all, the Range States with records are marked instead."""
    from cami_geo.render.maps import run_map_species_stage

    occ = occurrences(6, payloads=False)
    occ["geometry"] = None
    occ["sensitivity"] = "withheld"
    occ["iso3"] = ["IRN"] * len(occ)
    occ["species"], occ["species_slug"] = "Acinonyx jubatus venaticus", "acinonyx_jubatus_venaticus"
    empty = threats().iloc[0:0]
    inputs, outputs, params = species_job(tmp_path, occ=occ, thr=empty, rng=ranges().iloc[0:0],
                                          slug="acinonyx_jubatus_venaticus")
    run_map_species_stage(inputs, outputs, params)
    html = Path(outputs["html"]).read_text(encoding="utf-8")
    assert _points_parts(html) == []
    assert "Recorded in Range State, locations withheld" in html
    assert "<b>Iran</b>: 8 records" in html.replace("<\\/", "</")  # the 6 records plus the fixture's withheld and absence records
    for word in ("Valley", "Ranger team", "secret den"):
        assert word not in html


def test_template_syntax_in_submitted_text_stays_text(tmp_path):
    """Submitted text is never evaluated as a template: '{{ 7*7 }}' is shown as typed, '{#' does not break the page."""
    from cami_geo.render.maps import run_map_species_stage

    occ = occurrences(6, payloads=False)
    occ.loc[0, "locality"] = "Camp {{ 7*7 }} north"
    occ.loc[2, "locality"] = "Ridge {# unclosed"
    inputs, outputs, params = species_job(tmp_path, occ=occ)
    run_map_species_stage(inputs, outputs, params)
    html = Path(outputs["html"]).read_text(encoding="utf-8")
    # the data is put into the page as literal text (never parsed as a template) and, as a second
    # defence, the '{' is written as \u007b in the JSON string, which the browser reads back as '{'
    assert "{{ 7*7 }}" not in html and "Camp 49 north" not in html
    shown = html.replace("\\u007b", "{")
    assert "Camp {{ 7*7 }} north" in shown and "Ridge {# unclosed" in shown


def test_outside_resource_check():
    """The self-containment check finds the first outside reference of any kind, in page order."""
    from cami_geo.render.maps import _outside_resource

    assert _outside_resource("<p>local only</p><a href=\"https://example.org\">link</a>") is None
    page = "<b>x</b> <IMG alt=a SRC='//cdn.example/x.png'> url( \"https://y\") @import 'z';"
    assert _outside_resource(page) == "<IMG alt=a SRC='//cdn.example/x.png"
    assert _outside_resource("a { background: URL(http://x/y.png) } <script src=//s.js>") == "URL(http://x/y.png"
    assert _outside_resource("<style>@Import 'a.css';</style>") == "@Import 'a.css'"


def test_literal_element_renders_text_verbatim():
    """The page parts carrying data are never compiled as templates: the text comes out as given,
    template syntax in it included, and as branca's compiled Element gave text without syntax."""
    from branca.element import Element, Figure

    from cami_geo.render.maps import literal_element

    data = '{"p":"Camp {{ 7*7 }} north","q":"{% if x %}","r":"Ridge {# unclosed"}'
    el = literal_element(f"var d = {data};\n")
    assert el.render() == f"var d = {data};"
    fig = Figure()
    fig.header.add_child(el, name="data")
    page = fig.render()
    assert f"var d = {data};" in page and "Camp 49 north" not in page
    # without template syntax: the very output of branca's Element (line breaks, final newline)
    for plain in ("a\r\nb\rc\n", "x = 1;\n\n", "no newline", "", "\n"):
        assert literal_element(plain).render() == Element(plain).render(), repr(plain)


def test_literal_macro_element_keeps_data_as_text():
    """A layer rendered through LiteralMacroElement puts its script into the page without a second
    template pass (``{{ 7*7 }}`` in its data stays text) and keeps folium's own rendering (addTo)."""
    import folium
    from folium.map import Layer
    from folium.template import Template

    from cami_geo.render.maps import _literal_classes

    _, LiteralMacroElement = _literal_classes()

    class DataLayer(Layer, LiteralMacroElement):
        _template = Template("{% macro script(this, kwargs) %}\nvar {{ this.get_name() }} = L.featureGroup();\n"
                             "show({{ this.data }});\n{% endmacro %}")

        def __init__(self, data):
            super().__init__(name="data", overlay=True)
            self.data = data

    m = folium.Map(tiles=None)
    layer = DataLayer('"{{ 7*7 }} {% raw %} {#"')
    layer.add_to(m)
    html = m.get_root().render()
    assert 'show("{{ 7*7 }} {% raw %} {#");' in html and "49" not in html.split("show(")[1][:20]
    assert f"{layer.get_name()}.addTo({m.get_name()});" in html


# --------------------------------------------------------------------------------------
# Boundary cache (load_boundaries_and_basemap)


def test_boundary_cache_gives_what_is_computed(tmp_path, monkeypatch):
    import shutil

    from cami_geo.boundaries import load_configured
    from cami_geo.render import maps

    monkeypatch.setenv(maps.MAP_CACHE_ENV, str(tmp_path / "cache"))
    (tmp_path / "cache").mkdir(mode=0o700)
    src = tmp_path / "countries.gpkg"
    shutil.copyfile(BOUNDARIES, src)
    expected = load_configured(src, SETTINGS)
    expected_basemap = maps.prepare_basemap(expected)
    for _ in range(2):  # computed and written, then read back
        b, bm = maps.load_boundaries_and_basemap(src, SETTINGS)
        pd.testing.assert_frame_equal(b, expected)
        pd.testing.assert_frame_equal(bm, expected_basemap)
        assert b.crs.equals(expected.crs) and bm.crs.equals(expected_basemap.crs)
    files = list((tmp_path / "cache").iterdir())
    assert len(files) == 1 and files[0].suffix == ".pickle"

    # a changed boundary file gets its own entry
    gdf = load_configured(src, SETTINGS)
    gdf = gdf[gdf["iso3"] != "MNG"].reset_index(drop=True)
    src.unlink()
    gdf.to_file(src, layer="countries", driver="GPKG")
    b, bm = maps.load_boundaries_and_basemap(src, SETTINGS)
    assert "MNG" not in set(b["iso3"]) and "MNG" not in set(bm["iso3"])
    assert len(list((tmp_path / "cache").iterdir())) == 2

    # a damaged entry is computed again and replaced
    for f in (tmp_path / "cache").iterdir():
        f.write_bytes(b"not a pickle")
    b, bm = maps.load_boundaries_and_basemap(src, SETTINGS)
    assert "MNG" not in set(b["iso3"])


def test_boundary_cache_off_or_unsafe(tmp_path, monkeypatch):
    from cami_geo.render import maps

    monkeypatch.setenv(maps.MAP_CACHE_ENV, "")
    assert maps._map_cache_dir() is None
    b, bm = maps.load_boundaries_and_basemap(BOUNDARIES, SETTINGS)
    assert len(bm) and len(b)
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    monkeypatch.setenv(maps.MAP_CACHE_ENV, str(shared))
    assert maps._map_cache_dir() is None  # writable by others: never unpickled from


def test_worker_warm_up_leaves_maps_unchanged(species_map, tmp_path):
    """The stage worker's warm-up (a sample map drawn before jobs are forked) changes nothing in
    the maps drawn after it."""
    from cami_geo.render.maps import run_map_species_stage, warm_up_worker

    warm_up_worker()
    inputs, outputs, params = species_map
    again = {k: str(tmp_path / k / Path(v).name) for k, v in outputs.items()}
    run_map_species_stage(inputs, again, params)
    for k in ("html", "png", "svg"):
        assert Path(again[k]).read_bytes() == Path(outputs[k]).read_bytes(), k
