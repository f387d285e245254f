"""Point-in-country tests and geodesic distances, vectorised for 10^6 points.

Points are tested with prepared polygons and ``shapely.contains_xy`` per country after a
bounding-box filter (no spatial join). Distances are geodesic on the WGS84 ellipsoid, in km.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely
from pyproj import Geod

GEOD = Geod(ellps="WGS84")


class Countries:
    """Boundary polygons prepared for fast point tests (EPSG:4326, keyed by ISO3)."""

    def __init__(self, boundaries):
        self.iso3 = [str(i) for i in boundaries["iso3"]]
        self.geoms = {i: g for i, g in zip(self.iso3, boundaries.geometry.values)}
        for g in self.geoms.values():
            shapely.prepare(g)
        self.bounds = {i: g.bounds for i, g in self.geoms.items()}
        self.range_state = {i: bool(r) for i, r in zip(self.iso3, boundaries["range_state"])}
        self._tree = shapely.STRtree(list(self.geoms.values()))
        self._centroid_cache: dict[str, tuple[float, float]] = {}

    def contains(self, iso3: str, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Whether each point lies in country ``iso3`` (False for unknown codes or NaN)."""
        out = np.zeros(len(lon), dtype=bool)
        if iso3 not in self.geoms:
            return out
        x0, y0, x1, y1 = self.bounds[iso3]
        box = (lon >= x0) & (lon <= x1) & (lat >= y0) & (lat <= y1)
        if box.any():
            out[box] = shapely.contains_xy(self.geoms[iso3], lon[box], lat[box])
        return out

    def locate(self, lon: np.ndarray, lat: np.ndarray, *, first: np.ndarray | None = None) -> np.ndarray:
        """The ISO3 of the country holding each point ('' where none).

        ``first`` (optional, ISO3 per point) is tested first, so points inside their
        declared country are tested against one polygon only.
        """
        names = np.array(self.iso3 + [""], dtype=object)
        return names[self.locate_index(lon, lat, first=first)]

    def locate_index(self, lon: np.ndarray, lat: np.ndarray, *, first: np.ndarray | None = None) -> np.ndarray:
        """:meth:`locate` as positions in ``self.iso3`` (``len(self.iso3)`` where none)."""
        n = len(lon)
        code = np.full(n, len(self.iso3), dtype=np.int64)   # index into names; last: none
        none = len(self.iso3)
        index = {iso: k for k, iso in enumerate(self.iso3)}
        valid = np.isfinite(lon) & np.isfinite(lat)
        if first is not None:
            fcodes, funiq = pd.factorize(np.asarray(first, dtype=object), use_na_sentinel=False)
            present = np.bincount(fcodes[valid], minlength=len(funiq)) > 0
            for k, iso in enumerate(funiq):
                if present[k] and iso in self.geoms:
                    sel = np.flatnonzero(valid & (fcodes == k))
                    hit = self.contains(iso, lon[sel], lat[sel])
                    code[sel[hit]] = index[iso]
        todo = valid & (code == none)
        for iso in self.iso3:
            if not todo.any():
                break
            sel = np.flatnonzero(todo)
            hit = self.contains(iso, lon[sel], lat[sel])
            if hit.any():
                code[sel[hit]] = index[iso]
                todo[sel[hit]] = False
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
            _, _, d = GEOD.inv(coords[:, 0, 0], coords[:, 0, 1], coords[:, 1, 0], coords[:, 1, 1])
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
        _, _, d = GEOD.inv(lon[cand], lat[cand], plon[cand], plat[cand])
        d = np.asarray(d) / 1000.0
        dist[cand] = d
        hit[cand] = d <= km
    return hit, dist
