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
from .common import CheckContext, factorize, lookup, value_text, resolve_countries, resolve_dates_coded, resolve_species_coded, text, to_number
from .geo import within_km_of

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


def coordinates(f: pd.DataFrame, log: ProblemLog, ctx: CheckContext, *, file_crs: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """WGS84 lon/lat for each row from decimal degrees, DMS text or projected x/y.

    Returns lon, lat, decimals (digits after the decimal separator, the smaller of the two;
    -1 where the coordinates were DMS or projected).
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


def _duplicated(key: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(``key.duplicated(keep="first")``, positions of ``key.duplicated(keep=False)``).

    A 64-bit hash of each row finds the few rows that may have an equal; the exact pandas
    test runs on those rows only (rows with a unique hash have no duplicate).
    """
    n = len(key)
    h = np.zeros(n, dtype=np.uint64)
    with np.errstate(all="ignore"):
        for c in key.columns:
            a = key[c].to_numpy()
            if a.dtype.kind == "f":
                a = np.where(a == 0, 0.0, a)                    # -0.0 equals 0.0
                a = np.where(np.isnan(a), np.nan, a).astype(np.float64).view(np.uint64)  # one NaN
            else:
                a = a.astype(np.int64).view(np.uint64)
            h = (h ^ a) * np.uint64(0x9E3779B97F4A7C15)
            h ^= h >> np.uint64(31)
    maybe = np.flatnonzero(pd.Series(h).duplicated(keep=False).to_numpy())
    dup = np.zeros(n, dtype=bool)
    if not len(maybe):
        return dup, maybe
    sub = key.iloc[maybe]
    dup[maybe] = sub.duplicated(keep="first").to_numpy()
    return dup, maybe[sub.duplicated(keep=False).to_numpy()]


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
    lon, lat, decimals = coordinates(f, log, ctx, file_crs=file_crs)
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

    slug, sci, verbatim, species_key, slug_codes, slug_names = resolve_species_coded(f, log, ctx)
    declared, declared_raw = resolve_countries(f, log, ctx)

    # countries as codes into `names` (0: none): the boundary layer's, then other declared ones
    d_codes, d_uniq = pd.factorize(np.asarray(declared, dtype=object), use_na_sentinel=False)
    names_l = [""] + list(dict.fromkeys(ctx.countries.iso3))
    in_layer = set(names_l)
    names_l += [v for v in dict.fromkeys(d_uniq) if v not in in_layer]
    code_of = {v: k for k, v in enumerate(names_l)}
    names = np.empty(len(names_l), dtype=object)
    names[:] = names_l
    decl = np.array([code_of[v] for v in d_uniq], dtype=np.int64)[d_codes] if len(d_uniq) else np.zeros(n, dtype=np.int64)

    # where each point lies (declared country tested first)
    ulon = np.where(usable, lon, np.nan)
    ulat = np.where(usable, lat, np.nan)
    loc_idx = ctx.countries.locate_index(ulon, ulat, first=declared)
    loc = np.array([code_of[v] for v in ctx.countries.iso3] + [0], dtype=np.int64)[loc_idx]
    located = _Coded(names, loc)
    tol_km = ctx.threshold("border_tolerance_km", 10)
    iso_c = np.where(decl != 0, decl, loc)

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
    mismatch = outside & ~near_ok & (loc != 0)
    # species range
    species_states = {s: set(reg.species[s].range_states) for s in slug_names if s}
    point_c = np.where(near_ok, iso_c, loc)
    point_iso = _Coded(names, point_c)
    in_species_range = np.zeros(n, dtype=bool)
    for k, s_ in enumerate(slug_names):
        if s_:
            sel = slug_codes == k
            in_species_range[sel] = np.isin(point_c[sel], [code_of[c] for c in species_states[s_] if c in code_of and c])
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
        reasons = np.full(n, "", dtype=object)
        m_swap[idx[hit & swap]] = True
        m_flip[idx[hit & ~swap]] = True
        reasons[idx[hit]] = label[hit]
        vals = fill(m_swap | m_flip, "{:g}, {:g}", lat, lon)
        log.add("coords_swapped", m_swap, "decimalLatitude/decimalLongitude", reasons, vals)
        log.add("coords_sign_flipped", m_flip, "decimalLatitude/decimalLongitude", reasons, vals)
        transformed = m_swap | m_flip
    log.add("country_mismatch", mismatch & ~transformed, "countryCode",
            fill(mismatch, "point lies in {}, {:.1f} km outside the declared country {} (border tolerance " + f"{tol_km:g} km)",
                 located, dist, declared),
            declared_raw)
    far_declared = outside & ~near_ok & (located == "")
    log.add("at_sea", (at_sea | far_declared) & ~transformed, "decimalLatitude/decimalLongitude",
            "point is not on land in any country of the boundary layer (at sea, or outside the mapped region)")
    log.add("outside_range_states", outside_all & ~transformed, "decimalLatitude/decimalLongitude",
            fill(outside_all, "point lies in {}, which is not a Range State of {}", point_iso, sci))
    log.add("not_listed_range_state", not_listed, "countryCode",
            fill(not_listed, "point lies in {}, a Range State where {} is not listed", point_iso, sci))
    log.add("near_border", near_ok, "decimalLatitude/decimalLongitude",
            fill(near_ok, "point lies {:.1f} km outside {}, within the " + f"{tol_km:g} km border tolerance",
                 np.where(np.isfinite(dist), dist, 0.0), iso3))
    filled = (declared_raw == "") & (iso_c != 0) & usable
    log.add("country_filled", filled, "countryCode",
            fill(filled, "no country given; filled as {} from the point", iso3))

    # proximity to centroids and capitals
    cent = ctx.countries.centroids([names_l[k] for k in pd.unique(iso_c) if k])
    has_iso = usable & (iso_c != 0)
    iso_f = (iso_c, names)
    cx = lookup(iso_f, {k: v[0] for k, v in cent.items()}, np.nan, dtype=float)
    cy = lookup(iso_f, {k: v[1] for k, v in cent.items()}, np.nan, dtype=float)
    near_c, dc = within_km_of(np.where(has_iso, lon, np.nan), lat, cx, cy, ctx.threshold("centroid_km", 1))
    log.add("near_centroid", near_c, "decimalLatitude/decimalLongitude",
            fill(near_c, "point lies {:.2f} km from the centroid of {} (a georeferencing default?)", dc, iso3))
    cap = {i: (s.capital_lon, s.capital_lat, s.capital) for i, s in reg.states.items()}
    kx = lookup(iso_f, {k: v[0] for k, v in cap.items()}, np.nan, dtype=float)
    ky = lookup(iso_f, {k: v[1] for k, v in cap.items()}, np.nan, dtype=float)
    kname = lookup(iso_f, {k: v[2] for k, v in cap.items()}, "the capital")
    near_k, dk = within_km_of(np.where(has_iso, lon, np.nan), lat, kx, ky, ctx.threshold("capital_km", 10))
    log.add("near_capital", near_k, "decimalLatitude/decimalLongitude",
            fill(near_k, "point lies {:.1f} km from {}, the capital of {}", dk, kname, iso3))
    equal = usable & (np.abs(lat) == np.abs(lon))
    log.add("equal_coords", equal, "decimalLatitude/decimalLongitude", "latitude equals longitude (a copy error?)")
    min_dec = int(ctx.threshold("min_decimals", 2))
    few = usable & (decimals >= 0) & (decimals < min_dec)
    log.add("few_decimals", few, "decimalLatitude/decimalLongitude",
            fill(few, "coordinates have {} decimal(s), fewer than " + f"{min_dec} (imprecise, or degrees-minutes read as decimals?)", decimals))

    # uncertainty
    if "coordinate_uncertainty_m" in f.columns:
        unc_t = value_text(f, "coordinate_uncertainty_m")
        unc = to_number(unc_t)
        unc_bad = (unc_t != "").to_numpy() & (np.isnan(unc) | (unc < 0))
        log.add("uncertainty_invalid", unc_bad, "coordinateUncertaintyInMeters", "not a positive number of metres; treated as unknown", _at(unc_t))
        log.add("uncertainty_zero", unc == 0, "coordinateUncertaintyInMeters", "0 m is not a valid uncertainty; treated as unknown")
        max_unc = ctx.threshold("max_uncertainty_m", 20000)
        log.add("uncertainty_large", unc > max_unc, "coordinateUncertaintyInMeters",
                f"uncertainty above {max_unc:g} m; the record is kept out of AOO", _at(unc_t))
        unc = np.where(unc_bad | (unc == 0), np.nan, unc)
    else:  # no column: every uncertainty unknown, nothing to report
        unc = np.full(n, np.nan)

    # dates, counts, status
    event_date, year, date_key = resolve_dates_coded(f, log, ctx)
    if "individual_count" in f.columns:
        cnt_t = value_text(f, "individual_count")
        cnt = to_number(cnt_t)
        cnt_bad = (cnt_t != "").to_numpy() & (np.isnan(cnt) | (cnt < 0) | (cnt != np.round(cnt)))
        log.add("count_invalid", cnt_bad, "individualCount", "individualCount must be a whole number of 0 or more", _at(cnt_t))
        cnt = np.where(cnt_bad, np.nan, cnt)
    else:
        cnt = np.full(n, np.nan)
    if "occurrence_status" in f.columns:
        st_t = text(f, "occurrence_status")
        st_codes, st_uniq = factorize(st_t)
        st_map = {v: STATUS.get(re.sub(r"[\s_-]", "", str(v).casefold())) for v in st_uniq}
        status = lookup((st_codes, st_uniq), st_map)
        st_unknown = pd.isna(status)
        log.add("status_unknown", st_unknown, "occurrenceStatus", "occurrenceStatus not present/absent; kept as present", _at(st_t))
        status = np.where(st_unknown, "present", status)
    else:  # no column: every record present (STATUS[""])
        status = np.full(n, "present", dtype=object)

    # duplicates: same species, coordinates, date and status as an earlier row
    key = pd.DataFrame({"s": species_key, "x": lon, "y": lat, "d": date_key, "st": status == "present", "n": cnt})
    dup, grouped = _duplicated(key)   # grouped: only rows in groups of 2+
    dup &= finite
    if dup.any():
        sub = key.iloc[grouped].assign(pos=grouped)
        firsts = np.zeros(n, dtype=np.int64)
        firsts[grouped] = sub.groupby(["s", "x", "y", "d", "st", "n"], dropna=False, sort=False)["pos"].transform("first").to_numpy()
        log.add("duplicate", dup, "row", fill(dup, "exact duplicate of row {} (same species, coordinates, date, status and count)", log.rows[firsts]))

    if not records:
        return pd.DataFrame(index=range(n))

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
