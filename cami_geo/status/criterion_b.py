"""IUCN criterion-B measures: EOO, AOO, locations, subpopulations and a preliminary category.

Two methods, chosen by ``method``:

``"iucn"`` (default, our own)
    EOO is the area of the convex hull *on the ellipsoid*: the hull is built in a gnomonic
    projection centred on the points (great circles are straight lines there, so a planar
    hull is the spherical convex hull) and its vertices are joined by WGS84 geodesics whose
    enclosed area :meth:`pyproj.Geod.polygon_area_perimeter` computes exactly. This is
    correct across the antimeridian and around a pole. AOO counts true ``cell_km`` x
    ``cell_km`` ground cells in a Lambert azimuthal equal-area projection (WGS84) centred on
    the taxon, over a fixed ``n_shifts`` x ``n_shifts`` set of grid origins (steps of
    ``cell/n_shifts``); the minimum is the AOO and the median and maximum are reported beside
    it. Locations use the same grid search with ``location_cell_km`` cells; subpopulations
    are the connected components of the graph of points closer than twice the radius
    (found exactly on the Delaunay triangulation), i.e. the number of parts of the union
    of the circles.

``"conr"``
    ConR 1.x as DOMAIN.md section 4 states it: hull of the unique points in
    longitude/latitude degrees, area on WGS84 with geodesic edges, no EOO below 3 unique
    points; ``+proj=cea +lon_0=0 +lat_ts=0 +datum=WGS84`` grid, four quarter-cell diagonal
    shifts counted from the top-left corner, AOO the smallest count x cell area; locations
    the same with 10 km cells; subpopulations the union of 5 km circles drawn in that
    projection (computed as the equivalent point graph).

All areas are km2 on the WGS84 ellipsoid or in an equal-area projection, never square
degrees. Inputs are longitudes and latitudes in degrees (EPSG:4326).
"""

from __future__ import annotations

import io
import math
import re
import sys
from dataclasses import dataclass, asdict
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pyproj import Geod, Transformer

from ..errors import CamiGeoError, InputError

GEOD = Geod(ellps="WGS84")
METHODS = ("iucn", "conr")
CONR_CRS = "+proj=cea +lon_0=0 +lat_ts=0 +datum=WGS84 +units=m +no_defs"

# IUCN Red List Categories and Criteria 3.1, criterion B thresholds (strictly below).
CATEGORIES = ("CR", "EN", "VU")
EOO_THRESHOLDS_KM2 = {"CR": 100.0, "EN": 5000.0, "VU": 20000.0}
AOO_THRESHOLDS_KM2 = {"CR": 10.0, "EN": 500.0, "VU": 2000.0}
LOCATION_THRESHOLDS = {"CR": 1, "EN": 5, "VU": 10}
DEFAULT_NT_EOO_KM2 = 30000.0
DEFAULT_NT_AOO_KM2 = 3000.0

ASSESS_COLUMNS = ["taxon", "n_unique", "eoo_km2", "aoo_km2", "n_locations", "n_subpopulations",
                  "category_b"]


def _check_method(method: str) -> str:
    if method not in METHODS:
        raise CamiGeoError(f"Unknown criterion-B method {method!r}; use one of: {', '.join(METHODS)}.")
    return method


def unique_points(lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray]:
    """Finite, distinct (lon, lat) pairs in degrees; longitudes wrapped to [-180, 180)."""
    lon = np.asarray(lon, dtype="float64").ravel()
    lat = np.asarray(lat, dtype="float64").ravel()
    if lon.shape != lat.shape:
        raise CamiGeoError(f"Longitude and latitude differ in length ({lon.size} and {lat.size}).")
    ok = np.isfinite(lon) & np.isfinite(lat) & (np.abs(lat) <= 90)
    lon, lat = lon[ok], lat[ok]
    lon = np.where((lon >= 180) | (lon < -180), (lon + 180.0) % 360.0 - 180.0, lon)
    if lon.size == 0:
        return lon, lat
    lon = lon + 0.0  # -0.0 -> 0.0
    lat = lat + 0.0
    # hashing, O(n): each pair as one complex number (equal exactly when both parts are)
    z = np.empty(lon.size, dtype="complex128")
    z.real, z.imag = lon, lat
    keep = ~pd.Series(z, copy=False).duplicated().to_numpy()
    return lon[keep], lat[keep]


# ---------------------------------------------------------------------------------------
# EOO
# ---------------------------------------------------------------------------------------
def _unit_vectors(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    lam, phi = np.radians(lon), np.radians(lat)
    c = np.cos(phi)
    return np.column_stack([c * np.cos(lam), c * np.sin(lam), np.sin(phi)])


def _planar_hull(x: np.ndarray, y: np.ndarray) -> np.ndarray | None:
    """Indices of the convex hull vertices (counter-clockwise), or None when degenerate."""
    from scipy.spatial import ConvexHull, QhullError

    if x.size < 3:
        return None
    try:
        hull = ConvexHull(np.column_stack([x, y]))
    except (QhullError, ValueError):
        return None  # all points on one line (or one point)
    return hull.vertices


def _geodesic_area_km2(lon: np.ndarray, lat: np.ndarray) -> float:
    area_m2, _ = GEOD.polygon_area_perimeter(lon, lat)
    return abs(area_m2) / 1e6


def gnomonic_xy(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """Gnomonic coordinates (unit sphere) about the normalised mean of the points.

    Returns x, y and whether every point lies well inside the hemisphere about the centre
    (the projection, and a convex hull, exist only there).
    """
    p = _unit_vectors(lon, lat)
    c = p.sum(axis=0)
    norm = np.linalg.norm(c)
    if norm < 1e-12:
        return np.zeros_like(lon), np.zeros_like(lat), False
    c = c / norm
    east = np.cross([0.0, 0.0, 1.0], c)
    if np.linalg.norm(east) < 1e-9:  # centre at a pole
        east = np.array([0.0, 1.0, 0.0])
    east = east / np.linalg.norm(east)
    north = np.cross(c, east)
    d = p @ c
    ok = bool(np.min(d) > 0.05)  # within about 87 degrees of the centre
    d = np.where(d > 1e-9, d, 1e-9)
    return (p @ east) / d, (p @ north) / d, ok


def hull_vertices(lon: Any, lat: Any, method: str = "iucn", *, _unique: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Longitudes and latitudes of the convex hull vertices of the unique points
    (counter-clockwise; empty when fewer than 3 unique points or all on one line)."""
    _check_method(method)
    if not _unique:
        lon, lat = unique_points(lon, lat)
    if lon.size < 3:
        return np.empty(0), np.empty(0)
    if method == "conr":
        idx = _planar_hull(lon, lat)
    else:
        x, y, ok = gnomonic_xy(lon, lat)
        if not ok:
            return np.empty(0), np.empty(0)
        idx = _planar_hull(x, y)
    if idx is None:
        return np.empty(0), np.empty(0)
    return lon[idx], lat[idx]


def eoo_km2(lon: Any, lat: Any, method: str = "iucn", *, _unique: bool = False) -> float:
    """Area (km2, WGS84 ellipsoid) of the convex hull of the unique points.

    ``iucn``: the hull convex on the ellipsoid (gnomonic hull, geodesic edges); 0.0 for 1-2
    unique points or points on one great circle; NaN (undefined) when the points do not fit
    in one hemisphere. ``conr``: ConR 1.x, the hull in degrees with geodesic edges; NaN for
    fewer than 3 unique points or collinear points, as ConR gives NA. The "EOO set to AOO"
    rule is applied by :func:`measures`, not here.
    """
    _check_method(method)
    ulon, ulat = (np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)) if _unique else unique_points(lon, lat)
    if ulon.size == 0:
        return float("nan")
    if ulon.size < 3:
        return float("nan") if method == "conr" else 0.0
    if method == "iucn":
        _, _, ok = gnomonic_xy(ulon, ulat)
        if not ok:
            return float("nan")
    hlon, hlat = hull_vertices(ulon, ulat, method, _unique=True)
    if hlon.size < 3:
        return float("nan") if method == "conr" else 0.0
    return _geodesic_area_km2(hlon, hlat)


# ---------------------------------------------------------------------------------------
# Grids: AOO and locations
# ---------------------------------------------------------------------------------------
LAEA_CRS = "+proj=laea +lat_0={lat0:.4f} +lon_0={lon0:.4f} +datum=WGS84 +units=m +no_defs"
_LAEA_RE = re.compile(r"\+proj=laea \+lat_0=(-?\d+\.\d{4}) \+lon_0=(-?\d+\.\d{4}) \+datum=WGS84 \+units=m \+no_defs")
LAEA_PIPELINE = ("+proj=pipeline +step +proj=unitconvert +xy_in=deg +xy_out=rad "
                 "+step +proj=laea +lat_0={lat0:.15g} +lon_0={lon0:.15g} +x_0=0 +y_0=0 +ellps=WGS84")
"""The operation ``Transformer.from_crs("EPSG:4326", crs, always_xy=True)`` finds for a
:data:`LAEA_CRS` (a conversion on the same datum; PROJ writes -0 as 0)."""


@lru_cache(maxsize=64)
def _transformer(crs: str) -> Transformer:
    """EPSG:4326 (lon, lat) -> ``crs``. A :func:`laea_crs` string (a new one per Range
    State) gets its operation, :data:`LAEA_PIPELINE`, directly: PROJ's search for it takes
    10-30 ms per CRS and finds the same pipeline (tests/test_criterion_b.py compares them)."""
    m = _LAEA_RE.fullmatch(crs)
    if m:
        return Transformer.from_pipeline(LAEA_PIPELINE.format(lat0=float(m[1]) + 0.0, lon0=float(m[2]) + 0.0))
    return Transformer.from_crs("EPSG:4326", crs, always_xy=True)


def laea_crs(lon: np.ndarray, lat: np.ndarray) -> str:
    """Lambert azimuthal equal-area (WGS84) centred on the points' spherical mean."""
    p = _unit_vectors(lon, lat).sum(axis=0)
    lat0 = math.degrees(math.atan2(p[2], math.hypot(p[0], p[1])))
    lon0 = math.degrees(math.atan2(p[1], p[0])) if math.hypot(p[0], p[1]) > 1e-12 else 0.0
    return LAEA_CRS.format(lat0=lat0, lon0=lon0)


def project(lon: np.ndarray, lat: np.ndarray, crs: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = _transformer(crs).transform(lon, lat)
    return np.asarray(x, dtype="float64"), np.asarray(y, dtype="float64")


def project_geoms(geoms: Any, crs: str) -> Any:
    """Geometries (one, or an array) in EPSG:4326 -> ``crs``, vertex by vertex."""
    import shapely

    tr = _transformer(crs)
    return shapely.transform(geoms, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))


def _count_cells(col: np.ndarray, row: np.ndarray) -> int:
    if col.size == 0:
        return 0
    col = col.astype("int64")
    row = row.astype("int64")
    height = int(row.max() - row.min()) + 1
    width = int(col.max() - col.min()) + 1
    key = (col - col.min()) * height + (row - row.min())
    if width * height <= 50_000_000:  # occupancy grid: O(n), no sort or hash
        occupied = np.zeros(width * height, dtype=bool)
        occupied[key] = True
        return int(np.count_nonzero(occupied))
    return int(np.unique(key).size)


def shifted_cell_counts(x: np.ndarray, y: np.ndarray, cell_m: float, n_shifts: int = 4) -> np.ndarray:
    """Occupied cells of side ``cell_m`` for each of ``n_shifts`` x ``n_shifts`` grid origins.

    Origin (i, j) is at (i * cell_m / n_shifts, j * cell_m / n_shifts) in the projected
    plane; the result has one count per origin, in row-major (i, j) order. Computed once on
    sub-cells of side cell_m / n_shifts: a point in sub-cell k lies in cell
    floor((k - i) / n_shifts) of origin i, exactly.
    """
    if x.size == 0:
        return np.zeros(n_shifts * n_shifts, dtype="int64")
    sub = cell_m / n_shifts
    kx = np.floor(x / sub).astype("int64")
    ky = np.floor(y / sub).astype("int64")
    kx0, ky0 = kx.min(), ky.min()
    width = int(ky.max() - ky0) + 1
    subs = np.unique((kx - kx0) * width + (ky - ky0))
    kx = subs // width + kx0
    ky = subs % width + ky0
    counts = []
    for i in range(n_shifts):
        cx = (kx - i) // n_shifts
        for j in range(n_shifts):
            counts.append(_count_cells(cx, (ky - j) // n_shifts))
    return np.asarray(counts, dtype="int64")


def conr_cell_counts(x: np.ndarray, y: np.ndarray, cell_m: float) -> np.ndarray:
    """ConR 1.x grid counts for h = 0, 1, 2, 3 (cea metres; top-left corner origin)."""
    if x.size == 0:
        return np.zeros(4, dtype="int64")
    xmin, ymax = math.floor(x.min()), math.floor(y.max())
    counts = []
    for h in range(4):
        left = xmin - h * cell_m / 4 - 2 * cell_m
        top = ymax + h * cell_m / 4 + 2 * cell_m
        counts.append(_count_cells(np.floor((x - left) / cell_m), np.floor((top - y) / cell_m)))
    return np.asarray(counts, dtype="int64")


@dataclass
class AOOResult:
    aoo_km2: float           # minimum over grid origins (the AOO)
    aoo_km2_median: float
    aoo_km2_max: float
    n_cells: int             # occupied cells in the minimising grid
    n_grids: int             # grid origins searched
    cell_km: float
    crs: str                 # projection the cells are square in


def aoo(lon: Any, lat: Any, method: str = "iucn", cell_km: float = 2.0, *, n_shifts: int = 4) -> AOOResult:
    """Area of occupancy (km2) with its spread over grid origins.

    ``iucn``: LAEA centred on the taxon, ``n_shifts`` x ``n_shifts`` origins; ``conr``: cea
    lat_ts=0 with ConR's four diagonal shifts. AOO = minimum count x ``cell_km``**2.
    """
    _check_method(method)
    ulon, ulat = unique_points(lon, lat)
    if ulon.size == 0:
        nan = float("nan")
        return AOOResult(nan, nan, nan, 0, 0, cell_km, "")
    crs = CONR_CRS if method == "conr" else laea_crs(ulon, ulat)
    x, y = project(ulon, ulat, crs)
    return _aoo_xy(x, y, method, cell_km, n_shifts, crs)


def _aoo_xy(x: np.ndarray, y: np.ndarray, method: str, cell_km: float, n_shifts: int, crs: str) -> AOOResult:
    if x.size == 0:
        nan = float("nan")
        return AOOResult(nan, nan, nan, 0, 0, cell_km, crs)
    cell_m = cell_km * 1000.0
    counts = conr_cell_counts(x, y, cell_m) if method == "conr" else shifted_cell_counts(x, y, cell_m, n_shifts)
    a = counts * cell_km * cell_km
    return AOOResult(float(a.min()), float(np.median(a)), float(a.max()), int(counts.min()),
                     int(counts.size), cell_km, crs)


def locations(lon: Any, lat: Any, method: str = "iucn", cell_km: float = 10.0, *, n_shifts: int = 4) -> int:
    """Number of locations as ConR defines them: occupied ``cell_km`` cells, fewest over the
    grid origins searched (ConR: its 4 shifts in cea; iucn: the LAEA origin search)."""
    return aoo(lon, lat, method, cell_km, n_shifts=n_shifts).n_cells


def _prune_covered(pts: np.ndarray, r: float, k: int = 16) -> np.ndarray:
    """Mask of points to keep: drops points whose radius-``r`` disc lies inside the union of
    the discs of kept points, so the union (and its parts) is unchanged.

    Kept for sure: one point per cell of side r/2 (the "skeleton"). Another point p is
    dropped when, in each of six fixed 60-degree sectors around it, some skeleton point q
    lies within r: for any point z of p's disc, take the sector holding the direction of z;
    its q is at most 60 degrees off, so |z - q|^2 <= t^2 - t s + s^2 <= r^2 (t = |z - p|,
    s = |q - p|, both <= r). Skeleton points are never dropped, so no drop relies on
    another dropped point.
    """
    from scipy.spatial import cKDTree

    delta = r / 2.0
    cells = np.floor(pts / delta).astype("int64")
    skeleton = ~pd.DataFrame(cells).duplicated().to_numpy()
    keep = skeleton.copy()
    cand = np.flatnonzero(~skeleton)
    if cand.size == 0:
        return keep
    sk = pts[skeleton]
    kk = min(k, len(sk))
    d, idx = cKDTree(sk).query(pts[cand], k=kk, distance_upper_bound=r)
    d, idx = d.reshape(len(cand), kk), idx.reshape(len(cand), kk)
    valid = np.isfinite(d) & (d > 0)
    idx = np.where(valid, idx, 0)
    vec = sk[idx] - pts[cand][:, None, :]
    sector = np.clip(np.floor((np.arctan2(vec[..., 1], vec[..., 0]) + np.pi) / (np.pi / 3)), 0, 5).astype(int)
    has = np.zeros((len(cand), 6), dtype=bool)
    rows = np.broadcast_to(np.arange(len(cand))[:, None], sector.shape)
    has[rows[valid], sector[valid]] = True
    keep[cand[~has.all(axis=1)]] = True
    return keep


PAIRS_PER_POINT_MAX = 25
"""Above this many pairs within 2 x radius per point (estimated from a fixed sample), the
Delaunay path (about 3 edges per point) is faster than enumerating KD-tree pairs; both are
exact."""


def _pairs_per_point(tree, pts: np.ndarray, d: float) -> float:
    step = max(1, len(pts) // 1000)
    return float(tree.query_ball_point(pts[::step], d, return_length=True).mean() - 1) / 2.0


def _components(x: np.ndarray, y: np.ndarray, max_dist_m: float) -> int:
    """Connected components of the graph joining distinct points closer than ``max_dist_m``
    (= parts of the union of discs of radius ``max_dist_m / 2``).

    Exact. Where the points are dense, those whose disc is covered by others are dropped
    first (:func:`_prune_covered`; the union does not change). Then, where the point pairs
    are few, the pairs from a KD-tree; else the Delaunay triangulation, since the Euclidean
    minimum spanning tree is a subgraph of it, the components of its edges not longer than
    ``max_dist_m`` are those of the threshold graph. Points on one line (no triangulation)
    are joined along the line.
    """
    from scipy.spatial import Delaunay, QhullError, cKDTree

    n = x.size
    if n <= 1:
        return n
    pts = np.column_stack([x, y])
    edges = None
    if n > 3:
        tree = cKDTree(pts)
        if _pairs_per_point(tree, pts, max_dist_m) > PAIRS_PER_POINT_MAX and n > 1000:
            pts = pts[_prune_covered(pts, max_dist_m / 2.0)]  # dense: drop covered circles
            n = len(pts)
            tree = cKDTree(pts)
        if n > 3 and _pairs_per_point(tree, pts, max_dist_m) <= PAIRS_PER_POINT_MAX:
            edges = tree.query_pairs(max_dist_m, output_type="ndarray")
            if edges.size == 0:
                return n
            return _count_components(edges, n)
        elif n > 3:
            try:
                s = Delaunay(pts).simplices
                edges = np.concatenate([s[:, [0, 1]], s[:, [1, 2]], s[:, [2, 0]]])
            except (QhullError, ValueError):
                edges = None
    if edges is None:
        if n <= 3:
            i, j = np.triu_indices(n, 1)
            edges = np.column_stack([i, j])
        else:  # collinear: consecutive points along the line
            centred = pts - pts.mean(axis=0)
            direction = np.linalg.svd(centred, full_matrices=False)[2][0]
            order = np.argsort(centred @ direction)
            edges = np.column_stack([order[:-1], order[1:]])
    d = np.hypot(*(pts[edges[:, 0]] - pts[edges[:, 1]]).T)
    edges = edges[d <= max_dist_m]
    if edges.size == 0:
        return n
    return _count_components(edges, n)


def _count_components(edges: np.ndarray, n: int) -> int:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(edges), dtype="int8"), (edges[:, 0], edges[:, 1])), shape=(n, n))
    return int(connected_components(graph, directed=False)[0])


def subpopulations(lon: Any, lat: Any, method: str = "iucn", radius_km: float = 5.0) -> int:
    """Number of subpopulations: parts of the union of ``radius_km`` circles around the
    unique points (ConR's definition), computed as connected components of the graph of
    point pairs closer than 2 x radius (cea metres for ``conr``, LAEA metres for ``iucn``);
    see :func:`_components`."""
    _check_method(method)
    ulon, ulat = unique_points(lon, lat)
    if ulon.size == 0:
        return 0
    crs = CONR_CRS if method == "conr" else laea_crs(ulon, ulat)
    x, y = project(ulon, ulat, crs)
    return _components(x, y, 2.0 * radius_km * 1000.0)


# ---------------------------------------------------------------------------------------
# Everything for one taxon, and the preliminary category
# ---------------------------------------------------------------------------------------
@dataclass
class Measures:
    n_unique: int
    eoo_km2: float            # after the EOO := AOO rule
    eoo_hull_km2: float       # the hull area itself (NaN where undefined)
    eoo_flag: str             # why EOO was set to AOO, else ""
    aoo_km2: float
    aoo_km2_median: float
    aoo_km2_max: float
    n_locations: int
    n_subpopulations: int
    method: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def aoo_points_of(lon: np.ndarray, lat: np.ndarray, usable: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``aoo_points`` for :func:`measures`: the points (degrees) where the boolean mask
    ``usable`` holds, or None when it holds for all of them (AOO then takes the points
    :func:`measures` has already made unique and projected, the same ones)."""
    return None if usable.all() else (lon[usable], lat[usable])


def measures(lon: Any, lat: Any, method: str = "iucn", *, aoo_cell_km: float = 2.0,
             location_cell_km: float = 10.0, subpopulation_radius_km: float = 5.0,
             n_shifts: int = 4, aoo_points: tuple[Any, Any] | None = None,
             counts: bool = True, _unique: tuple[np.ndarray, np.ndarray] | None = None) -> Measures:
    """EOO, AOO (with spread), locations and subpopulations of one taxon's present points.

    EOO is set equal to AOO, with ``eoo_flag`` saying why, when the hull area is smaller
    than AOO or there are fewer than 3 unique points (IUCN guidelines). ``aoo_points``
    (lon, lat) restricts AOO to a subset (e.g. records with a usable uncertainty);
    ``counts=False`` skips locations and subpopulations (returned as -1). ``_unique``: the
    result of :func:`unique_points` for ``lon, lat`` when the caller has it already.
    """
    _check_method(method)
    ulon, ulat = unique_points(lon, lat) if _unique is None else _unique
    n = int(ulon.size)
    if n == 0:
        nan = float("nan")
        return Measures(0, nan, nan, "no present records", nan, nan, nan, 0, 0, method)
    crs = CONR_CRS if method == "conr" else laea_crs(ulon, ulat)
    x, y = project(ulon, ulat, crs)  # projected once for AOO, locations and subpopulations
    if aoo_points is not None:
        alon, alat = unique_points(*aoo_points)
        ax, ay = project(alon, alat, crs)
    else:
        ax, ay = x, y
    a = _aoo_xy(ax, ay, method, aoo_cell_km, n_shifts, crs)
    hull = eoo_km2(ulon, ulat, method, _unique=True)
    eoo, flag = hull, ""
    if n < 3:
        eoo, flag = a.aoo_km2, f"EOO set to AOO: {n} unique point{'s' if n > 1 else ''}"
    elif not np.isfinite(hull):
        eoo, flag = (a.aoo_km2, "EOO set to AOO: points on one line") if method == "conr" else \
            (float("nan"), "EOO undefined: points span more than a hemisphere")
    elif hull < a.aoo_km2:
        eoo, flag = a.aoo_km2, "EOO set to AOO: hull smaller than AOO"
    return Measures(
        n_unique=n, eoo_km2=float(eoo), eoo_hull_km2=float(hull), eoo_flag=flag,
        aoo_km2=a.aoo_km2, aoo_km2_median=a.aoo_km2_median, aoo_km2_max=a.aoo_km2_max,
        n_locations=_aoo_xy(x, y, method, location_cell_km, n_shifts, crs).n_cells if counts else -1,
        n_subpopulations=_components(x, y, 2.0 * subpopulation_radius_km * 1000.0) if counts else -1,
        method=method,
    )


def _band(value: float, thresholds: dict[str, float]) -> str | None:
    if value is None or not np.isfinite(value):
        return None
    for cat in CATEGORIES:
        if value < thresholds[cat]:
            return cat
    return None


def _loc_band(n_locations: Any) -> str | None:
    if n_locations is None or pd.isna(n_locations) or n_locations <= 0:
        return None
    for cat in CATEGORIES:
        if n_locations <= LOCATION_THRESHOLDS[cat]:
            return cat
    return None


_RANK = {"CR": 0, "EN": 1, "VU": 2, None: 9}


def _least_severe(*cats: str | None) -> str | None:
    if any(c is None for c in cats):
        return None
    return max(cats, key=lambda c: _RANK[c])


def category_b(eoo_km2: float, aoo_km2: float, n_locations: Any = None, *,
               decline: str | None = None, nt_eoo_km2: float = DEFAULT_NT_EOO_KM2,
               nt_aoo_km2: float = DEFAULT_NT_AOO_KM2) -> tuple[str, str]:
    """Preliminary criterion-B category: ``(code, note)``, both starting "preliminary".

    ``decline`` names the documented continuing decline as IUCN subcriteria of (b), e.g.
    ``"v"`` (mature individuals, from a declining population trend) or ``"iii"``; ``None``
    means no decline is documented, and then no threatened category is given: the code says
    which B1/B2 area thresholds are met and that the conditions were not assessed.
    Condition (a) is the number of locations (<= 1 / 5 / 10); severe fragmentation and
    condition (c) are not assessed. Without (c) a threatened category needs (a) and (b).
    NT uses the cut-offs ``nt_eoo_km2`` / ``nt_aoo_km2`` (named in the note).
    """
    b1 = _band(eoo_km2, EOO_THRESHOLDS_KM2)
    b2 = _band(aoo_km2, AOO_THRESHOLDS_KM2)
    loc = _loc_band(n_locations)
    nt_txt = f"NT cut-offs EOO < {nt_eoo_km2:,.0f} km2, AOO < {nt_aoo_km2:,.0f} km2"
    if (eoo_km2 is None or not np.isfinite(eoo_km2)) and (aoo_km2 is None or not np.isfinite(aoo_km2)):
        return "", "preliminary: no present records, criterion B not assessed"
    area_bands = [(name, band) for name, band in (("B1", b1), ("B2", b2)) if band]
    if not area_bands:
        near = (np.isfinite(eoo_km2) and eoo_km2 < nt_eoo_km2) or (np.isfinite(aoo_km2) and aoo_km2 < nt_aoo_km2)
        if near:
            return ("preliminary: NT (B)",
                    f"preliminary: EOO {eoo_km2:,.0f} km2 / AOO {aoo_km2:,.0f} km2 above the VU thresholds "
                    f"but below an NT cut-off ({nt_txt})")
        return ("preliminary: LC (B)",
                f"preliminary: EOO and AOO at or above the NT cut-offs ({nt_txt})")
    best_area = min((b for _, b in area_bands), key=lambda c: _RANK[c])
    names = "+".join(n for n, _ in area_bands)
    if len({b for _, b in area_bands}) == 1:
        meets = f"meets {names} area threshold for {best_area}"
    else:
        meets = "meets " + " and ".join(f"{n} area threshold for {b}" for n, b in area_bands)
    if not decline:
        return (f"preliminary: {meets}; conditions not assessed",
                f"preliminary: decline not documented, so condition (b) is not met as far as known; "
                f"locations {n_locations if n_locations is not None else 'unknown'}; {nt_txt}")
    sub = ",".join(s.strip() for s in str(decline).split(",") if s.strip())
    per = {name: _least_severe(band, loc) for name, band in area_bands}
    cats = [c for c in per.values() if c is not None]
    if not cats:
        return (f"preliminary: NT (B; {meets}, only condition b)",
                f"preliminary: decline documented (b({sub})) but {n_locations} locations exceed 10 and "
                f"fragmentation and fluctuation are not assessed; {nt_txt}")
    category = min(cats, key=lambda c: _RANK[c])
    parts = [f"{name}ab({sub})" for name, cat in per.items() if cat == category]
    code = f"{category} {'+'.join(parts)}"
    return (f"preliminary: {code}",
            f"preliminary: area thresholds {names} met, (a) {n_locations} locations, (b) decline "
            f"documented ({sub}); fragmentation and (c) not assessed; {nt_txt}")


# ---------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------
_TAXON = ("taxon", "scientificName", "scientific_name", "species", "taxon_name", "acceptedScientificName",
          "verbatimScientificName", "scientific", "tax")
_LAT = ("decimalLatitude", "decimal_latitude", "decimallatitude", "latitude", "lat", "ddlat", "y")
_LON = ("decimalLongitude", "decimal_longitude", "decimallongitude", "longitude", "lon", "long", "lng",
        "ddlon", "x")
_STATUS = ("occurrenceStatus", "occurrence_status", "occurrencestatus")
ABSENT_WORDS = {"absent", "notdetected", "not detected", "not_detected", "0", "false", "no"}


def _pick(columns: list[str], names: tuple[str, ...]) -> str | None:
    low = {str(c).strip().lower(): c for c in columns}
    for name in names:
        if name.lower() in low:
            return low[name.lower()]
    return None


def present_mask(status: pd.Series) -> np.ndarray:
    """True where occurrence_status is present (or empty, which Darwin Core reads as
    present); absent / notDetected never count."""
    s = status.astype("string").str.strip().str.lower().fillna("")
    return ~s.isin(ABSENT_WORDS).to_numpy()


def normalise_occurrences(df: pd.DataFrame, source: str = "the table") -> pd.DataFrame:
    """``taxon, lon, lat, present`` from any occurrence table with Darwin Core names or the
    usual aliases; raises :class:`InputError` naming the missing column."""
    cols = list(df.columns)
    taxon, lat, lon = _pick(cols, _TAXON), _pick(cols, _LAT), _pick(cols, _LON)
    missing = [n for n, c in (("scientificName (or species/taxon)", taxon),
                              ("decimalLatitude (or lat)", lat), ("decimalLongitude (or lon)", lon)) if c is None]
    if missing:
        raise InputError(f"{source} has no column {' or '.join(missing)}; columns found: "
                         f"{', '.join(map(str, cols[:20]))}.")
    status = _pick(cols, _STATUS)
    out = pd.DataFrame({
        "taxon": df[taxon].astype("string").str.strip(),
        "lon": pd.to_numeric(df[lon].astype("string").str.replace(",", ".", regex=False), errors="coerce"),
        "lat": pd.to_numeric(df[lat].astype("string").str.replace(",", ".", regex=False), errors="coerce"),
    })
    out["present"] = present_mask(df[status]) if status else True
    return out


def assess_table(df: pd.DataFrame, method: str = "iucn", *, decline: dict[str, str] | str | None = None,
                 aoo_cell_km: float = 2.0, location_cell_km: float = 10.0,
                 subpopulation_radius_km: float = 5.0, nt_eoo_km2: float = DEFAULT_NT_EOO_KM2,
                 nt_aoo_km2: float = DEFAULT_NT_AOO_KM2) -> pd.DataFrame:
    """One row per taxon: ``taxon, n_unique, eoo_km2, aoo_km2, n_locations,
    n_subpopulations, category_b`` (plus ``eoo_flag``, ``aoo_km2_median``, ``aoo_km2_max``,
    ``category_b_note``, ``method`` after them). Absent records never count; rows without
    valid coordinates are ignored. ``decline`` maps taxon -> documented (b) subcriteria.
    """
    _check_method(method)
    occ = normalise_occurrences(df) if not {"taxon", "lon", "lat"} <= set(df.columns) else df
    occ = occ[occ["taxon"].notna() & (occ["taxon"].astype(str).str.len() > 0)]
    rows = []
    for taxon, g in occ.groupby("taxon", sort=True):
        if "present" in g.columns:  # absences never count; a taxon with only absences keeps its row
            g = g[g["present"].astype(bool)]
        m = measures(g["lon"].to_numpy(), g["lat"].to_numpy(), method, aoo_cell_km=aoo_cell_km,
                     location_cell_km=location_cell_km, subpopulation_radius_km=subpopulation_radius_km)
        dec = decline.get(taxon) if isinstance(decline, dict) else decline
        if m.n_unique:
            code, note = category_b(m.eoo_km2, m.aoo_km2, m.n_locations, decline=dec,
                                    nt_eoo_km2=nt_eoo_km2, nt_aoo_km2=nt_aoo_km2)
        else:
            code, note = "", ""
        rows.append({
            "taxon": taxon, "n_unique": m.n_unique,
            "eoo_km2": m.eoo_km2 if m.n_unique else np.nan,
            "aoo_km2": m.aoo_km2 if m.n_unique else np.nan,
            "n_locations": m.n_locations if m.n_unique else pd.NA,
            "n_subpopulations": m.n_subpopulations if m.n_unique else pd.NA,
            "category_b": code, "eoo_flag": m.eoo_flag, "aoo_km2_median": m.aoo_km2_median,
            "aoo_km2_max": m.aoo_km2_max, "category_b_note": note, "method": method,
        })
    cols = ASSESS_COLUMNS + ["eoo_flag", "aoo_km2_median", "aoo_km2_max", "category_b_note", "method"]
    out = pd.DataFrame(rows, columns=cols)
    out["n_locations"] = out["n_locations"].astype("Int64")
    out["n_subpopulations"] = out["n_subpopulations"].astype("Int64")
    return out


def read_occurrence_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV/TSV (any common delimiter and encoding) as text; InputError if unreadable."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} does not exist.")
    if path.is_dir():
        raise InputError(f"{path} is a folder, not an occurrence table.")
    raw = path.read_bytes()
    if not raw.strip():
        raise InputError(f"{path} is empty.")
    if b"\x00" in raw[:4096] and not raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(f"{path} is a binary file, not a CSV or TSV table.")
    text = None
    for enc in ("utf-8-sig", "utf-16", "cp1251", "latin-1"):
        try:
            text = raw.decode(enc)
            if enc == "utf-16" and not raw.startswith((b"\xff\xfe", b"\xfe\xff")):
                continue
            break
        except UnicodeDecodeError:
            continue
    first = text.splitlines()[0] if text else ""
    sep = max(("\t", ";", ",", "|"), key=first.count)
    try:
        df = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False,
                         na_values=["", "NA", "NaN", "nan", "NULL"])
    except Exception as exc:  # pandas' parser message, one line
        raise InputError(f"{path} cannot be read as a table: {str(exc).splitlines()[0]}") from None
    if df.shape[1] < 2:
        raise InputError(f"{path} has fewer than two columns; expected a CSV or TSV occurrence table.")
    return df


def cli_assess(args: Any) -> int:
    """``cami-geo assess FILE --method {iucn,conr} --out FILE.csv``."""
    from ..textsafe import write_csv

    df = read_occurrence_table(args.file)
    occ = normalise_occurrences(df, source=str(args.file))
    if not occ["taxon"].notna().any():
        raise InputError(f"{args.file} has no rows with a taxon name.")
    out = assess_table(occ, args.method)
    write_csv(out[ASSESS_COLUMNS], args.out)
    n_bad = int((occ["lon"].isna() | occ["lat"].isna()).sum())
    msg = f"assessed {len(out)} taxa with method {args.method}; wrote {args.out}"
    if n_bad:
        msg += f" ({n_bad} rows without valid coordinates ignored)"
    print(msg, file=sys.stderr)
    return 0


def aoo_cells(lon: Any, lat: Any, method: str = "iucn", cell_km: float = 2.0, *, n_shifts: int = 4):
    """The occupied cells of the grid that gives the AOO, as a GeoDataFrame of squares in
    the grid's own projection (``crs`` = LAEA centred on the points for ``iucn``, ConR's
    cea for ``conr``), with ``n_points`` (unique points per cell) and ``area_km2``.
    For maps and GIS users (an occupancy layer); ``len(result) * cell_km**2`` is the AOO.
    """
    import geopandas as gpd
    import shapely

    _check_method(method)
    ulon, ulat = unique_points(lon, lat)
    crs = CONR_CRS if method == "conr" else (laea_crs(ulon, ulat) if ulon.size else CONR_CRS)
    if ulon.size == 0:
        return gpd.GeoDataFrame({"n_points": [], "area_km2": []}, geometry=[], crs=crs)
    x, y = project(ulon, ulat, crs)
    s = cell_km * 1000.0
    if method == "conr":
        counts = conr_cell_counts(x, y, s)
        h = int(np.argmin(counts))
        left = math.floor(x.min()) - h * s / 4 - 2 * s
        top = math.floor(y.max()) + h * s / 4 + 2 * s
        col, row = np.floor((x - left) / s), np.floor((top - y) / s)
        key = pd.DataFrame({"c": col, "r": row}).value_counts().reset_index(name="n_points")
        x0 = left + key["c"].to_numpy() * s
        y1 = top - key["r"].to_numpy() * s
        boxes = shapely.box(x0, y1 - s, x0 + s, y1)
    else:
        counts = shifted_cell_counts(x, y, s, n_shifts)
        i, j = divmod(int(np.argmin(counts)), n_shifts)
        ox, oy = i * s / n_shifts, j * s / n_shifts
        key = pd.DataFrame({"c": np.floor((x - ox) / s), "r": np.floor((y - oy) / s)}).value_counts() \
            .reset_index(name="n_points")
        x0 = ox + key["c"].to_numpy() * s
        y0 = oy + key["r"].to_numpy() * s
        boxes = shapely.box(x0, y0, x0 + s, y0 + s)
    return gpd.GeoDataFrame({"n_points": key["n_points"].to_numpy(), "area_km2": cell_km * cell_km},
                            geometry=boxes, crs=crs)
