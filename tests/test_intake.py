"""The intake stage on a real submission folder: CSV + XLSX + GeoJSON + GPKG + population +
range + a GeoTIFF, written with real GDAL/openpyxl/rasterio and read back."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pytest
import shapely

from cami_geo.config import load
from cami_geo.intake import run_intake_stage
from cami_geo.model import OCCURRENCE_COLUMNS, POPULATION_COLUMNS, PROBLEM_COLUMNS, RANGE_COLUMNS, THREAT_COLUMNS

REPO = Path(__file__).resolve().parents[1]
BOUNDARIES = REPO / "data/raw/boundaries/countries.gpkg"


@pytest.fixture(scope="module")
def settings():
    return load(REPO, REPO, {})


def _outputs(out: Path) -> dict[str, str]:
    names = {"occurrences": "occurrences.parquet", "threats": "threats.parquet", "range": "range.parquet",
             "population": "population.csv", "problems": "problems.csv", "rasters": "rasters.csv",
             "summary": "validation.json", "report": "validation.html"}
    return {k: str(out / v) for k, v in names.items()}


def _run(sub: Path, out: Path, settings) -> dict[str, str]:
    outputs = _outputs(out)
    run_intake_stage({"boundaries": str(BOUNDARIES), "files": []}, outputs,
                     {"submission_dir": str(sub), "settings": settings, "version": "test"})
    return outputs


@pytest.fixture(scope="module")
def submission(tmp_path_factory):
    sub = tmp_path_factory.mktemp("subs") / "kaz_saiga_2026"
    sub.mkdir()
    (sub / "submission.yaml").write_text(
        "species: Saiga tatarica\nrange_states: [KAZ, UZB]\ncontributor: 'A. Name <script>x</script>'\n"
        "submitted: 2026-05-01\ncycle: 2025\nlicence: CC-BY-4.0\nsensitivity: 0.1deg\nsynthetic: true\n"
        "files:\n  survey_2025.xlsx: {kind: occurrences, sheet: data}\n", encoding="utf-8")
    # CSV, cp1251, semicolons, decimal commas, a title row
    (sub / "occurrences_ground.csv").write_bytes(
        ("Учёт сайгака 2025;;;\n"
         "вид;широта;долгота;дата;количество\n"
         "сайгак;48,1234;66,5678;05.04.2025;12\n"
         "Saiga tatarica;66,5678;48,1234;05.04.2025;3\n"
         "Saiga tatarica;48,1234;66,5678;05.04.2025;12\n"
         "=HYPERLINK(\"x\");48,3;66,3;05.04.2025;1\n").encode("cp1251"))
    # XLSX with an instructions sheet first and the table on 'data' below a title row
    wb = openpyxl.Workbook()
    wb.active.title = "instructions"
    wb.active["A1"] = "Fill the data sheet"
    ws = wb.create_sheet("data")
    ws.append(["Aerial survey, spring 2025"])
    ws.append(["scientificName", "decimalLatitude", "decimalLongitude", "eventDate", "countryCode"])
    ws.append(["Saiga tatarica", 47.51234, 67.2345, "2025-04-10", "KZ"])
    ws.append(["Saiga tatarica", 43.91234, 58.4321, "2025-04-11", "UZ"])
    ws.append(["Saiga tatarica", 47.51234, 67.2345, "2099-04-10", "KZ"])
    wb.save(sub / "survey_2025.xlsx")
    # GeoJSON threats with one invalid (bow-tie) polygon and one unknown code
    bowtie = shapely.Polygon([(66, 47), (67, 48), (67, 47), (66, 48), (66, 47)])
    gpd.GeoDataFrame({"iucn_code": ["4.1", "Roads & railroads", "9.9.9"], "name": ["A-17 road", "rail", "x"],
                      "barrier_class": ["complete barrier", "", ""]},
                     geometry=[shapely.LineString([(66, 47.5), (67.5, 47.6)]), bowtie, shapely.Point(66.5, 47.5)],
                     crs="EPSG:4326").to_file(sub / "threats_roads.geojson", driver="GeoJSON")
    # GPKG range, projected CRS (UTM 42N), one bad presence code
    rng = gpd.GeoDataFrame({"presence": [1, 9], "origin": [1, 1], "seasonal": [1, 2]},
                           geometry=[shapely.box(65, 46, 68, 49), shapely.box(60, 44, 61, 45)], crs="EPSG:4326").to_crs("EPSG:32642")
    rng.to_file(sub / "range_2025.gpkg", layer="range", driver="GPKG")
    # population CSV
    (sub / "population.csv").write_text(
        "species,countryCode,year,estimate_min,estimate_best,estimate_max,unit,method,source,scope,trend\n"
        "Saiga tatarica,KAZ,2025,2500000,2800000,3000000,individuals,aerial survey,ACBK,national,increasing\n"
        "Saiga tatarica,KAZ,2025,900,800,1000,individuals,aerial,ACBK,subpopulation:Ustyurt,stable\n", encoding="utf-8")
    # a GeoTIFF and an unknown file
    import rasterio
    from rasterio.transform import from_origin

    with rasterio.open(sub / "footprint.tif", "w", driver="GTiff", width=64, height=32, count=1, dtype="uint8",
                       crs="EPSG:4326", transform=from_origin(60, 50, 0.1, 0.1)) as dst:
        dst.write(np.arange(64 * 32, dtype="uint16").reshape(1, 32, 64).astype("uint8"))
    (sub / "notes.docx").write_bytes(b"PK\x03\x04not really")
    return sub


@pytest.fixture(scope="module")
def outputs(submission, tmp_path_factory, settings):
    return _run(submission, tmp_path_factory.mktemp("out"), settings)


def test_occurrences_written_with_provenance(outputs):
    occ = gpd.read_parquet(outputs["occurrences"])
    assert list(occ.columns) == OCCURRENCE_COLUMNS + ["geometry"]
    assert occ.crs.to_epsg() == 4326
    ids = set(occ["record_id"])
    # CSV: title row 1, header row 2, first data row 3; row 4 swapped, row 5 duplicate of 3
    assert "kaz_saiga_2026/occurrences_ground.csv#3" in ids
    assert "kaz_saiga_2026/occurrences_ground.csv#4" not in ids
    assert "kaz_saiga_2026/occurrences_ground.csv#5" not in ids
    # XLSX: title row 1, header 2, data 3..5; row 5 is in the future
    assert {"kaz_saiga_2026/survey_2025.xlsx#3", "kaz_saiga_2026/survey_2025.xlsx#4"} <= ids
    assert "kaz_saiga_2026/survey_2025.xlsx#5" not in ids
    row = occ.set_index("record_id").loc["kaz_saiga_2026/occurrences_ground.csv#3"]
    assert row["species"] == "Saiga tatarica" and row["species_slug"] == "saiga_tatarica"
    assert row["verbatim_species"] == "сайгак"
    assert row["decimal_latitude"] == pytest.approx(48.1234) and row["decimal_longitude"] == pytest.approx(66.5678)
    assert row["event_date"] == "2025-04-05" and row["year"] == 2025 and row["individual_count"] == 12
    assert row["cycle"] == 2025 and row["sensitivity"] == "0.1deg" and bool(row["synthetic"]) is True
    assert row["iso3"] == "KAZ" and "country_filled" in row["flags"].split(";")
    assert occ.set_index("record_id").loc["kaz_saiga_2026/survey_2025.xlsx#4", "iso3"] == "UZB"
    assert occ.geometry.x.tolist() == pytest.approx(occ["decimal_longitude"].tolist())


def test_counts_add_up_and_problems_name_rows(outputs):
    summary = json.loads(Path(outputs["summary"]).read_text(encoding="utf-8"))
    assert summary["submission"] == "kaz_saiga_2026"
    assert summary["manifest"]["synthetic"] is True
    for f in summary["files"]:
        assert f["rows_in"] == f["accepted"] + f["rejected"], f
    assert summary["rows_in"] == summary["accepted"] + summary["rejected"]
    by_file = {f["file"]: f for f in summary["files"]}
    assert by_file["occurrences_ground.csv"]["rows_in"] == 4
    assert by_file["occurrences_ground.csv"]["rejected"] == 3   # swapped, duplicate, unknown species
    assert by_file["notes.docx"]["kind"] == "unknown"
    probs = pd.read_csv(outputs["problems"], dtype=str, keep_default_na=False)
    assert list(probs.columns) == PROBLEM_COLUMNS
    dup = probs[(probs["file"] == "occurrences_ground.csv") & (probs["row"] == "5")]
    assert "exact duplicate of row 3" in " ".join(dup["reason"])
    swapped = probs[(probs["file"] == "occurrences_ground.csv") & (probs["row"] == "4")]
    assert "swapped" in " ".join(swapped["reason"])
    assert ((probs["file"] == "notes.docx") & (probs["severity"] == "error")).any()
    future = probs[(probs["file"] == "survey_2025.xlsx") & (probs["row"] == "5")]
    assert "after today" in " ".join(future["reason"])


def test_threats_range_population_rasters(outputs):
    thr = gpd.read_parquet(outputs["threats"])
    assert list(thr.columns) == THREAT_COLUMNS + ["geometry"]
    assert sorted(thr["iucn_code"]) == ["4.1", "4.1"]          # name mapped to its code; 9.9.9 rejected
    repaired = thr[thr["source_row"] == 2].iloc[0]
    assert "geometry_repaired" in repaired["flags"] and repaired.geometry.is_valid
    assert thr[thr["source_row"] == 1].iloc[0]["barrier_class"] == "complete barrier"
    rng = gpd.read_parquet(outputs["range"])
    assert list(rng.columns) == RANGE_COLUMNS + ["geometry"]
    assert len(rng) == 1 and rng.iloc[0]["presence"] == 1
    # the UTM polygon came back to degrees
    assert rng.geometry.iloc[0].bounds == pytest.approx((65, 46, 68, 49), abs=1e-6)
    pop = pd.read_csv(outputs["population"])
    assert list(pop.columns) == POPULATION_COLUMNS
    assert len(pop) == 1 and pop.loc[0, "estimate_best"] == 2800000
    ras = pd.read_csv(outputs["rasters"])
    assert ras.loc[0, "name"] == "footprint" and ras.loc[0, "width"] == 64 and ras.loc[0, "height"] == 32
    import rasterio

    with rasterio.open(ras.loc[0, "path"]) as src:
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
    assert Path(ras.loc[0, "path"]).parent == Path(outputs["rasters"]).parent / "rasters"


def test_report_is_escaped_and_says_synthetic(outputs):
    html = Path(outputs["report"]).read_text(encoding="utf-8")
    assert "synthetic demo data" in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<svg" in html and "Exact duplicate of an earlier row" in html


def test_csv_outputs_neutralise_formulas(outputs):
    probs = pd.read_csv(outputs["problems"], dtype=str, keep_default_na=False)
    values = probs.loc[probs["field"] == "species", "value"].tolist()
    assert any(v.startswith("'=HYPERLINK") for v in values)
    assert not any(v.startswith(("=", "+", "-", "@")) for col in probs.columns for v in probs[col])


def test_empty_submission_still_writes_every_output(tmp_path, settings):
    sub = tmp_path / "empty_sub"
    sub.mkdir()
    (sub / "submission.yaml").write_text("species: Uncia uncia\n", encoding="utf-8")
    out = _run(sub, tmp_path / "out", settings)
    for key, cols in (("occurrences", OCCURRENCE_COLUMNS), ("threats", THREAT_COLUMNS), ("range", RANGE_COLUMNS)):
        gdf = gpd.read_parquet(out[key])
        assert list(gdf.columns) == cols + ["geometry"] and len(gdf) == 0
    assert list(pd.read_csv(out["population"]).columns) == POPULATION_COLUMNS
    assert json.loads(Path(out["summary"]).read_text())["rows_in"] == 0


def _ctx_and_manifest(settings, species=None):
    from cami_geo.boundaries import load_boundaries
    from cami_geo.intake import make_context
    from cami_geo.io.manifest import Manifest

    m = Manifest(submission="s")
    return make_context(settings, load_boundaries(BOUNDARIES, layer="countries"), m, species=species), m


def _validate(path, settings, kind=None, species=None):
    from cami_geo.intake import file_kind, validate_file

    ctx, m = _ctx_and_manifest(settings, species)
    k, spec = file_kind(path, path.name, m, forced=kind)
    return validate_file(path, file=path.name, kind=k, spec=spec, manifest=m, ctx=ctx, cycle=2026)


def test_gbif_simple_download_by_content(tmp_path, settings):
    cols = ["gbifID", "species", "scientificName", "decimalLatitude", "decimalLongitude", "countryCode", "eventDate",
            "individualCount", "issue"]
    rows = [["1", "Saiga tatarica", "Saiga tatarica (Pallas, 1771)", "48.1234", "66.5678", "KZ", "2020-05-01T00:00:00", "", "X;Y"],
            ["2", "Saiga tatarica", "Saiga tatarica (Pallas, 1771)", "66.5678", "48.1234", "KZ", "2020-05-01", "3", ""]]
    p = tmp_path / "0009886-250127130748423.csv"
    p.write_text("\n".join("\t".join(r) for r in [cols] + rows) + "\n", encoding="utf-8")
    res = _validate(p, settings)
    assert res.kind == "occurrences" and (res.rows_in, res.accepted, res.rejected) == (2, 1, 1)
    assert res.records["occurrences"].loc[0, "event_date"] == "2020-05-01"


def test_dwca_and_smart_end_to_end(tmp_path, settings):
    import zipfile

    meta = ('<archive xmlns="http://rs.tdwg.org/dwc/text/"><core fieldsTerminatedBy="\\t" ignoreHeaderLines="1" '
            'fieldsEnclosedBy=""><files><location>occurrence.txt</location></files><id index="0"/>'
            '<field index="1" term="http://rs.tdwg.org/dwc/terms/scientificName"/>'
            '<field index="2" term="http://rs.tdwg.org/dwc/terms/decimalLatitude"/>'
            '<field index="3" term="http://rs.tdwg.org/dwc/terms/decimalLongitude"/>'
            '<field index="4" term="http://rs.tdwg.org/dwc/terms/eventDate"/></core></archive>')
    z = tmp_path / "gbif_download.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("meta.xml", meta)
        zf.writestr("occurrence.txt", "id\ta\tb\tc\td\n1\tUncia uncia\t42.51234\t77.25123\t2024-03-01\n"
                                      "2\tUncia uncia\t\t77.25\t2024-03-01\n")
    res = _validate(z, settings)
    assert (res.kind, res.rows_in, res.accepted, res.rejected) == ("occurrences", 2, 1, 1)
    assert res.records["occurrences"].loc[0, "species_slug"] == "panthera_uncia"
    assert res.records["occurrences"].loc[0, "source_row"] == 2
    smart = tmp_path / "patrol_export.csv"
    smart.write_text(
        "Patrol ID,Leader,Team,Waypoint ID,Waypoint Date,Waypoint Time,X,Y,Observation Category 0,Species,Number of Animals\n"
        "P1,Ivan Petrov,Team A,1,\"Jan 5, 2017\",3:04:05 PM,77.25123,42.51234,Wildlife,Uncia uncia,2\n"
        "P1,Ivan Petrov,Team A,2,\"Jan 5, 2017\",4:04:05 PM,77.26123,42.52234,Human Activity - Poaching snare,,\n"
        "P1,Ivan Petrov,Team A,3,\"Jan 5, 2017\",5:04:05 PM,77.27123,42.53234,Patrol position,,\n", encoding="utf-8")
    res = _validate(smart, settings)
    assert res.kind == "smart" and (res.rows_in, res.accepted, res.rejected) == (3, 2, 1)
    occ, thr = res.records["occurrences"], res.records["threats"]
    assert occ.loc[0, "event_date"] == "2017-01-05" and occ.loc[0, "individual_count"] == 2
    assert thr.loc[0, "iucn_code"] == "5.1.1" and thr.loc[0, "source_row"] == 3
    assert "Ivan Petrov" not in occ.to_csv() + thr.to_csv() and occ.loc[0, "recorded_by"] == ""


def test_large_csv_fast_path_keeps_rows_and_numbers(tmp_path, settings):
    n = 30000   # > 1 MB: read through pyarrow
    lat = 45 + (np.arange(n) % 500) / 1000 + np.arange(n) / 1e7
    p = tmp_path / "occurrences_big.csv"
    body = "\n".join(f"Saiga tatarica,{a:.7f},66.5678,2025-04-05,KZ" for a in lat)
    p.write_text("scientificName,decimalLatitude,decimalLongitude,eventDate,countryCode\n" + body + "\n", encoding="utf-8")
    assert p.stat().st_size > 1_000_000
    res = _validate(p, settings)
    assert res.rows_in == n and res.accepted == n
    occ = res.records["occurrences"]
    assert occ["source_row"].tolist() == list(range(2, n + 2))
    assert occ["decimal_latitude"].to_numpy() == pytest.approx(np.round(lat, 7))


def test_threats_and_range_from_wkt_csv(tmp_path, settings):
    p = tmp_path / "threats_qgis.csv"
    p.write_text('iucn_code,name,WKT\n4.1,road,"LINESTRING (66 47.5, 67.5 47.6)"\n4.2,line,"LINESTRING (66 47"\n'
                 '3.2,mine,\n', encoding="utf-8")
    res = _validate(p, settings)
    assert (res.rows_in, res.accepted, res.rejected) == (3, 1, 2)
    thr = res.records["threats"]
    assert thr.geometry.iloc[0].geom_type == "LineString" and thr.loc[0, "iso3"] == "KAZ"
    codes = dict(zip(res.problems["row"], res.problems["code"]))
    assert codes[3] == "geometry_invalid" and codes[4] == "geometry_missing"
    r = tmp_path / "range_saiga.csv"
    r.write_text('species,presence,origin,seasonal,geometry\nSaiga tatarica,1,1,1,"POLYGON ((65 46, 68 46, 68 49, 65 49, 65 46))"\n',
                 encoding="utf-8")
    res = _validate(r, settings)
    assert res.accepted == 1 and res.records["range"].geometry.iloc[0].area == pytest.approx(9.0)


def test_geopackage_with_two_layers_says_which_was_read(tmp_path, settings):
    p = tmp_path / "threats_two.gpkg"
    g = gpd.GeoDataFrame({"iucn_code": ["4.1"]}, geometry=[shapely.LineString([(66, 47.5), (67.5, 47.6)])], crs=4326)
    g.to_file(p, layer="roads", driver="GPKG")
    g.to_file(p, layer="rail", driver="GPKG")
    res = _validate(p, settings)
    assert res.accepted == 1
    other = res.problems[res.problems["code"] == "file_other_layers"]
    assert len(other) == 1 and other["severity"].iloc[0] == "warning" and "rail" in other["reason"].iloc[0]


DEMO_EXPECTED = {
    # data/raw/README.md "Deliberately bad rows": row -> 'E' (rejected) or 'W' (kept, flagged)
    "saiga_kaz_2026": {87: "E", 174: "E", 260: "E", 346: "E", 432: "E", 518: "E", 604: "E", 690: "E", 776: "E",
                       862: "W", 948: "W", 111: "E"},
    "saiga_mng_rus_2026": {73: "E", 146: "E", 218: "E", 290: "W", 362: "E", 88: "E"},
    "snow_leopard_kgz_2026": {47: "E", 93: "E", 138: "E", 183: "E", 228: "E", 273: "W", 318: "W", 72: "E"},
    "kulan_mng_2026": {113: "E", 227: "E", 340: "E", 453: "W", 566: "E", 679: "E", 792: "W", 210: "E"},
    "mongolian_gazelle_mng_2026": {101: "E", 202: "E", 303: "W", 405: "E", 506: "E", 607: "W", 312: "E"},
    "wild_camel_mng_chn_2026": {52: "E", 104: "E", 155: "E", 206: "E", 257: "E", 101: "E"},
}


@pytest.mark.parametrize("sub", sorted(DEMO_EXPECTED))
def test_demo_submissions_flag_exactly_the_documented_bad_rows(sub, settings):
    from datetime import date

    from cami_geo.boundaries import load_boundaries
    from cami_geo.intake import validate_submission

    folder = REPO / "data/raw/submissions" / sub
    if not folder.exists():
        pytest.skip("demo data not present")
    res = validate_submission(folder, settings=settings, boundaries=load_boundaries(BOUNDARIES, layer="countries"),
                              today=date(2026, 11, 26), keep_records=False)
    p = res.problems()
    occ = p[p["file"].str.startswith(("occurrences", "survey"))]
    errors = set(occ.loc[occ["severity"] == "error", "row"].astype(int))
    warned = set(occ.loc[occ["severity"] == "warning", "row"].astype(int))
    exp = DEMO_EXPECTED[sub]
    assert errors == {r for r, e in exp.items() if e == "E"}
    assert {r for r, e in exp.items() if e == "W"} <= warned - errors
    for f in res.files:
        assert f.rows_in == f.accepted + f.rejected


def test_zipped_geojson_and_zipped_csv(tmp_path, settings):
    import zipfile

    g = tmp_path / "pts.geojson"
    gpd.GeoDataFrame({"species": ["Saiga tatarica"], "eventDate": ["2025-01-01"]},
                     geometry=[shapely.Point(66.5678, 48.1234)], crs=4326).to_file(g, driver="GeoJSON")
    z = tmp_path / "occurrences_zipped.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.write(g, "inner/pts.geojson")
    res = _validate(z, settings)
    assert (res.rows_in, res.accepted) == (1, 1), res.problems
    z2 = tmp_path / "occurrences_csv.zip"
    with zipfile.ZipFile(z2, "w") as zf:
        zf.writestr("data.csv", "species,lat,lon\nSaiga tatarica,48.1234,66.5678\nSaiga tatarica,,\n")
    res = _validate(z2, settings)
    assert (res.rows_in, res.accepted, res.rejected) == (2, 1, 1)
    assert res.records["occurrences"].loc[0, "source_file"] == "occurrences_csv.zip"


def test_digest_is_checked_by_sha256sum(tmp_path):
    """The intake digest that stands for its outputs in combine's inputs: `sha256sum -c`
    accepts it, and it fails once a named file changes."""
    import subprocess

    from cami_geo.workflow import write_digest

    a, b = tmp_path / "occurrences.parquet", tmp_path / "problems.csv"
    a.write_bytes(b"\x00parquet bytes")
    b.write_text("file,row\n", encoding="utf-8")
    (tmp_path / "rasters").mkdir()
    (tmp_path / "rasters" / "hf.tif").write_bytes(b"II*\x00")
    write_digest(tmp_path / "outputs.sha256", [str(a), str(b), str(tmp_path / "rasters" / "hf.tif")])
    lines = (tmp_path / "outputs.sha256").read_text(encoding="utf-8").splitlines()
    assert [ln.split("  ")[1] for ln in lines] == ["occurrences.parquet", "problems.csv", "rasters/hf.tif"]
    ok = subprocess.run(["sha256sum", "-c", "outputs.sha256"], cwd=tmp_path, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    b.write_text("file,row\n1,2\n", encoding="utf-8")
    assert subprocess.run(["sha256sum", "-c", "outputs.sha256"], cwd=tmp_path, capture_output=True).returncode == 1
