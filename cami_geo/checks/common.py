"""What every check needs: the context of a submission and the shared field resolvers
(species, country, dates) that each add their own problems."""

from __future__ import annotations

import os
import threading
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


PARALLEL_MIN_ROWS = 50_000
"""Frames from this many rows have their column checks run in threads."""
_POOL = None
_POOL_LOCK = threading.Lock()
_WORKER_PREFIX = "cami-geo-check"


def _pool():
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            from concurrent.futures import ThreadPoolExecutor

            # the main thread works too: one worker per further core, at most two
            _POOL = ThreadPoolExecutor(max_workers=max(1, min(2, (os.cpu_count() or 2) - 1)), thread_name_prefix=_WORKER_PREFIX)
    return _POOL


class Tasks:
    """Checks of a frame run in threads (numpy, pandas and pyarrow release the interpreter
    lock in their loops), or one after the other, with the same result.

    :meth:`run` gives each check its own :class:`ProblemLog`; calling the function it
    returns waits for the check, appends its problems to the log given to :meth:`run` (unless
    called with ``join=False``) and returns its result. Append them in the order the checks
    would run one after the other, so the problems come in that order. Without threads a
    check runs when its result is first asked for.
    """

    def __init__(self, parallel: bool = True):
        self.parallel = parallel and not threading.current_thread().name.startswith(_WORKER_PREFIX)

    def call(self, fn, *args, **kwargs):
        """Start ``fn(*args, **kwargs)`` (a computation that adds no problems); returns the
        function giving its result."""
        if self.parallel:
            return _pool().submit(fn, *args, **kwargs).result
        done = []

        def result():
            if not done:
                done.append(fn(*args, **kwargs))
            return done[0]
        return result

    def run(self, log: ProblemLog, fn, f: pd.DataFrame, *args, **kwargs):
        """Start ``fn(f, its_own_log, *args, **kwargs)``; returns the function giving its result."""
        sub = ProblemLog(log.file, log.rows, log.overrides)
        get = self.call(fn, f, sub, *args, **kwargs)
        joined = []

        def result(join: bool = True):
            """The check's result; with ``join``, its problems are appended to the log (once)."""
            out = get()
            if join and not joined:
                log.parts.extend(sub.parts)
                joined.append(True)
            return out
        return result


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


def obj_full(n: int, value) -> np.ndarray:
    """``np.full(n, value, dtype=object)`` for a text ``value`` (numpy converts a text cell
    by cell in ``np.full``; assigning it to an empty object array does not)."""
    out = np.empty(n, dtype=object)
    out[:] = value
    return out


def string_buffers(chunk):
    """(offsets, bytes) of one pyarrow string array as numpy views (no copy), or None for
    another type. ``offsets`` has one entry more than the array; cell ``i`` is
    ``bytes[offsets[i]:offsets[i + 1]]`` (whatever it holds where the cell is null)."""
    import pyarrow as pa

    if pa.types.is_large_string(chunk.type):
        odt = np.int64
    elif pa.types.is_string(chunk.type):
        odt = np.int32
    else:
        return None
    n = len(chunk)
    bufs = chunk.buffers()
    if n == 0 or bufs[1] is None:
        return np.zeros(1, dtype=odt), np.zeros(0, dtype=np.uint8)
    offsets = np.frombuffer(bufs[1], dtype=odt, count=chunk.offset + n + 1)[chunk.offset:]
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None and bufs[2].size else np.zeros(0, dtype=np.uint8)
    return offsets, data


def _may_need_strip(arr) -> bool:
    """Whether a cell of a pyarrow text column may start or end with whitespace (False only
    when no cell starts or ends with a byte <= 0x20 or >= 0x7F: then stripping changes nothing)."""
    for chunk in arr.chunks:
        sb = string_buffers(chunk)
        if sb is None:
            return True
        off, data = sb
        body = data[off[0]:off[-1]]
        if not len(body) or ((body > 0x20) & (body < 0x7F)).all():
            continue  # no whitespace (nor a non-ASCII byte) anywhere in the chunk
        start, end = off[:-1], off[1:]
        some = end > start
        if not some.all():
            start, end = start[some], end[some]
        if not len(start):
            continue
        first, last = data[start], data[end - 1]
        if ((first <= 0x20) | (first >= 0x7F) | (last <= 0x20) | (last >= 0x7F)).any():
            return True
    return False


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
        arr = getattr(s.array, "_pa_array", None)
    if arr is not None and not _may_need_strip(arr):
        return s  # no cell starts or ends with whitespace: stripping would copy 10^6 cells for nothing
    return s.str.strip()


def value_text(f: pd.DataFrame, col: str) -> pd.Series:
    """Like :func:`text` for numeric and date fields: 'NA', 'NULL', '-' ... read as empty."""
    t = text(f, col)
    return t.where(~t.isin(NULL_TOKENS), "")


def text_codes(f: pd.DataFrame, col: str, *, null_tokens: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``factorize(text(f, col))`` (``value_text`` with ``null_tokens``), the same codes and
    texts, with the stripping done on the distinct cells only."""
    s = f[col] if col in f.columns else None
    if s is None or s.dtype != "str" or getattr(s.array, "_pa_array", None) is None:
        t = value_text(f, col) if null_tokens else text(f, col)
        return factorize(t)
    codes, raw = pd.factorize(s, use_na_sentinel=False)   # distinct cells in order of appearance
    u = text(pd.DataFrame({col: pd.Series(raw, dtype="str")}), col)
    if null_tokens:
        u = u.where(~u.isin(NULL_TOKENS), "")
    c2, uniq = factorize(u)   # cells equal after stripping share a code (first appearance order kept)
    return c2[np.asarray(codes)], uniq


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
    codes, uniq, slug_u, sci_u, key, slug_codes, s_names = species_codes(f, log, ctx, required=required)
    return slug_u[codes], sci_u[codes], uniq[codes], key, slug_codes, s_names


def species_codes(f: pd.DataFrame, log: ProblemLog, ctx: CheckContext, *, required: bool = True) -> tuple[np.ndarray, ...]:
    """:func:`resolve_species_coded` with the per-row texts left as codes: (codes, verbatim
    name, slug and scientific name per code, species key, slug codes, distinct slugs)."""
    codes, uniq = text_codes(f, "species")
    if ctx.species and len(uniq) and (uniq == "").any():
        c2, u2 = pd.factorize(np.where(uniq != "", uniq, ctx.species).astype(object), use_na_sentinel=False)
        codes, uniq = np.asarray(c2)[codes], np.asarray(u2, dtype=object)
    slug_u = np.array([(ctx.registry.resolve_species(v) or "") if v else "" for v in uniq], dtype=object)
    sci_u = np.array([ctx.registry.species[s].scientific_name if s else "" for s in slug_u], dtype=object)
    missing_u = np.asarray(uniq == "", dtype=bool)
    if required:
        log.add("species_missing", missing_u[codes], "species",
                "no species given: add a species (scientificName) column or set species in submission.yaml")
    unknown_u = (~missing_u) & np.asarray(slug_u == "", dtype=bool)
    unknown = unknown_u[codes]
    if unknown.any():
        hint_of = {}
        for v in pd.unique(uniq[unknown_u]):
            hints = ctx.registry.suggest_species(v)
            hint_of[v] = (f"species {v!r} is not a registered CAMI species"
                          + (f"; did you mean {' or '.join(hints)}?" if hints else "; add it under registry.species in the configuration if it should be"))
        log.add("species_unknown", unknown, "species", lambda i: [hint_of.get(v, "") for v in uniq[codes[i]]], at_codes(codes, uniq))
    key_u = np.array([s if s != "" else v for s, v in zip(slug_u, uniq)], dtype=object)
    key = pd.factorize(key_u, use_na_sentinel=False)[0][codes] if len(uniq) else np.zeros(0, dtype=np.int64)
    s_codes, s_names = pd.factorize(slug_u, use_na_sentinel=False)
    slug_codes = s_codes[codes] if len(uniq) else np.zeros(0, dtype=np.int64)
    return codes, uniq, slug_u, sci_u, key, slug_codes, np.asarray(s_names, dtype=object)


def at_codes(codes: np.ndarray, uniq: np.ndarray):
    """Problem values of a column held as codes into its distinct texts, made for the flagged positions only."""
    return lambda i: uniq[codes[i]]


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
    codes, raw_u, iso_u = resolve_countries_coded(f, log, ctx, field_name=field_name, invalid_code=invalid_code)
    return iso_u[codes], raw_u[codes]


def resolve_countries_coded(f: pd.DataFrame, log: ProblemLog, ctx: CheckContext, *, field_name: str = "countryCode",
                            invalid_code: str = "country_invalid") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`resolve_countries` as (codes, distinct raw texts, their ISO3s)."""
    codes, uniq = text_codes(f, "iso3")
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
    iso_u = np.array([iso_of[v] for v in uniq], dtype=object)
    bad_u = np.asarray(iso_u == "?", dtype=bool)
    log.add(invalid_code, bad_u[codes], field_name,
            lambda i: ["country {!r} is not an ISO 3166 code or a Range State name".format(v) for v in uniq[codes[i]]],
            at_codes(codes, uniq))
    iso_u[bad_u] = ""
    return codes, uniq, iso_u


def resolve_dates(f: pd.DataFrame, log: ProblemLog, ctx: CheckContext, *, warn_missing: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """ISO event dates and years; problems for unreadable, impossible, future and missing dates."""
    iso, year, _ = resolve_dates_coded(f, log, ctx, warn_missing=warn_missing)
    return iso, year


def resolve_dates_coded(f: pd.DataFrame, log: ProblemLog, ctx: CheckContext, *, warn_missing: bool = True,
                        values: bool = True) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray]:
    """:func:`resolve_dates`, plus integer codes equal where the ISO dates are equal
    (with ``values=False`` only the codes: the dates and years are None)."""
    codes, uniq = text_codes(f, "event_date", null_tokens=True)
    iso_u, year_u, status_u = parse_dates(pd.Series(uniq, dtype=object))
    iso_u = iso_u.to_numpy(dtype=object)
    iso = year = None
    rawv = at_codes(codes, uniq)
    today = ctx.today.isoformat()
    # ISO text compares in date order, partial dates too
    ok_u = status_u == "ok"
    future_u = (ok_u & (iso_u.astype(str) > today)) if len(uniq) else np.zeros(0, dtype=bool)
    iso_codes = pd.factorize(iso_u, use_na_sentinel=False)[0][codes] if len(uniq) else np.zeros(0, dtype=np.int64)
    status = None   # per row only when a year column fills missing dates; else per distinct date
    if "year" in f.columns:
        y = parse_year(text(f, "year"))
        status = status_u[codes]
        from_year = (status == "missing") & np.isfinite(y)
        if from_year.any():
            iso, year = iso_u[codes], year_u[codes]
            future = future_u[codes]
            iso_codes = None
            iso[from_year] = np.char.mod("%d", y[from_year]).astype(object)
            year[from_year] = y[from_year]
            status = np.where(from_year, "ok", status)
            future[from_year] = iso[from_year].astype(str) > today
        else:
            status = None
    if status is None:
        bad = (status_u == "invalid")[codes]
        old = (ok_u & (year_u < 1700))[codes]
        future = future_u[codes]
        missing = (status_u == "missing")[codes]
    else:
        bad = status == "invalid"
        old = (status == "ok") & (year < 1700)
        missing = status == "missing"
    log.add("date_invalid", bad, "eventDate",
            lambda i: ["date {!r} is not a real date in a form we read (YYYY-MM-DD, dd.mm.yyyy, dd/mm/yyyy, YYYY-MM, YYYY)".format(v)
                       for v in rawv(i)],
            rawv)
    log.add("date_future", future, "eventDate", f"date is after today ({today})", rawv)
    log.add("date_invalid", old, "eventDate", "date is before 1700; check the year", rawv)
    if warn_missing:
        log.add("date_missing", missing, "eventDate", "no date given; the record counts for no year")
    if iso_codes is None:
        iso_codes = pd.factorize(iso.astype(object), use_na_sentinel=False)[0]
    if values and iso is None:
        iso, year = iso_u[codes], year_u[codes]
    return iso, year, iso_codes
