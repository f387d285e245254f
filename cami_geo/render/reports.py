"""Technical documents: species status reports, Range State profiles, the pre-filled status
form and the annual web article draft (HTML, DOCX, PDF, Markdown).

Documents are built only from the status tables, the population table, the provenance table
(submissions.csv) and the map images: never from precise coordinates. Every figure is shown
as it stands in ``status_by_country.csv`` / ``status_by_species.csv`` (formatted by
:func:`format_number`), with its cycle or year and its source. Submission text is data:
escaped by :func:`cami_geo.render.escape.escape_html` in HTML (through the template
environment's ``finalize``), inserted as text runs in DOCX, backslash-escaped in Markdown.

Public functions
----------------
- :func:`run_report_species_stage` / :func:`run_report_country_stage`: the workflow stages.
- :func:`species_context` / :func:`country_context`: the document content as display strings.
- :func:`render_html`, :func:`write_pdf`, :func:`article_markdown`: the renderers;
  :func:`print_context` gives the PDF its static map at print resolution (:func:`print_png`).
- :func:`format_number`: the one number format of every document.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import datetime as _dt
import hashlib
import importlib
import io
import logging
import math
import os
import re
from pathlib import Path
from typing import Any, Callable, Iterable

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from ..errors import InputError
from ..registry import UNVERIFIED, Registry
from .charts import chart_cache_dir, population_chart
from .cycles import no_cycle_collection
from .escape import _REPLACEMENTS, escape_html

log = logging.getLogger("cami_geo.render.reports")

SYNTHETIC_BANNER = "Synthetic demo data"
PRELIMINARY = "PRELIMINARY"
TO_COMPLETE = "[to complete]"
DEFAULT_DISCLAIMER = (
    "The designations employed and the presentation of material on this map do not imply the "
    "expression of any opinion whatsoever on the part of the Secretariat of the United Nations "
    "concerning the legal status of any country, territory, city or any area or of its "
    "authorities, or concerning the delimitation of its frontiers or boundaries.")
_CTRL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TRUE = {"true", "yes", "1", "y", "t"}
_FALSE = {"false", "no", "0", "n", "f", "", "nan", "none"}

# Range State table: (key, header); the same fields in HTML, DOCX and PDF.
ROW_FIELDS = [
    ("estimate", "Population estimate"),
    ("year", "Year"),
    ("method", "Method"),
    ("source", "Source"),
    ("scope", "Scope"),
    ("trend", "Trend"),
    ("eoo", "EOO km²"),
    ("aoo", "AOO km²"),
    ("records", "Records"),
    ("main_threats", "Main threats"),
    ("data_gap", "Data gap"),
]


# -- text and numbers ---------------------------------------------------------------------
_MISSING = ("nan", "none", "<na>", "nat")


def clean_text(value: Any) -> str:
    """Text of a cell: '' for missing values, control characters removed (XML forbids them)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    text = str(value)
    stripped = text.strip()
    if len(stripped) <= 4 and stripped.lower() in _MISSING:  # (no lower-casing of long text)
        return ""
    if _CTRL.search(text):
        return _CTRL.sub("", text).strip()
    return stripped


def _float(value: Any) -> float | None:
    text = clean_text(value).replace(",", "")
    if not text:
        return None
    try:
        out = float(text)
    except ValueError:
        return None
    return None if math.isnan(out) or math.isinf(out) else out


def format_number(value: Any) -> str:
    """The one number format of every document: thousands separated by commas, whole
    numbers without decimals, values of 100 or more rounded to a whole number, smaller
    values to at most two decimals. Text that is not a number is returned as it is.

    >>> format_number("12000.0"), format_number(1234.56), format_number(3.14159), format_number("")
    ('12,000', '1,235', '3.14', '')
    """
    num = _float(value)
    if num is None:
        return clean_text(value)
    if num.is_integer() or abs(num) >= 100:
        return f"{round(num):,}"
    return f"{num:,.2f}".rstrip("0").rstrip(".")


def format_year(value: Any) -> str:
    """A year as an integer ('2019.0' -> '2019'); text that is not a number as it is."""
    num = _float(value)
    return str(int(num)) if num is not None and num.is_integer() else clean_text(value)


def format_change(value: Any) -> str:
    """A change with its sign ('+1,200', '-35')."""
    num = _float(value)
    if num is None:
        return clean_text(value)
    text = format_number(num)
    return text if num <= 0 else "+" + text


def format_estimate(best: Any, lo: Any, hi: Any, unit: Any = "") -> str:
    """'12,000 (10,000–14,000) individuals'; parts that are missing are left out."""
    b, lo_, hi_ = format_number(best), format_number(lo), format_number(hi)
    text = b
    if lo_ or hi_:
        text = f"{text} ({lo_ or '?'}–{hi_ or '?'})".strip()
    if text and clean_text(unit):
        text = f"{text} {clean_text(unit)}"
    return text


def _truthy(value: Any) -> bool:
    text = clean_text(value).lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    num = _float(text)
    return bool(num) if num is not None else True


def format_gap(value: Any) -> str:
    """Data-gap cell: 'yes' for a true flag, the reason where one is given, '' otherwise."""
    text = clean_text(value)
    if text.lower() in _FALSE:
        return ""
    if text.lower() in _TRUE:
        return "yes"
    return text


def md_escape(value: Any) -> str:
    """Submission text for Markdown: HTML-escaped, Markdown punctuation backslash-escaped."""
    text = escape_html(" ".join(clean_text(value).split()))
    text = re.sub(r"([*_\[\]|~`<>])", r"\\\1", text)
    if text[:1] in "#+-=" or re.match(r"^\d+\.", text):
        text = "\\" + text
    return text


def data_uri(png: bytes | None, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(png).decode('ascii')}" if png else ""


# -- inputs -------------------------------------------------------------------------------
class Table:
    """A CSV table as text cells: ``columns`` and ``records`` (one dict per row, '' where a
    cell is empty or missing). The few tables a document needs are small, so they are read
    with the csv module (importing pandas would cost more than everything else here)."""

    __slots__ = ("columns", "records")

    def __init__(self, columns: Iterable[str] = (), records: Iterable[dict[str, str]] = ()):
        self.columns = list(columns)
        self.records = list(records)

    @property
    def empty(self) -> bool:
        return not self.columns or not self.records

    def __len__(self) -> int:
        return len(self.records)

    def to_dict(self, orient: str = "records") -> list[dict[str, str]]:
        return list(self.records)

    def where(self, keep: Callable[[dict[str, str]], bool]) -> "Table":
        return Table(self.columns, [r for r in self.records if keep(r)])

    def none(self) -> "Table":
        return Table(self.columns, [])


def _header(names: list[str]) -> list[str]:
    """Column names as pandas.read_csv gives them (blank: 'Unnamed: i'; repeated: 'x.1'), stripped."""
    out: list[str] = []
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        name = name if name != "" else f"Unnamed: {i}"
        if name in seen:
            n = seen[name]
            while f"{name}.{n}" in seen:
                n += 1
            seen[name] = n + 1
            name = f"{name}.{n}"
        seen.setdefault(name, 1)
        out.append(name)
    return [c.strip() for c in out]


_FIELD_LIMIT = 2**31 - 1


def read_table(path: Any, *, required: bool, what: str) -> Table:
    """A CSV as text cells ('' where empty). A missing optional table is an empty table."""
    if not path:
        if required:
            raise InputError(f"The {what} table was not given to the report stage.")
        return Table()
    p = Path(path)
    if not p.exists():
        if required:
            raise InputError(f"{p} ({what}) does not exist; run the earlier stages first.")
        return Table()
    if csv.field_size_limit() < _FIELD_LIMIT:  # pandas has no limit on the size of a cell
        csv.field_size_limit(_FIELD_LIMIT)
    try:
        with p.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh)
            # blank (or whitespace-only) lines are skipped, as pandas does
            lines = (row for row in reader if row and (len(row) > 1 or row[0].strip(" \t")))
            header = next(lines, None)
            if header is None:
                return Table()
            columns = _header(header)
            n = len(columns)
            records = []
            for row in lines:
                if len(row) > n:
                    raise InputError(f"{p} ({what}) cannot be read as a UTF-8 CSV table: Error tokenizing "
                                     f"data. C error: Expected {n} fields in line {reader.line_num}, "
                                     f"saw {len(row)}.")
                if len(row) < n:
                    row = row + [""] * (n - len(row))
                records.append(dict(zip(columns, row)))
    except (UnicodeDecodeError, csv.Error, OSError) as exc:
        raise InputError(f"{p} ({what}) cannot be read as a UTF-8 CSV table: "
                         f"{str(exc).splitlines()[0]}.") from None
    return Table(columns, records)


def _read_bytes(path: Any) -> bytes | None:
    if path and Path(path).exists() and Path(path).stat().st_size > 0:
        return Path(path).read_bytes()
    return None


def _read_text(path: Any) -> str:
    if path and Path(path).exists():
        return Path(path).read_text(encoding="utf-8", errors="replace")
    return ""


def _rows(df: Table, **equal: str) -> list[dict[str, str]]:
    if df.empty:
        return []
    for col in equal:
        if col not in df.columns:
            return []
    return [r for r in df.records if all(str(r[c]).strip() == v for c, v in equal.items())]


def _g(row: dict[str, Any] | None, key: str) -> str:
    return clean_text((row or {}).get(key, ""))


class Tables:
    """The report stage's input tables, read once."""

    def __init__(self, inputs: dict[str, Any]):
        self.by_country = read_table(inputs.get("by_country"), required=True, what="status by country")
        self.by_species = read_table(inputs.get("by_species"), required=True, what="status by species")
        self.threats = read_table(inputs.get("threats"), required=False, what="threats summary")
        self.actions = read_table(inputs.get("actions"), required=False, what="action needs")
        self.population = read_table(inputs.get("population"), required=False, what="population")
        self.submissions = read_table(inputs.get("submissions"), required=False, what="submissions")
        for df, name in ((self.by_country, "status by country"), (self.by_species, "status by species")):
            if not df.empty and "species_slug" not in df.columns and "species" not in df.columns:
                raise InputError(f"The {name} table has no species_slug or species column.")

    def slug_rows(self, df: Table, slug: str, registry: Registry) -> Table:
        """Rows of ``df`` about species ``slug`` (by species_slug, else by resolving species)."""
        if df.empty:
            return df
        if "species_slug" in df.columns:
            has_species = "species" in df.columns

            def keep(r: dict[str, str]) -> bool:
                own = r["species_slug"].strip()
                if own == slug:
                    return True
                return has_species and own == "" and registry.resolve_species(r["species"]) == slug
        elif "species" in df.columns:
            def keep(r: dict[str, str]) -> bool:
                return registry.resolve_species(r["species"]) == slug
        else:
            return df.none()
        return df.where(keep)


# -- context ------------------------------------------------------------------------------
def _cycle(settings: dict[str, Any], *rows: dict[str, Any]) -> str:
    for row in rows:
        if _g(row, "cycle"):
            return format_year(_g(row, "cycle"))
    return format_year(settings.get("cycle", "")) or str(_dt.date.today().year)


def _flag_value(value: str, attribute: str, sp: Any) -> str:
    aliases = {attribute, attribute.removesuffix("_iso3"), attribute + "_iso3"}
    if sp is not None and aliases & set(sp.unverified) and value and UNVERIFIED not in value:
        return f"{value} {UNVERIFIED}"
    return value


def _species_info(slug: str, registry: Registry, srow: dict[str, Any] | None) -> dict[str, str]:
    sp = registry.species.get(slug)
    sci = sp.scientific_name if sp else (_g(srow, "species") or slug)
    common = (sp.common_name if sp else "") or _g(srow, "common_name")
    appendix = _g(srow, "cms_appendix") or (sp.cms_appendix if sp else "")
    category = _g(srow, "iucn_category") or (sp.iucn_category if sp else "")
    return {
        "slug": slug,
        "scientific_name": sci,
        "common_name": common,
        "title": f"{sci} ({common})" if common else sci,
        "cms_appendix": _flag_value(appendix, "cms_appendix", sp),
        "iucn_category": _flag_value(category, "iucn_category", sp),
        "iucn_trend": sp.flagged("iucn_population_trend") if sp else "",
        "range_states": _flag_value(", ".join(sp.range_states), "range_states_iso3", sp) if sp else "",
    }


def _ref(row: dict[str, Any]) -> str:
    sub, f, r = _g(row, "submission"), _g(row, "source_file"), format_year(_g(row, "source_row"))
    if not (sub or f):
        return ""
    return f"{sub}/{f}#{r}" if r else f"{sub}/{f}"


def _matching_population(pop: list[dict[str, Any]], crow: dict[str, Any]) -> list[dict[str, Any]]:
    """The population.csv rows the status row's estimate comes from (same year and best)."""
    year, best = _float(_g(crow, "population_year")), _float(_g(crow, "population_best"))
    if best is None:
        return []
    hits = [r for r in pop if _float(_g(r, "estimate_best")) == best
            and (year is None or _float(_g(r, "year")) == year)]
    if not hits and year is not None:  # a derived best (e.g. from min and max): the year's rows
        hits = [r for r in pop if _float(_g(r, "year")) == year]
    national = [r for r in hits if _g(r, "scope") in ("", "national")]
    return national or hits


def _state_name(iso3: str, registry: Registry, row: dict[str, Any] | None = None) -> str:
    st = registry.states.get(iso3)
    return (st.name_en if st else "") or _g(row, "country") or iso3


def _status_row(crow: dict[str, Any] | None, pop: list[dict[str, Any]], label: str, key: str) -> dict[str, str]:
    """One table row (display strings) from a status_by_country row (None: no row at all)."""
    if crow is None:
        out = {k: "" for k, _ in ROW_FIELDS}
        out.update(label=label, key=key, data_gap="no data", note="", refs="", synthetic="")
        return out
    refs = [_ref(r) for r in _matching_population(pop, crow)]
    refs = [r for r in dict.fromkeys(refs) if r]
    source = _g(crow, "population_source")
    first, last = format_year(_g(crow, "first_year")), format_year(_g(crow, "last_year"))
    records = format_number(_g(crow, "n_records"))
    if records and (first or last):
        records += f" ({first}–{last})" if first != last else f" ({first})"
    absences = format_number(_g(crow, "n_absences"))
    if absences and absences != "0":
        records += f"; {absences} absences"
    return {
        "label": label,
        "key": key,
        "estimate": format_estimate(_g(crow, "population_best"), _g(crow, "population_min"),
                                    _g(crow, "population_max"), _g(crow, "population_unit")),
        "best": format_number(_g(crow, "population_best")),
        "min": format_number(_g(crow, "population_min")),
        "max": format_number(_g(crow, "population_max")),
        "unit": _g(crow, "population_unit"),
        "year": format_year(_g(crow, "population_year")),
        "method": _g(crow, "population_method"),
        "source": source,
        "refs": "; ".join(refs),
        "scope": _g(crow, "population_scope"),
        "trend": _g(crow, "trend") + (f" ({_g(crow, 'trend_method')})" if _g(crow, "trend_method") else ""),
        "eoo": format_number(_g(crow, "eoo_km2")),
        "aoo": format_number(_g(crow, "aoo_km2")),
        "range_area": format_number(_g(crow, "range_area_km2")),
        "range_share": format_number(_g(crow, "range_share")),
        "records": records,
        "n_records": format_number(_g(crow, "n_records")),
        "main_threats": _g(crow, "main_threats"),
        "n_threats": format_number(_g(crow, "n_threats")),
        "data_gap": format_gap(_g(crow, "data_gap")),
        "years_since": format_number(_g(crow, "years_since_estimate")),
        "note": _g(crow, "population_note"),
        "synthetic": format_number(_g(crow, "synthetic_records")) if (_float(_g(crow, "synthetic_records")) or 0) > 0 else "",
    }


def _changes(rows: list[tuple[str, dict[str, Any]]], previous_cycle: str) -> dict[str, Any]:
    """Change since the previous cycle, from *_prev / *_change columns (empty if none)."""
    cols: list[str] = []
    for _, r in rows:
        for c in r:
            if c.endswith("_prev") and c[:-5] not in cols:
                cols.append(c[:-5])
    out_rows = []
    for label, r in rows:
        for base in cols:
            cur, prev = _g(r, base), _g(r, base + "_prev")
            if not (cur or prev):
                continue
            change = _g(r, base + "_change")
            if not change and _float(cur) is not None and _float(prev) is not None:
                change = str(_float(cur) - _float(prev))
            fmt = format_year if base.endswith("year") else format_number
            out_rows.append({"label": label, "measure": base, "previous": fmt(prev), "current": fmt(cur),
                             "change": format_change(change) if _float(change) is not None else clean_text(change)})
    in_rows = sorted({format_year(_g(r, "previous_cycle")) for _, r in rows if _g(r, "previous_cycle")})
    if len(in_rows) == 1:
        previous_cycle = in_rows[0]
    return {"rows": out_rows, "previous_cycle": previous_cycle}


def _threat_rows(df: Table, registry: Registry, label_of) -> list[dict[str, str]]:
    out = []
    for r in df.to_dict("records") if not df.empty else []:
        code = _g(r, "iucn_code")
        out.append({"label": label_of(r), "code": code, "name": _g(r, "iucn_name") or registry.threat_name(code),
                    "n_features": format_number(_g(r, "n_features")), "length_km": format_number(_g(r, "length_km")),
                    "area_km2": format_number(_g(r, "area_km2")),
                    "n_complete_barriers": format_number(_g(r, "n_complete_barriers"))})
    return out


def _action_rows(df: Table, label_of) -> list[dict[str, str]]:
    return [{"label": label_of(r), "rule": _g(r, "rule"), "flag": _g(r, "flag"), "figures": _g(r, "figures")}
            for r in (df.to_dict("records") if not df.empty else [])]


def _population_rows(pop: list[dict[str, Any]], label_of) -> list[dict[str, str]]:
    def key(r):
        return (label_of(r), _float(_g(r, "year")) or 0, _g(r, "scope"), _g(r, "source_row"))
    out = []
    for r in sorted(pop, key=key):
        out.append({"label": label_of(r), "year": format_year(_g(r, "year")),
                    "best": format_number(_g(r, "estimate_best")), "min": format_number(_g(r, "estimate_min")),
                    "max": format_number(_g(r, "estimate_max")), "unit": _g(r, "unit"),
                    "scope": _g(r, "scope") or "national", "method": _g(r, "method"), "source": _g(r, "source"),
                    "trend": _g(r, "trend"), "ref": _ref(r), "record_id": _g(r, "record_id"),
                    "synthetic": "synthetic" if _truthy(_g(r, "synthetic")) and _g(r, "synthetic") else ""})
    return out


def _split_list(value: str) -> list[str]:
    return [v.strip() for v in re.split(r"[;,|]", value or "") if v.strip()]


def _submission_rows(subs: Table, used: set[str], registry: Registry, *, slug: str | None = None,
                     iso3: str | None = None) -> list[dict[str, str]]:
    """Submissions behind a document: those cited by its population rows, those declaring the
    species (or Range State), and multi-species submissions that declare none."""
    out = []
    for r in subs.to_dict("records") if not subs.empty else []:
        sid = _g(r, "submission")
        declared = [registry.resolve_species(s) or s for s in _split_list(_g(r, "species"))]
        states = [registry.resolve_country(s) or s for s in _split_list(_g(r, "range_states"))]
        keep = sid in used
        if slug is not None and not keep:
            keep = slug in declared or not declared
        if iso3 is not None and not keep:
            keep = (iso3 in states or not states) and (not declared or any(
                d in registry.species and iso3 in registry.species[d].range_states for d in declared))
        if not keep:
            continue
        out.append({"submission": sid, "contributor": _g(r, "contributor"), "submitted": _g(r, "submitted"),
                    "licence": _g(r, "licence"), "cycle": format_year(_g(r, "cycle")),
                    "sensitivity": _g(r, "sensitivity"),
                    "synthetic": "synthetic" if _g(r, "synthetic") and _truthy(_g(r, "synthetic")) else "",
                    "species": _g(r, "species") or "(species per row)", "range_states": _g(r, "range_states"),
                    "rows": " / ".join(x for x in (format_number(_g(r, "rows_in")), format_number(_g(r, "accepted")),
                                                    format_number(_g(r, "rejected"))) if x),
                    "files": _g(r, "files")})
    return sorted(out, key=lambda s: s["submission"])


def _map_block(inputs: dict[str, Any], settings: dict[str, Any], what: str, cycle: str) -> dict[str, Any]:
    maps = settings.get("maps", {}) or {}
    png = _read_bytes(inputs.get("map_png"))
    attribution = clean_text(maps.get("attribution")) or "Data: CAMI Species Focal Points."
    disclaimer = " ".join(clean_text(maps.get("disclaimer") or DEFAULT_DISCLAIMER).split())
    return {"png": png, "uri": data_uri(png),
            "caption": f"Map of {what}, cycle {cycle}; sensitive locations generalised. {attribution}",
            "disclaimer": disclaimer, "interactive": _read_text(inputs.get("map_html"))}


def _charts(groups: list[tuple[str, str, list[dict[str, Any]]]], cycle: str,
            cache: str | Path | None = None) -> list[dict[str, Any]]:
    """One chart per (label, title) group of population rows that has figures (``cache``:
    a folder of charts drawn before, :func:`cami_geo.render.charts.population_chart`)."""
    out = []
    for label, title, rows in groups:
        unit = next((_g(r, "unit") for r in rows if _g(r, "unit")), "individuals")
        png = population_chart(rows, title=title, unit=unit, cache=cache)
        if png is None:
            continue
        years = sorted({format_year(_g(r, "year")) for r in rows if _g(r, "year")})
        subs = sorted({_g(r, "submission") for r in rows if _g(r, "submission")})
        cites = sorted({_g(r, "source") for r in rows if _g(r, "source")})
        has_sub = any(_g(r, "scope") not in ("", "national") for r in rows)
        caption = (f"Population estimates, {title}, {years[0]}–{years[-1]} ({unit}); "
                   + ("national: solid line, filled markers; subnational or subpopulation: dashed, hollow "
                      "markers (not added to the national figure); " if has_sub else "")
                   + "bars: min–max. Source: " + ("; ".join(cites) or "population table")
                   + (f" (submissions {', '.join(subs)}; population table, cycle {cycle})." if subs
                      else f" (population table, cycle {cycle})."))
        out.append({"label": label, "title": title, "png": png, "uri": data_uri(png), "caption": caption})
    return out


def _is_synthetic(*frames_or_rows: Any) -> bool:
    for item in frames_or_rows:
        rows = item.records if isinstance(item, Table) else item
        for r in rows or []:
            if (_float(_g(r, "synthetic_records")) or 0) > 0:
                return True
            if _g(r, "synthetic") and _truthy(_g(r, "synthetic")):
                return True
    return False


def _base(settings: dict[str, Any], params: dict[str, Any], cycle: str) -> dict[str, Any]:
    prev = format_year(settings.get("previous_cycle", ""))
    return {"cycle": cycle, "previous_cycle": prev, "version": clean_text(params.get("version", "")),
            "date": f"{cycle}-01-01" if cycle.isdigit() else "2000-01-01",
            "synthetic_banner": SYNTHETIC_BANNER, "preliminary": PRELIMINARY, "unverified": UNVERIFIED,
            "row_fields": ROW_FIELDS}


def species_context(slug: str, tables: Tables, registry: Registry, inputs: dict[str, Any],
                    params: dict[str, Any]) -> dict[str, Any]:
    """Everything a species document shows, as display strings (and PNG bytes)."""
    settings = params.get("settings", {}) or {}
    srows = tables.slug_rows(tables.by_species, slug, registry).to_dict("records")
    if not srows and slug not in registry.species:
        raise InputError(f"Species {slug!r} is neither in the status tables nor in the registry.")
    srow = srows[0] if srows else None
    crows_df = tables.slug_rows(tables.by_country, slug, registry)
    crows = {_g(r, "iso3"): r for r in crows_df.to_dict("records")}
    cycle = _cycle(settings, srow or {}, *crows.values())
    ctx = _base(settings, params, cycle)
    info = _species_info(slug, registry, srow)
    pop_all = tables.slug_rows(tables.population, slug, registry).to_dict("records")
    sp = registry.species.get(slug)
    states = list(dict.fromkeys([*(sp.range_states if sp else ()), *sorted(crows)]))
    states = sorted(s for s in states if s)
    rows = []
    for iso3 in states:
        pop = [r for r in pop_all if _g(r, "iso3") == iso3]
        label = f"{_state_name(iso3, registry, crows.get(iso3))} ({iso3})"
        rows.append(_status_row(crows.get(iso3), pop, label, iso3))
    summary = {
        "cms_appendix": info["cms_appendix"], "iucn_category": info["iucn_category"],
        "iucn_trend": info["iucn_trend"], "range_states": info["range_states"],
        "population": format_estimate(_g(srow, "population_best"), _g(srow, "population_min"),
                                      _g(srow, "population_max"), _g(srow, "population_unit")),
        "population_best": format_number(_g(srow, "population_best")),
        "population_note": _g(srow, "population_note"),
        "trend": _g(srow, "trend"),
        "n_range_states": format_number(_g(srow, "n_range_states")) or str(len(states)),
        "n_with_data": format_number(_g(srow, "n_range_states_with_data")) or str(sum(
            1 for r in crows.values() if not _truthy(_g(r, "data_gap") or "false")
            and ((_float(_g(r, "n_records")) or 0) > 0 or _g(r, "population_best")))),
        "eoo": format_number(_g(srow, "eoo_km2")), "aoo": format_number(_g(srow, "aoo_km2")),
        "aoo_median": format_number(_g(srow, "aoo_km2_median")), "aoo_max": format_number(_g(srow, "aoo_km2_max")),
        "eoo_flag": _g(srow, "eoo_flag"),
        "n_locations": format_number(_g(srow, "n_locations")),
        "n_subpopulations": format_number(_g(srow, "n_subpopulations")),
        "category_b": _g(srow, "category_b"), "category_b_note": _g(srow, "category_b_note"),
        "n_records": format_number(_g(srow, "n_records")), "n_threats": format_number(_g(srow, "n_threats")),
    }
    name_of = lambda r: f"{_state_name(_g(r, 'iso3'), registry, r)} ({_g(r, 'iso3')})"  # noqa: E731
    groups = []
    for iso3 in states:
        prs = [r for r in pop_all if _g(r, "iso3") == iso3]
        if prs:
            groups.append((iso3, f"{info['scientific_name']} in {_state_name(iso3, registry)} ({iso3})", prs))
    used = {_g(r, "submission") for r in pop_all}
    subs = _submission_rows(tables.submissions, used, registry, slug=slug)
    sub_ids = {s["submission"] for s in subs}
    ctx.update(
        kind="species", slug=slug, species=info, title=f"Status of {info['title']}", summary=summary,
        rows=rows, row_label="Range State",
        charts=_charts(groups, cycle, chart_cache_dir()),
        threats=_threat_rows(tables.slug_rows(tables.threats, slug, registry), registry, name_of),
        actions=_action_rows(tables.slug_rows(tables.actions, slug, registry), name_of),
        changes=_changes([(r["label"], crows[r["key"]]) for r in rows if r["key"] in crows], ctx["previous_cycle"]),
        population=_population_rows(pop_all, name_of), submissions=subs,
        map=_map_block(inputs, settings, f"{info['scientific_name']}: Range States, range and generalised records", cycle),
        synthetic=_is_synthetic(srows, crows_df, pop_all,
                                [s for s in tables.submissions.to_dict("records") if _g(s, "submission") in sub_ids]
                                if not tables.submissions.empty else []),
    )
    return ctx


def country_context(iso3: str, tables: Tables, registry: Registry, inputs: dict[str, Any],
                    params: dict[str, Any]) -> dict[str, Any]:
    """Everything a Range State profile shows: every CAMI species listed in the country."""
    settings = params.get("settings", {}) or {}
    iso3 = iso3.upper()
    bc = tables.by_country
    crows_df = bc.where(lambda r: r["iso3"].strip().upper() == iso3) if "iso3" in bc.columns else bc.none()
    if iso3 not in registry.states and crows_df.empty:
        raise InputError(f"Range State {iso3!r} is neither in the status tables nor in the registry.")

    def slug_of(r: dict[str, Any]) -> str:
        return _g(r, "species_slug") or registry.resolve_species(_g(r, "species")) or _g(r, "species")

    crows = {slug_of(r): r for r in crows_df.to_dict("records")}
    slugs = sorted(set(registry.species_in(iso3)) | set(crows),
                   key=lambda s: registry.species[s].scientific_name if s in registry.species else s)
    srows = {slug_of(r): r for r in tables.by_species.to_dict("records")} if not tables.by_species.empty else {}
    cycle = _cycle(settings, *crows.values())
    ctx = _base(settings, params, cycle)
    country = _state_name(iso3, registry, next(iter(crows.values()), None))
    pop_df = tables.population
    pop_all = [r for r in (pop_df.to_dict("records") if not pop_df.empty else []) if _g(r, "iso3").upper() == iso3]
    rows, infos, groups = [], {}, []
    for slug in slugs:
        info = _species_info(slug, registry, srows.get(slug))
        infos[slug] = info
        pop = [r for r in pop_all if slug_of(r) == slug]
        row = _status_row(crows.get(slug), pop, info["title"], slug)
        row.update(cms_appendix=info["cms_appendix"], iucn_category=info["iucn_category"])
        rows.append(row)
        if pop:
            groups.append((slug, f"{info['scientific_name']} in {country} ({iso3})", pop))

    def label_of(r: dict[str, Any]) -> str:
        s = slug_of(r)
        return infos[s]["scientific_name"] if s in infos else _g(r, "species")

    def in_country(df: Table) -> Table:
        if df.empty or "iso3" not in df.columns:
            return df.none() if not df.empty else df
        return df.where(lambda r: r["iso3"].strip().upper() == iso3)

    used = {_g(r, "submission") for r in pop_all}
    subs = _submission_rows(tables.submissions, used, registry, iso3=iso3)
    sub_ids = {s["submission"] for s in subs}
    ctx.update(
        kind="country", iso3=iso3, country=country, title=f"Range State profile: {country} ({iso3})",
        rows=rows, row_label="Species", species_list=[infos[s] for s in slugs],
        charts=_charts(groups, cycle, chart_cache_dir()),
        threats=_threat_rows(in_country(tables.threats), registry, label_of),
        actions=_action_rows(in_country(tables.actions), label_of),
        changes=_changes([(r["label"], crows[r["key"]]) for r in rows if r["key"] in crows], ctx["previous_cycle"]),
        population=_population_rows(pop_all, label_of), submissions=subs,
        map=_map_block(inputs, settings, f"{country} ({iso3}): CAMI species ranges and generalised records", cycle),
        synthetic=_is_synthetic(crows_df, pop_all,
                                [s for s in tables.submissions.to_dict("records") if _g(s, "submission") in sub_ids]
                                if not tables.submissions.empty else []),
    )
    return ctx


# -- HTML, PDF, Markdown --------------------------------------------------------------------
_BIG_TEXT = 1 << 16  # a longer interactive map is put into the page after rendering (render_html)


def _finalize(value: Any) -> Any:
    """Every ``{{ value }}`` passes through escape_html (THE escaping function)."""
    if isinstance(value, Markup):
        return value
    if isinstance(value, (int, float)):
        return Markup(escape_html(value))
    return Markup(escape_html(clean_text(value)))


_ENV: Environment | None = None


def environment() -> Environment:
    global _ENV
    if _ENV is None:
        _ENV = Environment(loader=PackageLoader("cami_geo", "templates"), autoescape=True,
                           finalize=_finalize, undefined=StrictUndefined, trim_blocks=True,
                           lstrip_blocks=True, keep_trailing_newline=True)
    return _ENV


def _css() -> Markup:
    return Markup(environment().get_template("report.css").render())


_SRCDOC_TOKEN = "cami-geo-interactive-map-5c1e0b7d"


def render_html(template: str, ctx: dict[str, Any], *, for_print: bool = False, inline_css: bool = True) -> str:
    """The document as one self-contained HTML page (``for_print``: static map, no iframe;
    ``inline_css=False``: an empty ``<style>``, for a PDF written with the report CSS as a
    parsed stylesheet, :func:`write_pdf`).

    A large interactive map (megabytes of HTML in the iframe's ``srcdoc``) is rendered as a
    token, then put in its place escaped exactly as ``{{ map.interactive }}`` would be:
    the template engine would otherwise copy those megabytes at every enclosing macro.
    """
    return b"".join(_html_parts(template, ctx, for_print=for_print, inline_css=inline_css)).decode("utf-8")


def _html_parts(template: str, ctx: dict[str, Any], *, for_print: bool = False,
                inline_css: bool = True) -> list[bytes]:
    """:func:`render_html` as UTF-8 pieces (written to the file as they are: no join and
    re-encoding of a page of megabytes)."""
    tpl = environment().get_template(template)
    css = _css() if inline_css else Markup("")
    m = ctx.get("map")
    interactive = m.get("interactive") if isinstance(m, dict) else None
    if for_print or not isinstance(interactive, str) or len(interactive) < _BIG_TEXT:
        return [tpl.render(**ctx, css=css, for_print=for_print).encode("utf-8")]
    html = tpl.render(**{**ctx, "map": {**m, "interactive": _SRCDOC_TOKEN}}, css=css, for_print=for_print)
    head, token, tail = html.partition(_SRCDOC_TOKEN)
    if not token or _SRCDOC_TOKEN in tail:  # not used once as the srcdoc: render it the plain way
        return [tpl.render(**ctx, css=css, for_print=for_print).encode("utf-8")]
    return [head.encode("utf-8"), *_escaped_utf8(interactive), tail.encode("utf-8")]


_CTRL_BYTES = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])  # the characters of _CTRL
_ESCAPES_UTF8 = tuple((char.encode("ascii"), entity.encode("ascii")) for char, entity in _REPLACEMENTS)


_ESCAPE_CHUNK = 1 << 16
"""Characters escaped at a time by :func:`_escaped_utf8`: small enough for the passes over a
piece to stay in the CPU cache and to reuse the same memory, where whole-text passes each
wrote (and the kernel first zeroed) a new copy of tens of megabytes."""


def _escaped_utf8(text: str) -> list[bytes]:
    """``str(_finalize(text)).encode("utf-8")`` for a long text, done on its UTF-8 bytes, as
    consecutive pieces (their concatenation).

    Every character that clean_text removes and escape_html replaces is ASCII, and in UTF-8
    an ASCII byte only ever stands for that character: the same replacements on the bytes
    give the same text, several times faster than on a str that is not pure ASCII (one
    2- or 4-byte code unit per character). For the same reason the text can be cut into
    pieces anywhere: no replacement spans two of them."""
    stripped = text.strip()
    if len(stripped) <= 4 and stripped.lower() in _MISSING:
        return [str(_finalize(text)).encode("utf-8")]  # short: the usual way
    out = []
    for start in range(0, len(stripped), _ESCAPE_CHUNK):
        data = stripped[start:start + _ESCAPE_CHUNK].encode("utf-8")
        if len(data.translate(None, _CTRL_BYTES)) != len(data):
            return [str(_finalize(text)).encode("utf-8")]  # with control characters: the usual way
        for char, entity in _ESCAPES_UTF8:
            data = data.replace(char, entity)
        out.append(data)
    return out


# The static map as printed (report.css): at most the text width of an A4 landscape page
# (297 mm less 2 x 14 mm margins) and `figure.map img { max-height: 15cm }`.
PRINT_MAP_MAX_MM = (269.0, 150.0)
PRINT_MIN_DPI = 150


def print_png(png: bytes | None, max_w_mm: float, max_h_mm: float, min_dpi: int = PRINT_MIN_DPI) -> bytes | None:
    """The PNG to embed in the PDF: reduced by the largest whole factor that keeps at least
    ``min_dpi`` at its printed size (a box filter: each pixel the mean of a block), without an
    alpha channel that is opaque everywhere. The map PNG is drawn at 300 dpi for a larger
    print: embedded whole, the PDF writer decoded, split and recompressed 7 million pixels
    (the demo maps go from 3000 x 2460 to 1500 x 1230 pixels, 208 dpi as printed). The HTML
    and DOCX keep the original. Returned unchanged when there is nothing to gain."""
    if not png:
        return png
    try:
        from PIL import Image

        im = Image.open(io.BytesIO(png))
        w, h = im.size
        if im.format != "PNG" or im.mode not in ("RGB", "RGBA", "L") or not (w and h):
            return png
        width_in = min(max_w_mm, max_h_mm * w / h) / 25.4
        factor = int(w / (width_in * min_dpi))
        opaque_alpha = False
        if factor < 2 and im.mode != "RGBA":
            return png
        im.load()
        if im.mode == "RGBA":
            opaque_alpha = im.getchannel("A").getextrema() == (255, 255)
        if factor < 2 and not opaque_alpha:
            return png
        if factor >= 2:
            im = im.reduce(factor)
        if opaque_alpha:
            im = im.convert("RGB")
        # Its compressed rows go into the PDF as they are (write_pdf): written unfiltered at
        # zlib's fastest level (cami_geo.render.png), twice as fast as PIL's writer at that
        # level, which chooses a filter for every row, and smaller on a map (flat areas).
        # A transparent colour (tRNS) is written by PIL, which keeps it.
        if "transparency" in im.info:
            buf = io.BytesIO()
            im.save(buf, format="PNG", compress_level=1)
            return buf.getvalue()
        import numpy as np

        from .png import png_bytes

        return png_bytes(np.asarray(im), None)
    except Exception as exc:  # noqa: BLE001 - an image that cannot be reduced is embedded as it is
        log.debug("map PNG kept as it is for the PDF: %s", exc)
        return png


def print_context(ctx: dict[str, Any], images: dict[str, bytes] | None = None) -> dict[str, Any]:
    """The document context for the PDF: the static map downscaled by :func:`print_png`.

    With ``images`` (a dict, filled here), the map and the charts (the same PNG bytes as in
    the HTML and DOCX) are referred to by a short URL naming their content instead of a
    data URI, and :func:`write_pdf` serves them from ``images``: WeasyPrint then does not
    tokenize and decode megabytes of base64 in the page. The URL names the content, as a
    data URI does, so the PDF stays byte-stable (WeasyPrint names images by their URL)."""
    m = ctx.get("map") or {}
    png = print_png(m.get("png"), *PRINT_MAP_MAX_MM)
    if images is None:
        if png is m.get("png"):
            return ctx
        return {**ctx, "map": {**m, "png": png, "uri": data_uri(png)}}

    def url(data: bytes | None) -> str:
        if not data:
            return ""
        name = f"{_IMAGE_SCHEME}{hashlib.sha256(data).hexdigest()}.png"
        images[name] = data
        return name

    charts = [{**c, "uri": url(c["png"])} for c in ctx.get("charts") or []]
    return {**ctx, "map": {**m, "png": png, "uri": url(png)}, "charts": charts}


_IMAGE_SCHEME = "cami-geo-image:"


def _image_fetcher(images: dict[str, bytes]) -> Any | None:
    """A WeasyPrint URL fetcher that serves ``images`` (URL -> PNG bytes) and fetches any
    other URL as WeasyPrint's own does; None with an older WeasyPrint, without the
    ``weasyprint.urls.URLFetcher`` class, where the print page keeps its data URIs."""
    _import_weasyprint()  # (its faster import, should this be the first use)
    try:
        from weasyprint.urls import URLFetcher, URLFetcherResponse
    except ImportError:
        return None

    class ImageFetcher(URLFetcher):
        def fetch(self, url: str, headers: Any = None) -> Any:
            png = images.get(url)
            if png is not None:
                return URLFetcherResponse(url, png, {"Content-Type": "image/png"})
            return super().fetch(url, headers)

    return ImageFetcher()


def _import_weasyprint() -> Any:
    """``import weasyprint``, without cffi's slow library search.

    WeasyPrint loads GObject, Pango, HarfBuzz, fontconfig ... trying several names for each;
    cffi passes a name that is not a file name to ``ctypes.util.find_library``, which on Linux
    runs ldconfig, then gcc, then ld for every name tried (about 50 processes, 0.3-0.4 s of a
    job). During the import, find_library answers from one ``ldconfig -p`` listing, with the
    same pattern as ctypes; should the import fail that way, it is simply done again as usual.
    WeasyPrint's and fontTools' loggers are set to errors only (progress and font notes).
    """
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    import sys

    if "weasyprint" in sys.modules or not sys.platform.startswith("linux"):
        import weasyprint
        return weasyprint
    import ctypes.util
    import struct
    import subprocess

    original = ctypes.util.find_library
    listing: list[bytes] = []
    machine = os.uname().machine + ("-32" if struct.calcsize("l") == 4 else "-64")
    abi = {"x86_64-64": "libc6,x86-64", "ppc64-64": "libc6,64bit", "sparc64-64": "libc6,64bit",
           "s390x-64": "libc6,64bit", "ia64-64": "libc6,IA-64"}.get(machine, "libc6")

    def find_library(name: str) -> str | None:
        if not listing:
            out = b""
            for ldconfig in ("/sbin/ldconfig", "/usr/sbin/ldconfig"):
                try:
                    out = subprocess.run([ldconfig, "-p"], stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, env={"LC_ALL": "C", "LANG": "C"},
                                         timeout=20, check=False).stdout
                except (OSError, subprocess.SubprocessError):
                    continue
                if out:
                    break
            listing.append(out)
        if not listing[0]:
            return original(name)
        found = re.search(os.fsencode(r"\s+(lib%s\.[^\s]+)\s+\(%s" % (re.escape(name), abi)), listing[0])
        return os.fsdecode(found.group(1)) if found else None

    ctypes.util.find_library = find_library
    try:
        import weasyprint
    except Exception:  # noqa: BLE001 - retried below with the standard search
        for mod in [m for m in sys.modules if m == "weasyprint" or m.startswith("weasyprint.")]:
            del sys.modules[mod]
        ctypes.util.find_library = original
        import weasyprint
    finally:
        ctypes.util.find_library = original
    return weasyprint


_FONT_CONFIG: Any = None
"""A WeasyPrint FontConfiguration that has laid out and written a sample page
(:func:`warm_up_worker`), or None: each PDF then gets a new one, as WeasyPrint does."""

_PRINT_CSS: Any = None
"""report.css parsed once by WeasyPrint (a ``weasyprint.CSS``, :func:`warm_up_worker`), or
None: each print page then carries it in its ``<style>``, parsed by every PDF job."""

_WARM_UP_BODY = ("<h1>Warm-up</h1><p class=\"meta\">0123456789 ,.;:()–km² <b>bold</b> <i>italic</i></p>"
                 "<h2>Table</h2><h3>Rows</h3><table class=\"fixed\"><thead><tr><th>Name</th><th>Value</th></tr>"
                 "</thead><tbody><tr><th>Row</th><td class=\"num\">1,234<div class=\"note\">note</div></td>"
                 "</tr></tbody></table><p class=\"caption\">Caption</p><p class=\"disclaimer\">Disclaimer</p>")


def warm_up_worker() -> None:
    """Stage worker hook (:mod:`cami_geo.stageworker`), run once before it forks jobs: lay
    out and write a one-page sample document with the report CSS, and keep its font
    configuration for :func:`write_pdf`.

    A PDF job otherwise pays, each time, for WeasyPrint's first use in a process: cffi
    parsing the C types it allocates (pycparser), fontconfig loading its configuration and
    the font list, Pango and HarfBuzz opening the fonts, HarfBuzz's subsetter being set up
    (about 0.1 s of CPU). The forked job inherits all of that warm. Sharing the font
    configuration is safe here: the report CSS has no ``@font-face`` (the only thing that
    would add fonts to it), and each job has its own copy after the fork. The PDFs are
    byte-identical to those written with a new configuration (tests/test_reports.py).

    The report CSS is parsed here too (:data:`_PRINT_CSS`; a twentieth of a small PDF's
    CPU time when every job parsed it from the page's ``<style>``). WeasyPrint gives a
    stylesheet passed to ``write_pdf`` the user origin, below the author's: the print page
    then has no author rules but its ``<col style="width:...">`` attributes, which no rule
    of report.css sets, so every element gets the same computed style (PDFs byte-identical,
    tests/test_reports.py).

    The templates are compiled here too (Jinja keeps them in its environment): compiling
    them took each job about 0.04 s; and the charts module is warmed up
    (:func:`cami_geo.render.charts.warm_up`), and python-docx's default document opened
    (:func:`cami_geo.render.docx_writer.warm_up`)."""
    global _FONT_CONFIG, _PRINT_CSS
    env = environment()
    for name in env.list_templates():
        env.get_template(name)
    try:
        from .charts import warm_up

        warm_up()
    except Exception as exc:  # noqa: BLE001 - the jobs then pay for it, as without the worker
        log.debug("chart warm-up failed: %s", exc)
    try:
        from .docx_writer import warm_up as warm_up_docx

        warm_up_docx()
    except Exception as exc:  # noqa: BLE001 - each document is then opened the usual way
        log.debug("DOCX warm-up failed: %s", exc)
    try:
        weasyprint = _import_weasyprint()
        from weasyprint.text.fonts import FontConfiguration

        font_config = FontConfiguration()
        sheet = weasyprint.CSS(string=str(_css()), font_config=font_config)
        html = f"<!DOCTYPE html><html><head><style></style></head><body>{_WARM_UP_BODY}</body></html>"
        _weasyprint_pdf(html, io.BytesIO(), None, font_config, sheet)
        _FONT_CONFIG, _PRINT_CSS = font_config, sheet
    except Exception as exc:  # noqa: BLE001 - without it, every PDF is written the usual way
        log.debug("WeasyPrint warm-up failed: %s", exc)
        _FONT_CONFIG = _PRINT_CSS = None


def write_pdf(html: str, path: str | Path, images: dict[str, bytes] | None = None, *,
              stylesheet: Any = None) -> None:
    """Render the print HTML to PDF with WeasyPrint (metadata dates come from the HTML);
    ``images``: the PNGs the page refers to by URL (:func:`print_context`); ``stylesheet``:
    a parsed ``weasyprint.CSS`` for a page rendered without its own (:data:`_PRINT_CSS`)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fetcher = _image_fetcher(images) if images else None
    _weasyprint_pdf(html, str(path), fetcher, _FONT_CONFIG, stylesheet)


def _weasyprint_pdf(html: str, target: Any, fetcher: Any, font_config: Any, stylesheet: Any) -> None:
    """The PDF of ``html`` written to ``target`` (a path or a file) by WeasyPrint, with this
    module's patches (:func:`_parse_array_types_directly`, :func:`_png_data_as_is`,
    :func:`_colours_converted_once`): :func:`write_pdf`'s, and :func:`warm_up_worker`'s sample."""
    weasyprint = _import_weasyprint()
    _parse_array_types_directly()
    with _png_data_as_is(), _colours_converted_once():
        weasyprint.HTML(string=html, base_url=".", url_fetcher=fetcher).write_pdf(
            target, font_config=font_config, stylesheets=[stylesheet] if stylesheet is not None else None)


class _ParsedTypes(dict):
    """cffi's cache of the C types it has parsed (``FFI._parsed_types``: declaration ->
    (ctype, is a function type)) that makes a missing ``"NAME[LENGTH]"`` itself: the array
    type cffi would make for it, from the cached pointer type ``"NAME *"``.

    WeasyPrint's font subsetting allocates ``hb_codepoint_t[n]`` arrays with ``n`` the number
    of glyphs a font uses, a new declaration in nearly every PDF, and cffi parses each new
    one with pycparser along with a typedef line for every type WeasyPrint declares (about
    10 ms each, a tenth of a small document's PDF). Anything else is left to cffi."""

    __slots__ = ("ffi",)
    _ARRAY = re.compile(r"\s*([A-Za-z_]\w*)\s*\[\s*(\d+)\s*\]\s*")

    def __missing__(self, cdecl: Any) -> Any:
        found = self._ARRAY.fullmatch(cdecl) if isinstance(cdecl, str) else None
        if found is None:
            raise KeyError(cdecl)
        pointer = self.ffi._typeof(found.group(1) + " *")
        result = self[cdecl] = (self.ffi._backend.new_array_type(pointer, int(found.group(2))), False)
        return result


def _parse_array_types_directly() -> None:
    """Give WeasyPrint's cffi instance a :class:`_ParsedTypes` cache (once; nothing with a
    cffi that keeps its parsed types otherwise)."""
    try:
        from weasyprint.text.ffi import ffi

        parsed = ffi._parsed_types
        if isinstance(parsed, _ParsedTypes) or type(parsed) is not dict or not hasattr(ffi._backend, "new_array_type"):
            return
        cache = _ParsedTypes(parsed)
        cache.ffi = ffi
        ffi._parsed_types = cache
    except (ImportError, AttributeError):
        return


@contextlib.contextmanager
def _replaced(module: str, cls_name: str, name: str, make: Any):
    """While in the block: ``module.cls_name.name`` (the class's own attribute) replaced by
    ``make(original)``, then restored. Nothing is replaced when the module, the class or the
    attribute is missing, or ``make`` raises AttributeError: another version of the library."""
    try:
        cls = getattr(importlib.import_module(module), cls_name)
        original = cls.__dict__[name]
        replacement = make(original)
    except (ImportError, KeyError, AttributeError):
        yield
        return
    setattr(cls, name, replacement)
    try:
        yield
    finally:
        setattr(cls, name, original)


def _colours_converted_once():
    """While WeasyPrint writes a PDF: each colour converted to a colour space once.

    WeasyPrint's PDF stream converts the colour (``tinycss2`` ``Color.to``, a new Color
    object each time) whenever it sets one, for every border segment of every table cell:
    a few thousand times a page, the same two or three colours. The conversion depends only
    on the colour's space, coordinates and alpha, and WeasyPrint only reads the result."""

    def make(original: Any) -> Any:
        converted: dict[tuple[Any, ...], Any] = {}

        def to(self: Any, space: str) -> Any:
            key = (type(self), self.space, self.coordinates, self.alpha, space)
            result = converted.get(key)
            if result is None:
                result = converted[key] = original(self, space)
            return result

        return to

    return _replaced("tinycss2.color4", "Color", "to", make)


def png_idat(png: bytes) -> bytes | None:
    """The image data (the IDAT chunks, one zlib stream of filtered rows) of an 8-bit,
    non-interlaced greyscale or RGB PNG: what a PDF image with ``/FlateDecode`` and PNG
    predictors holds. None for any other PNG (palette, alpha, 16-bit, interlaced)."""
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    pos, idat, ok = 8, [], False
    while pos + 8 <= len(png):
        length = int.from_bytes(png[pos:pos + 4], "big")
        kind, body = png[pos + 4:pos + 8], png[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            # bit depth 8, colour type 0 (grey) or 2 (RGB), compression and filter 0, no interlace
            ok = len(body) == 13 and body[8] == 8 and body[9] in (0, 2) and body[10:13] == b"\x00\x00\x00"
            if not ok:
                return None
        elif kind == b"tRNS":  # transparency: WeasyPrint draws such a PNG with an alpha mask
            return None
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    return b"".join(idat) if ok and idat else None


def _png_data_as_is():
    """While WeasyPrint writes a PDF: embed a PNG's compressed data as it is.

    WeasyPrint (``RasterImage._get_png_data``) decodes every PNG, encodes it again with
    Pillow and keeps the IDAT chunks of the result. For an 8-bit grey or RGB PNG read
    unchanged from its bytes (the charts and the print map: :func:`cami_geo.render.charts.population_chart`
    writes such PNGs with Pillow, :func:`print_png` with :mod:`cami_geo.render.png`, unless
    the map has a transparent colour) those chunks are the image's own: same pixels in the PDF, without
    a decode and an encode per image. Anything else (images WeasyPrint converted, resized
    or split from an alpha channel; another WeasyPrint without that method) goes the usual way.
    """

    def make(original: Any) -> Any:
        encode = original.__func__

        def get_png_data(pillow_image: Any) -> bytes:
            fp = getattr(pillow_image, "fp", None)
            if (getattr(pillow_image, "format", None) == "PNG" and pillow_image.mode in ("L", "RGB")
                    and isinstance(fp, io.BytesIO)):
                data = png_idat(fp.getvalue())
                if data is not None:
                    return data
            return encode(pillow_image)

        return staticmethod(get_png_data)

    return _replaced("weasyprint.images", "RasterImage", "_get_png_data", make)


def article_markdown(ctx: dict[str, Any], map_link: str) -> str:
    """The annual web article draft as Markdown (submission text escaped)."""
    sp, s = ctx["species"], ctx["summary"]
    lines = [f"# {md_escape(sp['title'])}: status in {ctx['cycle']}", ""]
    if ctx["synthetic"]:
        lines += [f"> **{SYNTHETIC_BANNER}**: figures below come from demonstration data, not from real surveys.", ""]
    lines += [md_escape(article_lead(ctx)), ""]
    lines += ["## Key figures", ""]
    for label, value in article_figures(ctx):
        lines.append(f"- **{md_escape(label)}**: {md_escape(value)}")
    lines.append("")
    est = [r for r in ctx["rows"] if r["estimate"]]
    if est:
        lines += ["| Range State | Estimate | Year | Source |", "|---|---|---|---|"]
        for r in est:
            lines.append(f"| {md_escape(r['label'])} | {md_escape(r['estimate'])} | {md_escape(r['year'])} | "
                         f"{md_escape(r['source'])} |")
        lines.append("")
    if map_link:
        lines += [f"![{md_escape(ctx['map']['caption'])}]({map_link})", "",
                  f"*{md_escape(ctx['map']['caption'])} {md_escape(ctx['map']['disclaimer'])}*", ""]
    lines += ["## Sources", ""]
    for src in article_sources(ctx):
        lines.append(f"- {md_escape(src)}")
    lines += ["", f"*Draft generated by cami-geo {ctx['version']} from the status tables of cycle "
              f"{ctx['cycle']}. {PRELIMINARY} criterion-B categories are not IUCN Red List assessments.*", ""]
    return "\n".join(lines)


def article_lead(ctx: dict[str, Any]) -> str:
    sp, s = ctx["species"], ctx["summary"]
    parts = [f"The {sp['common_name'] or sp['scientific_name']} ({sp['scientific_name']}) is listed on CMS "
             f"Appendix {s['cms_appendix'] or '?'} and assessed as {s['iucn_category'] or 'not evaluated'} "
             f"on the IUCN Red List."]
    if s["population"]:
        parts.append(f"Range-wide, the Range States' latest estimates add up to {s['population']} "
                     f"(cycle {ctx['cycle']}).")
    if s["n_with_data"]:
        parts.append(f"{s['n_with_data']} of {s['n_range_states']} Range States reported data this cycle.")
    return " ".join(parts)


def article_figures(ctx: dict[str, Any]) -> list[tuple[str, str]]:
    s, c = ctx["summary"], ctx["cycle"]
    out = [("CMS Appendix", s["cms_appendix"]), ("IUCN Red List category", s["iucn_category"])]
    if s["population"]:
        out.append((f"Range-wide population (cycle {c})", s["population"]))
    if s["trend"]:
        out.append((f"Trend (cycle {c})", s["trend"]))
    if s["eoo"]:
        out.append((f"Extent of Occurrence (cycle {c})", f"{s['eoo']} km²"))
    if s["aoo"]:
        out.append((f"Area of Occupancy (cycle {c})", f"{s['aoo']} km²"))
    if s["category_b"]:
        out.append((f"{PRELIMINARY} criterion-B category (cycle {c})", s["category_b"]))
    out.append(("Range States with data", f"{s['n_with_data'] or '0'} of {s['n_range_states']}"))
    return [(k, v) for k, v in out if v]


def article_sources(ctx: dict[str, Any]) -> list[str]:
    out = []
    for r in ctx["rows"]:
        if r["source"]:
            out.append(f"{r['label']}: {r['source']} ({r['year'] or 'year not given'})")
    for sub in ctx["submissions"]:
        out.append(f"Submission {sub['submission']}: {sub['contributor']}, {sub['submitted']}, {sub['licence']}")
    out.append(f"Map: {ctx['map']['caption']}")
    return list(dict.fromkeys(out))


# -- stages -------------------------------------------------------------------------------
def _stem(outputs: dict[str, Any], key: str = "html") -> str:
    path = outputs.get(key)
    if not path:
        raise InputError(f"The report stage was given no {key!r} output path.")
    return Path(str(path)).stem


def _write_text(path: Any, text: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text, encoding="utf-8")


def _write_bytes(path: Any, parts: list[bytes]) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with Path(path).open("wb") as fh:
        fh.writelines(parts)


def _registry(params: dict[str, Any]) -> Registry:
    from ..workflow import registry_from_config

    return registry_from_config(params.get("settings", {}) or {})


def _writing(path: Any):
    """Turn a failure to write ``path`` into one sentence naming the file."""
    import contextlib

    @contextlib.contextmanager
    def guard():
        try:
            yield
        except OSError as exc:
            raise InputError(f"Cannot write {path}: {exc.strerror or exc}.") from None
    return guard()


def _write_documents(template: str, ctx: dict[str, Any], outputs: dict[str, Any]) -> None:
    from .docx_writer import write_report_docx

    with _writing(outputs["html"]):
        _write_bytes(outputs["html"], _html_parts(template, ctx))
    with _writing(outputs["docx"]):
        write_report_docx(ctx, outputs["docx"])
    with _writing(outputs["pdf"]):
        images: dict[str, bytes] | None = {} if _image_fetcher({}) is not None else None
        sheet = _PRINT_CSS
        html = render_html(template, print_context(ctx, images), for_print=True, inline_css=sheet is None)
        write_pdf(html, outputs["pdf"], images, stylesheet=sheet)
    log.info("wrote %s, %s and %s", outputs["html"], outputs["docx"], outputs["pdf"])


def run_report_species_stage(inputs: dict[str, Any], outputs: dict[str, Any], params: dict[str, Any]) -> None:
    """Write a species' status report (HTML, DOCX, PDF), status form (DOCX) and article
    draft (HTML, Markdown). The species slug is the stem of ``outputs['html']``. Runs without
    the cyclic garbage collector (:func:`cami_geo.render.cycles.no_cycle_collection`)."""
    with no_cycle_collection():
        from .docx_writer import write_form_docx

        slug = _stem(outputs)
        registry = _registry(params)
        ctx = species_context(slug, Tables(inputs), registry, inputs, params)
        _write_documents("species_report.html", ctx, outputs)
        if outputs.get("form"):
            with _writing(outputs["form"]):
                write_form_docx(ctx, outputs["form"])
        if outputs.get("article_html"):
            _write_text(outputs["article_html"], environment().get_template("article.html").render(
                **ctx, css=_css(), for_print=False,
                lead=article_lead(ctx), figures=article_figures(ctx), sources=article_sources(ctx)))
        if outputs.get("article_md"):
            link = ""
            if inputs.get("map_png") and ctx["map"]["png"]:
                link = os.path.relpath(Path(inputs["map_png"]).resolve(), Path(outputs["article_md"]).resolve().parent)
                link = Path(link).as_posix().replace(" ", "%20").replace("(", "%28").replace(")", "%29")
            _write_text(outputs["article_md"], article_markdown(ctx, link))


def run_report_country_stage(inputs: dict[str, Any], outputs: dict[str, Any], params: dict[str, Any]) -> None:
    """Write a Range State profile (HTML, DOCX, PDF). The ISO3 code is the stem of ``outputs['html']``.
    Runs without the cyclic garbage collector (:func:`cami_geo.render.cycles.no_cycle_collection`)."""
    with no_cycle_collection():
        iso3 = _stem(outputs)
        registry = _registry(params)
        ctx = country_context(iso3, Tables(inputs), registry, inputs, params)
        _write_documents("country_report.html", ctx, outputs)
