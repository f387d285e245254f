"""The combine stage on per-submission files built here (real GeoParquet/CSV/GeoTIFF I/O,
every output read back with pyogrio/pandas).

What users depend on: every output exists (also with no submission at all), every
GeoPackage has the layers occurrences/threats/range, species partitions hold exactly that
species' rows (threats with no species in every partition), the public copy is generalised
and the restricted one is not, rejected.csv is the error problems with paths relative to
data/raw/submissions, formula-like text is neutralised, and a rerun gives the same bytes.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import rasterio
import shapely
from affine import Affine

from cami_geo.combine import (
    RASTER_INDEX_COLUMNS,
    SUBMISSION_COLUMNS,
    relative_problem_file,
    run_combine_stage,
    run_public_stage,
)
from cami_geo.errors import InputError
from cami_geo.model import (
    OCCURRENCE_COLUMNS,
    POPULATION_COLUMNS,
    PROBLEM_COLUMNS,
    RANGE_COLUMNS,
    THREAT_COLUMNS,
)
from cami_geo.sensitivity import finer_than_allowed

SPECIES = ["camelus_ferus", "panthera_uncia", "saiga_tatarica"]
COUNTRIES = ["KAZ", "KGZ", "MNG"]
P = "data/processed"
BOUNDARIES = Path(__file__).resolve().parents[1] / "data/raw/boundaries/countries.gpkg"
LAYERS = ["occurrences", "threats", "range"]


def _frame(columns, rows, geometry):
    data = {c: [r.get(c) for r in rows] for c in columns}
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geometry, crs="EPSG:4326"), crs="EPSG:4326")


def _prov(sub, i, file, **kw):
    return {"record_id": f"{sub}/{file}#{i + 2}", "submission": sub, "source_file": file, "source_row": i + 2,
            "cycle": 2026, "contributor": "=evil()" if sub == "saiga_kaz_2026" else "B. Expert (WCS)",
            "licence": "CC-BY-4.0", "synthetic": True, "flags": "", **kw}


def build_submission_a(root: Path) -> None:
    sub = "saiga_kaz_2026"
    d = root / P / "submissions" / sub
    (d / "rasters").mkdir(parents=True)
    occ_rows = [
        _prov(sub, 0, "occurrences.csv", species="Saiga tatarica", species_slug="saiga_tatarica", iso3="KAZ",
              decimal_longitude=66.1234, decimal_latitude=45.4321, coordinate_uncertainty_m=25.0, year=2025,
              event_date="2025-05-02", locality="=HYPERLINK(\"http://x\")", recorded_by="A. Ranger",
              sensitivity="0.1deg", occurrence_status="present", individual_count=12),
        _prov(sub, 1, "occurrences.csv", species="Saiga tatarica", species_slug="saiga_tatarica", iso3="KAZ",
              decimal_longitude=65.0002, decimal_latitude=46.9999, year=2025, sensitivity="0.1deg",
              occurrence_status="present"),
        # the SFP asked for 'exact' for a snow leopard: the species default (0.1deg) wins
        _prov(sub, 2, "occurrences.csv", species="Panthera uncia", species_slug="panthera_uncia", iso3="KAZ",
              decimal_longitude=77.2345, decimal_latitude=43.1234, year=2024, sensitivity="exact",
              occurrence_status="present", locality="Camera station 7"),
    ]
    occ = _frame(OCCURRENCE_COLUMNS, occ_rows,
                 [shapely.Point(r["decimal_longitude"], r["decimal_latitude"]) for r in occ_rows])
    occ.to_parquet(d / "occurrences.parquet")
    thr_rows = [
        _prov(sub, 0, "threats.gpkg", species="Saiga tatarica", species_slug="saiga_tatarica", iso3="KAZ",
              iucn_code="5.1.1", iucn_name="Intentional use", name="snare cluster", year=2025),
        _prov(sub, 1, "threats.gpkg", species=None, species_slug="", iso3="KAZ", iucn_code="4.1",
              iucn_name="Roads & railroads", name="A-17 highway", year=2024, barrier_class="complete barrier"),
    ]
    thr = _frame(THREAT_COLUMNS, thr_rows, [shapely.Point(66.4567, 45.9876),
                                            shapely.LineString([(60.0, 45.0), (70.0, 46.0)])])
    thr.to_parquet(d / "threats.parquet")
    rng_rows = [_prov(sub, 0, "range.gpkg", species="Saiga tatarica", species_slug="saiga_tatarica", iso3="KAZ",
                      presence=1, origin=1, seasonal=1, name="Betpak-Dala")]
    _frame(RANGE_COLUMNS, rng_rows, [shapely.box(64, 45, 70, 48)]).to_parquet(d / "range.parquet")
    pop = pd.DataFrame([{**_prov(sub, i, "population.csv"), "species": "Saiga tatarica",
                         "species_slug": "saiga_tatarica", "iso3": "KAZ", "year": y, "estimate_best": b,
                         "unit": "individuals", "scope": "national", "source": src}
                        for i, (y, b, src) in enumerate([(2025, 4100000, "=cmd|' /C calc'!A0"),
                                                         (2024, 2800000, "Aerial survey")])],
                       columns=POPULATION_COLUMNS)
    pop.to_csv(d / "population.csv", index=False)
    problems = pd.DataFrame([
        ["saiga_kaz_2026", "occurrences.csv", "5", "decimalLatitude", "latitude 91.2 is out of range", "error", "91.2"],
        ["saiga_kaz_2026", "occurrences.csv", "3", "eventDate", "date missing", "warning", ""],
        ["saiga_kaz_2026", "occurrences.csv", "4", "scientificName", "species not recognised", "error", "=1+1"],
    ], columns=PROBLEM_COLUMNS)
    problems.to_csv(d / "problems.csv", index=False)
    with rasterio.open(d / "rasters" / "hfp.tif", "w", driver="GTiff", width=4, height=3, count=1,
                       dtype="uint8", crs="EPSG:4326", transform=Affine(1, 0, 60, 0, -1, 50)) as dst:
        dst.write(np.arange(12, dtype="uint8").reshape(1, 3, 4))
    pd.DataFrame([{"name": "human footprint", "path": str((d / "rasters" / "hfp.tif").relative_to(root)),
                   "units": "index"}]).to_csv(d / "rasters.csv", index=False)
    (d / "validation.json").write_text(json.dumps({  # as cami_geo.intake.summary_dict writes it
        "submission": sub, "cycle": 2026, "rows_in": 6, "accepted": 4, "rejected": 2,
        "manifest": {"submission": sub, "contributor": "=evil()", "submitted": "2026-05-01",
                     "licence": "CC-BY-4.0", "cycle": None, "sensitivity": "0.1deg", "synthetic": True,
                     "species": ["Saiga tatarica", "Panthera uncia"], "range_states": ["KAZ"], "crs": None,
                     "files": {"occurrences.csv": {"kind": "occurrences"}}},
        "files": [{"file": "occurrences.csv", "kind": "occurrences", "rows_in": 5},
                  {"file": "population.csv", "kind": "population", "rows_in": 2}],
        "by_check": [], "problems": []}), encoding="utf-8")


def build_submission_b(root: Path) -> None:
    """A snow leopard submission asking for 'withheld', with empty threat and range layers."""
    sub = "uncia_kgz_2025"
    d = root / P / "submissions" / sub
    d.mkdir(parents=True)
    occ_rows = [_prov(sub, i, "occurrences.xlsx", species="Panthera uncia", species_slug="panthera_uncia",
                      iso3="KGZ", decimal_longitude=lon, decimal_latitude=lat, year=2025, sensitivity="withheld",
                      event_date="2025-01-0%d" % (i + 1), recorded_by="C. Tracker", locality="den site",
                      occurrence_status="present")
                for i, (lon, lat) in enumerate([(78.1111, 42.2222), (74.5555, 41.6666)])]
    _frame(OCCURRENCE_COLUMNS, occ_rows, [shapely.Point(r["decimal_longitude"], r["decimal_latitude"])
                                          for r in occ_rows]).to_parquet(d / "occurrences.parquet")
    _frame(THREAT_COLUMNS, [], []).to_parquet(d / "threats.parquet")
    _frame(RANGE_COLUMNS, [], []).to_parquet(d / "range.parquet")
    pd.DataFrame(columns=POPULATION_COLUMNS).to_csv(d / "population.csv", index=False)
    pd.DataFrame(columns=PROBLEM_COLUMNS).to_csv(d / "problems.csv", index=False)
    pd.DataFrame(columns=["name", "path"]).to_csv(d / "rasters.csv", index=False)
    (d / "validation.json").write_text(json.dumps({"rows_in": 2, "accepted": 2, "rejected": 0, "problems": []}),
                                       encoding="utf-8")


def stage_io(subs: list[str]):
    sp = lambda name: [f"{P}/submissions/{s}/{name}" for s in subs]  # noqa: E731
    inputs = {"occurrences": sp("occurrences.parquet"), "threats": sp("threats.parquet"),
              "range": sp("range.parquet"), "population": sp("population.csv"), "problems": sp("problems.csv"),
              "rasters": sp("rasters.csv"), "summaries": sp("validation.json"), "boundaries": str(BOUNDARIES)}
    outputs = {**{f"{copy}_{lyr}": f"{P}/{copy}/{lyr}.parquet" for copy in ("restricted", "public") for lyr in LAYERS},
               "restricted_species": [f"{P}/restricted/species/{s}/{lyr}.parquet" for s in SPECIES for lyr in LAYERS],
               "public_species": [f"{P}/public/species/{s}.gpkg" for s in SPECIES],
               "public_country": [f"{P}/public/country/{c}.gpkg" for c in COUNTRIES],
               "population": f"{P}/population.csv", "rejected": f"{P}/rejected.csv",
               "problems": f"{P}/problems.csv", "rasters": f"{P}/rasters/index.csv",
               "submissions": f"{P}/submissions.csv"}
    params = {"species": SPECIES, "settings": {}, "version": "test"}
    return inputs, outputs, params


def run_stages(inputs, outputs, params):
    """combine, then public from the restricted copy combine wrote, as the workflow runs them."""
    run_combine_stage(inputs, {k: v for k, v in outputs.items() if not k.startswith("public")}, params)
    public_inputs = {**{f"restricted_{lyr}": outputs[f"restricted_{lyr}"] for lyr in LAYERS},
                     "summaries": inputs["summaries"], "boundaries": inputs["boundaries"]}
    run_public_stage(public_inputs, {k: v for k, v in outputs.items() if k.startswith("public")}, params)


def all_output_files(outputs) -> list[Path]:
    files = []
    for v in outputs.values():
        files += [Path(x) for x in (v if isinstance(v, list) else [v])]
    return files


@pytest.fixture(scope="module")
def combined(tmp_path_factory):
    root = tmp_path_factory.mktemp("combine")
    build_submission_a(root)
    build_submission_b(root)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        inputs, outputs, params = stage_io(["saiga_kaz_2026", "uncia_kgz_2025"])
        run_stages(inputs, outputs, params)
        first = {p: p.read_bytes() for p in all_output_files(outputs)}
        layers1 = {(p, lyr): pyogrio.read_dataframe(p, layer=lyr) for p in all_output_files(outputs)
                   if p.suffix == ".gpkg" for lyr in LAYERS}
        run_stages(inputs, outputs, params)  # the rerun, for the determinism test
        yield root, outputs, first, layers1


def read(root: Path, path: str, layer: str) -> gpd.GeoDataFrame:
    """A layer of a GeoPackage, or of a folder of GeoParquet files (one per layer): a whole
    copy ("restricted", "public") or a species' restricted partition."""
    if path in ("restricted", "public"):
        path = f"{P}/{path}"
    if str(path).endswith(".gpkg"):
        return pyogrio.read_dataframe(root / path, layer=layer)
    return gpd.read_parquet(root / path / f"{layer}.parquet")


def test_every_output_exists_with_its_layers(combined):
    root, outputs, _, _ = combined
    for p in all_output_files(outputs):
        assert (root / p).is_file(), p
        if p.suffix == ".gpkg":
            assert [row[0] for row in pyogrio.list_layers(root / p)] == LAYERS
            for lyr in LAYERS:
                info = pyogrio.read_info(root / p, layer=lyr)
                assert info["crs"] == "EPSG:4326"
    occ = read(root, "restricted", "occurrences")
    assert list(occ.columns) == OCCURRENCE_COLUMNS + ["geometry"]
    assert list(read(root, "restricted", "threats").columns) == THREAT_COLUMNS + ["geometry"]
    assert list(read(root, "restricted", "range").columns) == RANGE_COLUMNS + ["geometry"]
    assert occ.record_id.tolist() == sorted(occ.record_id)  # sorted by record_id
    assert len(occ) == 5  # nothing dropped


def test_restricted_copy_is_precise_and_partitioned(combined):
    root, outputs, _, _ = combined
    occ = read(root, "restricted", "occurrences")
    leopard = occ[occ.record_id == "saiga_kaz_2026/occurrences.csv#4"].iloc[0]
    assert (leopard.geometry.x, leopard.geometry.y) == (77.2345, 43.1234)
    saiga = read(root, f"{P}/restricted/species/saiga_tatarica", "occurrences")
    assert sorted(saiga.record_id) == ["saiga_kaz_2026/occurrences.csv#2", "saiga_kaz_2026/occurrences.csv#3"]
    uncia = read(root, f"{P}/restricted/species/panthera_uncia", "occurrences")
    assert set(uncia.species_slug) == {"panthera_uncia"} and len(uncia) == 3
    # threats with no species go into every partition, species threats only into theirs
    for sp, expected in [("saiga_tatarica", 2), ("panthera_uncia", 1), ("camelus_ferus", 1)]:
        thr = read(root, f"{P}/restricted/species/{sp}", "threats")
        assert len(thr) == expected, sp
        assert "saiga_kaz_2026/threats.gpkg#3" in set(thr.record_id)
    assert len(read(root, f"{P}/restricted/species/saiga_tatarica", "range")) == 1
    camel = {lyr: read(root, f"{P}/restricted/species/camelus_ferus", lyr) for lyr in LAYERS}
    assert len(camel["occurrences"]) == 0 and len(camel["range"]) == 0
    assert pyogrio.read_info(root / f"{P}/public/species/camelus_ferus.gpkg", layer="occurrences")[
        "geometry_type"] == "Point"


def test_public_copy_is_generalised_and_partitioned(combined):
    root, outputs, _, _ = combined
    occ = read(root, "public", "occurrences").set_index("record_id")
    assert len(occ) == 5
    a = occ.loc["saiga_kaz_2026/occurrences.csv#2"]
    assert (a.geometry.x, a.geometry.y) == (66.15, 45.45)
    assert (a.decimal_longitude, a.decimal_latitude) == (66.15, 45.45)
    assert a.coordinate_uncertainty_m > 25 and "0.1 degree grid (cell centre)" in a.data_generalizations
    assert pd.isna(a.locality)
    leopard = occ.loc["saiga_kaz_2026/occurrences.csv#4"]
    assert leopard.sensitivity == "0.1deg" and (leopard.geometry.x, leopard.geometry.y) == (77.25, 43.15)
    withheld = occ[occ.submission == "uncia_kgz_2025"]
    assert len(withheld) == 2 and (withheld.sensitivity == "withheld").all()
    assert withheld.geometry.isna().all() and withheld.decimal_latitude.isna().all()
    assert withheld.recorded_by.isna().all() and withheld.locality.isna().all()
    assert (withheld.iso3 == "KGZ").all() and (withheld.year == 2025).all()
    # scan every public GeoPackage for coordinates finer than their level allows
    for path in ["public", *outputs["public_species"], *outputs["public_country"]]:
        pub = read(root, path, "occurrences")
        pts = pub.geometry.dropna()
        assert not finer_than_allowed(pts.x, pub.loc[pts.index, "sensitivity"]).any()
        assert not finer_than_allowed(pub.decimal_longitude, pub.sensitivity).any()
        assert not finer_than_allowed(pub.decimal_latitude, pub.sensitivity).any()
        thr = read(root, path, "threats")
        snares = thr[thr.iucn_code.str.startswith("5.1")]
        assert all(g.equals(shapely.Point(66.45, 45.95)) for g in snares.geometry)
        assert snares.name.isna().all()
    uncia = read(root, f"{P}/public/species/panthera_uncia.gpkg", "occurrences")
    assert len(uncia) == 3 and set(uncia.species_slug) == {"panthera_uncia"}
    # lines are kept as they are
    road = read(root, "public", "threats").set_index("record_id").loc["saiga_kaz_2026/threats.gpkg#3"]
    assert road.geometry.equals(shapely.LineString([(60.0, 45.0), (70.0, 46.0)]))


def test_rejected_is_the_error_problems(combined):
    root, outputs, _, _ = combined
    problems = pd.read_csv(root / outputs["problems"], dtype=str, keep_default_na=False)
    rejected = pd.read_csv(root / outputs["rejected"], dtype=str, keep_default_na=False)
    assert list(rejected.columns) == PROBLEM_COLUMNS and list(problems.columns) == PROBLEM_COLUMNS
    assert len(problems) == 3
    pd.testing.assert_frame_equal(rejected, problems[problems.severity == "error"].reset_index(drop=True))
    assert rejected.file.tolist() == ["saiga_kaz_2026/occurrences.csv"] * 2
    assert rejected.row.tolist() == ["4", "5"]
    assert problems.row.tolist() == ["3", "4", "5"]


def test_formula_text_is_neutralised(combined):
    root, outputs, _, _ = combined
    pop = pd.read_csv(root / outputs["population"], dtype=str, keep_default_na=False)
    assert "'=cmd|' /C calc'!A0" in set(pop.source)
    assert list(pop.columns) == POPULATION_COLUMNS and len(pop) == 2
    assert pd.to_numeric(pop.estimate_best).tolist() == [4100000, 2800000]  # record_id order: rows 2, 3
    rejected = pd.read_csv(root / outputs["rejected"], dtype=str, keep_default_na=False)
    assert "'=1+1" in set(rejected.value)
    subs = pd.read_csv(root / outputs["submissions"], dtype=str, keep_default_na=False)
    assert subs.set_index("submission").loc["saiga_kaz_2026", "contributor"] == "'=evil()"
    for path in (outputs["population"], outputs["problems"], outputs["submissions"]):
        text = (root / path).read_text(encoding="utf-8")
        assert ",=" not in text and "\n=" not in text


def test_provenance_and_rasters(combined):
    root, outputs, _, _ = combined
    subs = pd.read_csv(root / outputs["submissions"], dtype=str, keep_default_na=False)
    assert list(subs.columns) == SUBMISSION_COLUMNS
    assert subs.submission.tolist() == ["saiga_kaz_2026", "uncia_kgz_2025"]
    a, b = subs.iloc[0], subs.iloc[1]
    assert (a.rows_in, a.accepted, a.rejected, a.cycle, a.sensitivity) == ("6", "4", "2", "2026", "0.1deg")
    assert a.species == "Panthera uncia;Saiga tatarica" and a.files == "occurrences.csv;population.csv"
    # b's validation.json has no manifest: taken from its records
    assert (b.rows_in, b.accepted, b.rejected) == ("2", "2", "0")
    assert (b.contributor, b.licence, b.cycle, b.sensitivity, b.species, b.range_states, b.files) == (
        "B. Expert (WCS)", "CC-BY-4.0", "2026", "withheld", "Panthera uncia", "KGZ", "occurrences.xlsx")
    assert b.synthetic == "True" and b.submitted == ""
    index = pd.read_csv(root / outputs["rasters"], dtype=str, keep_default_na=False)
    assert list(index.columns)[:4] == RASTER_INDEX_COLUMNS and len(index) == 1
    row = index.iloc[0]
    assert row.path == f"{P}/rasters/saiga_kaz_2026__human_footprint.tif" and row.units == "index"
    assert (root / row.path).read_bytes() == (root / row.source_path).read_bytes()
    with rasterio.open(root / row.path) as src:
        assert src.read(1).sum() == sum(range(12))


def test_rerun_gives_the_same_outputs(combined):
    root, outputs, first, layers1 = combined
    for p, data in first.items():
        if p.suffix == ".csv":
            assert (root / p).read_bytes() == data, p
    for (p, lyr), frame in layers1.items():
        again = pyogrio.read_dataframe(root / p, layer=lyr)
        pd.testing.assert_frame_equal(pd.DataFrame(again.drop(columns="geometry")),
                                      pd.DataFrame(frame.drop(columns="geometry")))
        assert again.geometry.to_wkb().tolist() == frame.geometry.to_wkb().tolist()
    # with OGR_CURRENT_DATE fixed, the GeoPackages are byte-identical too
    for p, data in first.items():
        if p.suffix == ".gpkg":
            assert (root / p).read_bytes() == data, p


def test_no_submissions_gives_valid_empty_outputs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    inputs, outputs, params = stage_io([])
    run_stages(inputs, outputs, params)
    for p in all_output_files(outputs):
        assert p.is_file(), p
        if p.suffix == ".gpkg":
            assert [row[0] for row in pyogrio.list_layers(p)] == LAYERS
            for lyr, gtype in zip(LAYERS, ["Point", "Unknown", "MultiPolygon"]):
                info = pyogrio.read_info(p, layer=lyr)
                assert info["features"] == 0 and info["geometry_type"] == gtype
            assert list(pyogrio.read_dataframe(p, layer="occurrences").columns) == OCCURRENCE_COLUMNS + ["geometry"]
    assert list(pd.read_csv(outputs["population"]).columns) == POPULATION_COLUMNS
    assert list(pd.read_csv(outputs["rejected"]).columns) == PROBLEM_COLUMNS
    assert list(pd.read_csv(outputs["submissions"]).columns) == SUBMISSION_COLUMNS
    assert list(pd.read_csv(outputs["rasters"]).columns) == RASTER_INDEX_COLUMNS


def test_unreadable_input_is_one_sentence(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    build_submission_b(tmp_path)
    (tmp_path / P / "submissions/uncia_kgz_2025/occurrences.parquet").write_text("not parquet")
    inputs, outputs, params = stage_io(["uncia_kgz_2025"])
    with pytest.raises(InputError, match=r"occurrences.parquet cannot be read as GeoParquet"):
        run_combine_stage(inputs, outputs, params)
    (tmp_path / P / "submissions/uncia_kgz_2025/occurrences.parquet").unlink()
    with pytest.raises(InputError, match=r"does not exist; run the intake stage"):
        run_combine_stage(inputs, outputs, params)


def test_relative_problem_file():
    assert relative_problem_file("s1", "data/raw/submissions/s1/x.csv") == "s1/x.csv"
    assert relative_problem_file("s1", "s1/x.csv") == "s1/x.csv"
    assert relative_problem_file("s1", "./x.csv") == "s1/x.csv"
    assert relative_problem_file("s1", "sub\\x.csv") == "s1/sub/x.csv"


def test_records_sorted_by_record_id_in_natural_order(tmp_path):
    from cami_geo.combine import read_records

    d = tmp_path / "s1"
    d.mkdir()
    rows = [_prov("s1", i, "occ.csv", species_slug="saiga_tatarica") for i in (8, 0, 7, 10)]
    _frame(OCCURRENCE_COLUMNS, rows, [shapely.Point(66, 45)] * 4).to_parquet(d / "occurrences.parquet")
    got = read_records([str(d / "occurrences.parquet")], "occurrences")
    assert got.record_id.tolist() == ["s1/occ.csv#2", "s1/occ.csv#9", "s1/occ.csv#10", "s1/occ.csv#12"]
    assert got.source_row.dtype == "Int64" and got.synthetic.dtype == "boolean"


def test_layer_schema_is_the_same_with_and_without_rows(combined, tmp_path, monkeypatch):
    """Readers can rely on field types: integers stay Integer64, synthetic Boolean, even empty."""
    root, outputs, _, _ = combined
    monkeypatch.chdir(tmp_path)
    inputs, empty_outputs, params = stage_io([])
    run_stages(inputs, empty_outputs, params)
    for lyr in LAYERS:
        full = pyogrio.read_info(root / outputs["public_species"][1], layer=lyr)
        empty = pyogrio.read_info(tmp_path / empty_outputs["public_species"][1], layer=lyr)
        assert list(full["fields"]) == list(empty["fields"])
        assert full["ogr_types"] == empty["ogr_types"] and full["ogr_subtypes"] == empty["ogr_subtypes"], lyr
    info = pyogrio.read_info(root / outputs["public_species"][1], layer="occurrences")
    types = dict(zip(info["fields"], zip(info["ogr_types"], info["ogr_subtypes"])))
    assert types["source_row"] == ("OFTInteger64", "OFSTNone")
    assert types["synthetic"] == ("OFTInteger", "OFSTBoolean")
    assert types["decimal_latitude"] == ("OFTReal", "OFSTNone")


def test_range_state_partitions_hold_its_records_and_the_threats_that_touch_it(combined):
    """Range State maps read public/country/<ISO3>.gpkg: occurrences by iso3 (withheld ones
    too), threats and ranges also by geometry, since a road crosses borders."""
    root, outputs, _, _ = combined
    pub = read(root, "public", "occurrences")
    for c in COUNTRIES:
        part = read(root, f"{P}/public/country/{c}.gpkg", "occurrences")
        assert sorted(part.record_id) == sorted(pub.record_id[pub.iso3 == c]), c
    kgz = read(root, f"{P}/public/country/KGZ.gpkg", "occurrences")
    assert len(kgz) == 2 and kgz.geometry.isna().all()  # withheld: no point, still counted
    # the road (60,45)-(70,46) runs through Kazakhstan, not Mongolia
    assert "saiga_kaz_2026/threats.gpkg#3" in set(read(root, f"{P}/public/country/KAZ.gpkg", "threats").record_id)
    assert "saiga_kaz_2026/threats.gpkg#3" not in set(read(root, f"{P}/public/country/MNG.gpkg", "threats").record_id)
    assert pyogrio.read_info(root / f"{P}/public/country/MNG.gpkg", layer="occurrences")["features"] == 0


def test_parallel_writers_give_the_same_bytes(combined, tmp_path, monkeypatch):
    """threads > 1 writes the GeoPackages in forked processes; the files must not differ."""
    root, outputs, first, _ = combined
    monkeypatch.chdir(root)
    inputs, _, params = stage_io(["saiga_kaz_2026", "uncia_kgz_2025"])
    par_outputs = {k: ([str(tmp_path / x) for x in v] if isinstance(v, list) else str(tmp_path / v))
                   for k, v in outputs.items()}
    run_stages(inputs, par_outputs, {**params, "threads": 2})
    for key in ("restricted_species", "public_species", "public_country"):  # GeoParquet and GeoPackage
        for a, b in zip(outputs[key], par_outputs[key]):
            assert Path(b).read_bytes() == first[Path(a)], a


def test_public_stage_needs_the_restricted_copy(tmp_path, monkeypatch):
    """Run on its own before combine, the public stage says which file is missing."""
    monkeypatch.chdir(tmp_path)
    build_submission_b(tmp_path)
    inputs, outputs, params = stage_io(["uncia_kgz_2025"])
    public_inputs = {**{f"restricted_{lyr}": outputs[f"restricted_{lyr}"] for lyr in LAYERS},
                     "summaries": inputs["summaries"], "boundaries": inputs["boundaries"]}
    with pytest.raises(InputError, match=r"restricted/occurrences.parquet does not exist; run the combine stage"):
        run_public_stage(public_inputs, {k: v for k, v in outputs.items() if k.startswith("public")}, params)


def test_partition_bytes_do_not_depend_on_how_the_records_were_read(tmp_path):
    """The same records make the same file whether their columns come in one piece or in
    several (records read per submission, or in batches from the restricted copy): a
    partition whose records did not change keeps its checksum, and its jobs do not re-run."""
    import pyarrow as pa

    from cami_geo.combine import _write_task, conform

    n = 3000
    frame = conform(_frame(OCCURRENCE_COLUMNS, [_prov("s", i, "occurrences.csv", species_slug="saiga_tatarica",
                                                             year=2000 + i % 20, locality=f"place {i % 7}")
                                                       for i in range(n)],
                                   [shapely.Point(60 + i / n, 45 + (i % 13) / 13) for i in range(n)]),
                   "occurrences", source="test")
    pieces = frame.copy()
    for col in ("record_id", "locality", "submission"):
        whole = pa.array(frame[col].astype(object).tolist(), pa.string())
        chunked = pa.chunked_array([whole.slice(0, 7), whole.slice(7, 1000), whole.slice(1007)])
        text = pd.StringDtype("pyarrow", na_value=np.nan)  # pandas' "str", what GeoParquet reads give
        pieces[col] = pd.Series(pd.arrays.ArrowStringArray(chunked, dtype=text), index=frame.index)
        frame[col] = pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([whole]), dtype=text), index=frame.index)
    pieces["species"] = pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([pa.array(["a", None]), pa.array(["b"] * (n - 2))]),
                                                             dtype=pd.StringDtype("pyarrow", na_value=pd.NA)), index=frame.index)
    frame["species"] = pieces["species"].astype(pd.StringDtype("pyarrow", na_value=pd.NA))
    # one piece, same values and the same dtypes (text missing as NaN or as NA alike)
    from cami_geo.combine import _one_chunk

    whole = _one_chunk(pieces)
    assert all(whole[c].array._pa_array.num_chunks == 1 for c in ("record_id", "locality", "species"))
    assert list(whole.dtypes) == list(pieces.dtypes) and whole.equals(pieces)
    for name in ("a.gpkg", "a.parquet"):
        _write_task(str(tmp_path / "one" / name), {"occurrences": frame}, {"occurrences": "Point"})
        _write_task(str(tmp_path / "pieces" / name), {"occurrences": pieces}, {"occurrences": "Point"})
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "pieces" / name).read_bytes(), name


def test_geopackage_partitions_from_one_arrow_table_are_the_files_pyogrio_writes(tmp_path):
    """A GeoPackage partition taken from the layer's table converted once (gpkg_table) has
    the bytes of the partition's own frame written by pyogrio: polygons promoted to
    multipolygons, lines and points mixed, text columns empty in one partition and not in
    another, missing geometries."""
    from cami_geo.combine import _geometry_type, conform, gpkg_table, write_geopackage

    n = 40
    square = shapely.box(60, 45, 61, 46)
    rng = conform(_frame(RANGE_COLUMNS, [_prov("s", i, "range.gpkg", species_slug=f"sp{i % 2}", presence=1,
                                                 iso3="KAZ", name="edge" if i % 2 else None) for i in range(n)],
                         [square if i % 3 else shapely.MultiPolygon([square, shapely.box(62, 45, 63, 46)])
                          for i in range(n)]), "range", source="test")
    thr = conform(_frame(THREAT_COLUMNS, [_prov("s", i, "threats.csv", species_slug=f"sp{i % 2}", iucn_code="5.1.1",
                                                name="camp" if i % 2 else None) for i in range(n)],
                         [None if i % 7 == 0 else shapely.Point(60 + i / n, 45) if i % 2
                          else shapely.LineString([(60, 45), (61, 46 + i / n)]) for i in range(n)]),
                  "threats", source="test")
    layers = {"threats": thr, "range": rng}
    gtypes = {name: _geometry_type(name, frame) for name, frame in layers.items()}
    assert gtypes == {"threats": "Unknown", "range": "MultiPolygon"}
    tables = {name: gpkg_table(frame, gtypes[name]) for name, frame in layers.items()}
    for sp in ("sp0", "sp1"):
        rows = {name: np.flatnonzero(frame["species_slug"].to_numpy(dtype=object) == sp) for name, frame in layers.items()}
        write_geopackage(tmp_path / f"frames_{sp}.gpkg", {k: f.iloc[rows[k]] for k, f in layers.items()}, gtypes)
        write_geopackage(tmp_path / f"table_{sp}.gpkg", {k: t.take(rows[k]) for k, t in tables.items()}, gtypes)
        assert (tmp_path / f"frames_{sp}.gpkg").read_bytes() == (tmp_path / f"table_{sp}.gpkg").read_bytes(), sp


def test_geopackage_partition_from_a_table_whose_geometries_are_all_missing(tmp_path):
    """Threats with no geometry at all (a CSV without coordinates): the table's geometry
    column stays binary (not Arrow's null type made text), and the file is pyogrio's."""
    from cami_geo.combine import _geometry_type, conform, gpkg_table, write_geopackage

    thr = conform(_frame(THREAT_COLUMNS, [_prov("s", i, "threats.csv", species_slug="sp0", iucn_code="5.1.1")
                                          for i in range(3)], [None] * 3), "threats", source="test")
    gtypes = {"threats": _geometry_type("threats", thr)}
    write_geopackage(tmp_path / "frame.gpkg", {"threats": thr}, gtypes)
    write_geopackage(tmp_path / "table.gpkg", {"threats": gpkg_table(thr, gtypes["threats"])}, gtypes)
    assert (tmp_path / "frame.gpkg").read_bytes() == (tmp_path / "table.gpkg").read_bytes()
