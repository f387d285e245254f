"""The fast paths of validation (pyarrow reading of large files, problems computed for the
flagged rows only, no records for `cami-geo validate`) give the problems and accepted rows
a reader of PRODUCT.md expects, on a messy generated occurrence table.

The expectations name rows and check codes only, not how they are found: each planted
defect must give exactly its errors on its row, every generated good row must pass
without problems, and the same content must give the same problems whether the file is
small (pandas reader) or large (pyarrow reader), with or without records kept.
"""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from cami_geo.boundaries import load_boundaries
from cami_geo.config import load
from cami_geo.intake import report_dict, validate_submission

REPO = Path(__file__).resolve().parents[1]
BOUNDARIES = REPO / "data/raw/boundaries/countries.gpkg"
TODAY = date(2025, 6, 1)
HEADER = ["scientificName", "decimalLatitude", "decimalLongitude", "eventDate", "countryCode", "individualCount"]

# (label, cells, error codes expected on that row); cells override a good row's values
PLANTED = [
    ("swapped", {"decimalLatitude": "73.10000", "decimalLongitude": "49.70000"}, {"coords_swapped"}),
    ("lat missing", {"decimalLatitude": ""}, {"coords_missing"}),
    ("lat NA", {"decimalLatitude": "NA"}, {"coords_missing"}),
    ("lat text", {"decimalLatitude": "abc"}, {"coords_not_numeric"}),
    ("zero", {"decimalLatitude": "0"}, {"coords_zero"}),
    ("out of range", {"decimalLatitude": "95.00000"}, {"coords_out_of_range"}),
    ("future", {"eventDate": "2099-01-01"}, {"date_future"}),
    ("impossible date", {"eventDate": "31.02.2020"}, {"date_invalid"}),
    ("unknown species", {"scientificName": "Foo bar"}, {"species_unknown"}),
    ("no species", {"scientificName": ""}, {"species_missing"}),
    ("negative count", {"individualCount": "-3"}, {"count_invalid"}),
    ("fractional count", {"individualCount": "2.5"}, {"count_invalid"}),
    ("bad country", {"countryCode": "QQ"}, {"country_invalid"}),
    ("in Uzbekistan", {"decimalLatitude": "39.77000", "decimalLongitude": "64.42000"}, {"country_mismatch"}),
    ("decimal comma", {"decimalLatitude": "49,75", "decimalLongitude": "72,95"}, set()),
    ("no date", {"eventDate": ""}, set()),
    ("padded", {"decimalLatitude": " 49.81234 ", "scientificName": " Saiga tatarica "}, set()),
]
DMS = ("dms", {"decimalLatitude": "49°45'00\"N", "decimalLongitude": "72°57'00\"E"}, set())


def _good_rows(n: int, rng: np.random.Generator) -> list[dict[str, str]]:
    lat = rng.uniform(49.5, 50.0, n)
    lon = rng.uniform(72.5, 73.5, n)
    days = rng.integers(0, 365 * 6, n)
    dates = (np.datetime64("2015-01-01") + days.astype("timedelta64[D]")).astype(str)
    rows = []
    for i in range(n):
        d = str(dates[i])
        rows.append({"scientificName": "Saiga tatarica", "decimalLatitude": f"{lat[i]:.5f}",
                     "decimalLongitude": f"{lon[i]:.5f}",
                     "eventDate": d if i % 3 else f"{d[8:10]}.{d[5:7]}.{d[0:4]}",   # ISO and dd.mm.yyyy
                     "countryCode": "KZ" if i % 2 else "KAZ", "individualCount": str(1 + i % 29)})
    return rows


def _table(n_good: int, *, dms: bool, seed: int = 7) -> tuple[list[dict[str, str]], dict[int, tuple[str, set[str]]], dict[int, int]]:
    """Rows, {spreadsheet row: (label, expected errors)} for planted rows, {duplicate row: original row}."""
    rng = np.random.default_rng(seed)
    rows = _good_rows(n_good, rng)
    planted = PLANTED + ([DMS] if dms else [])
    expect: dict[int, tuple[str, set[str]]] = {}
    step = n_good // (len(planted) + 2)
    for k, (label, cells, codes) in enumerate(planted):
        i = (k + 1) * step
        rows[i] = {**rows[i], **cells}
        expect[i + 2] = (label, codes)
    dups = {}
    for k, i in enumerate((5, step + 3, n_good // 2 + 1)):   # exact copies of earlier good rows
        j = n_good - 10 - 2 * k
        rows[j] = dict(rows[i])
        dups[j + 2] = i + 2
        expect[j + 2] = ("duplicate", {"duplicate"})
    return rows, expect, dups


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=HEADER)
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.fixture(scope="module")
def env():
    return load(REPO, REPO, {}), load_boundaries(BOUNDARIES, layer="countries")


def _validate(path: Path, env, *, keep_records: bool):
    settings, boundaries = env
    res = validate_submission(path.parent, settings=settings, boundaries=boundaries, files=[path],
                              kind="occurrences", today=TODAY, keep_records=keep_records)
    return res, res.problems()


@pytest.mark.parametrize("n_good,dms", [(600, False), (22000, False), (600, True)], ids=["small", "large", "dms"])
def test_planted_problems_exactly(tmp_path, env, n_good, dms):
    rows, expect, dups = _table(n_good, dms=dms)
    path = _write(tmp_path / "occurrences_messy.csv", rows)
    if n_good > 10000:
        assert path.stat().st_size > 1_000_000  # large enough for the pyarrow reader
    res, p = _validate(path, env, keep_records=False)
    errors = p[p["severity"] == "error"]
    got = {int(r): set(g["code"]) for r, g in errors.groupby("row")}
    want = {r: codes for r, (_, codes) in expect.items() if codes}
    assert got == want
    # generated good rows have no problem at all (planted rows may carry warnings)
    assert set(p["row"].dropna().astype(int)) <= set(expect)
    for dup_row, first_row in dups.items():
        reason = errors.loc[(errors["row"] == dup_row) & (errors["code"] == "duplicate"), "reason"].iloc[0]
        assert f"row {first_row} " in reason
    assert res.rows_in == len(rows)
    assert res.rejected == len(want)
    assert res.accepted == len(rows) - len(want)
    reasons = dict(zip(errors["row"].astype(int), errors["reason"]))
    label_row = {label: r for r, (label, _) in expect.items()}
    assert "swapped" in reasons[label_row["swapped"]]
    assert "'31.02.2020'" in reasons[label_row["impossible date"]]
    assert "'QQ'" in reasons[label_row["bad country"]]
    assert "did you mean" in reasons[label_row["unknown species"]] or "not a registered" in reasons[label_row["unknown species"]]
    missing = p[(p["code"] == "date_missing")]
    assert list(missing["row"].astype(int)) == [label_row["no date"]]
    assert set(p.loc[p["row"] == label_row["lat text"], "value"]) == {"abc"}


def test_same_problems_small_large_and_with_records(tmp_path, env):
    """The planted rows, read small (pandas) and large (pyarrow), with and without records,
    give the same problems relative to their rows; records hold exactly the accepted rows."""
    out = {}
    for n_good in (600, 22000):
        rows, expect, _ = _table(n_good, dms=False)
        path = _write(tmp_path / f"occurrences_{n_good}.csv", rows)
        label_of = {r: label for r, (label, _) in expect.items()}
        for keep in (False, True):
            res, p = _validate(path, env, keep_records=keep)
            planted = p[p["row"].isin(list(label_of))]
            rel = sorted((label_of[int(r)], c, s, "" if c == "duplicate" else reason, "" if c == "duplicate" else v)
                         for r, c, s, reason, v in zip(planted["row"], planted["code"], planted["severity"],
                                                       planted["reason"], planted["value"]))
            out[n_good, keep] = rel
            if keep:
                recs = res.records("occurrences")
                assert len(recs) == res.accepted
                rejected_rows = set(p.loc[p["severity"] == "error", "row"].astype(int))
                assert set(recs["source_row"].astype(int)).isdisjoint(rejected_rows)
                assert len(recs) + len(rejected_rows) == len(rows)
                assert set(recs["iso3"]) == {"KAZ"}
                assert (recs["decimal_latitude"].between(49.5, 50.0)).all()
            else:
                report = report_dict(res)
                assert report["rows_in"] == len(rows)
    for n_good in (600, 22000):
        assert out[n_good, False] == out[n_good, True]
    # the texts hold the (random) values of each table; the findings are the same
    assert [r[:3] for r in out[600, False]] == [r[:3] for r in out[22000, False]]
