"""`cami-geo validate`: exit codes, the JSON report, and one clear sentence (never a
traceback) for files that cannot be read, in every format."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from cami_geo.cli import main

REPO = Path(__file__).resolve().parents[1]


def _zip(path: Path, members: dict[str, bytes], *, symlink: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return path


def _broken_files(d: Path) -> dict[str, Path]:
    rnd = bytes(range(256)) * 8
    files = {
        "empty.csv": b"",
        "blank.csv": b"\n\n  \n",
        "binary.csv": b"\x00\x01\x02\xff" * 200,
        "random.csv": rnd,
        "broken.zip": b"PK\x03\x04 this is not a zip",
        "broken.xlsx": b"PK\x03\x04 not a workbook",
        "text.xlsx": b"species,lat,lon\n",
        "broken.gpkg": b"SQLite format 3\x00" + rnd,
        "empty.gpkg": b"",
        "broken.geojson": b'{"type": "FeatureCollection", "features": [',
        "broken.tif": b"II*\x00garbage",
    }
    out = {}
    for name, data in files.items():
        p = d / f"occurrences_{name}"
        p.write_bytes(data)
        out[name] = p
    out["slip.zip"] = _zip(d / "occurrences_slip.zip", {"../../evil.csv": b"a,b\n1,2\n"})
    out["abs.zip"] = _zip(d / "occurrences_abs.zip", {"/tmp/evil.csv": b"a,b\n1,2\n"})
    out["link.zip"] = _zip(d / "occurrences_link.zip", {"x.shp": b"\x00"}, symlink="x.dbf")
    out["badshp.zip"] = _zip(d / "occurrences_badshp.zip", {"x.shp": b"not a shapefile", "x.dbf": b"nope"})
    out["nocore.zip"] = _zip(d / "occurrences_nocore.zip", {
        "meta.xml": b'<archive xmlns="http://rs.tdwg.org/dwc/text/"><core><files><location>occurrence.txt</location></files></core></archive>'})
    out["badmeta.zip"] = _zip(d / "occurrences_badmeta.zip", {"meta.xml": b"<archive><core", "occurrence.txt": b"a\n"})
    return out


@pytest.mark.parametrize("name", ["empty.csv", "blank.csv", "binary.csv", "random.csv", "broken.zip", "broken.xlsx",
                                  "text.xlsx", "broken.gpkg", "empty.gpkg", "broken.geojson", "broken.tif", "slip.zip",
                                  "abs.zip", "link.zip", "badshp.zip", "nocore.zip", "badmeta.zip"])
def test_unreadable_file_exits_2_with_one_sentence(tmp_path, capsys, name):
    path = _broken_files(tmp_path)[name]
    code = main(["validate", str(path), "--species", "Saiga tatarica"])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("cami-geo: ") and "\n" not in err and "Traceback" not in err
    assert path.name in err or name.split(".")[0] in err
    assert not (tmp_path.parent / "evil.csv").exists() and not Path("/tmp/evil.csv").exists()


def test_no_traceback_in_a_real_process(tmp_path):
    p = tmp_path / "occurrences.csv"
    p.write_bytes(bytes(range(256)) * 4)
    proc = subprocess.run([sys.executable, "-m", "cami_geo", "validate", str(p)], capture_output=True, text=True,
                          cwd=tmp_path, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1
    assert "occurrences.csv" in proc.stderr and "binary" in proc.stderr


def test_exit_0_when_every_row_is_accepted(tmp_path, capsys):
    p = tmp_path / "occurrences.csv"
    p.write_text("scientificName,decimalLatitude,decimalLongitude,eventDate,countryCode\n"
                 "Saiga tatarica,48.1234,66.5678,2025-04-05,KZ\n"
                 "Saiga tatarica,47.6543,65.4321,2025-04-06,KZ\n", encoding="utf-8")
    report = tmp_path / "r.json"
    assert main(["validate", str(p), "--report", str(report)]) == 0
    data = json.loads(report.read_text())
    assert data == {"rows_in": 2, "accepted": 2, "rejected": 0, "problems": []}
    assert "2 rows in, 2 accepted, 0 rejected" in capsys.readouterr().out


def test_exit_1_and_report_when_rows_are_rejected(tmp_path, capsys):
    p = tmp_path / "records.csv"
    p.write_text("species;lat;lon;date\nSaiga tatarica;48,1234;66,5678;05.04.2025\nSaiga tatarica;48,1234;66,5678;05.04.2025\n"
                 "Saiga tatarica;abc;66,5;05.04.2025\n", encoding="utf-8")
    report = tmp_path / "r.json"
    assert main(["validate", str(p), "--kind", "occurrences", "--report", str(report)]) == 1
    data = json.loads(report.read_text())
    assert set(data) == {"rows_in", "accepted", "rejected", "problems"}
    assert (data["rows_in"], data["accepted"], data["rejected"]) == (3, 1, 2)
    for prob in data["problems"]:
        assert set(prob) == {"file", "row", "field", "reason", "severity"}
    errors = {(p_["row"], p_["field"]) for p_ in data["problems"] if p_["severity"] == "error"}
    assert (3, "row") in errors and (4, "decimalLatitude") in errors
    out = capsys.readouterr().out
    assert "records.csv:3: error: row: exact duplicate of row 2" in out


def test_quiet_prints_only_the_summary(tmp_path, capsys):
    p = tmp_path / "occurrences.csv"
    p.write_text("species,lat,lon\nSaiga tatarica,0,0\n", encoding="utf-8")
    assert main(["validate", str(p), "--quiet"]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "1 rejected" in out[0]


def test_file_of_unknown_kind_asks_for_kind(tmp_path, capsys):
    p = tmp_path / "data.csv"
    p.write_text("a,b\n1,2\n", encoding="utf-8")
    assert main(["validate", str(p)]) == 2
    assert "--kind" in capsys.readouterr().err


def test_missing_path_and_bad_manifest(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "nope")]) == 2
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "submission.yaml").write_text("sensitivity: 5deg\n", encoding="utf-8")
    assert main(["validate", str(sub)]) == 2
    err = capsys.readouterr().err
    assert "sensitivity" in err and "Traceback" not in err


def test_submission_folder_and_severity_override(tmp_path, capsys, monkeypatch):
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "submission.yaml").write_text("species: Saiga tatarica\n", encoding="utf-8")
    (sub / "occurrences.csv").write_text("lat,lon,date,countryCode\n48.1234,66.5678,2025-01-01,KAZ\n"
                                         "48.1234,66.5678,2025-01-01,KAZ\n", encoding="utf-8")
    assert main(["validate", str(sub)]) == 1
    # a working directory's config may turn a check into a warning
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text("checks:\n  severity: {duplicate: warning}\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert main(["validate", str(sub)]) == 0
    assert "warning: row: exact duplicate of row 2" in capsys.readouterr().out


def test_folder_with_a_broken_and_an_unknown_file(tmp_path, capsys):
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "submission.yaml").write_text("species: Saiga tatarica\n", encoding="utf-8")
    (sub / "occurrences.csv").write_text("lat,lon,countryCode\n48.1234,66.5678,KAZ\n", encoding="utf-8")
    (sub / "notes.docx").write_bytes(b"PK\x03\x04")
    report = tmp_path / "r.json"
    assert main(["validate", str(sub), "--report", str(report)]) == 1
    data = json.loads(report.read_text())
    assert (data["rows_in"], data["accepted"]) == (1, 1)
    unknown = [p for p in data["problems"] if p["file"] == "notes.docx"]
    assert unknown and unknown[0]["severity"] == "error" and unknown[0]["row"] is None
    (sub / "threats.geojson").write_text("{not json", encoding="utf-8")
    assert main(["validate", str(sub)]) == 2
    captured = capsys.readouterr()
    assert "threats.geojson" in captured.err and "Traceback" not in captured.err
    assert "1 rows in, 1 accepted" in captured.out


def test_custom_boundary_layer(tmp_path, capsys):
    import geopandas as gpd
    import shapely

    b = tmp_path / "mybounds.gpkg"
    gpd.GeoDataFrame({"iso3": ["KAZ"], "range_state": [True]}, geometry=[shapely.box(46, 40, 88, 56)],
                     crs="EPSG:4326").to_file(b, layer="admin0", driver="GPKG")
    p = tmp_path / "occurrences.csv"
    p.write_text("species,lat,lon,date,countryCode\nSaiga tatarica,48.1234,66.5678,2025-01-01,KAZ\n"
                 "Saiga tatarica,57.1234,66.5678,2025-01-01,KAZ\n", encoding="utf-8")
    report = tmp_path / "r.json"
    assert main(["validate", str(p), "--boundaries", str(b), "--report", str(report)]) == 1
    data = json.loads(report.read_text())
    assert (data["accepted"], data["rejected"]) == (1, 1)
    assert main(["validate", str(p), "--boundaries", str(tmp_path / "missing.gpkg")]) == 2
    assert "missing.gpkg" in capsys.readouterr().err


from hypothesis import HealthCheck, given, settings as hsettings, strategies as st  # noqa: E402


@hsettings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(st.binary(max_size=400),
                      st.text(alphabet=st.sampled_from(list("ab,;\t|\"'\n\r 0123456789.-°NSEW=ыщ")), max_size=300).map(
                          lambda t: t.encode("utf-8"))),
       suffix=st.sampled_from([".csv", ".xlsx", ".geojson", ".gpkg", ".zip", ".tif"]))
def test_fuzzed_files_never_give_a_traceback(tmp_path_factory, capsys, data, suffix):
    d = tmp_path_factory.mktemp("fuzz")
    p = d / f"occurrences{suffix}"
    p.write_bytes(data)
    code = main(["validate", str(p), "--species", "Saiga tatarica", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code in (0, 1, 2)
    assert "Traceback" not in err
    if code == 2:
        assert err.startswith("cami-geo: ") and "\n" not in err


def test_misspelt_manifest_species_rejects_rows_with_a_hint(tmp_path, capsys):
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "submission.yaml").write_text("species: Saiga tatarika\n", encoding="utf-8")
    (sub / "occurrences.csv").write_text("lat,lon,countryCode\n48.1234,66.5678,KAZ\n", encoding="utf-8")
    assert main(["validate", str(sub)]) == 1
    assert "did you mean Saiga tatarica" in capsys.readouterr().out


def test_report_json_is_json_dumps():
    from cami_geo.intake import report_json

    for report in ({"rows_in": 0, "accepted": 0, "rejected": 0, "problems": []},
                   {"rows_in": 2, "accepted": 1, "rejected": 1, "problems": [
                       {"file": "a \\ \"b\" \u2028 é\n", "row": None, "field": "", "reason": "x\ty", "severity": "error"},
                       {"file": "a", "row": 3, "field": "f", "reason": "Сайгак", "severity": "warning"}]},
                   {"rows_in": 1, "accepted": 1, "rejected": 0, "problems": [
                       {"file": "a", "row": 3, "field": "f", "reason": float("nan"), "severity": "warning"}]}):
        assert report_json(report) == json.dumps(report, ensure_ascii=False, indent=1)


def test_program_exit_keeps_output_and_code(tmp_path):
    """Run as the program, validate ends the process itself: the summary, the report and
    the exit code are complete."""
    p = tmp_path / "occurrences.csv"
    p.write_text("scientificName,decimalLatitude,decimalLongitude,eventDate,countryCode\n"
                 "Saiga tatarica,48.1234,66.5678,2025-04-05,KZ\n"
                 "Saiga tatarica,,66.5678,2025-04-05,KZ\n", encoding="utf-8")
    report = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, "-m", "cami_geo", "validate", str(p), "--report", str(report)],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.rstrip().endswith("2 rows in, 1 accepted, 1 rejected (1 errors, 0 warnings)")
    assert json.loads(report.read_text(encoding="utf-8"))["rejected"] == 1
