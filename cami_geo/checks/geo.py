"""Point-in-country tests and geodesic distances, vectorised for 10^6 points.

Points are tested with prepared polygons and ``shapely.contains_xy`` per country after a
bounding-box filter (no spatial join). Distances are geodesic on the WGS84 ellipsoid, in km.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely

_GEOD = None


def geod():
    """The WGS84 ellipsoid for geodesic distances (pyproj, slow to import, is imported on first use)."""
    global _GEOD
    if _GEOD is None:
        from pyproj import Geod

        _GEOD = Geod(ellps="WGS84")
    return _GEOD


def __getattr__(name: str):
    if name == "GEOD":   # the module attribute GEOD, made on first use
        return geod()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


GRID_CELLS = 16384
"""Cells of the grid that settles most point-in-country tests without the polygon."""
GRID_MIN_POINTS = 20_000
"""Points tested against one country at once from which its grid is built (and kept)."""


class Countries:
    """Boundary polygons prepared for fast point tests (EPSG:4326, keyed by ISO3)."""

    def __init__(self, boundaries):
        self.iso3 = [str(i) for i in boundaries["iso3"]]
        geoms = boundaries.geometry   # a GeoSeries, or the geometry array of a BoundaryTable
        self.geoms = {i: g for i, g in zip(self.iso3, getattr(geoms, "values", geoms))}
        for g in self.geoms.values():
            shapely.prepare(g)
        self.bounds = {i: g.bounds for i, g in self.geoms.items()}
        self.range_state = {i: bool(r) for i, r in zip(self.iso3, boundaries["range_state"])}
        self._tree = shapely.STRtree(list(self.geoms.values()))
        self._centroid_cache: dict[str, tuple[float, float]] = {}
        self._grids: dict[str, tuple | None] = {}

    def contains(self, iso3: str, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Whether each point lies in country ``iso3`` (False for unknown codes or NaN)."""
        out = np.zeros(len(lon), dtype=bool)
        if iso3 not in self.geoms:
            return out
        x0, y0, x1, y1 = self.bounds[iso3]
        box = (lon >= x0) & (lon <= x1) & (lat >= y0) & (lat <= y1)
        if box.any():
            bx, by = lon[box], lat[box]
            grid = self._grid(iso3) if len(bx) >= GRID_MIN_POINTS else self._grids.get(iso3)
            if grid is None:
                out[box] = shapely.contains_xy(self.geoms[iso3], bx, by)
            else:
                out[box] = self._grid_contains(iso3, grid, bx, by)
        return out

    def _grid(self, iso3: str) -> tuple | None:
        """A grid over the bounding box of country ``iso3`` whose cells are marked as lying
        in the interior of the country (1), outside it (0) or near its boundary (2): cached,
        None if unusable.

        Every cell that the bounding box of a boundary segment (widened by a margin far
        above rounding error) overlaps is a boundary cell; no other cell holds a point of
        the boundary, so the whole cell lies on the side of its centre point.
        """
        if iso3 in self._grids:
            return self._grids[iso3]
        grid = None
        g = self.geoms[iso3]
        x0, y0, x1, y1 = self.bounds[iso3]
        width, height = x1 - x0, y1 - y0
        polygonal = g is not None and shapely.get_type_id(g) in (3, 6)   # Polygon, MultiPolygon
        if polygonal and np.isfinite([x0, y0, x1, y1]).all() and width > 0 and height > 0:
            nx = int(min(max(round(np.sqrt(GRID_CELLS * width / height)), 1), GRID_CELLS))
            ny = int(min(max(round(GRID_CELLS / nx), 1), GRID_CELLS))
            w, h = width / nx, height / ny
            pad = 1e-9 * max(1.0, abs(x0), abs(x1), abs(y0), abs(y1))
            rings = shapely.get_rings(shapely.get_parts(g))
            xy, ring = shapely.get_coordinates(rings, return_index=True)
            same = ring[1:] == ring[:-1]          # consecutive vertices of one ring: a segment
            ax, ay, bx, by = xy[:-1, 0][same], xy[:-1, 1][same], xy[1:, 0][same], xy[1:, 1][same]
            if len(ax) and np.isfinite(xy).all():
                def cells(lo, hi, origin, size, count):
                    i0 = np.clip(np.floor((lo - pad - origin) / size), 0, count - 1).astype(np.int64)
                    i1 = np.clip(np.floor((hi + pad - origin) / size), 0, count - 1).astype(np.int64)
                    return i0, i1

                i0, i1 = cells(np.minimum(ax, bx), np.maximum(ax, bx), x0, w, nx)
                j0, j1 = cells(np.minimum(ay, by), np.maximum(ay, by), y0, h, ny)
                edge = np.zeros((nx, ny), dtype=bool)
                span = (i1 - i0 + 1) * (j1 - j0 + 1)
                one = span == 1
                edge[i0[one], j0[one]] = True
                for k in np.flatnonzero(~one):   # the few segments longer than a cell
                    edge[i0[k]:i1[k] + 1, j0[k]:j1[k] + 1] = True
                state = np.full(nx * ny, 2, dtype=np.int8)
                free = np.flatnonzero(~edge.ravel())
                ci, cj = np.divmod(free, ny)
                inside = shapely.contains_xy(g, x0 + (ci + 0.5) * w, y0 + (cj + 0.5) * h)
                state[free] = inside.astype(np.int8)
                grid = (nx, ny, w, h, state)
        self._grids[iso3] = grid
        return grid

    def _grid_contains(self, iso3: str, grid: tuple, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``shapely.contains_xy`` for points inside the bounding box of ``iso3``: decided by
        the grid cell where the cell lies wholly inside or outside, tested exactly elsewhere."""
        nx, ny, w, h, state = grid
        x0, y0 = self.bounds[iso3][:2]
        i = np.minimum(((x - x0) / w).astype(np.int64), nx - 1)   # x >= x0: truncation is floor
        j = np.minimum(((y - y0) / h).astype(np.int64), ny - 1)
        st = state[i * ny + j]
        out = st == 1
        edge = np.flatnonzero(st == 2)
        if len(edge):
            out[edge] = shapely.contains_xy(self.geoms[iso3], x[edge], y[edge])
        return out

    def locate(self, lon: np.ndarray, lat: np.ndarray, *, first: np.ndarray | None = None) -> np.ndarray:
        """The ISO3 of the country holding each point ('' where none).

        ``first`` (optional, ISO3 per point) is tested first, so points inside their
        declared country are tested against one polygon only.
        """
        names = np.array(self.iso3 + [""], dtype=object)
        return names[self.locate_index(lon, lat, first=first)]

    def locate_index(self, lon: np.ndarray, lat: np.ndarray, *, first: np.ndarray | None = None,
                     first_codes: tuple[np.ndarray, np.ndarray] | None = None, valid: np.ndarray | None = None) -> np.ndarray:
        """:meth:`locate` as positions in ``self.iso3`` (``len(self.iso3)`` where none).

        ``first_codes``: ``pd.factorize(first)`` when the caller has it already. ``valid``:
        the points to place (finite ones; default all finite), the others are placed nowhere.
        """
        n = len(lon)
        code = np.full(n, len(self.iso3), dtype=np.int64)   # index into names; last: none
        none = len(self.iso3)
        index = {iso: k for k, iso in enumerate(self.iso3)}
        finite = np.isfinite(lon) & np.isfinite(lat)
        valid = finite if valid is None else valid & finite
        if first is not None or first_codes is not None:
            if first_codes is not None:
                fcodes, funiq = first_codes
            else:
                fcodes, funiq = pd.factorize(np.asarray(first, dtype=object), use_na_sentinel=False)
            wanted = [k for k, iso in enumerate(funiq) if iso in self.geoms]
            if len(wanted) > 16:   # many countries: skip those without a valid point at once
                present = np.bincount(fcodes[valid], minlength=len(funiq)) > 0
                wanted = [k for k in wanted if present[k]]
            for k in wanted:
                iso = funiq[k]
                sel = np.flatnonzero(valid & (fcodes == k))
                if len(sel):
                    hit = self.contains(iso, lon[sel], lat[sel])
                    code[sel[hit]] = index[iso]
        todo = np.flatnonzero(valid & (code == none))   # positions not placed yet
        for iso in self.iso3:
            if not len(todo):
                break
            hit = self.contains(iso, lon[todo], lat[todo])
            if hit.any():
                code[todo[hit]] = index[iso]
                todo = todo[~hit]
        return code

    def distance_km(self, iso3: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Geodesic distance (km, WGS84) from each point to the nearest point of country ``iso3[i]``.

        The nearest point is found in longitude/latitude; the distance to it is measured on
        the ellipsoid. Use for the few points outside their country, not for all.
        """
        n = len(lon)
        out = np.full(n, np.inf)
        iso3 = np.asarray(iso3, dtype=object)
        for iso in pd.unique(iso3):
            if iso not in self.geoms:
                continue
            sel = np.flatnonzero((iso3 == iso) & np.isfinite(lon) & np.isfinite(lat))
            if not len(sel):
                continue
            pts = shapely.points(lon[sel], lat[sel])
            lines = shapely.shortest_line(pts, self.geoms[iso])
            coords = shapely.get_coordinates(lines).reshape(-1, 2, 2)
            _, _, d = geod().inv(coords[:, 0, 0], coords[:, 0, 1], coords[:, 1, 0], coords[:, 1, 1])
            out[sel] = np.asarray(d) / 1000.0
        return out

    def nearest(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ISO3 of the nearest country, geodesic distance to it in km) for each point."""
        n = len(lon)
        iso = np.full(n, "", dtype=object)
        dist = np.full(n, np.inf)
        ok = np.isfinite(lon) & np.isfinite(lat)
        if not ok.any():
            return iso, dist
        pts = shapely.points(lon[ok], lat[ok])
        idx = self._tree.query_nearest(pts, all_matches=False, return_distance=False)
        near = np.full(int(ok.sum()), -1)
        near[idx[0]] = idx[1]
        names = np.array(self.iso3, dtype=object)
        iso[ok] = names[near]
        dist[ok] = self.distance_km(iso[ok], lon[ok], lat[ok])
        return iso, dist

    def centroid(self, iso3: str) -> tuple[float, float]:
        """(lon, lat) of a country's area centroid, computed in a Lambert azimuthal
        equal-area projection centred on the country (not in degrees); NaN if unknown."""
        if iso3 not in self._centroid_cache:
            import pyproj

            g = self.geoms.get(iso3)
            if g is None:
                self._centroid_cache[iso3] = (np.nan, np.nan)
            else:
                def through(tr):
                    return lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1]))

                c0 = g.centroid
                laea = pyproj.CRS.from_proj4(f"+proj=laea +lat_0={c0.y} +lon_0={c0.x} +datum=WGS84")
                fwd = pyproj.Transformer.from_crs("EPSG:4326", laea, always_xy=True)
                inv = pyproj.Transformer.from_crs(laea, "EPSG:4326", always_xy=True)
                c = shapely.transform(shapely.transform(g, through(fwd)).centroid, through(inv))
                self._centroid_cache[iso3] = (c.x, c.y)
        return self._centroid_cache[iso3]

    def centroids(self, iso3s=None) -> dict[str, tuple[float, float]]:
        """Area centroids (see :meth:`centroid`) of the given countries (default: all)."""
        return {i: self.centroid(i) for i in (self.iso3 if iso3s is None else iso3s) if i in self.geoms}


def within_km_of(lon: np.ndarray, lat: np.ndarray, plon: np.ndarray, plat: np.ndarray, km: float) -> tuple[np.ndarray, np.ndarray]:
    """Which points lie within ``km`` (geodesic, WGS84) of their reference point; and the distances (km).

    A degree box filter first, then the ellipsoidal distance for the candidates.
    """
    n = len(lon)
    hit = np.zeros(n, dtype=bool)
    dist = np.full(n, np.nan)
    ok = np.isfinite(lon) & np.isfinite(lat) & np.isfinite(plon) & np.isfinite(plat)
    dlat = km / 110.0 + 1e-9
    coslat = np.cos(np.radians(np.clip(np.abs(plat), 0, 89)))
    with np.errstate(invalid="ignore"):
        cand = ok & (np.abs(lat - plat) <= dlat) & (np.abs(lon - plon) <= dlat / np.where(coslat > 0.01, coslat, 0.01))
    if cand.any():
        _, _, d = geod().inv(lon[cand], lat[cand], plon[cand], plat[cand])
        d = np.asarray(d) / 1000.0
        dist[cand] = d
        hit[cand] = d <= km
    return hit, dist
