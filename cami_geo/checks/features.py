"""Checks of threat features, range polygons and population estimates."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import shapely

from ..boundaries import polygonal
from ..model import BARRIER_CLASSES, ORIGIN_CODES, PRESENCE_CODES, SEASONAL_CODES
from . import ProblemLog
from .common import CheckContext, resolve_countries, resolve_dates, resolve_species, text, value_text
from .common import fill
from .occurrences import coordinates

POLYGONAL = ("Polygon", "MultiPolygon")


def check_geometry(geoms: np.ndarray, log: ProblemLog, *, polygons_only: bool = False) -> np.ndarray:
    """Valid geometries: repaired with ``make_valid`` (warning) or rejected (error).

    Returns the geometry array to keep (repaired where needed).
    """
    geoms = np.asarray(geoms, dtype=object)
    missing = np.array([g is None for g in geoms], dtype=bool) if len(geoms) else np.zeros(0, bool)
    present = ~missing
    if present.any():
        missing[present] = shapely.is_empty(geoms[present].astype(object))
    missing &= ~log.flagged("geometry_invalid", len(geoms))  # unreadable WKT is said once
    log.add("geometry_missing", missing, "geometry", "feature has no geometry")
    ok = ~missing
    invalid = np.zeros(len(geoms), dtype=bool)
    if ok.any():
        invalid[ok] = ~shapely.is_valid(geoms[ok])
    out = geoms.copy()
    if invalid.any():
        reasons = np.array([shapely.is_valid_reason(g) if g is not None else "" for g in geoms], dtype=object)
        repaired = shapely.make_valid(geoms[invalid])
        if polygons_only:
            repaired = np.array([polygonal(g) for g in repaired], dtype=object)
        good = np.array([g is not None and not g.is_empty and g.is_valid for g in repaired], dtype=bool)
        idx = np.flatnonzero(invalid)
        out[idx[good]] = repaired[good]
        m_rep = np.zeros(len(geoms), bool)
        m_rep[idx[good]] = True
        m_bad = np.zeros(len(geoms), bool)
        m_bad[idx[~good]] = True
        log.add("geometry_repaired", m_rep, "geometry", fill(m_rep, "invalid geometry ({}) repaired with make_valid", reasons))
        log.add("geometry_invalid", m_bad, "geometry", fill(m_bad, "invalid geometry ({}) could not be repaired", reasons))
    if polygons_only:
        types = np.array([g.geom_type if g is not None else "" for g in out], dtype=object)
        wrong = ok & ~np.isin(types, POLYGONAL)
        log.add("geometry_type", wrong, "geometry", fill(wrong, "range features must be polygons, not {}", types))
    return out


def geometry_from_columns(f: pd.DataFrame, log: ProblemLog, ctx: CheckContext, *, file_crs: str | None) -> np.ndarray:
    """Point geometries from lat/lon or x/y columns of a table (None where unusable)."""
    lon, lat, _ = coordinates(f, log, ctx, file_crs=file_crs)
    ok = np.isfinite(lon) & np.isfinite(lat) & (np.abs(lat) <= 90) & (np.abs(lon) <= 180)
    bad = np.isfinite(lon) & np.isfinite(lat) & ~ok
    log.add("coords_out_of_range", bad, "decimalLatitude/decimalLongitude", "coordinates outside -90..90 / -180..180")
    geoms = np.full(len(f), None, dtype=object)
    if ok.any():
        geoms[ok] = shapely.points(lon[ok], lat[ok])
    return geoms


def geometry_from_wkt(f: pd.DataFrame, log: ProblemLog, *, crs: str | None = None) -> np.ndarray:
    """Geometries from a WKT column (QGIS 'CSV with geometry' export), in EPSG:4326.

    ``crs`` is the CRS the WKT is written in (manifest), WGS84 when not given. Unreadable
    WKT adds ``geometry_invalid``; empty cells stay None (``geometry_missing`` later).
    """
    raw = text(f, "wkt")
    vals = raw.to_numpy(dtype=object)
    geoms = np.full(len(vals), None, dtype=object)
    has = vals != ""
    if has.any():
        parsed = shapely.from_wkt(vals[has], on_invalid="ignore")
        geoms[has] = parsed
        bad = np.zeros(len(vals), bool)
        bad[np.flatnonzero(has)[pd.isna(parsed)]] = True
        log.add("geometry_invalid", bad, "wkt", "not readable as WKT (e.g. LINESTRING (66 47, 67 48))", vals)
        if crs:
            import geopandas as gpd

            ok = np.array([g is not None for g in geoms], dtype=bool)
            if ok.any():
                geoms[ok] = np.asarray(gpd.GeoSeries(geoms[ok], crs=crs).to_crs("EPSG:4326").values, dtype=object)
    return geoms


def iso3_from_geometry(geoms: np.ndarray, ctx: CheckContext) -> np.ndarray:
    """The country holding each geometry's representative point ('' where none)."""
    pts = np.array([shapely.point_on_surface(g) if g is not None and not g.is_empty else None for g in geoms], dtype=object)
    x = np.array([p.x if p is not None else np.nan for p in pts], dtype=float)
    y = np.array([p.y if p is not None else np.nan for p in pts], dtype=float)
    return ctx.countries.locate(x, y)


def check_threats(f: pd.DataFrame, geoms: np.ndarray, log: ProblemLog, ctx: CheckContext, *, extra: list[str] | None = None) -> pd.DataFrame:
    """Normalise and check threat features; returns columns of THREAT_COLUMNS (no provenance)."""
    reg = ctx.registry
    geoms = check_geometry(geoms, log)
    raw = text(f, "iucn_code")
    from ..registry import normalise_name

    by_name: dict[str, list[str]] = {}
    for t in reg.threats.values():
        by_name.setdefault(normalise_name(t.name), []).append(t.code)
    code_of, why = {}, {}
    for v in pd.unique(raw.to_numpy()):
        codes = by_name.get(normalise_name(v), [])
        if v and v not in reg.threats and len(codes) > 1:
            code_of[v] = ""
            why[v] = f"{v!r} is the name of several IUCN 3.3 threats ({', '.join(codes)}); give the code"
        else:
            code_of[v] = reg.resolve_threat(v) or "" if v else ""
            why[v] = f"{v!r} is not a code or name of the IUCN Threats Classification Scheme 3.3"
    code = raw.map(code_of).to_numpy(dtype=object)
    rv = raw.to_numpy(dtype=object)
    log.add("threat_code_missing", rv == "", "iucn_code", "no IUCN threat code (e.g. 4.1 roads & railroads, 5.1.1 hunting)")
    unknown = (rv != "") & (code == "")
    log.add("threat_code_unknown", unknown, "iucn_code", raw.map(why).to_numpy(dtype=object), rv)
    name = np.array([reg.threat_name(c) if c else "" for c in code], dtype=object)
    bc_raw = text(f, "barrier_class")
    bc_key = bc_raw.str.casefold().str.replace(r"[_-]+", " ", regex=True).str.strip()
    bc_map = {b: b for b in BARRIER_CLASSES}
    bc_map.update({"none": "not a barrier", "no": "not a barrier", "partial": "partial barrier", "complete": "complete barrier",
                   "full": "complete barrier", "": ""})
    bc = bc_key.map(bc_map).to_numpy(dtype=object)
    bad_bc = pd.isna(bc)
    log.add("barrier_class_invalid", bad_bc, "barrier_class",
            f"barrier class must be one of: {', '.join(BARRIER_CLASSES)}", bc_raw.to_numpy(dtype=object))
    bc = np.where(bad_bc, "", bc)
    slug, sci, _ = resolve_species(f, log, ctx, required=False)
    declared, _ = resolve_countries(f, log, ctx)
    iso3 = declared.copy()
    need = iso3 == ""
    if need.any():
        iso3[need] = iso3_from_geometry(geoms[need], ctx)
    event_date, year = resolve_dates(f, log, ctx, warn_missing=False)
    attrs = _attributes(f, extra or [])
    out = pd.DataFrame({
        "species": sci, "species_slug": slug, "iso3": iso3, "iucn_code": code, "iucn_name": name,
        "threat_type": text(f, "threat_type").to_numpy(dtype=object), "name": text(f, "name").to_numpy(dtype=object),
        "event_date": event_date, "year": pd.array(year, dtype="Float64").astype("Int64"),
        "severity": text(f, "severity").to_numpy(dtype=object), "barrier_class": bc, "attributes": attrs,
    })
    out["geometry"] = geoms
    return out


def _attributes(f: pd.DataFrame, extra: list[str]) -> np.ndarray:
    """JSON object of the submitted attributes that have no column of their own."""
    cols = [c for c in extra if c in f.columns]
    if not cols:
        return np.full(len(f), "{}", dtype=object)
    sub = f[cols].astype(str)
    return np.array([json.dumps({k: v for k, v in zip(cols, row) if v != ""}, ensure_ascii=False)
                     for row in sub.itertuples(index=False, name=None)], dtype=object)


def _codes(f: pd.DataFrame, col: str, valid: dict, log: ProblemLog, code: str, label: str, *, default: int | None = None) -> np.ndarray:
    raw = text(f, col)
    num = pd.to_numeric(raw.str.replace(",", ".", regex=False), errors="coerce").to_numpy(dtype=float)
    empty = (raw == "").to_numpy()
    if default is not None:
        num = np.where(empty, default, num)
        empty = np.zeros(len(num), bool)
    bad = ~np.isin(num, list(valid))
    log.add(code, bad, col, fill(bad, "{!r} is not an IUCN " + label + " code (" + ", ".join(f"{k} {v}" for k, v in valid.items()) + ")",
                                 raw.to_numpy(dtype=object)), raw.to_numpy(dtype=object))
    return pd.array(np.where(bad, np.nan, num), dtype="Float64").astype("Int64")


def check_range(f: pd.DataFrame, geoms: np.ndarray, log: ProblemLog, ctx: CheckContext) -> pd.DataFrame:
    """Normalise and check range polygons; returns columns of RANGE_COLUMNS (no provenance).

    Missing codes default to presence 1 (extant), origin 1 (native), seasonal 1 (resident)
    only when the column is absent altogether; an empty cell in a present column is an error.
    """
    geoms = check_geometry(geoms, log, polygons_only=True)
    slug, sci, _ = resolve_species(f, log, ctx)
    presence = _codes(f, "presence", PRESENCE_CODES, log, "presence_invalid", "presence", default=None if "presence" in f.columns else 1)
    origin = _codes(f, "origin", ORIGIN_CODES, log, "origin_invalid", "origin", default=None if "origin" in f.columns else 1)
    seasonal = _codes(f, "seasonal", SEASONAL_CODES, log, "seasonal_invalid", "seasonal", default=None if "seasonal" in f.columns else 1)
    declared, _ = resolve_countries(f, log, ctx)
    iso3 = declared.copy()
    need = iso3 == ""
    if need.any():
        iso3[need] = iso3_from_geometry(geoms[need], ctx)
    out = pd.DataFrame({"species": sci, "species_slug": slug, "iso3": iso3, "presence": presence, "origin": origin,
                        "seasonal": seasonal, "name": text(f, "name").to_numpy(dtype=object)})
    out["geometry"] = geoms
    return out


UNITS = {"individuals": "individuals", "individual": "individuals", "ind": "individuals", "inds": "individuals",
         "animals": "individuals", "особей": "individuals", "особи": "individuals",
         "mature individuals": "mature individuals", "mature": "mature individuals", "adults": "mature individuals",
         "mature individual": "mature individuals", "взрослых особей": "mature individuals"}
TRENDS = {"increasing": "increasing", "decreasing": "decreasing", "stable": "stable", "unknown": "unknown",
          "fluctuating": "fluctuating", "": "", "рост": "increasing", "снижение": "decreasing", "стабильно": "stable",
          "declining": "decreasing", "growing": "increasing", "up": "increasing", "down": "decreasing"}
_SCOPE = re.compile(r"^(national|subnational:\S.*|subpopulation:\S.*)$")


def check_population(f: pd.DataFrame, log: ProblemLog, ctx: CheckContext) -> pd.DataFrame:
    """Normalise and check population estimates; returns POPULATION_COLUMNS (no provenance)."""
    slug, sci, _ = resolve_species(f, log, ctx)
    iso3, raw_iso = resolve_countries(f, log, ctx)
    missing_iso = (raw_iso == "")
    if ctx.range_states and len(ctx.range_states) == 1:
        iso3 = np.where(missing_iso, ctx.range_states[0], iso3)
        missing_iso = np.zeros(len(f), bool)
    log.add("country_invalid", missing_iso, "countryCode", "no Range State given (ISO3 code or name)")
    listed = np.array([bool(s) and bool(i) and i in ctx.registry.species[s].range_states for s, i in zip(slug, iso3)], dtype=bool)
    off = (slug != "") & (iso3 != "") & ~listed
    log.add("not_listed_range_state", off, "countryCode", fill(off, "{} is not a listed Range State of {}", iso3, sci))
    y_raw = value_text(f, "year")
    if "year" not in f.columns and "event_date" in f.columns:
        y_raw = text(f, "event_date").str.slice(0, 4)
    year = np.array(pd.to_numeric(y_raw, errors="coerce"), dtype=float)
    no_year = (y_raw == "").to_numpy()
    bad_y = ~no_year & (~np.isfinite(year) | (year != np.round(year)) | (year < 1900) | (year > ctx.today.year))
    log.add("year_invalid", bad_y, "year", fill(bad_y, "year {!r} is not a whole year from 1900 to this year", y_raw.to_numpy(dtype=object)),
            y_raw.to_numpy(dtype=object))
    log.add("year_missing", no_year, "year", "no year given: the estimate is kept but cannot be placed in a cycle or a trend")
    bad_y = bad_y | no_year  # no year to keep in either case
    vals = {}
    for col in ("estimate_min", "estimate_best", "estimate_max"):
        raw = value_text(f, col)
        clean = raw.str.replace(r"[\s\u00a0']", "", regex=True).str.replace(",", ".", regex=False)
        num = pd.to_numeric(clean, errors="coerce").to_numpy(dtype=float)
        bad = (raw != "").to_numpy() & (np.isnan(num) | (num < 0))
        log.add("estimate_invalid", bad, col, f"{col} must be a number of 0 or more", raw.to_numpy(dtype=object))
        vals[col] = np.where(bad, np.nan, num)
    lo, best, hi = vals["estimate_min"], vals["estimate_best"], vals["estimate_max"]
    log.add("estimate_missing", np.isnan(lo) & np.isnan(best) & np.isnan(hi), "estimate_best", "no estimate (best, min or max) given")
    with np.errstate(invalid="ignore"):
        order = (lo > best) | (best > hi) | (lo > hi)
    log.add("estimate_order", order, "estimate_min/estimate_best/estimate_max",
            fill(order, "estimates must satisfy min <= best <= max (got {:g} / {:g} / {:g})", lo, best, hi))
    unit_raw = text(f, "unit")
    unit = unit_raw.str.casefold().str.strip().map(UNITS).to_numpy(dtype=object)
    bad_u = pd.isna(unit)
    log.add("unit_invalid", bad_u, "unit", "unit must be 'individuals' or 'mature individuals'", unit_raw.to_numpy(dtype=object))
    scope_raw = text(f, "scope")
    scope = scope_raw.where(scope_raw != "", "national")
    scope = scope.str.replace(r"^(national|subnational|subpopulation)\s*:\s*", lambda m: m.group(1).lower() + ":", regex=True, case=False)
    bad_s = ~scope.str.match(_SCOPE).to_numpy(dtype=bool)
    log.add("scope_invalid", bad_s, "scope", "scope must be national, subnational:<area> or subpopulation:<name>", scope_raw.to_numpy(dtype=object))
    trend_raw = text(f, "trend")
    trend = trend_raw.str.casefold().map(TRENDS).to_numpy(dtype=object)
    bad_t = pd.isna(trend)
    log.add("trend_unknown", bad_t, "trend", "trend not one of increasing, decreasing, stable, fluctuating, unknown; kept as written",
            trend_raw.to_numpy(dtype=object))
    trend = np.where(bad_t, trend_raw.to_numpy(dtype=object), trend)
    return pd.DataFrame({
        "species": sci, "species_slug": slug, "iso3": iso3, "year": pd.array(np.where(bad_y, np.nan, year), dtype="Float64").astype("Int64"),
        "estimate_min": lo, "estimate_best": best, "estimate_max": hi, "unit": np.where(bad_u, "", unit),
        "method": text(f, "method").to_numpy(dtype=object), "source": text(f, "source").to_numpy(dtype=object),
        "scope": scope.to_numpy(dtype=object), "trend": trend, "notes": text(f, "notes").to_numpy(dtype=object),
    })
