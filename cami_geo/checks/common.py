"""What every check needs: the context of a submission and the shared field resolvers
(species, country, dates) that each add their own problems."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any

import numpy as np
import pandas as pd

from ..io.dates import parse_dates, parse_year
from ..registry import Registry
from . import ProblemLog
from .geo import Countries


@dataclass
class CheckContext:
    """Everything a check reads besides the rows.

    Parameters
    ----------
    registry : species, Range States, threats (config additions applied)
    countries : boundary polygons prepared for point tests
    checks : config ``checks`` section (thresholds, ``severity`` overrides)
    species : species for rows without a species column (manifest or ``--species``)
    crs : default CRS for x/y columns (manifest)
    today : dates after this are in the future
    """

    registry: Registry
    countries: Countries
    checks: dict[str, Any] = field(default_factory=dict)
    species: str | None = None
    crs: str | None = None
    range_states: tuple[str, ...] = ()
    today: date = field(default_factory=lambda: datetime.now(timezone.utc).date())

    @property
    def overrides(self) -> dict[str, str]:
        return dict(self.checks.get("severity") or {})

    def threshold(self, key: str, default: float) -> float:
        value = self.checks.get(key)
        return float(default if value is None else value)


def fill(mask: np.ndarray, fmt: str, *arrays) -> np.ndarray:
    """Reason texts: ``fmt`` formatted with the arrays' values where ``mask`` holds, '' elsewhere."""
    out = np.full(len(mask), "", dtype=object)
    idx = np.flatnonzero(mask)
    if len(idx):
        out[idx] = [fmt.format(*vals) for vals in zip(*(np.asarray(a)[idx] for a in arrays))]
    return out


def factorize(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(codes, unique texts as an object array): work on the few distinct values of a column."""
    codes, uniq = pd.factorize(values, use_na_sentinel=False)
    return np.asarray(codes), np.asarray(uniq, dtype=object)


NULL_TOKENS = ("NA", "N/A", "n/a", "NULL", "null", "None", "NaN", "nan", "-", "—")
"""Cells R, Excel and databases write for 'no value' (read as empty in numeric and date fields)."""


def lookup(keys, mapping: dict, default=None, dtype=object) -> np.ndarray:
    """``mapping[k]`` for each key (``default`` where absent), computed once per distinct key.

    ``keys`` is an array, or the ``(codes, uniques)`` pair of :func:`factorize` to reuse.
    """
    if isinstance(keys, tuple):
        codes, uniq = keys
    else:
        codes, uniq = pd.factorize(np.asarray(keys, dtype=object), use_na_sentinel=False)
    return np.array([mapping.get(k, default) for k in uniq], dtype=dtype)[codes] if len(uniq) else np.array([], dtype=dtype)


def to_number(values: pd.Series, *, cleaned: bool = False) -> np.ndarray:
    """Text cells as floats (decimal comma accepted; NaN where empty or not a number).

    Fast path: pyarrow's cast when every non-empty cell is a plain number. ``cleaned``:
    the caller already turned decimal commas into points and null tokens into ''.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    t = values if values.dtype == "str" else values.astype("str")
    if not cleaned:
        t = t.str.replace(",", ".", regex=False)
        nulls = t.isin(NULL_TOKENS)
        if nulls.any():
            t = t.where(~nulls, "")
    try:
        arr = pa.array(t.array, type=pa.string()) if not isinstance(t.array, pd.arrays.ArrowStringArray) else t.array._pa_array
        arr = pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr)
        return np.array(pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False), dtype=float)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, AttributeError, TypeError):
        return np.array(pd.to_numeric(t, errors="coerce"), dtype=float)


def text(f: pd.DataFrame, col: str) -> pd.Series:
    """Column ``col`` as stripped text ('' where absent)."""
    if col not in f.columns:
        return pd.Series("", index=f.index, dtype="str")
    s = f[col]
    if s.dtype != "str":
        s = s.astype("str")
    arr = getattr(s.array, "_pa_array", None)
    if arr is None or arr.null_count:  # no null test of 10^6 cells when arrow knows there are none
        s = s.fillna("")
    return s.str.strip()


def value_text(f: pd.DataFrame, col: str) -> pd.Series:
    """Like :func:`text` for numeric and date fields: 'NA', 'NULL', '-' ... read as empty."""
    t = text(f, col)
    return t.where(~t.isin(NULL_TOKENS), "")


def resolve_species(f: pd.DataFrame, log: ProblemLog, ctx: CheckContext, *, required: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Resolve each row's species (column, else the submission's species).

    Returns (slug, accepted scientific name, verbatim name) arrays; '' where unresolved.
    Adds ``species_missing`` / ``species_unknown`` (with the nearest names) problems.
    """
    slug, sci, vb, *_ = resolve_species_coded(f, log, ctx, required=required)
    return slug, sci, vb


def resolve_species_coded(f: pd.DataFrame, log: ProblemLog, ctx: CheckContext, *,
                          required: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`resolve_species`, plus integer codes equal where the species (slug, else the
    verbatim name) are equal, and the slugs as codes into an array of distinct slugs."""
    verbatim = text(f, "species")
    if ctx.species:
        verbatim = verbatim.where(verbatim != "", ctx.species)
    codes, uniq = factorize(verbatim)
    slug_u = np.array([(ctx.registry.resolve_species(v) or "") if v else "" for v in uniq], dtype=object)
    sci_u = np.array([ctx.registry.species[s].scientific_name if s else "" for s in slug_u], dtype=object)
    slug, sci, vb = slug_u[codes], sci_u[codes], uniq[codes]
    missing = vb == ""
    if required:
        log.add("species_missing", missing, "species",
                "no species given: add a species (scientificName) column or set species in submission.yaml")
    unknown = (~missing) & (slug == "")
    if unknown.any():
        hint_of = {}
        for v in pd.unique(vb[unknown]):
            hints = ctx.registry.suggest_species(v)
            hint_of[v] = (f"species {v!r} is not a registered CAMI species"
                          + (f"; did you mean {' or '.join(hints)}?" if hints else "; add it under registry.species in the configuration if it should be"))
        log.add("species_unknown", unknown, "species", lambda i: [hint_of.get(v, "") for v in vb[i]], vb)
    key_u = np.array([s if s != "" else v for s, v in zip(slug_u, uniq)], dtype=object)
    key = pd.factorize(key_u, use_na_sentinel=False)[0][codes] if len(uniq) else np.zeros(0, dtype=np.int64)
    s_codes, s_names = pd.factorize(slug_u, use_na_sentinel=False)
    slug_codes = s_codes[codes] if len(uniq) else np.zeros(0, dtype=np.int64)
    return slug, sci, vb, key, slug_codes, np.asarray(s_names, dtype=object)


ISO2_NEIGHBOURS = dict(pair.split(":") for pair in (
    "AL:ALB AZ:AZE BH:BHR BD:BGD AM:ARM BT:BTN BG:BGR MM:MMR BY:BLR CN:CHN CY:CYP EE:EST FI:FIN GE:GEO GR:GRC "
    "IN:IND IR:IRN IQ:IRQ IL:ISR KZ:KAZ JO:JOR KP:PRK KR:KOR KW:KWT KG:KGZ LA:LAO LB:LBN LV:LVA LT:LTU MN:MNG "
    "OM:OMN NP:NPL NO:NOR PK:PAK PL:POL QA:QAT RU:RUS SA:SAU PS:PSE SY:SYR TJ:TJK AE:ARE TR:TUR UA:UKR EG:EGY "
    "UZ:UZB VN:VNM JP:JPN LK:LKA MV:MDV YE:YEM MD:MDA RO:ROU AF:AFG TM:TKM").split())
"""ISO alpha-2 -> alpha-3 for the countries of the shipped boundary layer (Range States and
their neighbours), so a neighbour's code such as 'UA' is understood."""


def resolve_countries(f: pd.DataFrame, log: ProblemLog, ctx: CheckContext, *, field_name: str = "countryCode",
                      invalid_code: str = "country_invalid") -> tuple[np.ndarray, np.ndarray]:
    """ISO3 of each row's declared country ('' where none or unrecognised), and the raw text."""
    raw = text(f, "iso3")
    codes, uniq = factorize(raw)
    known = set(ctx.countries.iso3)
    iso_of = {}
    for v in uniq:
        if not v or v.upper() in ("ZZ", "XX", "UNKNOWN"):
            iso_of[v] = ""
            continue
        iso = ctx.registry.resolve_country(v)
        if iso is None and v.upper() in known:
            iso = v.upper()
        if iso is None and ISO2_NEIGHBOURS.get(v.upper()) in known:
            iso = ISO2_NEIGHBOURS[v.upper()]
        iso_of[v] = iso or "?"
    iso = np.array([iso_of[v] for v in uniq], dtype=object)[codes]
    rawv = uniq[codes]
    bad = iso == "?"
    log.add(invalid_code, bad, field_name, lambda i: ["country {!r} is not an ISO 3166 code or a Range State name".format(v) for v in rawv[i]],
            rawv)
    iso[bad] = ""
    return iso, rawv


def resolve_dates(f: pd.DataFrame, log: ProblemLog, ctx: CheckContext, *, warn_missing: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """ISO event dates and years; problems for unreadable, impossible, future and missing dates."""
    iso, year, _ = resolve_dates_coded(f, log, ctx, warn_missing=warn_missing)
    return iso, year


def resolve_dates_coded(f: pd.DataFrame, log: ProblemLog, ctx: CheckContext, *,
                        warn_missing: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`resolve_dates`, plus integer codes equal where the ISO dates are equal."""
    raw = text(f, "event_date")
    raw = raw.where(~raw.isin(NULL_TOKENS), "")
    codes, uniq = factorize(raw)
    iso_u, year_u, status_u = parse_dates(pd.Series(uniq, dtype=object))
    iso_u = iso_u.to_numpy(dtype=object)
    iso, year, status = iso_u[codes], year_u[codes], status_u[codes]
    rawv = uniq[codes]
    today = ctx.today.isoformat()
    # ISO text compares in date order, partial dates too
    future = ((status_u == "ok") & (iso_u.astype(str) > today))[codes] if len(uniq) else np.zeros(0, dtype=bool)
    iso_codes = pd.factorize(iso_u, use_na_sentinel=False)[0][codes] if len(uniq) else np.zeros(0, dtype=np.int64)
    if "year" in f.columns:
        y = parse_year(text(f, "year"))
        from_year = (status == "missing") & np.isfinite(y)
        if from_year.any():
            iso_codes = None
            iso[from_year] = np.char.mod("%d", y[from_year]).astype(object)
            year[from_year] = y[from_year]
            status = np.where(from_year, "ok", status)
            future[from_year] = iso[from_year].astype(str) > today
    bad = status == "invalid"
    log.add("date_invalid", bad, "eventDate",
            lambda i: ["date {!r} is not a real date in a form we read (YYYY-MM-DD, dd.mm.yyyy, dd/mm/yyyy, YYYY-MM, YYYY)".format(v)
                       for v in rawv[i]],
            rawv)
    old = (status == "ok") & (year < 1700)
    log.add("date_future", future, "eventDate", f"date is after today ({today})", rawv)
    log.add("date_invalid", old, "eventDate", "date is before 1700; check the year", rawv)
    if warn_missing:
        log.add("date_missing", status == "missing", "eventDate", "no date given; the record counts for no year")
    if iso_codes is None:
        iso_codes = pd.factorize(iso.astype(object), use_na_sentinel=False)[0]
    return iso, year, iso_codes
