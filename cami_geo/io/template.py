"""The submission workbook SFPs fill in (``cami-geo template FILE.xlsx``).

Sheets ``occurrences``, ``threats`` and ``population`` with Darwin Core / cami-geo column
names and drop-down lists (species, countries, IUCN threat codes, units, barrier classes,
occurrence status, trend), an ``instructions`` sheet (with the sensitivity drop-down for
submission.yaml) and a hidden ``lists`` sheet the drop-downs read. A filled workbook is
read sheet by sheet by the intake (each sheet is its own kind).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..model import BARRIER_CLASSES
from ..registry import SENSITIVITY_LEVELS, Registry, default_registry

SHEETS: dict[str, list[tuple[str, str]]] = {
    # sheet: [(column, help text)]
    "occurrences": [
        ("scientificName", "species: pick from the list (synonyms and common names are also understood)"),
        ("decimalLatitude", "WGS84 decimal degrees, e.g. 48.12345 (DMS like 48°07'24\"N is converted)"),
        ("decimalLongitude", "WGS84 decimal degrees, e.g. 66.56789"),
        ("eventDate", "YYYY-MM-DD (or YYYY-MM, YYYY)"),
        ("countryCode", "ISO 3166 alpha-3 of the country the point is in"),
        ("coordinateUncertaintyInMeters", "metres; leave empty if unknown (0 is not valid)"),
        ("individualCount", "whole number of animals, 0 or more"),
        ("occurrenceStatus", "present or absent"),
        ("basisOfRecord", "HumanObservation, MachineObservation (camera trap), PreservedSpecimen ..."),
        ("occurrenceID", "your own unique id for the record"),
        ("locality", "place name"),
        ("recordedBy", "observer (optional; leave empty to keep names private)"),
    ],
    "threats": [
        ("iucn_code", "IUCN Threats Classification Scheme 3.3 code, e.g. 4.1 roads & railroads"),
        ("name", "name of the feature (road, fence, mine ...)"),
        ("threat_type", "free text: type of infrastructure or activity"),
        ("decimalLatitude", "WGS84 decimal degrees of the threat point"),
        ("decimalLongitude", "WGS84 decimal degrees"),
        ("eventDate", "YYYY-MM-DD when observed"),
        ("species", "species affected (optional)"),
        ("severity", "free text, e.g. low / medium / high"),
        ("barrier_class", "for infrastructure: " + ", ".join(BARRIER_CLASSES)),
        ("countryCode", "ISO 3166 alpha-3"),
    ],
    "population": [
        ("species", "species: pick from the list"),
        ("countryCode", "Range State, ISO 3166 alpha-3"),
        ("year", "year of the estimate"),
        ("estimate_min", "lower bound (optional)"),
        ("estimate_best", "best estimate"),
        ("estimate_max", "upper bound (optional)"),
        ("unit", "individuals or mature individuals"),
        ("method", "survey method"),
        ("source", "reference or URL"),
        ("scope", "national, subnational:<area> or subpopulation:<name>"),
        ("trend", "increasing, decreasing, stable, fluctuating or unknown"),
        ("notes", "anything else"),
    ],
}

UNITS = ("individuals", "mature individuals")
TRENDS = ("increasing", "decreasing", "stable", "fluctuating", "unknown")
STATUS = ("present", "absent")
BASIS = ("HumanObservation", "MachineObservation", "PreservedSpecimen", "MaterialSample", "Occurrence")
MAX_ROWS = 5000


def _lists(registry: Registry) -> dict[str, list[Any]]:
    return {
        "species": sorted(s.scientific_name for s in registry.species.values()),
        "countries": sorted(registry.states),
        "threat_codes": list(registry.threats),
        "threat_names": [t.name for t in registry.threats.values()],
        "units": list(UNITS),
        "sensitivity": list(SENSITIVITY_LEVELS),
        "barrier_classes": list(BARRIER_CLASSES),
        "occurrence_status": list(STATUS),
        "basis_of_record": list(BASIS),
        "trend": list(TRENDS),
    }


DROPDOWNS = {
    ("occurrences", "scientificName"): "species", ("occurrences", "countryCode"): "countries",
    ("occurrences", "occurrenceStatus"): "occurrence_status", ("occurrences", "basisOfRecord"): "basis_of_record",
    ("threats", "iucn_code"): "threat_codes", ("threats", "species"): "species", ("threats", "countryCode"): "countries",
    ("threats", "barrier_class"): "barrier_classes",
    ("population", "species"): "species", ("population", "countryCode"): "countries", ("population", "unit"): "units",
    ("population", "trend"): "trend",
}


def write_template(path: str | Path, *, registry: Registry | None = None) -> Path:
    """Write the submission workbook.

    Parameters
    ----------
    path : the .xlsx file to write
    registry : species, countries and threats for the drop-down lists (default: shipped)

    Returns
    -------
    The path written.
    """
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    registry = registry or default_registry()
    path = Path(path)
    lists = _lists(registry)
    wb = Workbook()
    ins = wb.active
    ins.title = "instructions"
    lst = wb.create_sheet("lists")
    names = list(lists)
    ranges = {}
    for j, key in enumerate(names, start=1):
        col = get_column_letter(j)
        lst.cell(row=1, column=j, value=key).font = Font(bold=True)
        for i, v in enumerate(lists[key], start=2):
            lst.cell(row=i, column=j, value=str(v)).number_format = "@"
        ranges[key] = f"lists!${col}$2:${col}${len(lists[key]) + 1}"
    lst.sheet_state = "hidden"
    head = PatternFill("solid", fgColor="DDEBF7")
    for sheet, cols in SHEETS.items():
        ws = wb.create_sheet(sheet)
        for j, (col, help_) in enumerate(cols, start=1):
            c = ws.cell(row=1, column=j, value=col)
            c.font, c.fill = Font(bold=True), head
            ws.column_dimensions[get_column_letter(j)].width = max(14, len(col) + 2)
            letter = get_column_letter(j)
            if col in ("iucn_code", "countryCode", "eventDate"):
                for r in range(2, 200):
                    ws.cell(row=r, column=j).number_format = "@"
            key = DROPDOWNS.get((sheet, col))
            if key:
                dv = DataValidation(type="list", formula1=f"={ranges[key]}", allow_blank=True, showErrorMessage=True,
                                    errorTitle="Not in the list", error=f"Pick a value from the list ({key}).")
                dv.add(f"{letter}2:{letter}{MAX_ROWS}")
                ws.add_data_validation(dv)
            elif col in ("decimalLatitude", "decimalLongitude"):
                lo, hi = (-90, 90) if col == "decimalLatitude" else (-180, 180)
                dv = DataValidation(type="decimal", operator="between", formula1=str(lo), formula2=str(hi), allow_blank=True,
                                    showErrorMessage=True, error=f"Decimal degrees between {lo} and {hi}.")
                dv.add(f"{letter}2:{letter}{MAX_ROWS}")
                ws.add_data_validation(dv)
            elif col in ("individualCount", "year", "estimate_min", "estimate_best", "estimate_max", "coordinateUncertaintyInMeters"):
                dv = DataValidation(type="decimal", operator="greaterThanOrEqual", formula1="0", allow_blank=True,
                                    showErrorMessage=True, error="A number of 0 or more.")
                dv.add(f"{letter}2:{letter}{MAX_ROWS}")
                ws.add_data_validation(dv)
        ws.freeze_panes = "A2"
    # instructions
    ins.column_dimensions["A"].width = 32
    ins.column_dimensions["B"].width = 100
    lines = [
        ("CAMI submission workbook", "Fill one row per record in the sheets occurrences, threats and population; leave "
                                     "sheets you do not need empty. Keep the header row (row 1) as it is."),
        ("Checking", "Run `cami-geo validate THIS_FILE.xlsx` before sending: it says, per row, what is wrong."),
        ("Coordinates", "WGS84 decimal degrees (latitude first column, longitude second)."),
        ("Sensitivity", "Pick how precisely locations may be published (copy it into submission.yaml as sensitivity:)."),
        ("sensitivity", ""),
        ("Threat codes", "IUCN Threats Classification Scheme 3.3; the hidden sheet 'lists' has every code with its name."),
    ]
    for i, (a, b) in enumerate(lines, start=1):
        ins.cell(row=i, column=1, value=a).font = Font(bold=True)
        ins.cell(row=i, column=2, value=b)
    dv = DataValidation(type="list", formula1=f"={ranges['sensitivity']}", allow_blank=True)
    dv.add("B5")
    ins.add_data_validation(dv)
    row = len(lines) + 2
    for sheet, cols in SHEETS.items():
        ins.cell(row=row, column=1, value=f"Sheet {sheet}").font = Font(bold=True)
        row += 1
        for col, help_ in cols:
            ins.cell(row=row, column=1, value=col)
            ins.cell(row=row, column=2, value=help_)
            row += 1
        row += 1
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path
