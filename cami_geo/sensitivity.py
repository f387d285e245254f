"""Generalisation of sensitive locations for the public copy (GBIF practice, Chapman 2020).

Precise locations of sensitive species never reach a public output. Each record is
generalised to a decimal-degree grid, never by random offsets (Chapman, A. D. 2020.
*Current Best Practices for Generalizing Sensitive Species Occurrence Data*. GBIF
Secretariat, Copenhagen. https://doi.org/10.15468/doc-5jp4-5g10):

=========  ===============  ==========================  =====================
level      grid cell (deg)  published coordinate        max. decimals
=========  ===============  ==========================  =====================
exact      --               as recorded                 unlimited
0.001deg   0.001            cell centre, e.g. 45.1235   4
0.01deg    0.01             cell centre, e.g. 45.125    3
0.1deg     0.1              cell centre, e.g. 45.15     2
1deg       1                cell centre, e.g. 45.5      1
withheld   --               no coordinates at all       --
=========  ===============  ==========================  =====================

The grid is aligned on 0 degrees (cells ``[k*s, (k+1)*s)``); a coordinate is moved to the
centre of its cell, so the published value is an odd multiple of half the cell size and
carries at most one decimal more than the cell size itself. Whoever knows the level can
therefore tell the cell, but never anything finer.

**Which level applies.** The effective level of a record is the *coarser* of the level its
submission (or the record) asks for and its species' default level in the registry: a
submission may ask for more protection than the registry, never for less.

**What else changes.** ``coordinate_uncertainty_m`` is raised by the rounding error, which
is half the cell's diagonal in metres at that latitude, measured on the WGS84 ellipsoid
with :class:`pyproj.Geod` (the geodesic distance from the cell centre to its farthest,
equatorward corner, rounded up to the whole metre); ``data_generalizations`` says what was
done; ``locality`` text is kept only at level ``exact``; a withheld record keeps its
``iso3`` and ``year`` but loses geometry, coordinates, uncertainty, event date, locality
and recorder, and ``information_withheld`` says so.

Tests (and other modules' tests) scan public outputs with
:func:`finest_coordinate_step_deg` and :func:`finer_than_allowed`.
"""

from __future__ import annotations

import math
import re
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Geod

from .errors import InputError
from .model import CRS_WGS84
from .registry import SENSITIVITY_LEVELS, Registry

__all__ = [
    "SENSITIVITY_LEVELS", "UNKNOWN_SPECIES_LEVEL", "CELL_SIZE_DEG", "normalise_level",
    "coarser_level", "coarser_levels", "cell_size_deg", "max_decimals_allowed", "snap_to_cell_centre",
    "rounding_error_m", "effective_levels", "generalise_occurrences", "generalise_threats",
    "finest_coordinate_step_deg", "finer_than_allowed", "is_poaching_code",
]

_RANK = {level: i for i, level in enumerate(SENSITIVITY_LEVELS)}

CELL_SIZE_DEG: dict[str, float] = {"0.001deg": 0.001, "0.01deg": 0.01, "0.1deg": 0.1, "1deg": 1.0}
"""Grid cell size in degrees of each generalising level (``exact`` and ``withheld`` have none)."""

_MAX_DECIMALS = {"0.001deg": 4, "0.01deg": 3, "0.1deg": 2, "1deg": 1, "withheld": 0}

UNKNOWN_SPECIES_LEVEL = "0.1deg"
"""Default level for a species the registry does not know (the registry's own fallback)."""

_LABEL = {"0.001deg": "0.001 degree", "0.01deg": "0.01 degree", "0.1deg": "0.1 degree",
          "1deg": "1 degree"}

WITHHELD_NOTE = ("Coordinates, coordinate uncertainty, locality, recorder and event date withheld "
                 "for species protection; country and year kept")
WITHHELD_GENERALIZATION = "Coordinates withheld for species protection"
LOCALITY_NOTE = "Locality text withheld for species protection"

_GEOD = Geod(ellps="WGS84")
_ON_GRID_TOL_DEG = 1e-9
"""Tolerance (degrees, about 0.1 mm) for "this value lies on that grid": far above the
~3e-14 degree representation error of a double near 180, far below any grid step."""

_STEP_LADDER = [1.0, 0.5, 0.1, 0.05, 0.01, 0.005, 0.001, 0.0005, 1e-4, 5e-5, 1e-5, 5e-6,
                1e-6, 5e-7, 1e-7]


# -- levels ------------------------------------------------------------------------------

def normalise_level(value: Any) -> str | None:
    """The canonical level for a written level, or None when the value is empty.

    Accepts the canonical names and common spellings ('0.1', '0.1 deg', '0.1°',
    '1 degree', 'Withheld'); case and spaces do not matter.

    Raises
    ------
    InputError
        When the value is not a level.

    Examples
    --------
    >>> normalise_level(" 0.1 Degrees")
    '0.1deg'
    >>> normalise_level("") is None
    True
    """
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    text = str(value).strip().lower()
    if not text or text in ("nan", "none", "<na>"):
        return None
    text = re.sub(r"\s+", "", text)
    text = re.sub(r"(°|degrees?|deg)$", "", text)
    if text in _RANK:
        return text
    for level, size in CELL_SIZE_DEG.items():
        try:
            if float(text) == size:
                return level
        except ValueError:
            break
    raise InputError(f"Sensitivity level {value!r} is not one of {', '.join(SENSITIVITY_LEVELS)}.")


def coarser_level(a: str | None, b: str | None) -> str | None:
    """The coarser (more protective) of two levels; None only when both are None.

    >>> coarser_level("0.01deg", "0.1deg")
    '0.1deg'
    >>> coarser_level("exact", None)
    'exact'
    """
    a, b = normalise_level(a), normalise_level(b)
    if a is None:
        return b
    if b is None:
        return a
    return a if _RANK[a] >= _RANK[b] else b


def cell_size_deg(level: str) -> float:
    """Grid cell size in degrees: 0.0 for ``exact``, ``inf`` for ``withheld``.

    >>> cell_size_deg("0.1deg")
    0.1
    """
    lvl = normalise_level(level)
    if lvl is None:
        raise InputError("A sensitivity level is required, got an empty value.")
    if lvl == "exact":
        return 0.0
    if lvl == "withheld":
        return math.inf
    return CELL_SIZE_DEG[lvl]


def max_decimals_allowed(level: str) -> int | None:
    """Most decimals a published coordinate may carry at ``level``.

    A cell centre on a grid of ``10**-d`` degrees is an odd multiple of ``0.5 * 10**-d``,
    so it needs ``d + 1`` decimals (45.15 on the 0.1 degree grid). ``exact`` has no limit
    (None); ``withheld`` publishes no coordinate at all (0, and the value must be empty).

    >>> [max_decimals_allowed(lv) for lv in ("exact", "0.001deg", "0.01deg", "0.1deg", "1deg")]
    [None, 4, 3, 2, 1]
    """
    lvl = normalise_level(level)
    if lvl is None:
        raise InputError("A sensitivity level is required, got an empty value.")
    return None if lvl == "exact" else _MAX_DECIMALS[lvl]


def _map_values(values: Any, mapping: dict[Any, Any], default: Any = np.nan, dtype: Any = float) -> np.ndarray:
    """``mapping[v]`` for each value (``default`` when absent or missing), via factorize."""
    codes, uniques = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=True)
    table = np.array([mapping.get(u, default) for u in uniques] + [default], dtype=dtype)
    return table[codes]  # code -1 (missing) picks the trailing default


def _clean_text(values: Any, *, upper: bool = False) -> np.ndarray:
    """Object array of stripped text, '' for missing values."""
    # a Series as it is (Arrow-backed text is factorised without making a million objects),
    # anything else as an object array; missing values get code -1
    values = values if isinstance(values, pd.Series) else _objects(values)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    clean = np.array([(str(u).strip().upper() if upper else str(u).strip()) for u in uniques] + [""], dtype=object)
    return clean[codes]


def _level_ranks(values: pd.Series, what: str, ids: pd.Series | None = None) -> np.ndarray:
    """Rank of each value's level (NaN where empty); unknown levels raise InputError."""
    arr = np.asarray(pd.Series(values).astype(object).to_numpy(), dtype=object)
    codes, uniques = pd.factorize(arr, use_na_sentinel=True)
    table = np.empty(len(uniques) + 1, dtype=float)
    table[-1] = np.nan
    for i, u in enumerate(uniques):
        try:
            lvl = normalise_level(u)
        except InputError:
            where = ""
            if ids is not None:
                first = np.asarray(pd.Series(ids).astype(object))[np.flatnonzero(codes == i)[0]]
                where = f" (record {first})"
            raise InputError(f"{what} {u!r}{where} is not one of {', '.join(SENSITIVITY_LEVELS)}.") from None
        table[i] = np.nan if lvl is None else float(_RANK[lvl])
    return table[codes]


def coarser_levels(a: pd.Series, b: pd.Series) -> pd.Series:
    """Element-wise :func:`coarser_level` of two aligned series (None where both are empty).

    >>> coarser_levels(pd.Series(["exact", None, None]), pd.Series(["0.1deg", "1deg", None])).tolist()
    ['0.1deg', '1deg', None]
    """
    a = pd.Series(a)
    rank = np.fmax(_level_ranks(a, "Sensitivity level"),
                   _level_ranks(pd.Series(b, index=a.index), "Sensitivity level"))
    names = np.array(SENSITIVITY_LEVELS + (None,), dtype=object)
    idx = np.where(np.isnan(rank), len(SENSITIVITY_LEVELS), np.nan_to_num(rank)).astype(int)
    return pd.Series(names[idx], index=a.index, dtype=object)


def effective_levels(requested: pd.Series, species_slug: pd.Series, registry: Registry,
                     *, iso3: pd.Series | None = None, ids: pd.Series | None = None) -> pd.Series:
    """Effective level of each record: the coarser of the requested level and the species default.

    Parameters
    ----------
    requested : Series
        The level each record's submission asks for (empty: none asked).
    species_slug : Series
        Registry slug of each record's species. A slug the registry does not know uses
        :data:`UNKNOWN_SPECIES_LEVEL`. An empty slug (a threat for no species in
        particular) uses the coarsest default of the species listed in the record's
        ``iso3`` (or of every species when ``iso3`` is empty or not given).
    registry : Registry
    iso3 : Series, optional
    ids : Series, optional
        Record ids, only used to name the record in an error message.

    Returns
    -------
    Series of str
        Canonical level per record, aligned to ``requested``.
    """
    requested = pd.Series(requested)
    index = requested.index
    req_rank = _level_ranks(requested, "Sensitivity level", ids)
    default_rank = {slug: float(_RANK[normalise_level(sp.default_sensitivity) or UNKNOWN_SPECIES_LEVEL])
                    for slug, sp in registry.species.items()}
    unknown_rank = float(_RANK[UNKNOWN_SPECIES_LEVEL])
    all_rank = max(default_rank.values(), default=unknown_rank)
    by_country: dict[str, float] = {}
    for slug, sp in registry.species.items():
        for iso in sp.range_states:
            by_country[iso] = max(by_country.get(iso, -1.0), default_rank[slug])

    slug_text = _clean_text(species_slug)
    sp_rank = _map_values(slug_text, default_rank, unknown_rank)
    empty = slug_text == ""
    if empty.any():
        if iso3 is not None:
            country_rank = _map_values(_clean_text(iso3, upper=True), by_country, all_rank)
        else:
            country_rank = np.full(len(index), all_rank)
        sp_rank = np.where(empty, country_rank, sp_rank)
    rank = np.fmax(req_rank, sp_rank).astype(int)
    levels = np.array(SENSITIVITY_LEVELS, dtype=object)[rank]
    return pd.Series(levels, index=index, dtype=object, name="sensitivity")


# -- grid --------------------------------------------------------------------------------

def snap_to_cell_centre(values: np.ndarray, size_deg: np.ndarray | float, *, limit: float) -> np.ndarray:
    """Centre of the grid cell of ``size_deg`` degrees that holds each value.

    Cells are ``[k*s, (k+1)*s)`` with the grid aligned on 0; values on the last edge
    (``+limit``, e.g. latitude 90) fall into the last cell, so centres stay within
    ``[-limit, limit]``. The result is rounded to the decimals the cell size allows, so it
    prints as e.g. ``45.15`` rather than ``45.150000000000006``. NaN sizes leave the value
    unchanged.

    Parameters
    ----------
    values : array of float
        Longitudes or latitudes in degrees.
    size_deg : float or array of float
        Cell size per value (NaN: leave the value as it is).
    limit : float
        180 for longitude, 90 for latitude.

    Examples
    --------
    >>> snap_to_cell_centre(np.array([45.2, 45.199, -0.01, 90.0]), 0.1, limit=90).tolist()
    [45.25, 45.15, -0.05, 89.95]
    """
    v = np.asarray(values, dtype=float)
    s = np.broadcast_to(np.asarray(size_deg, dtype=float), v.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        # Round the quotient first so that 45.2 / 0.1 = 451.99999999999994 lands in cell 452.
        k = np.floor(np.round(v / s, 6))
        n_cells = np.round(limit / s)
        k = np.clip(k, -n_cells, n_cells - 1)
        centre = (k + 0.5) * s
        decimals = np.where(np.isfinite(s) & (s > 0), np.round(-np.log10(np.where(s > 0, s, 1))) + 1, 0)
    out = v.copy()
    todo = np.isfinite(s) & (s > 0) & np.isfinite(v)
    for d in np.unique(decimals[todo]):
        sel = todo & (decimals == d)
        out[sel] = np.round(centre[sel], int(d))
    return out


def rounding_error_m(centre_lat: np.ndarray, size_deg: np.ndarray | float) -> np.ndarray:
    """Largest distance (m) between a cell centre and any point of its cell, rounded up.

    That is half the cell's diagonal at that latitude, taken on the WGS84 ellipsoid
    (:class:`pyproj.Geod`) as the geodesic from the centre to the farthest corner (the
    equatorward ones, where a degree of longitude is longest), and rounded up to the
    whole metre. NaN where the size is NaN.

    Examples
    --------
    >>> int(rounding_error_m(np.array([0.05]), 0.1)[0])
    7846
    """
    lat = np.asarray(centre_lat, dtype=float)
    s = np.broadcast_to(np.asarray(size_deg, dtype=float), lat.shape)
    out = np.full(lat.shape, np.nan)
    ok = np.isfinite(lat) & np.isfinite(s) & (s > 0)
    if not ok.any():
        return out
    # Few distinct (latitude, size) pairs even for millions of records: compute each once.
    for size in np.unique(s[ok]):
        sel = ok & (s == size)
        ulat, inverse = np.unique(lat[sel], return_inverse=True)
        half = np.full(ulat.shape, size / 2)
        zeros = np.zeros_like(ulat)
        _, _, d_lo = _GEOD.inv(zeros, ulat, half, np.clip(ulat - half, -90, 90))
        _, _, d_hi = _GEOD.inv(zeros, ulat, half, np.clip(ulat + half, -90, 90))
        out[sel] = np.ceil(np.maximum(d_lo, d_hi))[np.asarray(inverse).ravel()]
    return out


# -- scanning outputs ----------------------------------------------------------------------

def finest_coordinate_step_deg(values: Any) -> float:
    """The finest decimal grid step the given coordinates reveal.

    Returns the largest step of 1, 0.5, 0.1, 0.05, 0.01, ... 1e-7 degrees such that every
    finite value is a multiple of it (within 1e-9 degrees); 0.0 when the values are finer
    than 1e-7 degrees; ``inf`` when there is no finite value at all. A public column at
    level L is safe when the result is at least ``cell_size_deg(L) / 2`` (cell centres are
    odd multiples of half the cell size).

    Parameters
    ----------
    values : array-like of float
        Longitudes and/or latitudes in degrees.

    Examples
    --------
    >>> finest_coordinate_step_deg([45.15, 61.25, -3.05])
    0.05
    >>> finest_coordinate_step_deg([45.123456])
    1e-06
    >>> finest_coordinate_step_deg([])
    inf
    """
    v = np.asarray(pd.to_numeric(pd.Series(np.asarray(values, dtype=object).ravel()),
                                 errors="coerce"), dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return math.inf
    for step in _STEP_LADDER:
        if np.all(np.abs(v - np.round(v / step) * step) <= _ON_GRID_TOL_DEG):
            return step
    return 0.0


def finer_than_allowed(values: Any, levels: Any) -> np.ndarray:
    """Per value: True where a coordinate is more precise than its level allows.

    A value passes at a generalising level when it is a centre of that level's grid (an
    odd multiple of half the cell size, within 1e-9 degrees); any finite value fails at
    ``withheld``; everything passes at ``exact``. Empty values always pass.

    Parameters
    ----------
    values : array-like of float
    levels : str or array-like of str
        The level of each value (or one level for all).

    Examples
    --------
    >>> finer_than_allowed([45.15, 45.12, 45.1], "0.1deg").tolist()
    [False, True, True]
    """
    v = np.asarray(pd.to_numeric(pd.Series(np.asarray(values, dtype=object).ravel()),
                                 errors="coerce"), dtype=float)
    if isinstance(levels, str):
        lv = np.full(v.shape, normalise_level(levels), dtype=object)
    else:
        lv = np.asarray([normalise_level(x) for x in np.asarray(levels, dtype=object).ravel()],
                        dtype=object)
    out = np.zeros(v.shape, dtype=bool)
    finite = np.isfinite(v)
    for level in set(lv.tolist()):
        sel = (lv == level) & finite
        if level is None or level == "exact" or not sel.any():
            continue
        if level == "withheld":
            out[sel] = True
            continue
        half = CELL_SIZE_DEG[level] / 2
        q = v[sel] / half
        odd = np.round(q)
        on_grid = (np.abs(v[sel] - odd * half) <= _ON_GRID_TOL_DEG) & (np.mod(odd, 2) == 1)
        out[sel] = ~on_grid
    return out


# -- record tables -------------------------------------------------------------------------

def _objects(values: Any) -> np.ndarray:
    """``values`` as an object array, through a Series (missing text as NaN); an object
    array is taken as it is, its missing values unchanged."""
    if isinstance(values, np.ndarray) and values.dtype == object:
        return values
    return np.asarray(pd.Series(values).astype(object).to_numpy(), dtype=object)


def _append_note(existing: pd.Series | np.ndarray, note: np.ndarray | str, mask: np.ndarray) -> np.ndarray:
    """Object array: ``existing; note`` (or ``note`` when empty) where ``mask``, else unchanged."""
    out = _objects(existing).copy()
    if not mask.any():
        return out
    old = _clean_text(out[mask])
    add = np.full(old.shape, note, dtype=object) if isinstance(note, str) else np.asarray(note, dtype=object)[mask]
    out[mask] = _per_distinct(lambda o, a: a if o == "" else o + "; " + a, old, add)
    return out


def _per_distinct(func: Any, *columns: np.ndarray) -> np.ndarray:
    """Object array of ``func(a, b, ...)`` for the values of ``columns`` row by row, computed
    once per distinct combination (a million records hold a few thousand)."""
    codes = np.zeros(len(columns[0]), dtype=np.int64)
    uniques = []
    for col in columns:
        c, u = pd.factorize(np.asarray(col), use_na_sentinel=False)
        codes = codes * len(u) + c
        uniques.append(u)
    combo, distinct = pd.factorize(codes)
    values = []
    for code in distinct:
        args = []
        for u in reversed(uniques):
            code, i = divmod(int(code), len(u))
            args.append(u[i])
        values.append(func(*reversed(args)))
    table = np.empty(len(values), dtype=object)
    table[:] = values
    return table[combo]


def _xy(geoms: np.ndarray, lon: pd.Series | None, lat: pd.Series | None) -> tuple[np.ndarray, np.ndarray]:
    """Longitude/latitude of each record: the point, a non-point's centroid, else the columns."""
    n = len(geoms)
    x = np.full(n, np.nan)
    y = np.full(n, np.nan)
    has = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    if has.any():
        pts = geoms[has]
        not_point = shapely.get_type_id(pts) != 0
        if not_point.any():
            pts = pts.copy()
            pts[not_point] = shapely.centroid(pts[not_point])
        x[has] = shapely.get_x(pts)
        y[has] = shapely.get_y(pts)
    if lon is not None and lat is not None:
        fill = ~has
        x[fill] = pd.to_numeric(lon, errors="coerce").to_numpy(dtype=float)[fill]
        y[fill] = pd.to_numeric(lat, errors="coerce").to_numpy(dtype=float)[fill]
    return x, y


def _ensure_gdf(gdf: gpd.GeoDataFrame, what: str) -> gpd.GeoDataFrame:
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise TypeError(f"{what} must be a GeoDataFrame, got {type(gdf).__name__}.")
    if gdf.crs is not None and not gdf.crs.equals(CRS_WGS84):
        gdf = gdf.to_crs(CRS_WGS84)
    return gdf.copy()


def generalise_occurrences(gdf: gpd.GeoDataFrame, registry: Registry) -> gpd.GeoDataFrame:
    """The public copy of occurrence records, generalised as their effective level says.

    The effective level of each record is the **coarser** of its ``sensitivity`` (the level
    the submission asks for) and its species' ``default_sensitivity`` in the registry: a
    submission may ask for more protection than the registry, never for less. Species the
    registry does not know use :data:`UNKNOWN_SPECIES_LEVEL`.

    Per level:

    - ``exact``: unchanged.
    - ``0.001deg`` ... ``1deg``: the point moves to the centre of its grid cell (never a
      random offset), ``decimal_latitude``/``decimal_longitude`` follow;
      ``coordinate_uncertainty_m`` is raised by the rounding error N, half the cell
      diagonal in metres at that latitude computed on the WGS84 ellipsoid with
      :class:`pyproj.Geod` (centre to farthest corner, rounded up to the whole metre; an
      unknown uncertainty becomes N); ``data_generalizations`` gets "Coordinates
      generalised to 0.1 degree grid (cell centre) for species protection; uncertainty
      raised by N m"; ``locality`` is emptied (``information_withheld`` says so when
      there was one).
    - ``withheld``: geometry, ``decimal_latitude``, ``decimal_longitude``,
      ``coordinate_uncertainty_m``, ``event_date``, ``locality`` and ``recorded_by`` are
      emptied; ``iso3`` and ``year`` are kept; ``information_withheld`` and
      ``data_generalizations`` say so.

    ``sensitivity`` holds the effective level afterwards. Vectorised; no row is dropped.

    Parameters
    ----------
    gdf : GeoDataFrame
        Occurrence records with the columns of :data:`cami_geo.model.OCCURRENCE_COLUMNS`
        (missing optional columns are added empty), point geometry in EPSG:4326.
    registry : Registry

    Returns
    -------
    GeoDataFrame
        A new frame, same index, rows and columns, in EPSG:4326.

    Raises
    ------
    InputError
        When a ``sensitivity`` value is not a level.
    """
    out = _ensure_gdf(gdf, "Occurrences")
    n = len(out)
    for col in ("sensitivity", "species_slug", "decimal_latitude", "decimal_longitude",
                "coordinate_uncertainty_m", "data_generalizations", "information_withheld",
                "locality", "recorded_by", "event_date", "record_id"):
        if col not in out.columns:
            out[col] = pd.Series([None] * n, index=out.index, dtype=object)
    level = effective_levels(out["sensitivity"], out["species_slug"], registry, ids=out["record_id"])
    lv = level.to_numpy()
    size = _map_values(lv, CELL_SIZE_DEG)  # NaN for exact/withheld
    gen = np.isfinite(size)
    withheld = lv == "withheld"

    geoms = np.asarray(out.geometry.values, dtype=object)
    x, y = _xy(geoms, out["decimal_longitude"], out["decimal_latitude"])
    cx = snap_to_cell_centre(x, size, limit=180.0)
    cy = snap_to_cell_centre(y, size, limit=90.0)
    err = rounding_error_m(cy, size)
    located = gen & np.isfinite(cx) & np.isfinite(cy)

    lon = pd.to_numeric(out["decimal_longitude"], errors="coerce").to_numpy(dtype=float).copy()
    lat = pd.to_numeric(out["decimal_latitude"], errors="coerce").to_numpy(dtype=float).copy()
    lon[located] = cx[located]
    lat[located] = cy[located]
    lon[withheld] = np.nan
    lat[withheld] = np.nan
    out["decimal_longitude"] = lon
    out["decimal_latitude"] = lat

    new_geom = np.array(out.geometry.values, dtype=object)
    if located.any():
        new_geom[located] = shapely.points(cx[located], cy[located])
    new_geom[withheld] = None
    out = out.set_geometry(gpd.GeoSeries(new_geom, index=out.index, crs=CRS_WGS84), crs=CRS_WGS84)
    if out.geometry.name != "geometry" and "geometry" not in out.columns:
        out = out.rename_geometry("geometry")

    unc = pd.to_numeric(out["coordinate_uncertainty_m"], errors="coerce").to_numpy(dtype=float)
    base = np.where(np.isfinite(unc), unc, 0.0)
    unc = np.where(located, base + np.nan_to_num(err), unc)
    unc[withheld] = np.nan
    out["coordinate_uncertainty_m"] = unc

    note = np.full(n, "", dtype=object)
    if located.any():
        metres = np.nan_to_num(err[located]).astype(np.int64)
        note[located] = _per_distinct(lambda level, m: f"Coordinates generalised to {_LABEL.get(level, '')} grid "
                                      f"(cell centre) for species protection; uncertainty raised by {m} m",
                                      lv[located], metres)
    dg = _append_note(out["data_generalizations"], note, located)
    dg = _append_note(dg, WITHHELD_GENERALIZATION, withheld)
    out["data_generalizations"] = pd.Series(dg, index=out.index, dtype=object)

    had_locality = _clean_text(out["locality"]) != ""
    iw = _append_note(out["information_withheld"], LOCALITY_NOTE, gen & had_locality)
    iw = _append_note(iw, WITHHELD_NOTE, withheld)
    out["information_withheld"] = pd.Series(iw, index=out.index, dtype=object)

    drop_locality = lv != "exact"
    out["locality"] = out["locality"].astype(object).where(~drop_locality, None)
    for col in ("recorded_by", "event_date"):
        out[col] = out[col].astype(object).where(~withheld, None)
    out["sensitivity"] = level.astype(object)
    return out


def is_poaching_code(codes: pd.Series) -> np.ndarray:
    """True where an IUCN threat code is 5.1 or below it (hunting and collecting animals).

    >>> is_poaching_code(pd.Series(["5.1.1", "5.1", "5.2", "5.10", None])).tolist()
    [True, True, False, False, False]
    """
    text = _clean_text(codes)
    flags = {u: (u == "5.1" or u.startswith("5.1.")) for u in pd.unique(text)}
    return _map_values(text, flags, False, dtype=bool)


def generalise_threats(gdf: gpd.GeoDataFrame, registry: Registry) -> gpd.GeoDataFrame:
    """The public copy of threat features: poaching points generalised, the rest unchanged.

    Point (and multipoint) features of IUCN codes 5.1.* (hunting and trapping: kills,
    snares, poacher camps) are generalised like occurrences of their species: the level is
    the **coarser** of the row's ``sensitivity`` (when the frame has that column, e.g. the
    submission's level) and the species' registry default, so a submission may ask for
    more protection, never less. A threat with no species uses the coarsest default of
    the species listed in its ``iso3`` (every species when ``iso3`` is empty). Each point
    moves to the centre of its grid cell; at ``withheld`` the geometry is emptied and
    ``event_date`` too (``year`` stays). Generalised features lose their ``name`` text and
    get the flag ``generalised_<level>``. Lines, polygons and other codes are kept as they
    are. No row is dropped.

    Parameters
    ----------
    gdf : GeoDataFrame
        Threat features with the columns of :data:`cami_geo.model.THREAT_COLUMNS`, EPSG:4326.
    registry : Registry

    Returns
    -------
    GeoDataFrame
        A new frame, same index and columns.
    """
    out = _ensure_gdf(gdf, "Threats")
    n = len(out)
    for col in ("iucn_code", "species_slug", "iso3", "flags", "name", "event_date", "record_id"):
        if col not in out.columns:
            out[col] = pd.Series([None] * n, index=out.index, dtype=object)
    requested = out["sensitivity"] if "sensitivity" in out.columns else pd.Series([None] * n, index=out.index)
    geoms = np.asarray(out.geometry.values, dtype=object)
    type_id = shapely.get_type_id(geoms)  # -1 for missing
    pointlike = (type_id == 0) | (type_id == 4)
    target = is_poaching_code(out["iucn_code"]) & pointlike & ~shapely.is_empty(geoms)
    if not target.any():
        return out
    level = effective_levels(requested, out["species_slug"], registry, iso3=out["iso3"], ids=out["record_id"])
    lv = level.to_numpy()
    size = _map_values(lv, CELL_SIZE_DEG)
    gen = target & np.isfinite(size)
    withheld = target & (lv == "withheld")

    new_geom = geoms.copy()
    if gen.any():
        idx = np.flatnonzero(gen)
        _, which = shapely.get_coordinates(geoms[idx], return_index=True)
        per_coord = size[idx][which]  # transform passes every coordinate in the same order

        def _snap(c: np.ndarray) -> np.ndarray:
            return np.column_stack([snap_to_cell_centre(c[:, 0], per_coord, limit=180.0),
                                    snap_to_cell_centre(c[:, 1], per_coord, limit=90.0)])

        new_geom[idx] = shapely.transform(geoms[idx], _snap)
    new_geom[withheld] = None
    out = out.set_geometry(gpd.GeoSeries(new_geom, index=out.index, crs=CRS_WGS84), crs=CRS_WGS84)

    changed = gen | withheld
    flags = np.asarray(out["flags"].astype(object).to_numpy(), dtype=object).copy()
    old = _clean_text(flags[changed])
    add = ("generalised_" + lv[changed].astype(str)).astype(object)
    flags[changed] = np.where(old == "", add, old + ";" + add)
    out["flags"] = pd.Series(flags, index=out.index, dtype=object)
    out["name"] = out["name"].astype(object).where(~changed, None)
    out["event_date"] = out["event_date"].astype(object).where(~withheld, None)
    return out
