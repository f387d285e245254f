"""Technical documents read back as a reader would: python-docx for DOCX, pdftotext and
pdftoppm for PDF, the HTML as text. Figures must equal those in the status tables."""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

matplotlib = pytest.importorskip("matplotlib")
docx = pytest.importorskip("docx")

from cami_geo.errors import InputError  # noqa: E402
from cami_geo.render import reports  # noqa: E402
from cami_geo.render.reports import (TO_COMPLETE, format_estimate, format_number,  # noqa: E402
                                     run_report_country_stage, run_report_species_stage)

PAYLOAD = "<script>alert('x')</script>"
CYCLE = 2026

BY_COUNTRY = [
    dict(species="Panthera uncia", species_slug="panthera_uncia", iso3="KGZ", country="Kyrgyzstan", cycle=CYCLE,
         n_records=40, n_absences=2, first_year=2018, last_year=2025, population_best=285, population_min=250,
         population_max=320, population_year=2022, population_unit="individuals",
         population_method=f"camera traps {PAYLOAD}", population_source=f"Sarybaev et al. 2022 {PAYLOAD}",
         population_scope="national", population_note="conflicting estimate 511 (2016) kept in the appendix",
         trend="stable", trend_method="reported", eoo_km2=12345.678, aoo_km2=412.0, range_area_km2=98000.4,
         range_share=0.031, n_threats=15, main_threats="5.1.1 Intentional use; 4.1 Roads & railroads",
         data_gap="False", years_since_estimate=4, synthetic_records=40,
         population_best_prev=250, population_best_change=35),
    dict(species="Panthera uncia", species_slug="panthera_uncia", iso3="KAZ", country="Kazakhstan", cycle=CYCLE,
         n_records=12, n_absences=0, first_year=2020, last_year=2024, population_best=120, population_min=100,
         population_max=150, population_year=2020, population_unit="individuals", population_method="expert opinion",
         population_source="WWF Kazakhstan 2020", population_scope="national", population_note="", trend="unknown",
         trend_method="", eoo_km2=5421.2, aoo_km2=48, range_area_km2=40000, range_share=0.01, n_threats=1,
         main_threats="2.3 Livestock farming & ranching", data_gap="False", years_since_estimate=6,
         synthetic_records=0, population_best_prev="", population_best_change=""),
    dict(species="Panthera uncia", species_slug="panthera_uncia", iso3="MNG", country="Mongolia", cycle=CYCLE,
         n_records=48, n_absences=0, first_year=2019, last_year=2025, population_best=1000, population_min=800,
         population_max=1200, population_year=2021, population_unit="individuals", population_method="SLIMS survey (ирвэс, 雪豹)",
         population_source="Mongolia snow leopard population assessment 2021", population_scope="national",
         population_note="", trend="increasing", trend_method="log-linear fit", eoo_km2=250123.4, aoo_km2=776,
         range_area_km2=101000, range_share=0.05, n_threats=0, main_threats="", data_gap="False",
         years_since_estimate=5, synthetic_records=0, population_best_prev=950, population_best_change=50),
    dict(species="Panthera uncia", species_slug="panthera_uncia", iso3="CHN", country="China", cycle=CYCLE,
         n_records=0, n_absences=0, first_year="", last_year="", population_best="", population_min="",
         population_max="", population_year="", population_unit="", population_method="", population_source="",
         population_scope="", population_note="", trend="", trend_method="", eoo_km2="", aoo_km2="",
         range_area_km2=1000000, range_share=0.6, n_threats=0, main_threats="", data_gap="True",
         years_since_estimate="", synthetic_records=0, population_best_prev="", population_best_change=""),
    dict(species="Saiga tatarica", species_slug="saiga_tatarica", iso3="KAZ", country="Kazakhstan", cycle=CYCLE,
         n_records=300, n_absences=0, first_year=2021, last_year=2025, population_best=1284000,
         population_min=1200000, population_max=1350000, population_year=2023, population_unit="individuals",
         population_method="aerial survey", population_source="ACBK / Okhotzooprom 2023", population_scope="national",
         population_note="", trend="increasing", trend_method="reported", eoo_km2=640000.2, aoo_km2=1200,
         range_area_km2=700000, range_share=0.8, n_threats=4, main_threats="4.1 Roads & railroads",
         data_gap="False", years_since_estimate=3, synthetic_records=0, population_best_prev="",
         population_best_change=""),
]

BY_SPECIES = [
    dict(species="Panthera uncia", species_slug="panthera_uncia", common_name="Snow leopard", cms_appendix="I",
         iucn_category="VU", cycle=CYCLE, n_range_states=12, n_range_states_with_data=3, population_best=1405,
         population_min=1150, population_max=1670, population_unit="individuals",
         population_note="sum of 3 national estimates", trend="stable", eoo_km2=2500000.5, aoo_km2=1236,
         aoo_km2_median=1248, aoo_km2_max=1262, eoo_flag="", n_locations=31, n_subpopulations=7, category_b="LC",
         category_b_note="EOO and AOO above the VU thresholds", n_records=100, n_threats=16, synthetic_records=40),
    dict(species="Saiga tatarica", species_slug="saiga_tatarica", common_name="Saiga antelope", cms_appendix="II",
         iucn_category="NT", cycle=CYCLE, n_range_states=5, n_range_states_with_data=1, population_best=1284000,
         population_min=1200000, population_max=1350000, population_unit="individuals", population_note="",
         trend="increasing", eoo_km2=640000.2, aoo_km2=1200, aoo_km2_median=1204, aoo_km2_max=1216, eoo_flag="",
         n_locations=40, n_subpopulations=3, category_b="LC", category_b_note="", n_records=300, n_threats=4,
         synthetic_records=0),
]

POP_HEADER = ["record_id", "submission", "source_file", "source_row", "cycle", "contributor", "licence",
              "synthetic", "flags", "species", "species_slug", "iso3", "year", "estimate_min", "estimate_best",
              "estimate_max", "unit", "method", "source", "scope", "trend", "notes"]


def _pop(rid, sub, row, slug, iso3, year, lo, best, hi, scope="national", source="survey", method="survey"):
    species = {"panthera_uncia": "Panthera uncia", "saiga_tatarica": "Saiga tatarica"}[slug]
    return dict(record_id=rid, submission=sub, source_file="population.csv", source_row=row, cycle=CYCLE,
                contributor="A. Name", licence="CC-BY-4.0", synthetic=str(sub == "s1_snow"), flags="",
                species=species, species_slug=slug, iso3=iso3, year=year, estimate_min=lo, estimate_best=best,
                estimate_max=hi, unit="individuals", method=method, source=source, scope=scope, trend="", notes="")


POPULATION = [
    _pop("p1", "s1_snow", 2, "panthera_uncia", "KGZ", 2022, 250, 285, 320, source=f"Sarybaev et al. 2022 {PAYLOAD}"),
    _pop("p2", "s1_snow", 3, "panthera_uncia", "KGZ", 2016, "", 511, "", source="Conflicting survey 2016"),
    _pop("p3", "s1_snow", 4, "panthera_uncia", "KGZ", 2021, 20, 30, 40, scope="subpopulation:Sarychat"),
    _pop("p4", "s1_snow", 5, "panthera_uncia", "KAZ", 2020, 100, 120, 150, source="WWF Kazakhstan 2020"),
    _pop("p5", "s1_snow", 6, "panthera_uncia", "KAZ", 2015, 80, 100, 130),
    _pop("p6", "s1_snow", 7, "panthera_uncia", "MNG", 2021, 800, 1000, 1200),
    _pop("p7", "s2_saiga", 2, "saiga_tatarica", "KAZ", 2023, 1200000, 1284000, 1350000,
         source="ACBK / Okhotzooprom 2023"),
    _pop("p8", "s2_saiga", 3, "saiga_tatarica", "KAZ", 2019, 300000, 334000, 360000),
]

THREATS = [
    dict(species="Panthera uncia", species_slug="panthera_uncia", iso3="KGZ", iucn_code="5.1.1",
         iucn_name="Intentional use (species is the target)", n_features=12, length_km="", area_km2="",
         n_complete_barriers=0),
    dict(species="Panthera uncia", species_slug="panthera_uncia", iso3="KGZ", iucn_code="4.1",
         iucn_name="Roads & railroads", n_features=3, length_km=45.67, area_km2="", n_complete_barriers=1),
]

ACTIONS = [
    dict(species="Panthera uncia", species_slug="panthera_uncia", iso3="CHN", rule="records_but_no_estimate",
         flag="No population estimate this cycle", figures="n_records=0"),
]

SUBMISSIONS = [
    dict(submission="s1_snow", contributor=f"A. Name (Org) {PAYLOAD}", submitted="2026-05-01", licence="CC-BY-4.0",
         cycle=CYCLE, sensitivity="0.1deg", synthetic="True", species="Panthera uncia", range_states="KGZ;KAZ;MNG",
         rows_in=110, accepted=100, rejected=10, files="occurrences.csv;population.csv"),
    dict(submission="s2_saiga", contributor="B. Person (ACBK) `${document.cookie}`", submitted="2026-04-02", licence="CC-BY-4.0",
         cycle=CYCLE, sensitivity="0.1deg", synthetic="False", species="Saiga tatarica", range_states="KAZ",
         rows_in=302, accepted=302, rejected=0, files="population.csv"),
]


def _write(path: Path, rows: list[dict], header: list[str] | None = None) -> str:
    header = header or list(rows[0])
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=header)
        w.writeheader()
        w.writerows(rows)
    return str(path)


def _png(path: Path) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3), dpi=60)
    ax.fill([70, 80, 90, 75], [40, 45, 38, 35], color="#c97")
    ax.set_title("test map")
    fig.savefig(path)
    plt.close(fig)
    return str(path)


def make_inputs(root: Path, *, by_country: list[dict] | None = None) -> dict[str, str]:
    root.mkdir(parents=True, exist_ok=True)
    maps = root / "maps"
    maps.mkdir(exist_ok=True)
    (maps / "map.html").write_text("<html><body><div id='m'></div><script>var m = L.map('m');</script>"
                                   "</body></html>", encoding="utf-8")
    return {
        "by_country": _write(root / "status_by_country.csv", by_country or BY_COUNTRY),
        "by_species": _write(root / "status_by_species.csv", BY_SPECIES),
        "threats": _write(root / "threats_summary.csv", THREATS),
        "actions": _write(root / "action_needs.csv", ACTIONS),
        "population": _write(root / "population.csv", POPULATION, POP_HEADER),
        "submissions": _write(root / "submissions.csv", SUBMISSIONS),
        "map_png": _png(maps / "map.png"),
        "map_html": str(maps / "map.html"),
    }


def species_outputs(root: Path, slug: str) -> dict[str, str]:
    return {"html": str(root / "reports/species" / f"{slug}.html"),
            "docx": str(root / "reports/species" / f"{slug}.docx"),
            "pdf": str(root / "reports/species" / f"{slug}.pdf"),
            "form": str(root / "reports/forms" / f"{slug}_status_form.docx"),
            "article_html": str(root / "reports/articles" / f"{slug}.html"),
            "article_md": str(root / "reports/articles" / f"{slug}.md")}


def country_outputs(root: Path, iso3: str) -> dict[str, str]:
    return {k: str(root / "reports/country" / f"{iso3}.{k}") for k in ("html", "docx", "pdf")}


PARAMS = {"version": "0.test", "settings": {"cycle": CYCLE, "previous_cycle": 2023, "registry": {},
                                            "maps": {"attribution": "Boundaries: Natural Earth.",
                                                     "disclaimer": "The designations employed ..."}}}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("reports")
    inputs = make_inputs(root / "in")
    sp_out = species_outputs(root, "panthera_uncia")
    run_report_species_stage(inputs, sp_out, PARAMS)
    c_out = country_outputs(root, "KAZ")
    country_inputs = dict(inputs)
    run_report_country_stage(country_inputs, c_out, PARAMS)
    return {"root": root, "inputs": inputs, "species": sp_out, "country": c_out}


def _rows(slug=None, iso3=None):
    return [r for r in BY_COUNTRY if (slug is None or r["species_slug"] == slug) and (iso3 is None or r["iso3"] == iso3)]


def _num(text: str) -> float:
    return float(text.replace(",", ""))


def _pdftext(path: str) -> str:
    out = subprocess.run(["pdftotext", "-layout", path, "-"], capture_output=True, text=True, check=True).stdout
    return " ".join(out.split())


needs_poppler = pytest.mark.skipif(not shutil.which("pdftotext") or not shutil.which("pdftoppm"),
                                   reason="poppler-utils not installed")


def _table_with_header(document, first: str):
    for t in document.tables:
        if t.rows and t.rows[0].cells[0].text.strip() == first:
            yield t


# -- unit ---------------------------------------------------------------------------------
def test_number_format():
    assert format_number("12000.0") == "12,000"
    assert format_number(12345.678) == "12,346"
    assert format_number("0.031") == "0.03"
    assert format_number("") == ""
    assert format_number("n/a") == "n/a"
    assert format_estimate(285, 250, 320, "individuals") == "285 (250–320) individuals"
    assert format_estimate("", "", "", "individuals") == ""


def test_md_escape_neutralises_html_and_markdown():
    out = reports.md_escape("[x](javascript:alert(1)) <b>*bold*</b>")
    assert "<b>" not in out and not re.search(r"(?<!\\)\]\(", out) and "\\*bold\\*" in out


# -- species report -----------------------------------------------------------------------
def test_species_outputs_written(built):
    for path in built["species"].values():
        assert Path(path).stat().st_size > 500, path


def test_species_docx_table_equals_status_csv(built):
    d = docx.Document(built["species"]["docx"])
    tables = list(_table_with_header(d, "Range State"))
    assert tables, "no Range State table in the DOCX"
    t = tables[0]
    header = [c.text for c in t.rows[0].cells]
    body = {r.cells[0].text.strip(): [c.paragraphs[0].text for c in r.cells] for r in t.rows[1:]}
    from cami_geo.registry import default_registry

    states = default_registry().species["panthera_uncia"].range_states
    assert len(body) == len(states)
    for iso3 in states:
        assert any(label.endswith(f"({iso3})") for label in body), iso3
    col = {h: i for i, h in enumerate(header)}
    for row in _rows("panthera_uncia"):
        cells = next(v for k, v in body.items() if k.endswith(f"({row['iso3']})"))
        assert cells[col["Population estimate"]] == format_estimate(
            row["population_best"], row["population_min"], row["population_max"], row["population_unit"])
        if row["population_best"] != "":
            assert _num(cells[col["Population estimate"]].split(" ")[0]) == row["population_best"]
            assert cells[col["Year"]] == str(row["population_year"])
            assert cells[col["Source"]] == row["population_source"]
        if row["eoo_km2"] != "":
            assert abs(_num(cells[col["EOO km²"]]) - row["eoo_km2"]) <= 0.5
            assert abs(_num(cells[col["AOO km²"]]) - row["aoo_km2"]) <= 0.5
        assert cells[col["Data gap"]] == ("yes" if row["data_gap"] == "True" else "")
    # the payload is text, not markup, in the DOCX
    assert PAYLOAD in body["Kyrgyzstan (KGZ)"][col["Method"]]


def test_species_docx_summary_pictures_and_page_field(built):
    d = docx.Document(built["species"]["docx"])
    summary = next(_table_with_header(d, "Item"))
    items = {r.cells[0].text: r.cells[1].paragraphs[0].text for r in summary.rows[1:]}
    sp = BY_SPECIES[0]
    assert items["CMS Appendix"] == "I"
    assert items[f"Range-wide population (cycle {CYCLE})"] == format_estimate(
        sp["population_best"], sp["population_min"], sp["population_max"], "individuals")
    assert items[f"Criterion B (cycle {CYCLE})"].startswith("PRELIMINARY")
    text = "\n".join(p.text for p in d.paragraphs)
    assert "[unverified]" in " ".join(c.text for r in summary.rows for c in r.cells)
    assert len(d.inline_shapes) >= 1 + 3  # the map and one chart per Range State with estimates
    assert "Figure" in text and "Synthetic demo data" in "".join(c.text for t in d.tables for r in t.rows
                                                                 for c in r.cells)
    with zipfile.ZipFile(built["species"]["docx"]) as z:
        footers = "".join(z.read(n).decode() for n in z.namelist() if n.startswith("word/footer"))
    assert "PAGE" in footers
    assert d.core_properties.created.year == CYCLE


def test_species_docx_provenance_rows(built):
    d = docx.Document(built["species"]["docx"])
    t = next(t for t in d.tables if t.rows[0].cells[-1].text.startswith("Source row"))
    refs = {r.cells[-1].text.split(" ")[0] for r in t.rows[1:]}
    for p in POPULATION:
        if p["species_slug"] == "panthera_uncia":
            assert f"{p['submission']}/population.csv#{p['source_row']}" in refs


@needs_poppler
def test_species_pdf_text_and_not_blank(built, tmp_path):
    text = _pdftext(built["species"]["pdf"])
    for row in _rows("panthera_uncia"):
        if row["population_best"] != "":
            assert format_number(row["population_best"]) in text
            assert format_number(row["eoo_km2"]) in text
    sp = BY_SPECIES[0]
    assert format_number(sp["population_best"]) in text and format_number(sp["eoo_km2"]) in text
    assert "PRELIMINARY" in text and "Synthetic demo data" in text and "[unverified]" in text
    assert "Page 1 of" in text
    assert "ирвэс" in text and "雪豹" in text  # Cyrillic and CJK glyphs reach the PDF as text
    _assert_not_blank(built["species"]["pdf"], tmp_path)


def _assert_not_blank(pdf: str, tmp_path: Path) -> None:
    from PIL import Image

    prefix = tmp_path / "page"
    subprocess.run(["pdftoppm", "-png", "-r", "40", "-f", "1", "-l", "1", pdf, str(prefix)], check=True)
    png = next(tmp_path.glob("page*.png"))
    import numpy as np

    pixels = np.asarray(Image.open(png).convert("L"))
    assert (pixels < 200).mean() > 0.01, "first page looks blank"


def test_species_html_escapes_and_self_contained(built):
    html = Path(built["species"]["html"]).read_text(encoding="utf-8")
    assert PAYLOAD not in html and "<script" not in html.lower()
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert "<iframe" in html and "srcdoc=" in html
    assert 'src="data:image/png;base64,' in html
    assert not re.search(r'(src|href)="https?:', html)
    assert "Synthetic demo data" in html and "PRELIMINARY" in html and "[unverified]" in html
    assert "Disclaimer" in html or "designations employed" in html
    for row in _rows("panthera_uncia"):
        if row["population_best"] != "":
            assert format_estimate(row["population_best"], row["population_min"], row["population_max"],
                                   "individuals") in html


def test_escaping_uses_escape_html(built):
    html = Path(built["country"]["html"]).read_text(encoding="utf-8")
    assert "&#96;&#36;{document.cookie}&#96;" in html and "${document.cookie}" not in html


def test_change_since_previous_cycle(built):
    html = Path(built["species"]["html"]).read_text(encoding="utf-8")
    assert "Cycle 2023" in html and "+35" in html and "+50" in html


def test_status_form_marks_missing_cells(built):
    d = docx.Document(built["species"]["form"])
    marked = [c for t in d.tables for r in t.rows for c in r.cells if c.text == TO_COMPLETE]
    assert marked
    for cell in marked:
        assert 'w:fill="FFF2CC"' in cell._tc.xml
    headings = [p.text for p in d.paragraphs if p.style.name.startswith("Heading")]
    assert "China (CHN)" in headings and "Kyrgyzstan (KGZ)" in headings
    # sections follow the headings in order; the KGZ table is pre-filled, China's is not
    per_state = [t for t in d.tables if len(t.rows) > 1 and t.rows[1].cells[0].text == "Population estimate (best)"]
    assert len(per_state) == 12
    values = {}
    for t in per_state:
        values.setdefault("tables", []).append({r.cells[0].text: r.cells[1].text for r in t.rows[1:]})
    by_label = dict(zip([h for h in headings if re.search(r"\([A-Z]{3}\)$", h)], values["tables"]))
    assert by_label["Kyrgyzstan (KGZ)"]["Population estimate (best)"] == "285"
    assert by_label["Kyrgyzstan (KGZ)"]["Year of the estimate"] == "2022"
    assert by_label["Kyrgyzstan (KGZ)"]["Conservation measures in place"] == TO_COMPLETE
    assert "511" in by_label["Kyrgyzstan (KGZ)"]["Other estimates on file (population table)"]
    assert by_label["China (CHN)"]["Population estimate (best)"] == TO_COMPLETE
    assert by_label["China (CHN)"]["Data gaps"] == "yes"


def test_article_markdown_and_html(built):
    md = Path(built["species"]["article_md"]).read_text(encoding="utf-8")
    assert "1,405 (1,150–1,670) individuals" in md and "Synthetic demo data" in md
    assert "<script" not in md.lower()
    link = re.search(r"!\[[^\]]*\]\(([^)]+)\)", md).group(1)
    assert (Path(built["species"]["article_md"]).parent / link).resolve() == Path(built["inputs"]["map_png"]).resolve()
    html = Path(built["species"]["article_html"]).read_text(encoding="utf-8")
    assert "data:image/png;base64," in html and "<script" not in html.lower()
    assert "1,405 (1,150–1,670) individuals" in html


# -- country profile ------------------------------------------------------------------------
def test_country_docx_rows_equal_status_csv(built):
    from cami_geo.registry import default_registry

    reg = default_registry()
    d = docx.Document(built["country"]["docx"])
    t = next(_table_with_header(d, "Species"))
    header = [c.text for c in t.rows[0].cells]
    col = {h: i for i, h in enumerate(header)}
    body = [[c.paragraphs[0].text for c in r.cells] for r in t.rows[1:]]
    assert len(body) == len(reg.species_in("KAZ"))
    for row in _rows(iso3="KAZ"):
        cells = next(b for b in body if b[0].startswith(row["species"]))
        assert cells[col["Population estimate"]] == format_estimate(
            row["population_best"], row["population_min"], row["population_max"], row["population_unit"])
        assert abs(_num(cells[col["EOO km²"]]) - row["eoo_km2"]) <= 0.5
    horse = next(b for b in body if b[0].startswith("Equus ferus przewalskii"))
    assert "[unverified]" in horse[col["CMS App."]]


@needs_poppler
def test_country_pdf_and_html(built, tmp_path):
    text = _pdftext(built["country"]["pdf"])
    for row in _rows(iso3="KAZ"):
        assert format_number(row["population_best"]) in text
    assert "Synthetic demo data" in text  # the snow leopard submission is synthetic
    _assert_not_blank(built["country"]["pdf"], tmp_path)
    html = Path(built["country"]["html"]).read_text(encoding="utf-8")
    assert "<script" not in html.lower() and "Kazakhstan" in html


# -- robustness -----------------------------------------------------------------------------
def test_outputs_are_deterministic(built, tmp_path):
    out = species_outputs(tmp_path, "panthera_uncia")
    run_report_species_stage(built["inputs"], out, PARAMS)
    for key in ("html", "docx", "pdf", "form", "article_html"):
        assert Path(out[key]).read_bytes() == Path(built["species"][key]).read_bytes(), key


def test_old_status_files_without_optional_columns(tmp_path):
    keep = ["species", "species_slug", "iso3", "country", "cycle", "n_records", "population_best",
            "population_year", "population_source"]
    rows = [{k: r[k] for k in keep} for r in BY_COUNTRY]
    inputs = make_inputs(tmp_path / "in", by_country=rows)
    Path(inputs["threats"]).unlink()
    Path(inputs["actions"]).unlink()
    out = species_outputs(tmp_path, "saiga_tatarica")
    run_report_species_stage(inputs, out, PARAMS)
    d = docx.Document(out["docx"])
    t = next(_table_with_header(d, "Range State"))
    kaz = next(r for r in t.rows if r.cells[0].text.endswith("(KAZ)"))
    assert kaz.cells[1].paragraphs[0].text == "1,284,000"


def test_missing_status_table_is_one_sentence(tmp_path):
    inputs = make_inputs(tmp_path / "in")
    Path(inputs["by_country"]).unlink()
    with pytest.raises(InputError) as err:
        run_report_species_stage(inputs, species_outputs(tmp_path, "panthera_uncia"), PARAMS)
    msg = str(err.value)
    assert "status_by_country.csv" in msg and "\n" not in msg


def test_unknown_species_is_one_sentence(tmp_path):
    inputs = make_inputs(tmp_path / "in")
    with pytest.raises(InputError, match="neither in the status tables nor in the registry"):
        run_report_species_stage(inputs, species_outputs(tmp_path, "no_such_beast"), PARAMS)


def test_runs_through_the_workflow_stage_table(tmp_path):
    from cami_geo import workflow

    inputs = make_inputs(tmp_path / "in")
    out = country_outputs(tmp_path, "MNG")
    workflow.run_stage("report_country", inputs, out, PARAMS, str(tmp_path / "logs" / "country_MNG.log"))
    d = docx.Document(out["docx"])
    t = next(_table_with_header(d, "Species"))
    snow = next(r for r in t.rows if r.cells[0].text.startswith("Panthera uncia"))
    assert snow.cells[3].paragraphs[0].text == "1,000 (800–1,200) individuals"
    html = Path(out["html"]).read_text(encoding="utf-8")
    assert "[unverified]" in html  # e.g. Przewalski's horse CMS Appendix


# -- speed paths give the same documents ------------------------------------------------------
def test_read_table_matches_pandas(tmp_path):
    pd = pytest.importorskip("pandas")
    cases = {
        "basic": "a,b\n1,2\n3,4\n", "bom": "\ufeffa,b\n1,2\n", "blank": "a,b\n\n1,2\n\n", "ws": "a,b\n   \n1,2\n",
        "short": "a,b,c\n1,2\n", "dup": "a,a,b\n1,2,3\n", "unnamed": "a,,b\n1,2,3\n", "crlf": "a,b\r\n1,2\r\n",
        "quoted": 'a,b\n"x, y","line1\nline2"\n', "spaces": "a, b \n NA ,nan\n", "header_only": "a,b\n",
        "empty": "", "blank_only": "\n\n",
    }
    for name, text in cases.items():
        p = tmp_path / f"{name}.csv"
        p.write_text(text, encoding="utf-8", newline="")
        try:
            df = pd.read_csv(p, dtype=str, keep_default_na=False, encoding="utf-8")
            expected = ([str(c).strip() for c in df.columns], df.to_dict("records"))
        except pd.errors.EmptyDataError:
            expected = ([], [])
        expected = (expected[0], [dict(zip(expected[0], r.values())) for r in expected[1]])
        got = reports.read_table(p, required=True, what="x")
        assert (got.columns, got.records) == expected, name
        assert got.empty == (not expected[0] or not expected[1]), name
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n1,2,3\n", encoding="utf-8")
    with pytest.raises(InputError, match="Expected 2 fields in line 3, saw 3"):
        reports.read_table(bad, required=True, what="x")


def test_big_interactive_map_renders_as_the_plain_template(built, monkeypatch):
    ctx = reports.species_context("panthera_uncia", reports.Tables(built["inputs"]), reports._registry(PARAMS),
                                  built["inputs"], PARAMS)
    ctx["map"] = {**ctx["map"], "interactive": "<p class=\"x\">`$` & 'q'</p>\n" * 5000}
    fast = reports.render_html("species_report.html", ctx)
    monkeypatch.setattr(reports, "_BIG_TEXT", 1 << 40)  # the plain way: every value through escape_html
    assert reports.render_html("species_report.html", ctx) == fast


def test_print_map_is_reduced_and_opaque_rgb():
    import io

    from PIL import Image

    big = Image.new("RGBA", (3000, 2460), (200, 120, 40, 255))
    buf = io.BytesIO()
    big.save(buf, format="PNG")
    out = reports.print_png(buf.getvalue(), *reports.PRINT_MAP_MAX_MM)
    small = Image.open(io.BytesIO(out))
    assert small.size == (1500, 1230) and small.mode == "RGB"
    assert small.getpixel((10, 10)) == (200, 120, 40)
    # a map with real transparency keeps it; one already small enough is left as it is
    big.putpixel((0, 0), (0, 0, 0, 0))
    buf = io.BytesIO()
    big.save(buf, format="PNG")
    assert Image.open(io.BytesIO(reports.print_png(buf.getvalue(), *reports.PRINT_MAP_MAX_MM))).mode == "RGBA"
    buf = io.BytesIO()
    Image.new("RGB", (800, 600), "white").save(buf, format="PNG")
    assert reports.print_png(buf.getvalue(), *reports.PRINT_MAP_MAX_MM) == buf.getvalue()


def test_print_map_pixels_are_the_reduced_pixels():
    """print_png writes the rows itself (unfiltered): the pixels are PIL's reduce of the map,
    for RGB, opaque RGBA, transparent RGBA and grey maps; a tRNS colour is kept."""
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(1)
    rgba = rng.integers(0, 256, (2460, 3000, 4), dtype=np.uint8)
    opaque = rgba.copy()
    opaque[..., 3] = 255
    cases = [Image.fromarray(rgba[..., :3]), Image.fromarray(opaque), Image.fromarray(rgba),
             Image.fromarray(rgba[..., 0])]
    for im in cases:
        buf = io.BytesIO()
        im.save(buf, format="PNG", compress_level=1)
        out = Image.open(io.BytesIO(reports.print_png(buf.getvalue(), *reports.PRINT_MAP_MAX_MM)))
        expected = im.reduce(2)
        if im.mode == "RGBA" and expected.getchannel("A").getextrema() == (255, 255):
            expected = expected.convert("RGB")
        assert out.mode == expected.mode and out.size == expected.size
        assert np.array_equal(np.asarray(out), np.asarray(expected)), im.mode
    im = Image.fromarray(rgba[..., :3])
    buf = io.BytesIO()
    im.save(buf, format="PNG", transparency=(1, 2, 3))
    out = Image.open(io.BytesIO(reports.print_png(buf.getvalue(), *reports.PRINT_MAP_MAX_MM)))
    assert out.info.get("transparency") == (1, 2, 3)


def test_chart_png_is_opaque_rgb_and_as_savefig_draws_it():
    import io

    import numpy as np
    from PIL import Image

    from cami_geo.render import charts

    rows = [_pop("p", "s", 2, "panthera_uncia", "KGZ", y, lo, best, hi) for y, lo, best, hi in
            ((2016, "", 511, ""), (2021, 20, 30, 40), (2022, 250, 285, 320))]
    rows[1]["scope"] = "subpopulation:Sarychat"
    png = charts.population_chart(rows, title="Panthera uncia in Kyrgyzstan (KGZ) $x$", unit="individuals")
    image = Image.open(io.BytesIO(png))
    assert image.mode == "RGB" and image.size == (960, 450)
    # the same pixels as Figure.savefig (the former way of writing the chart)
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    drawn = {}
    real_png = charts._png

    def keep(canvas, dpi):
        drawn["fig"] = canvas.figure
        return real_png(canvas, dpi)

    charts._png = keep
    try:
        charts.population_chart(rows, title="Panthera uncia in Kyrgyzstan (KGZ) $x$", unit="individuals")
    finally:
        charts._png = real_png
    buf = io.BytesIO()
    with matplotlib.rc_context({"font.family": charts._FONTS}):
        FigureCanvasAgg(drawn["fig"])
        drawn["fig"].savefig(buf, format="png")
    saved = np.asarray(Image.open(buf).convert("RGB"))
    assert np.array_equal(np.asarray(image), saved)


def test_docx_cells_as_python_docx_makes_them():
    from docx import Document

    from cami_geo.render import docx_writer as dw

    texts = ["plain", "", "  padded  ", "tab\there", "two\nlines", PAYLOAD, "ирвэс 雪豹", "a\x01b"]
    slow_doc, fast_doc = Document(), Document()
    for bold, size, note in ((False, 8, ""), (True, 9, "a note\twith tab"), (True, 10, "")):
        slow = slow_doc.add_table(rows=len(texts), cols=1)
        fast = fast_doc.add_table(rows=len(texts), cols=1)
        for text, srow, frow in zip(texts, slow.rows, fast.rows):
            dw._set_cell_with_docx(srow.cells[0], text, bold=bold, note=note, size=size)
            dw._set_cell(frow.cells[0], text, bold=bold, note=note, size=size)
    slow_doc.add_table(rows=1, cols=1)
    cell = slow_doc.tables[-1].rows[0].cells[0]
    dw._to_complete_with_docx(cell)
    dw._shade(cell, dw.TO_COMPLETE_FILL)
    fast_doc.add_table(rows=1, cols=1)
    dw._mark_to_complete(fast_doc.tables[-1].rows[0].cells[0])
    assert [t._tbl.xml for t in fast_doc.tables] == [t._tbl.xml for t in slow_doc.tables]


# -- cheaper document jobs: same documents --------------------------------------------------
def test_chart_drawn_once_is_the_same_image_in_html_docx_and_pdf(built, monkeypatch):
    import base64

    from cami_geo.render import charts

    drawn = []
    real = charts.population_chart

    def counting(*args, **kwargs):
        png = real(*args, **kwargs)
        drawn.append(png)
        return png

    monkeypatch.setattr(reports, "population_chart", counting)
    ctx = reports.species_context("panthera_uncia", reports.Tables(built["inputs"]), reports._registry(PARAMS),
                                  built["inputs"], PARAMS)
    assert len(drawn) == len(ctx["charts"]) == 3  # one chart per Range State with estimates, each drawn once
    html = Path(built["species"]["html"]).read_text(encoding="utf-8")
    in_html = [base64.b64decode(u) for u in re.findall(r'<figure class="chart"><img src="data:image/png;base64,([^"]+)"', html)]
    with zipfile.ZipFile(built["species"]["docx"]) as z:
        media = {z.read(n) for n in z.namelist() if n.startswith("word/media/")}
    assert in_html == [c["png"] for c in ctx["charts"]] == drawn
    assert all(png in media for png in drawn)
    images = {}
    printed = reports.print_context(ctx, images)  # the PDF embeds the same bytes, served by URL
    assert [images[c["uri"]] for c in printed["charts"]] == drawn
    assert images[printed["map"]["uri"]] == printed["map"]["png"]
    html = reports.render_html("species_report.html", printed, for_print=True)
    assert "data:image" not in html and all(u in html for u in images)


def test_chart_margins_are_those_of_tight_layout(monkeypatch):
    from matplotlib.figure import Figure

    from cami_geo.render import charts

    cases = [
        ("Panthera uncia in Kyrgyzstan (KGZ)", [(2016, "", 511, ""), (2021, 20, 30, 40), (2022, 250, 285, 320)]),
        ("Saiga tatarica in Kazakhstan (KAZ)", [(2016, "", 1_200_000, ""), (2025, 3_900_000, 4_100_000, 4_300_000)]),
        ("Ovis ammon in Tajikistan (TJK)", [(2023, "", 80, "")]),
        ("Equus hemionus in Mongolia (MNG)", [(2015, "", 60_000, ""), (2019, "", 98_000, "")]),
    ]
    got, expected = [], []
    real_margins = charts._margins

    def both(fig, ax, canvas):
        m = real_margins(fig, ax, canvas)
        Figure.tight_layout(fig)
        sp = fig.subplotpars
        got.append(m)
        expected.append({k: getattr(sp, k) for k in ("left", "right", "bottom", "top")})
        return m

    monkeypatch.setattr(charts, "_margins", both)
    for title, points in cases:
        rows = [_pop("p", "s", 2, "panthera_uncia", "KGZ", y, lo, best, hi) for y, lo, best, hi in points]
        charts.population_chart(rows, title=title, unit="individuals")
    for m, e in zip(got, expected):
        assert m is not None
        for key in e:  # within a tenth of a pixel of a 960 x 450 chart
            assert abs(m[key] - e[key]) * 960 < 0.1, (key, m, e)


def test_chart_font_fallback_only_when_needed():
    import io

    import numpy as np
    from PIL import Image

    from cami_geo.render import charts

    assert charts._fonts(["Saiga tatarica in Kazakhstan (KAZ)", "особей", "year"]) == ["DejaVu Sans"]
    assert charts._fonts(["雪豹"]) == charts._FONTS
    rows = [_pop("p", "s", 2, "panthera_uncia", "KGZ", y, lo, best, hi) for y, lo, best, hi in
            ((2016, "", 511, ""), (2022, 250, 285, 320))]
    one = charts.population_chart(rows, title="Panthera uncia in Kyrgyzstan (KGZ)", unit="individuals")
    keep = charts._fonts
    try:
        charts._fonts = lambda texts: list(charts._FONTS)
        full = charts.population_chart(rows, title="Panthera uncia in Kyrgyzstan (KGZ)", unit="individuals")
    finally:
        charts._fonts = keep
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(one))), np.asarray(Image.open(io.BytesIO(full))))
    # a CJK label still gets the fallback font
    rows[0]["scope"] = "subpopulation:雪豹"
    assert charts.population_chart(rows, title="x", unit="individuals")


def test_big_text_escaped_on_bytes_as_finalize_does():
    cases = ["  <a href=\"x\">'q' & `$` \\ </a>\n" * 3000, "ирвэс 雪豹 <b>\u2028\u00a0" * 4000,
             "x" * 70000 + "\x07", " \u00a0nan\u3000 ", "", "\x01 NaN",
             "é<" * (reports._ESCAPE_CHUNK + 7) + "\U0001F600&"]  # pieces end mid-way: no effect
    for text in cases:
        pieces = reports._escaped_utf8(text)
        assert b"".join(pieces) == str(reports._finalize(text)).encode("utf-8"), repr(text[:20])


def test_print_tables_have_fixed_column_widths(built):
    ctx = reports.species_context("panthera_uncia", reports.Tables(built["inputs"]), reports._registry(PARAMS),
                                  built["inputs"], PARAMS)
    screen = reports.render_html("species_report.html", ctx)
    printed = reports.render_html("species_report.html", reports.print_context(ctx), for_print=True)
    assert '<table class="fixed">' not in screen and "<wbr>" not in screen
    tables = re.findall(r"<table[^>]*>\s*(?:<colgroup>(.*?)</colgroup>)?", printed, flags=re.S)
    assert len(tables) >= 6 and all(cols for cols in tables[1:])  # all but the summary table
    for cols in tables[1:]:
        widths = [float(w) for w in re.findall(r"width:([\d.]+)%", cols)]
        assert abs(sum(widths) - 100) < 0.01, widths
    # the same text once the markup is removed (<wbr> adds no character)
    def text(html):
        body = html.split("<body>", 1)[1]
        body = re.sub(r'<iframe.*?</iframe>\s*<p class="caption">Interactive map\..*?</p>', "", body, flags=re.S)
        return " ".join(re.sub(r"<[^>]+>", " ", body.replace("<wbr>", "")).split())
    assert text(printed).replace(" ", "") == text(screen).replace(" ", "")


def test_pdf_embeds_png_data_as_is(tmp_path):
    import io

    from PIL import Image

    from cami_geo.render import charts

    rows = [_pop("p", "s", 2, "panthera_uncia", "KGZ", y, lo, best, hi) for y, lo, best, hi in
            ((2016, "", 511, ""), (2022, 250, 285, 320))]
    png = charts.population_chart(rows, title="Panthera uncia in Kyrgyzstan (KGZ)", unit="individuals")
    idat = reports.png_idat(png)
    assert idat and idat in png
    buf = io.BytesIO()
    Image.new("RGBA", (4, 4), (1, 2, 3, 100)).save(buf, format="PNG")
    assert reports.png_idat(buf.getvalue()) is None  # alpha: WeasyPrint splits it off
    buf = io.BytesIO()
    Image.new("P", (4, 4)).save(buf, format="PNG")
    assert reports.png_idat(buf.getvalue()) is None
    html = f'<html><body><img src="{reports.data_uri(png)}" style="width:10cm"></body></html>'
    fast, slow = tmp_path / "fast.pdf", tmp_path / "slow.pdf"
    reports.write_pdf(html, fast)
    keep = reports._png_data_as_is
    try:
        import contextlib

        reports._png_data_as_is = contextlib.nullcontext
        reports.write_pdf(html, slow)
    finally:
        reports._png_data_as_is = keep
    from weasyprint.images import RasterImage

    assert isinstance(RasterImage.__dict__["_get_png_data"], staticmethod)  # restored
    assert idat in fast.read_bytes()  # the chart's own compressed rows
    if shutil.which("pdftoppm"):
        pages = []
        for pdf in (fast, slow):
            out = subprocess.run(["pdftoppm", "-png", "-r", "60", str(pdf)], capture_output=True, check=True).stdout
            pages.append(Image.open(io.BytesIO(out)).convert("RGB").tobytes())
        assert pages[0] == pages[1]


def test_docx_stores_images_as_they_are(built):
    from docx import Document

    with zipfile.ZipFile(built["species"]["docx"]) as z:
        infos = z.infolist()
    media = [i for i in infos if i.filename.startswith("word/media/")]
    assert media and all(i.compress_type == zipfile.ZIP_STORED for i in media)
    assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in infos if i.filename.endswith(".xml"))
    assert len(Document(built["species"]["docx"]).inline_shapes) == 1 + 3


def test_pdf_after_worker_warm_up_is_byte_identical(tmp_path, monkeypatch):
    """warm_up_worker keeps a font configuration that has written a sample page; a PDF
    written with it is the PDF a new configuration gives."""
    css = reports._css()
    rows = "".join(f"<tr><th>Row {i} with a longer label</th><td class=\"num\">{i * 1234:,}</td>"
                   f"<td>Text – km² <b>bold</b> <i>italic</i> Ж</td></tr>" for i in range(40))
    html = (f"<!DOCTYPE html><html><head><title>t</title><style>{css}</style></head><body><h1>Title</h1>"
            f"<table class=\"fixed\"><thead><tr><th>A</th><th>B</th><th>C</th></tr></thead><tbody>{rows}"
            "</tbody></table><p class=\"footer\">End</p></body></html>")
    monkeypatch.setattr(reports, "_FONT_CONFIG", None)
    cold = tmp_path / "cold.pdf"
    reports.write_pdf(html, cold)
    reports.warm_up_worker()
    assert reports._FONT_CONFIG is not None
    warm, again = tmp_path / "warm.pdf", tmp_path / "again.pdf"
    reports.write_pdf(html, warm)
    reports.write_pdf(html, again)
    assert warm.read_bytes() == cold.read_bytes() == again.read_bytes()


def test_pdf_with_parsed_stylesheet_is_byte_identical(tmp_path):
    """The worker's parsed report.css (user origin) on a page without its <style> gives the
    PDF the page with report.css inline gives (author origin): same computed styles."""
    reports.warm_up_worker()
    assert reports._PRINT_CSS is not None
    rows = "".join(f"<tr><th>Row {i}</th><td class=\"num\">{i * 1234:,}<div class=\"note\">note</div></td>"
                   f"<td>Text – km² <b>bold</b> <i>italic</i></td></tr>" for i in range(60))
    colgroup = "<colgroup>" + "".join(f'<col style="width:{w}%">' for w in (20, 30, 50)) + "</colgroup>"
    body = (f"<body><h1>Title</h1><p class=\"meta\">Meta</p><h2>Table</h2><table class=\"status\">{colgroup}"
            f"<thead><tr><th>A</th><th>B</th><th>C</th></tr></thead><tbody>{rows}</tbody></table>"
            "<section class=\"appendix\"><h2>Appendix</h2><p class=\"empty\">None</p></section></body></html>")
    inline = f"<!DOCTYPE html><html lang=\"en\"><head><title>t</title><style>{reports._css()}</style></head>{body}"
    bare = f"<!DOCTYPE html><html lang=\"en\"><head><title>t</title><style></style></head>{body}"
    a, b = tmp_path / "inline.pdf", tmp_path / "parsed.pdf"
    reports.write_pdf(inline, a)
    reports.write_pdf(bare, b, stylesheet=reports._PRINT_CSS)
    assert a.read_bytes() == b.read_bytes()


def test_print_page_without_inline_css(built):
    ctx = reports.species_context("panthera_uncia", reports.Tables(built["inputs"]), reports._registry(PARAMS),
                                  built["inputs"], PARAMS)
    with_css = reports.render_html("species_report.html", ctx, for_print=True)
    without = reports.render_html("species_report.html", ctx, for_print=True, inline_css=False)
    assert without == with_css.replace(str(reports._css()), "")


def test_docx_from_warmed_up_template_is_byte_identical(built, tmp_path, monkeypatch):
    """Documents copied from the default document the worker opened once are the documents
    python-docx opens for each of them."""
    from cami_geo.render import docx_writer

    ctx = reports.species_context("panthera_uncia", reports.Tables(built["inputs"]), reports._registry(PARAMS),
                                  built["inputs"], PARAMS)
    monkeypatch.setattr(docx_writer, "_TEMPLATE", None)
    cold = [tmp_path / "cold.docx", tmp_path / "cold_form.docx"]
    docx_writer.write_report_docx(ctx, cold[0])
    docx_writer.write_form_docx(ctx, cold[1])
    docx_writer.warm_up()
    assert docx_writer._TEMPLATE is not None
    for i in range(2):  # the template itself is left as it was
        warm = [tmp_path / f"warm{i}.docx", tmp_path / f"warm{i}_form.docx"]
        docx_writer.write_report_docx(ctx, warm[0])
        docx_writer.write_form_docx(ctx, warm[1])
        assert [p.read_bytes() for p in warm] == [p.read_bytes() for p in cold]


def test_array_types_made_as_cffi_parses_them():
    """WeasyPrint's cffi instance gets "NAME[n]" array types without parsing them: the same
    ctype objects cffi's parser gives; other declarations still parsed by cffi."""
    reports._import_weasyprint()
    from weasyprint.text.ffi import ffi

    parsed = [ffi.typeof("hb_codepoint_t[7]"), ffi.typeof("char[4]")]
    reports._parse_array_types_directly()
    reports._parse_array_types_directly()  # once only
    assert isinstance(ffi._parsed_types, reports._ParsedTypes)
    assert ffi.typeof("hb_codepoint_t[7]") is parsed[0] and ffi.typeof("char [ 4 ]") is parsed[1]
    made = ffi.typeof("hb_codepoint_t[12345]")
    assert made.kind == "array" and made.length == 12345 and made.item is ffi.typeof("hb_codepoint_t")
    assert list(ffi.new("hb_codepoint_t[3]", [1, 2, 3])) == [1, 2, 3]
    assert ffi.typeof("unsigned int *") is ffi.typeof("unsigned int*")


def test_chart_cache_gives_the_drawn_bytes(tmp_path, monkeypatch):
    """A chart drawn once is read from the cache by the next job: same bytes; other data,
    title or size is another chart; an unreadable cache file is drawn again."""
    from cami_geo.render import charts

    rows = [{"year": "2015", "estimate_best": "300", "estimate_min": "250", "estimate_max": "350"},
            {"year": "2020", "estimate_best": "320", "scope": "subpopulation:Naryn"}]
    kwargs = {"title": "Panthera uncia in Kyrgyzstan (KGZ)", "unit": "individuals"}
    drawn = charts.population_chart(rows, **kwargs)
    assert charts.population_chart(rows, **kwargs, cache=tmp_path / "c") == drawn
    files = list((tmp_path / "c").iterdir())
    assert len(files) == 1 and files[0].read_bytes() == drawn

    def no_drawing(*args):
        raise AssertionError("drawn again")

    real = charts._draw
    monkeypatch.setattr(charts, "_draw", no_drawing)
    assert charts.population_chart(rows, **kwargs, cache=tmp_path / "c") == drawn
    assert charts.population_chart(list(rows), **kwargs, cache=str(tmp_path / "c")) == drawn
    for other_rows, other in ((rows[:1], kwargs), (rows, {**kwargs, "title": "Other"}),
                              (rows, {**kwargs, "dpi": 100}), ([{**rows[0], "estimate_max": "351"}, rows[1]], kwargs)):
        with pytest.raises(AssertionError, match="drawn again"):
            charts.population_chart(other_rows, **other, cache=tmp_path / "c")
    monkeypatch.setattr(charts, "_draw", real)
    files[0].write_bytes(drawn[:-20])  # damaged: drawn again and replaced
    assert charts.population_chart(rows, **kwargs, cache=tmp_path / "c") == drawn
    assert files[0].read_bytes() == drawn
    (tmp_path / "file").write_text("not a folder")  # a cache that cannot be written is no cache
    assert charts.population_chart(rows, **kwargs, cache=tmp_path / "file" / "x") == drawn


def test_colour_conversions_once_same_results_and_restored():
    import tinycss2.color5
    from tinycss2.color4 import Color

    original = Color.to
    colours = [tinycss2.color5.parse_color(c) for c in ("#b8c4d4", "hsl(120 50% 50% / .5)", "hsl(120 50% 50%)",
                                                         "rebeccapurple")]
    lab = tinycss2.color5.parse_color("lch(50% 30 40)")
    expected = [(c.to("srgb").space, c.to("srgb").coordinates, c.to("srgb").alpha) for c in colours]
    with reports._colours_converted_once():
        assert Color.to is not original
        for _ in range(2):
            got = [(c.to("srgb").space, c.to("srgb").coordinates, c.to("srgb").alpha) for c in colours]
            assert got == expected
        assert lab.to("lab").coordinates == original(lab, "lab").coordinates
    assert Color.to is original


def test_chart_cache_lives_outside_the_outputs(tmp_path, monkeypatch):
    """The documents' chart cache is a per-user folder (never in data/processed, whose files are
    outputs); CAMI_GEO_CHART_CACHE names another, empty turns it off."""
    from cami_geo.render import charts

    monkeypatch.setenv(charts.CHART_CACHE_ENV, str(tmp_path / "charts"))
    assert charts.chart_cache_dir() == tmp_path / "charts" and (tmp_path / "charts").is_dir()
    monkeypatch.setenv(charts.CHART_CACHE_ENV, "")
    assert charts.chart_cache_dir() is None
    monkeypatch.delenv(charts.CHART_CACHE_ENV)
    assert charts.chart_cache_dir().name == "chart-cache" and "data" not in charts.chart_cache_dir().parts
