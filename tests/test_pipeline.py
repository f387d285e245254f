"""A real Snakemake run of the whole pipeline on a small configuration in a temporary folder.

The demo submissions are copied into ``tmp/data/raw``; the run is limited to two species
(saiga and snow leopard) so it stays quick. The outputs must exist and parse, the rerun must
find nothing to do, and changing one submission must re-run only what depends on it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest

pytestmark = pytest.mark.pipeline

SPECIES = ["saiga_tatarica", "panthera_uncia"]


def _snakemake(repo: Path, workdir: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "-d", str(workdir), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def run(repo, tmp_path_factory):
    work = tmp_path_factory.mktemp("pipeline")
    shutil.copytree(repo / "data" / "raw" / "submissions", work / "data" / "raw" / "submissions")
    if (repo / "data" / "raw" / "previous_cycle").exists():
        shutil.copytree(repo / "data" / "raw" / "previous_cycle", work / "data" / "raw" / "previous_cycle")
    (work / "config").mkdir()
    (work / "config" / "config.yaml").write_text(
        "species: [" + ", ".join(SPECIES) + "]\n", encoding="utf-8")
    proc = _snakemake(repo, work, "--cores", "2")
    assert proc.returncode == 0, proc.stderr[-4000:]
    return work, proc


def test_status_tables(run, registry):
    work, _ = run
    by_country = pd.read_csv(work / "data/processed/status_by_country.csv")
    expected = {(sp, iso) for sp in SPECIES for iso in registry.species[sp].range_states}
    assert set(zip(by_country.species_slug, by_country.iso3)) == expected
    for col in ["species", "iso3", "n_records", "n_absences", "first_year", "last_year", "population_best",
                "population_min", "population_max", "population_year", "population_unit", "population_method",
                "population_source", "trend", "trend_method", "eoo_km2", "aoo_km2", "range_area_km2",
                "range_share", "n_threats", "data_gap"]:
        assert col in by_country.columns, col
    by_species = pd.read_csv(work / "data/processed/status_by_species.csv")
    assert sorted(by_species.species_slug) == sorted(SPECIES)
    saiga = by_country[(by_country.species_slug == "saiga_tatarica") & (by_country.iso3 == "KAZ")].iloc[0]
    assert saiga.n_records > 0 and saiga.population_best > 0


def test_nothing_lost_and_rejections_named(run):
    work, _ = run
    rejected = pd.read_csv(work / "data/processed/rejected.csv")
    assert {"file", "row", "field", "reason"} <= set(rejected.columns)
    assert len(rejected) > 0 and rejected.reason.notna().all()
    total_in = total_acc = total_rej = 0
    for summary in (work / "data/processed/submissions").glob("*/validation.json"):
        s = json.loads(summary.read_text())
        total_in += s["rows_in"]
        total_acc += s["accepted"]
        total_rej += s["rejected"]
    assert total_in == total_acc + total_rej
    assert total_rej == rejected[["submission", "file", "row"]].drop_duplicates().shape[0]


def test_public_copy_is_generalised(run):
    work, _ = run
    occ = gpd.read_file(work / "data/processed/public/species/panthera_uncia.gpkg", layer="occurrences")
    pts = occ[occ.geometry.notna() & ~occ.geometry.is_empty]
    assert len(pts) > 0
    # snow leopard default: 0.1 degree grid, cell centres (x.x5)
    frac = (pts.geometry.x * 10) % 1
    assert ((frac - 0.5).abs() < 1e-6).all()


def test_maps_and_reports_exist_and_parse(run):
    work, _ = run
    from docx import Document
    from PIL import Image

    for sp in SPECIES:
        html = (work / f"maps/species/{sp}.html").read_text(encoding="utf-8")
        assert "leaflet" in html.lower() and re.search(r"synthetic", html, re.I)
        assert not re.search(r"<script[^>]+src=\"https?://", html)
        with Image.open(work / f"maps/species/{sp}.png") as img:
            assert img.size[0] > 500
        doc = Document(str(work / f"reports/species/{sp}.docx"))
        assert doc.tables
        assert (work / f"reports/species/{sp}.pdf").read_bytes()[:5] == b"%PDF-"
        Document(str(work / f"reports/forms/{sp}_status_form.docx"))
    assert (work / "maps/overview.html").exists()
    assert (work / "reports/country/KAZ.pdf").read_bytes()[:5] == b"%PDF-"


def test_restricted_gis_layers(run):
    """Per species: ranges and AOO cells as GeoPackage, the AOO grid and threat density as COG."""
    import numpy as np
    import pyogrio
    import rasterio

    work, _ = run
    by_species = pd.read_csv(work / "data/processed/status_by_species.csv").set_index("species_slug")
    layers = work / "data/processed/restricted/layers"
    for sp in SPECIES:
        names = {name for name, _ in pyogrio.list_layers(layers / f"{sp}.gpkg")}
        assert {"range", "aoo_cells", "summary_by_country"} <= names
        with rasterio.open(layers / f"{sp}_aoo.tif") as src:
            assert not src.crs.is_geographic
            occupied = int((src.read(1) == 1).sum())
        assert occupied * 4 == pytest.approx(by_species.loc[sp, "aoo_km2"])
        with rasterio.open(layers / f"{sp}_threat_density.tif") as src:
            assert src.count >= 1 and np.isfinite(src.read(1)).any()


def test_snakemake_report_lists_maps_and_tables(run, repo):
    """`snakemake --report` builds Snakemake's own report with the maps and tables captioned."""
    work, _ = run
    out = work / "report.html"
    proc = _snakemake(repo, work, "--report", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    html = out.read_text(encoding="utf-8", errors="replace")
    for name in ("status_by_country.csv", "status_by_species.csv", "saiga_tatarica.html", "KAZ.html"):
        assert name in html, name
    assert "Range-wide status per species" in html  # a caption from workflow/report/


def test_rerun_has_nothing_to_do(run, repo):
    work, _ = run
    proc = _snakemake(repo, work, "-n", "--cores", "1")
    assert proc.returncode == 0
    assert "Nothing to be done" in proc.stdout + proc.stderr


def _jobs_to_run(out: str) -> dict[str, int]:
    """Rule -> job count from a dry run's "Job stats" table."""
    table = out.split("Job stats:", 1)[1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m.group(1) != "total"}


@pytest.mark.parametrize("edit, rules", [
    # the maps' disclaimer: only what draws or embeds a map
    ("maps:\n  disclaimer: Another disclaimer.\n",
     {"map_species", "map_country", "map_overview", "report_species", "report_country", "all"}),
    # a status threshold: the status jobs and what is drawn from them, not the intake
    ("status:\n  trend_years: 12\n",
     {"status_species", "status_tables", "map_species", "map_country", "map_overview", "report_species",
      "report_country", "all"}),
    # how jobs are run locally: nothing
    ("stage_worker: false\n", set()),
])
def test_a_config_edit_reruns_only_the_rules_that_read_it(run, repo, tmp_path, edit, rules):
    """Each rule's params hold only the config sections its stage reads (workflow.STAGE_SETTINGS),
    so Snakemake (which re-runs a job whose params changed) re-runs only those rules."""
    work, _ = run
    configfile = tmp_path / "edit.yaml"
    configfile.write_text(edit, encoding="utf-8")
    proc = _snakemake(repo, work, "-n", "--cores", "1", "--configfile", str(configfile))
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = proc.stdout + proc.stderr
    if not rules:
        assert "Nothing to be done" in out
    else:
        assert set(_jobs_to_run(out)) == rules


def _drop_saiga_rows(work: Path, n: int) -> None:
    """The saiga submission (MNG, RUS) loses its last ``n`` occurrence rows."""
    csv = next((work / "data/raw/submissions/saiga_mng_rus_2026").glob("occurrences*.csv"))
    lines = csv.read_bytes().splitlines(keepends=True)
    csv.write_bytes(b"".join(lines[:-n]))


def test_changing_one_submission_reruns_only_what_depends_on_it(run, repo):
    """A real re-run after one saiga submission lost rows: the snow leopard's status, maps and
    documents must not re-run (combine, public and status_tables are checkpoints; unchanged
    partitions and slices have the same checksums), the saiga's must, with the new count."""
    work, _ = run
    processed = work / "data/processed"
    before = pd.read_csv(processed / "status_by_species.csv").set_index("species_slug")
    untouched = [work / "maps/species/panthera_uncia.html", work / "reports/species/panthera_uncia.pdf",
                 processed / "status/panthera_uncia/species.csv", processed / "restricted/layers/panthera_uncia.gpkg"]
    stamps = {p: p.stat().st_mtime_ns for p in untouched}
    _drop_saiga_rows(work, 5)
    proc = _snakemake(repo, work, "--cores", "2")
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = proc.stdout + proc.stderr
    assert re.findall(r"Reading and checking submission (\S+)", out) == ["saiga_mng_rus_2026"]
    assert re.findall(r"Computing the status of (\S+)", out) == ["saiga_tatarica"]
    assert re.findall(r"Drawing the maps of (\S+)\n", out) == ["saiga_tatarica"]
    assert re.findall(r"Writing the documents of (\S+)", out) == ["saiga_tatarica"]
    # the saiga's Range State maps re-ran where its slice changed, others did not
    countries = set(re.findall(r"Drawing the maps of Range State (\S+)", out))
    assert countries and countries <= {"MNG", "RUS", "KAZ", "UZB", "TKM", "CHN"}, countries
    assert {p: p.stat().st_mtime_ns for p in untouched} == stamps
    after = pd.read_csv(processed / "status_by_species.csv").set_index("species_slug")
    assert after.loc["saiga_tatarica", "n_records"] < before.loc["saiga_tatarica", "n_records"]
    assert after.loc["panthera_uncia", "n_records"] == before.loc["panthera_uncia", "n_records"]
    # and the next run has nothing to do
    proc = _snakemake(repo, work, "-n", "--cores", "1")
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_only_the_changed_species_documents_rerun_when_the_status_tables_end_first(run, repo):
    """The same change, with the status tables finishing before the public copy (one core,
    the tables prioritised): the documents of unchanged species must still not re-run, although
    Snakemake marked them while the maps were pending (see workflow/rules/reports.smk)."""
    work, _ = run
    untouched = [work / "reports/species/panthera_uncia.pdf", work / "reports/country/KGZ.pdf"]
    stamps = {p: p.stat().st_mtime_ns for p in untouched}
    _drop_saiga_rows(work, 3)
    proc = _snakemake(repo, work, "--cores", "1", "--prioritize", "data/processed/status_by_species.csv")
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = proc.stdout + proc.stderr
    finished = re.findall(r"Finished jobid: \d+ \(Rule: (status_tables|public)\)", out)
    assert finished == ["status_tables", "public"], finished  # the order this test is about
    assert re.findall(r"Writing the documents of (\S+)", out) == ["saiga_tatarica"]
    assert {p: p.stat().st_mtime_ns for p in untouched} == stamps
