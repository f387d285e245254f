"""Checks of occurrence records (PRODUCT.md "Checks and their severity").

:func:`check_occurrences` takes a text frame with canonical column names (see
:mod:`cami_geo.io.aliases`) and returns the normalised records (all rows, in order) with
the problems found; the intake rejects the rows with errors.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ..errors import InputError
from ..io.coords import crs_from_text, parse_degrees, to_wgs84
from . import ProblemLog
from .common import (PARALLEL_MIN_ROWS, CheckContext, Tasks, at_codes, obj_full, resolve_countries_coded, resolve_dates_coded,
                     species_codes, text, text_codes, to_number)
from .geo import geod

TRANSFORMS = [
    # (label, is a swap, function lon, lat -> lon', lat'); simplest first
    ("latitude sign flipped", False, lambda x, y: (x, -y)),
    ("longitude sign flipped", False, lambda x, y: (-x, y)),
    ("latitude and longitude swapped", True, lambda x, y: (y, x)),
    ("latitude and longitude signs flipped", False, lambda x, y: (-x, -y)),
    ("latitude and longitude swapped, and the longitude value's sign flipped", True, lambda x, y: (y, -x)),
    ("latitude and longitude swapped, and the latitude value's sign flipped", True, lambda x, y: (-y, x)),
    ("latitude and longitude swapped, and both signs flipped", True, lambda x, y: (-y, -x)),
]

STATUS = {"present": "present", "absent": "absent", "detected": "present", "notdetected": "absent",
          "presence": "present", "absence": "absent", "1": "present", "0": "absent", "": "present",
          "присутствует": "present", "отсутствует": "absent", "есть": "present", "нет": "absent"}


def coordinates(f: pd.DataFrame, log: ProblemLog, ctx: CheckContext, *, file_crs: str | None = None,
                lon_ahead=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """WGS84 lon/lat for each row from decimal degrees, DMS text or projected x/y.

    Returns lon, lat, decimals (digits after the decimal separator, the smaller of the two;
    -1 where the coordinates were DMS or projected).

    ``lon_ahead``: the function giving ``parse_degrees`` of the decimal_longitude column,
    when the caller started it already (see :func:`_lon_ahead`).
    """
    n = len(f)
    if not ({"decimal_latitude", "decimal_longitude", "x", "y"} & set(f.columns)) and "coordinates" in f.columns:
        from ..io.coords import split_coordinates

        lat_s, lon_s = split_coordinates(text(f, "coordinates"))
        f = f.assign(decimal_latitude=lat_s.to_numpy(dtype=object), decimal_longitude=lon_s.to_numpy(dtype=object))
    if "decimal_latitude" in f.columns or "decimal_longitude" in f.columns:
        lat_col, lon_col = "decimal_latitude", "decimal_longitude"
        lat_name, lon_name = "decimalLatitude", "decimalLongitude"
        projected = None
    else:
        lat_col, lon_col, lat_name, lon_name = "y", "x", "y", "x"
        crs_text = file_crs or ctx.crs
        projected = crs_from_text(crs_text, where="submission.yaml crs") if crs_text else None
        if projected is not None and projected.is_geographic and projected.to_epsg() == 4326:
            projected = None
    lat_t, lon_t = text(f, lat_col), text(f, lon_col)
    if projected is None and "crs" in f.columns and lat_col == "y":
        projected = "per-row"
    if projected is not None:
        x = to_number(lon_t)
        y = to_number(lat_t)
        empty = (lat_t == "").to_numpy() | (lon_t == "").to_numpy()
        lon = np.full(n, np.nan)
        lat = np.full(n, np.nan)
        if projected == "per-row":
            crs_col = text(f, "crs").to_numpy(dtype=object)
            for c in pd.unique(crs_col):
                sel = crs_col == c
                try:
                    crs = crs_from_text(c, where="crs") if c else None
                except InputError as exc:
                    log.add("crs_invalid", sel, "crs", str(exc), c)
                    continue
                if crs is None:
                    lon[sel], lat[sel] = x[sel], y[sel]
                else:
                    lon[sel], lat[sel] = to_wgs84(x[sel], y[sel], crs)
        else:
            lon, lat = to_wgs84(x, y, projected)
        decimals = np.full(n, -1)
        log.add("coords_missing", empty, f"{lon_name}/{lat_name}", "coordinates missing")
        nonnum = ~empty & (np.isnan(x) | np.isnan(y))
        log.add("coords_not_numeric", nonnum, f"{lon_name}/{lat_name}", "x/y are not numbers",
                lambda i: (lon_t.iloc[i] + " " + lat_t.iloc[i]).to_numpy(dtype=object))
        fail = ~empty & ~nonnum & np.isnan(lon)
        log.add("coords_out_of_range", fail, f"{lon_name}/{lat_name}", "x/y cannot be transformed to WGS84 from the declared CRS")
        return lon, lat, decimals
    lat, lat_empty, lat_dec = parse_degrees(lat_t, "lat", stripped=True)   # text() stripped them
    if lon_ahead is not None and lon_col == "decimal_longitude":
        lon, lon_empty, lon_dec = lon_ahead()
    else:
        lon, lon_empty, lon_dec = parse_degrees(lon_t, "lon", stripped=True)
    missing = lat_empty | lon_empty
    if lat_col not in f.columns and lon_col not in f.columns:
        log.add("coords_missing", missing, "decimalLatitude/decimalLongitude",
                "the file has no coordinate columns (expected decimalLatitude/decimalLongitude, lat/lon, "
                "широта/долгота, x/y with a CRS, or point geometry)")
        return lon, lat, np.minimum(lat_dec, lon_dec)
    log.add("coords_missing", missing, f"{lat_name}/{lon_name}",
            lambda i: np.where(lat_empty[i] & lon_empty[i], "latitude and longitude missing",
                               np.where(lat_empty[i], "latitude missing", "longitude missing")).astype(object))
    for vals, empty_, t, name in ((lat, lat_empty, lat_t, lat_name), (lon, lon_empty, lon_t, lon_name)):
        bad = ~empty_ & np.isnan(vals)
        log.add("coords_not_numeric", bad, name,
                "not a number in decimal degrees or a degrees-minutes-seconds value (e.g. 41.75 or 41°45'00\"N)",
                _at(t))
    decimals = np.minimum(lat_dec, lon_dec)
    return lon, lat, decimals


class _Coded:
    """A text column held as codes into a small table of names (comparing 10^6 Python
    strings is slow; comparing their codes is not). Indexing gives the texts."""

    def __init__(self, names: np.ndarray, codes: np.ndarray):
        self.names, self.codes = names, codes

    def __getitem__(self, i):
        return self.names[self.codes[i]]


def fill(mask: np.ndarray, fmt: str, *arrays):
    """Reason texts for :meth:`ProblemLog.add`: ``fmt`` formatted with the arrays' values at
    the flagged positions, computed there only (every mask given to ``add`` with it is
    within ``mask``)."""
    arrays = tuple(a if isinstance(a, _Coded) else np.asarray(a) for a in arrays)
    return lambda i: [fmt.format(*vals) for vals in zip(*(a[i] for a in arrays))]


def _at(t: pd.Series):
    """Problem values from text column ``t``, converted for the flagged positions only."""
    return lambda i: t.iloc[i].to_numpy(dtype=object)


def _canonical_bits(a: np.ndarray) -> np.ndarray:
    """The bits of float values, equal where pandas finds the values equal (0.0 and -0.0;
    every NaN)."""
    a = a.astype(np.float64) + 0.0                  # -0.0 -> 0.0
    np.copyto(a, np.nan, where=np.isnan(a))         # one NaN
    return a.view(np.uint64)


def _repeated(h: np.ndarray) -> np.ndarray:
    """Positions (ascending) whose value occurs more than once in ``h`` (uint64)."""
    s = np.sort(h)
    vals = s[1:][s[1:] == s[:-1]]              # the repeated values
    if not len(vals):
        return np.zeros(0, dtype=np.intp)
    top = np.uint64(44)                         # a table of the values' top 20 bits finds the candidates
    seen = np.zeros(1 << 20, dtype=bool)
    seen[(vals >> top).astype(np.intp)] = True
    cand = np.flatnonzero(seen[(h >> top).astype(np.intp)])
    return cand[np.isin(h[cand], vals)]


def _same_place(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Positions (ascending) that may share their coordinates with another row: those whose
    64-bit hash of the coordinates is not unique (equal coordinates, as pandas compares
    them, have equal hashes)."""
    mult = np.uint64(0x9E3779B97F4A7C15)
    shift = np.uint64(31)
    h = np.zeros(len(lon), dtype=np.uint64)
    with np.errstate(all="ignore"):
        for a in (lon, lat):
            h ^= _canonical_bits(a)
            h *= mult
            h ^= h >> shift
    return _repeated(h)


def _duplicated(cols: dict[str, np.ndarray], maybe: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(``key.duplicated(keep="first")``, positions of ``key.duplicated(keep=False)``) for the
    frame ``key`` of the equal-length arrays ``cols``, given ``maybe``: positions ascending,
    a superset of the rows with an equal row (see :func:`_same_place`). The exact pandas
    test runs on those rows only."""
    n = len(next(iter(cols.values())))
    dup = np.zeros(n, dtype=bool)
    if not len(maybe):
        return dup, maybe
    sub = pd.DataFrame({k: a[maybe] for k, a in cols.items()})
    dup[maybe] = sub.duplicated(keep="first").to_numpy()
    return dup, maybe[sub.duplicated(keep=False).to_numpy()]


def _near(lon: np.ndarray, lat: np.ndarray, rows: np.ndarray, codes: np.ndarray, rx: np.ndarray, ry: np.ndarray,
          km: float) -> tuple[np.ndarray, np.ndarray]:
    """:func:`cami_geo.checks.geo.within_km_of` for the points where ``rows`` (a mask; finite
    lon/lat there) holds and the reference points ``rx[codes]``, ``ry[codes]``, with the
    per-reference values computed once per reference point: (within ``km``, distance in km
    where tested)."""
    n = len(lon)
    hit = np.zeros(n, dtype=bool)
    dist = np.full(n, np.nan)
    ok_ref = np.isfinite(rx) & np.isfinite(ry)
    dlat = km / 110.0 + 1e-9
    coslat = np.cos(np.radians(np.clip(np.abs(ry), 0, 89)))
    dlon = dlat / np.where(coslat > 0.01, coslat, 0.01)
    ry_ok = np.where(ok_ref, ry, np.nan)   # no reference point: never near
    with np.errstate(invalid="ignore"):
        near_lat = np.abs(lat - ry_ok[codes]) <= dlat
        near_lat &= rows
        cand = np.flatnonzero(near_lat)
        c = codes[cand]
        cand = cand[np.abs(lon[cand] - rx[c]) <= dlon[c]]
    if len(cand):
        c = codes[cand]
        _, _, d = geod().inv(lon[cand], lat[cand], rx[c], ry[c])
        d = np.asarray(d) / 1000.0
        dist[cand] = d
        hit[cand] = d <= km
    return hit, dist


def _transform_fits(lon, lat, idx, targets, ctx) -> tuple[np.ndarray, np.ndarray]:
    """For rows ``idx``, the first transform that puts the point in its target countries."""
    label = np.full(len(idx), "", dtype=object)
    swap = np.zeros(len(idx), dtype=bool)
    for name, is_swap, fn in TRANSFORMS:
        todo = label == ""
        if not todo.any():
            break
        x, y = fn(lon[idx[todo]], lat[idx[todo]])
        ok_range = (np.abs(y) <= 90) & (np.abs(x) <= 180)
        where = ctx.countries.locate(np.where(ok_range, x, np.nan), np.where(ok_range, y, np.nan))
        fits = np.array([w != "" and w in t for w, t in zip(where, targets[todo])], dtype=bool)
        sub = np.flatnonzero(todo)[fits]
        label[sub] = [f"{name}: the point then falls in {w}" for w in where[fits]]
        swap[sub] = is_swap
    return label, swap


def _uncertainty(f: pd.DataFrame, log: ProblemLog, ctx: CheckContext) -> np.ndarray:
    """coordinateUncertaintyInMeters in metres (NaN where unknown), with its problems."""
    n = len(f)
    if "coordinate_uncertainty_m" in f.columns:
        u_codes, u_text = text_codes(f, "coordinate_uncertainty_m", null_tokens=True)
        unc_u = to_number(pd.Series(u_text, dtype="str"))   # per distinct text
        unc = unc_u[u_codes]
        with np.errstate(invalid="ignore"):
            unc_bad = ((u_text != "") & (np.isnan(unc_u) | (unc_u < 0)))[u_codes]
        log.add("uncertainty_invalid", unc_bad, "coordinateUncertaintyInMeters", "not a positive number of metres; treated as unknown",
                at_codes(u_codes, u_text))
        log.add("uncertainty_zero", unc == 0, "coordinateUncertaintyInMeters", "0 m is not a valid uncertainty; treated as unknown")
        max_unc = ctx.threshold("max_uncertainty_m", 20000)
        log.add("uncertainty_large", unc > max_unc, "coordinateUncertaintyInMeters",
                f"uncertainty above {max_unc:g} m; the record is kept out of AOO", at_codes(u_codes, u_text))
        return np.where(unc_bad | (unc == 0), np.nan, unc)
    return np.full(n, np.nan)   # no column: every uncertainty unknown, nothing to report


def _counts_status(f: pd.DataFrame, log: ProblemLog) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """individualCount (NaN where not given or invalid), occurrenceStatus, and whether it is
    'present', with their problems."""
    n = len(f)
    if "individual_count" in f.columns:
        c_codes, c_text = text_codes(f, "individual_count", null_tokens=True)
        cnt_u = to_number(pd.Series(c_text, dtype="str"))   # per distinct text
        with np.errstate(invalid="ignore"):
            bad_u = (c_text != "") & (np.isnan(cnt_u) | (cnt_u < 0) | (cnt_u != np.round(cnt_u)))
        log.add("count_invalid", bad_u[c_codes], "individualCount", "individualCount must be a whole number of 0 or more",
                at_codes(c_codes, c_text))
        cnt = np.where(bad_u, np.nan, cnt_u)[c_codes]
    else:
        cnt = np.full(n, np.nan)
    if "occurrence_status" in f.columns:
        st_codes, st_uniq = text_codes(f, "occurrence_status")
        st_map = {v: STATUS.get(re.sub(r"[\s_-]", "", str(v).casefold())) for v in st_uniq}
        status_u = np.array([st_map.get(k) for k in st_uniq], dtype=object)
        st_unknown_u = np.asarray(pd.isna(status_u), dtype=bool)
        log.add("status_unknown", st_unknown_u[st_codes], "occurrenceStatus", "occurrenceStatus not present/absent; kept as present",
                at_codes(st_codes, st_uniq))
        status_u = np.where(st_unknown_u, "present", status_u)
        status = status_u[st_codes]
        present = np.asarray(status_u == "present", dtype=bool)[st_codes]
    else:  # no column: every record present (STATUS[""])
        status = obj_full(n, "present")
        present = np.ones(n, dtype=bool)
    return cnt, status, present


def _lon_ahead(f: pd.DataFrame, task: Tasks):
    """Start ``parse_degrees`` of the decimal_longitude column as :func:`coordinates` will
    need it (None when it will not read that column)."""
    if "decimal_latitude" not in f.columns and "decimal_longitude" not in f.columns:
        return None
    return task.call(lambda: parse_degrees(text(f, "decimal_longitude"), "lon", stripped=True))


def _centroids_ahead(countries, iso3s: list[str]) -> None:
    """Fill the centroid cache of ``countries`` (an error is left for the real request)."""
    try:
        countries.centroids(iso3s)
    except Exception:  # noqa: BLE001
        pass


def _proximity(lon, lat, has_iso, iso_c, names, ctx: CheckContext, centroids_ahead=None):
    """Points near the centroid (area centroid) or the capital of their country: (near the
    centroid, km to it, near the capital, km to it, capital names)."""
    if centroids_ahead is not None:
        centroids_ahead()
    cent = ctx.countries.centroids([names[k] for k in pd.unique(iso_c) if k])
    cx = np.array([cent.get(k, (np.nan, np.nan))[0] for k in names], dtype=float)
    cy = np.array([cent.get(k, (np.nan, np.nan))[1] for k in names], dtype=float)
    near_c, dc = _near(lon, lat, has_iso, iso_c, cx, cy, ctx.threshold("centroid_km", 1))
    cap = {i: (s.capital_lon, s.capital_lat, s.capital) for i, s in ctx.registry.states.items()}
    kx = np.array([cap[k][0] if k in cap else np.nan for k in names], dtype=float)
    ky = np.array([cap[k][1] if k in cap else np.nan for k in names], dtype=float)
    kname = _Coded(np.array([cap[k][2] if k in cap else "the capital" for k in names], dtype=object), iso_c)
    near_k, dk = _near(lon, lat, has_iso, iso_c, kx, ky, ctx.threshold("capital_km", 10))
    return near_c, dc, near_k, dk, kname


def check_occurrences(f: pd.DataFrame, log: ProblemLog, ctx: CheckContext, *, file_crs: str | None = None,
                      records: bool = True) -> pd.DataFrame:
    """Normalise and check occurrence rows.

    Parameters
    ----------
    f : text frame with canonical columns (decimal_latitude, species, ...)
    log : where problems go (rows follow the frame's positions)
    ctx : registry, boundaries, thresholds
    file_crs : CRS of x/y columns declared for this file
    records : False when only the problems are wanted (``cami-geo validate``): the
        returned frame then has the rows but no columns

    Returns
    -------
    DataFrame with one row per input row (same order): species, species_slug,
    verbatim_species, iso3, decimal_latitude, decimal_longitude (EPSG:4326 degrees),
    coordinate_uncertainty_m (metres), event_date, year, individual_count, and the Darwin
    Core text fields.
    """
    n = len(f)
    reg = ctx.registry
    # The checks of single columns (species, country, uncertainty, dates, counts, status)
    # run beside the coordinate checks, each writing to its own log; their problems join
    # `log` in the order of the checks, as if they had run one after the other.
    task = Tasks(parallel=n >= PARALLEL_MIN_ROWS)
    lon_ahead = _lon_ahead(f, task) if task.parallel else None
    # the declared countries in this thread, while the other parses the longitudes
    countries = Tasks(parallel=False).run(log, resolve_countries_coded, f, ctx)
    species = task.run(log, species_codes, f, ctx)
    if task.parallel:
        task.call(geod)   # pyproj's import, beside the work below (distances need it)
    dates = task.run(log, resolve_dates_coded, f, ctx, values=records)
    counts_status = task.run(log, _counts_status, f)
    uncertainty = task.run(log, _uncertainty, f, ctx)
    if task.parallel:
        countries(join=False)
    lon, lat, decimals = coordinates(f, log, ctx, file_crs=file_crs, lon_ahead=lon_ahead)
    same_place = task.call(_same_place, lon, lat)   # for the duplicates (at the end), meanwhile
    finite = np.isfinite(lon) & np.isfinite(lat)
    out_range = finite & ((np.abs(lat) > 90) | (np.abs(lon) > 180))
    metres = out_range & (np.abs(lat) > 1000) & (np.abs(lon) > 1000)
    log.add("coords_out_of_range", out_range & ~metres, "decimalLatitude/decimalLongitude",
            fill(out_range & ~metres, "latitude {:g} / longitude {:g} outside -90..90 / -180..180", lat, lon))
    log.add("coords_out_of_range", metres, "decimalLatitude/decimalLongitude",
            fill(metres, "{:g} / {:g} look like projected coordinates in metres, not degrees: declare their CRS in "
                         "submission.yaml (crs: EPSG:326NN for UTM zone NN north) and name the columns x and y", lon, lat))
    zero = finite & ~out_range & ((lat == 0) | (lon == 0))
    log.add("coords_zero", zero, "decimalLatitude/decimalLongitude", "latitude or longitude is exactly 0 (a blank stored as zero?)")
    usable = finite & ~out_range & ~zero

    c_codes, c_raw, c_iso = countries(join=False)   # its problems follow the species' (below)
    centroids_ahead = (task.call(_centroids_ahead, ctx.countries, [c for c in pd.unique(c_iso) if c])
                       if task.parallel else None)   # centroids of the declared countries, computed meanwhile
    declared = _Coded(c_iso, c_codes)
    du_codes, d_uniq = pd.factorize(c_iso, use_na_sentinel=False)   # = pd.factorize(declared), from the distinct texts
    d_codes = np.asarray(du_codes)[c_codes]
    d_uniq = np.asarray(d_uniq, dtype=object)
    raw_empty = np.asarray(c_raw == "", dtype=bool)[c_codes]

    # countries as codes into `names` (0: none): the boundary layer's, then other declared ones
    names_l = [""] + list(dict.fromkeys(ctx.countries.iso3))
    in_layer = set(names_l)
    names_l += [v for v in dict.fromkeys(d_uniq) if v not in in_layer]
    code_of = {v: k for k, v in enumerate(names_l)}
    names = np.empty(len(names_l), dtype=object)
    names[:] = names_l
    decl = np.array([code_of[v] for v in d_uniq], dtype=np.int64)[d_codes] if len(d_uniq) else np.zeros(n, dtype=np.int64)

    # where each point lies (declared country tested first)
    loc_idx = ctx.countries.locate_index(lon, lat, first_codes=(d_codes, d_uniq), valid=usable)
    loc = np.array([code_of[v] for v in ctx.countries.iso3] + [0], dtype=np.int64)[loc_idx]
    located = _Coded(names, loc)
    tol_km = ctx.threshold("border_tolerance_km", 10)
    iso_c = np.where(decl != 0, decl, loc)
    sp_codes, verbatim_u, slug_u, sci_u, species_key, slug_codes, slug_names = species()
    countries()   # its problems after the species' (the order of the checks)
    slug, sci = _Coded(slug_u, sp_codes), _Coded(sci_u, sp_codes)

    # outside the declared country
    outside = usable & (decl != 0) & (loc != decl)
    near_ok = np.zeros(n, dtype=bool)
    dist = np.full(n, np.inf)
    if outside.any():
        dist[outside] = ctx.countries.distance_km(declared[outside], lon[outside], lat[outside])
        near_ok = outside & (dist <= tol_km)
    # not on land (no declared country, or declared but far)
    at_sea = usable & (loc == 0) & ~near_ok
    sea_near = np.zeros(n, dtype=bool)
    sea_todo = at_sea & (decl == 0)   # a point far from its declared country stays at sea
    if sea_todo.any():
        niso, ndist = ctx.countries.nearest(np.where(sea_todo, lon, np.nan), np.where(sea_todo, lat, np.nan))
        sea_near = sea_todo & (ndist <= tol_km)
        pos = np.flatnonzero(sea_near)
        iso_c = iso_c.copy()
        iso_c[pos] = [code_of[v] for v in niso[pos]]
        dist = np.where(sea_near, ndist, dist)
        near_ok = near_ok | sea_near
        at_sea = at_sea & ~sea_near
    iso3 = _Coded(names, iso_c)
    proximity = task.call(_proximity, lon, lat, usable & (iso_c != 0), iso_c, names, ctx, centroids_ahead)
    mismatch = outside & ~near_ok & (loc != 0)
    # species range
    species_states = {s: set(reg.species[s].range_states) for s in slug_names if s}
    point_c = np.where(near_ok, iso_c, loc)
    point_iso = _Coded(names, point_c)
    # whether each (species, country) pair is in range, looked up by codes
    in_range_of = np.zeros((len(slug_names), len(names_l)), dtype=bool)
    for k, s_ in enumerate(slug_names):
        if s_:
            in_range_of[k, [code_of[c] for c in species_states[s_] if c in code_of and c]] = True
    in_species_range = in_range_of[slug_codes, point_c] if len(slug_names) else np.zeros(n, dtype=bool)
    is_range_state = np.array([bool(ctx.countries.range_state.get(c, False)) for c in names_l], dtype=bool)[point_c]
    has_species = np.array([s_ != "" for s_ in slug_names], dtype=bool)[slug_codes] if len(slug_names) else np.zeros(n, dtype=bool)
    land = usable & (point_c != 0)
    off_range = land & has_species & ~in_species_range & ~mismatch
    not_listed = off_range & is_range_state
    outside_all = off_range & ~is_range_state

    # swapped / sign-flipped: only for points that fail their place
    suspicious = (out_range | mismatch | at_sea | outside_all) & finite
    transformed = np.zeros(n, dtype=bool)
    if suspicious.any():
        idx = np.flatnonzero(suspicious)
        targets = []
        for i in idx:
            # the place the point should fit: its declared country, else the Range States the
            # submission covers; a point out of range may also fit any Range State of its species
            if declared[i]:
                targets.append({declared[i]})
            elif ctx.range_states:
                targets.append(set(ctx.range_states))
            elif out_range[i]:
                targets.append(species_states.get(slug[i], set()))
            else:
                targets.append(set())
        targets_arr = np.empty(len(idx), dtype=object)
        targets_arr[:] = targets
        label, swap = _transform_fits(lon, lat, idx, targets_arr, ctx)
        hit = label != ""
        m_swap = np.zeros(n, dtype=bool)
        m_flip = np.zeros(n, dtype=bool)
        m_swap[idx[hit & swap]] = True
        m_flip[idx[hit & ~swap]] = True

        def reasons(i):   # the label of each flagged position (a position of idx)
            return label[np.searchsorted(idx, i)]
        vals = fill(m_swap | m_flip, "{:g}, {:g}", lat, lon)
        log.add("coords_swapped", m_swap, "decimalLatitude/decimalLongitude", reasons, vals)
        log.add("coords_sign_flipped", m_flip, "decimalLatitude/decimalLongitude", reasons, vals)
        transformed = m_swap | m_flip
    log.add("country_mismatch", mismatch & ~transformed, "countryCode",
            fill(mismatch, "point lies in {}, {:.1f} km outside the declared country {} (border tolerance " + f"{tol_km:g} km)",
                 located, dist, declared),
            at_codes(c_codes, c_raw))
    far_declared = outside & ~near_ok & (located == "")
    log.add("at_sea", (at_sea | far_declared) & ~transformed, "decimalLatitude/decimalLongitude",
            "point is not on land in any country of the boundary layer (at sea, or outside the mapped region)")
    log.add("outside_range_states", outside_all & ~transformed, "decimalLatitude/decimalLongitude",
            fill(outside_all, "point lies in {}, which is not a Range State of {}", point_iso, sci))
    log.add("not_listed_range_state", not_listed, "countryCode",
            fill(not_listed, "point lies in {}, a Range State where {} is not listed", point_iso, sci))
    log.add("near_border", near_ok, "decimalLatitude/decimalLongitude",
            fill(near_ok, "point lies {:.1f} km outside {}, within the " + f"{tol_km:g} km border tolerance",
                 dist, iso3))   # finite where near_ok
    filled = raw_empty & (iso_c != 0) & usable
    log.add("country_filled", filled, "countryCode",
            fill(filled, "no country given; filled as {} from the point", iso3))

    # proximity to centroids and capitals (computed meanwhile)
    near_c, dc, near_k, dk, kname = proximity()
    log.add("near_centroid", near_c, "decimalLatitude/decimalLongitude",
            fill(near_c, "point lies {:.2f} km from the centroid of {} (a georeferencing default?)", dc, iso3))
    log.add("near_capital", near_k, "decimalLatitude/decimalLongitude",
            fill(near_k, "point lies {:.1f} km from {}, the capital of {}", dk, kname, iso3))
    equal = usable & (np.abs(lat) == np.abs(lon))
    log.add("equal_coords", equal, "decimalLatitude/decimalLongitude", "latitude equals longitude (a copy error?)")
    min_dec = int(ctx.threshold("min_decimals", 2))
    few = usable & (decimals >= 0) & (decimals < min_dec)
    log.add("few_decimals", few, "decimalLatitude/decimalLongitude",
            fill(few, "coordinates have {} decimal(s), fewer than " + f"{min_dec} (imprecise, or degrees-minutes read as decimals?)", decimals))

    unc = uncertainty()
    event_date, year, date_key = dates()
    cnt, status, present = counts_status()

    # duplicates: same species, coordinates, date and status as an earlier row
    key = {"s": species_key, "x": lon, "y": lat, "d": date_key, "st": present, "n": cnt}
    dup, grouped = _duplicated(key, same_place())   # grouped: only rows in groups of 2+
    dup &= finite
    if dup.any():
        sub = pd.DataFrame({k: a[grouped] for k, a in key.items()}).assign(pos=grouped)
        firsts = np.zeros(n, dtype=np.int64)
        firsts[grouped] = sub.groupby(["s", "x", "y", "d", "st", "n"], dropna=False, sort=False)["pos"].transform("first").to_numpy()
        log.add("duplicate", dup, "row", fill(dup, "exact duplicate of row {} (same species, coordinates, date, status and count)", log.rows[firsts]))

    if not records:
        return pd.DataFrame(index=range(n))

    sci, slug, verbatim = sci_u[sp_codes], slug_u[sp_codes], verbatim_u[sp_codes]

    def obj(a):
        return pd.Series(a, dtype=object, copy=False) if isinstance(a, np.ndarray) else a

    return pd.DataFrame({
        "species": obj(sci), "species_slug": obj(slug), "verbatim_species": obj(verbatim), "iso3": obj(names[iso_c]),
        "decimal_latitude": lat, "decimal_longitude": lon, "coordinate_uncertainty_m": unc,
        "event_date": obj(event_date), "year": pd.array(np.where(np.isfinite(year), year, np.nan), dtype="Float64").astype("Int64"),
        "individual_count": pd.array(cnt, dtype="Float64").astype("Int64"),
        "basis_of_record": text(f, "basis_of_record").array,
        "occurrence_id": text(f, "occurrence_id").array,
        "occurrence_status": obj(status),
        "establishment_means": text(f, "establishment_means").array,
        "locality": text(f, "locality").array,
        "recorded_by": text(f, "recorded_by").array,
        "data_generalizations": text(f, "data_generalizations").array,
        "information_withheld": text(f, "information_withheld").array,
    })
