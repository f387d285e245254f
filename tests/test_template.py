"""`cami-geo template`: the workbook SFPs fill in has the sheets, drop-down lists and
instructions, and a filled copy validates cleanly."""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl
import pytest

from cami_geo.cli import main
from cami_geo.io.template import SHEETS, write_template
from cami_geo.registry import default_registry


@pytest.fixture()
def template(tmp_path) -> Path:
    return write_template(tmp_path / "cami_submission.xlsx")


def _validations(ws) -> dict[str, str]:
    out = {}
    for dv in ws.data_validations.dataValidation:
        for rng in str(dv.sqref).split():
            out[rng.split(":")[0].rstrip("0123456789")] = dv.formula1 or ""
    return out


def test_sheets_headers_and_dropdowns(template):
    wb = openpyxl.load_workbook(template)
    assert {"instructions", "occurrences", "threats", "population", "lists"} <= set(wb.sheetnames)
    assert wb["lists"].sheet_state == "hidden"
    for sheet, cols in SHEETS.items():
        assert [c.value for c in wb[sheet][1]] == [c for c, _ in cols]
    lists = wb["lists"]
    header = [c.value for c in lists[1]]
    column = {h: [c.value for c in col[1:] if c.value is not None] for h, col in zip(header, lists.iter_cols())}
    reg = default_registry()
    assert set(column["species"]) == {s.scientific_name for s in reg.species.values()}
    assert "4.1" in column["threat_codes"] and "5.1.1" in column["threat_codes"]
    assert column["units"] == ["individuals", "mature individuals"]
    assert "withheld" in column["sensitivity"] and "KAZ" in column["countries"]
    occ = _validations(wb["occurrences"])
    assert "lists!$A$2" in occ["A"]                      # scientificName -> species list
    thr = _validations(wb["threats"])
    assert "lists!$C$2" in thr["A"]                      # iucn_code -> threat codes
    pop = _validations(wb["population"])
    assert "lists!$E$2" in pop["G"]                      # unit -> units
    assert "lists!$F$2" in _validations(wb["instructions"])["B"]   # sensitivity


def test_filled_template_validates_cleanly(template, tmp_path, capsys):
    wb = openpyxl.load_workbook(template)
    wb["occurrences"].append(["Saiga tatarica", 48.12345, 66.56789, "2025-04-05", "KAZ", 30, 12, "present",
                              "HumanObservation", "r1", "Betpak-Dala", ""])
    wb["occurrences"].append(["Panthera uncia", 42.51234, 77.25123, "2024-03-01", "KGZ", 50, 1, "present",
                              "MachineObservation", "r2", "Tien Shan", ""])
    wb["threats"].append(["4.1", "A-17", "road", 47.51234, 67.23456, "2025-05-01", "Saiga tatarica", "high",
                          "complete barrier", "KAZ"])
    wb["population"].append(["Saiga tatarica", "KAZ", 2025, 2500000, 2800000, 3000000, "individuals", "aerial survey",
                             "ACBK 2025", "national", "increasing", ""])
    filled = tmp_path / "filled.xlsx"
    wb.save(filled)
    report = tmp_path / "r.json"
    code = main(["validate", str(filled), "--report", str(report)])
    data = json.loads(report.read_text())
    assert code == 0, data
    assert (data["rows_in"], data["accepted"], data["rejected"]) == (4, 4, 0)
    assert [p for p in data["problems"] if p["severity"] == "error"] == []


def test_cli_template_command(tmp_path, capsys):
    out = tmp_path / "t.xlsx"
    assert main(["template", str(out)]) == 0
    assert out.exists() and "wrote" in capsys.readouterr().out
