"""`cami-geo assess FILE --method {iucn,conr} --out FILE.csv` (PRODUCT.md contract)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from cami_geo.cli import main
from cami_geo.status import criterion_b as cb

CONTRACT = ["taxon", "n_unique", "eoo_km2", "aoo_km2", "n_locations", "n_subpopulations", "category_b"]

ROWS = [  # taxon, lat, lon, status
    ("Saiga tatarica", 47.0, 66.0, "present"),
    ("Saiga tatarica", 47.5, 67.0, "present"),
    ("Saiga tatarica", 48.0, 66.0, "present"),
    ("Saiga tatarica", 10.0, 100.0, "absent"),
    ("Not a CAMI species", 41.94, 1.01, "present"),
]


def _write(tmp_path, name, sep, cols):
    df = pd.DataFrame(ROWS, columns=cols)
    p = tmp_path / name
    df.to_csv(p, sep=sep, index=False)
    return p


@pytest.mark.parametrize("method", ["iucn", "conr"])
@pytest.mark.parametrize("name,sep,cols", [
    ("dwc.csv", ",", ["scientificName", "decimalLatitude", "decimalLongitude", "occurrenceStatus"]),
    ("aliases.tsv", "\t", ["species", "lat", "lon", "occurrenceStatus"]),
    ("semicolon.csv", ";", ["taxon", "latitude", "longitude", "occurrence_status"]),
])
def test_assess_writes_one_row_per_taxon(tmp_path, capsys, method, name, sep, cols):
    src = _write(tmp_path, name, sep, cols)
    out = tmp_path / "out.csv"
    assert main(["assess", str(src), "--method", method, "--out", str(out)]) == 0
    res = pd.read_csv(out)
    assert list(res.columns) == CONTRACT
    res = res.set_index("taxon")
    saiga = res.loc["Saiga tatarica"]
    assert saiga["n_unique"] == 3  # the absence does not count
    assert saiga["eoo_km2"] == pytest.approx(cb.eoo_km2([66, 67, 66], [47, 47.5, 48], method), rel=1e-9)
    assert saiga["aoo_km2"] == 12
    assert str(saiga["category_b"]).startswith("preliminary")
    other = res.loc["Not a CAMI species"]
    assert other["n_unique"] == 1 and other["eoo_km2"] == other["aoo_km2"] == 4
    assert "wrote" in capsys.readouterr().err


def test_assess_reports_missing_columns_in_one_sentence(tmp_path, capsys):
    p = tmp_path / "bad.csv"
    p.write_text("name,x_coord\nA,1\n", encoding="utf-8")
    assert main(["assess", str(p), "--out", str(tmp_path / "o.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cami-geo: ") and "decimalLatitude" in err and "Traceback" not in err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize("content", [b"", b"\x00\x01\x02PK\x03\x04" * 20])
def test_assess_rejects_unreadable_input(tmp_path, capsys, content):
    p = tmp_path / "x.csv"
    p.write_bytes(content)
    assert main(["assess", str(p), "--out", str(tmp_path / "o.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "x.csv" in err


def test_assess_missing_file(tmp_path, capsys):
    assert main(["assess", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "o.csv")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_assess_neutralises_formula_taxon_names(tmp_path):
    p = tmp_path / "f.csv"
    p.write_text("scientificName,decimalLatitude,decimalLongitude\n=HYPERLINK(1),47,66\n", encoding="utf-8")
    out = tmp_path / "o.csv"
    assert main(["assess", str(p), "--out", str(out)]) == 0
    assert pd.read_csv(out)["taxon"].iloc[0] == "'=HYPERLINK(1)"
