"""Range geometry per species and Range State, measured on the WGS84 ellipsoid.

The range is the union of range polygons with presence 1 (extant) where the species has
any, else the EOO hull of its present records (convex on the ellipsoid, edges densified
along geodesics). Geometries are EPSG:4326; a hull crossing the antimeridian is split
there so that it clips correctly against country polygons.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely
from shapely.geometry import Polygon, box

from .criterion_b import GEOD, hull_vertices

DENSIFY_KM = 25.0


def geodesic_area_km2(geom) -> float:
    """Area of a (multi)polygon in km2 on the WGS84 ellipsoid (0 for empty / None)."""
    if geom is None or geom.is_empty:
        return 0.0
    polys = [g for g in shapely.get_parts(geom) if g.geom_type == "Polygon"]
    return float(sum(abs(GEOD.geometry_area_perimeter(p)[0]) for p in polys) / 1e6)


def geodesic_length_km(geom) -> float:
    """Length of the line parts of a geometry in km along WGS84 geodesics."""
    if geom is None or geom.is_empty:
        return 0.0
    lines = [g for g in shapely.get_parts(geom) if g.geom_type in ("LineString", "LinearRing")]
    return float(sum(GEOD.geometry_length(g) for g in lines) / 1000.0)


def _densify_ring(lon: np.ndarray, lat: np.ndarray, step_km: float = DENSIFY_KM) -> tuple[list, list]:
    out_lon, out_lat = [], []
    n = len(lon)
    for i in range(n):
        a_lon, a_lat, b_lon, b_lat = lon[i], lat[i], lon[(i + 1) % n], lat[(i + 1) % n]
        out_lon.append(a_lon)
        out_lat.append(a_lat)
        _, _, dist = GEOD.inv(a_lon, a_lat, b_lon, b_lat)
        k = int(dist / 1000.0 // step_km)
        if k > 0:
            for p_lon, p_lat in GEOD.npts(a_lon, a_lat, b_lon, b_lat, k):
                out_lon.append(p_lon)
                out_lat.append(p_lat)
    return out_lon, out_lat


def hull_polygon(lon, lat, method: str = "iucn"):
    """The EOO hull as a shapely geometry in EPSG:4326 (None below 3 non-collinear points).

    Edges are densified along geodesics every ~25 km; a hull crossing the antimeridian is
    built in 0-360 longitudes and split back into [-180, 180].
    """
    hlon, hlat = hull_vertices(lon, lat, method)
    if hlon.size < 3:
        return None
    dlon, dlat = _densify_ring(hlon, hlat)
    dlon = np.asarray(dlon)
    # consecutive vertices more than 180 degrees apart: the ring crosses the antimeridian
    if np.any(np.abs(np.diff(np.append(dlon, dlon[0]))) > 180):
        shifted = np.where(dlon < 0, dlon + 360.0, dlon)
        poly = shapely.make_valid(Polygon(zip(shifted, dlat)))
        west = poly.intersection(box(-180, -90, 180, 90))
        east = shapely.affinity.translate(poly.intersection(box(180, -90, 540, 90)), xoff=-360)
        return shapely.make_valid(shapely.union(west, east))
    return shapely.make_valid(Polygon(zip(dlon, dlat)))


def species_range(range_gdf, lon, lat):
    """``(geometry, source)``: extant range polygons where given, else the EOO hull."""
    if range_gdf is not None and len(range_gdf):
        pres = pd.to_numeric(range_gdf.get("presence", pd.Series(1, index=range_gdf.index)), errors="coerce")
        extant = range_gdf[pres.fillna(1).astype(int) == 1]
        geoms = [g for g in extant.geometry.values if g is not None and not g.is_empty]
        if geoms:
            return shapely.make_valid(shapely.union_all(shapely.make_valid(np.asarray(geoms)))), \
                "range polygons (presence 1, all seasons)"
    hull = hull_polygon(lon, lat) if len(lon) else None
    if hull is None or hull.is_empty:
        return None, "none (fewer than 3 present records and no range polygons)"
    return hull, "EOO hull of present records (no range polygons)"


def range_by_country(range_geom, countries) -> pd.DataFrame:
    """Per country (index iso3): ``range_area_km2`` of range x country and ``range_share``
    of the whole range's area (range parts outside every listed country count in the
    total); geometry of the part in ``geometry``. No countries: an empty frame with those
    columns."""
    if not len(countries):
        return pd.DataFrame(columns=["range_area_km2", "range_share", "geometry"])
    total = geodesic_area_km2(range_geom)
    rows = []
    for iso3, geom in zip(countries.index, countries.geometry.values):
        part = None
        if range_geom is not None and geom is not None:
            part = shapely.intersection(range_geom, geom)
            if part.geom_type not in ("Polygon", "MultiPolygon"):  # lines / points where they touch
                polys = [g for g in shapely.get_parts(part) if g.geom_type in ("Polygon", "MultiPolygon")]
                part = shapely.union_all(polys) if polys else None
            if part is not None and part.is_empty:
                part = None
        area = geodesic_area_km2(part)
        rows.append({"iso3": iso3, "range_area_km2": area if range_geom is not None else np.nan,
                     "range_share": area / total if total > 0 else np.nan, "geometry": part})
    return pd.DataFrame(rows).set_index("iso3")


def union_of_polygons(geoms):
    """Union of polygons (EPSG:4326 or any planar CRS; None when there are none).

    Boundary polygons such as the Range States usually form a *coverage* (no overlaps,
    shared edges with the same vertices): their union is then
    :func:`shapely.coverage_union_all`, which only drops the shared edges and is several
    times faster than :func:`shapely.union_all`; the same point set, though the parts and
    rings may come in another order. Polygons that overlap or whose shared edges do not
    match (:func:`shapely.coverage_is_valid` is false) take :func:`shapely.union_all`."""
    geoms = np.asarray([g for g in geoms if g is not None], dtype=object)
    if not len(geoms):
        return None
    if shapely.coverage_is_valid(geoms):
        return shapely.coverage_union_all(geoms)
    return shapely.union_all(geoms)


def _extant(range_gdf):
    pres = pd.to_numeric(range_gdf.get("presence", pd.Series(1, index=range_gdf.index)), errors="coerce")
    return range_gdf[pres.fillna(1).astype(int) == 1]


def seasonal_ranges(range_gdf) -> dict[int, object]:
    """Union of the extant (presence 1) range polygons per IUCN seasonal code 1-5
    (1 resident, 2 breeding, 3 non-breeding, 4 passage, 5 seasonal occurrence uncertain);
    codes without polygons are left out, as are polygons without a seasonal code (they
    count in :func:`species_range`, which takes every season)."""
    out: dict[int, object] = {}
    if range_gdf is None or not len(range_gdf) or "seasonal" not in range_gdf:
        return out
    extant = _extant(range_gdf)
    seas = pd.to_numeric(extant["seasonal"], errors="coerce")
    for code in range(1, 6):
        geoms = [g for g in extant.geometry.values[(seas == code).to_numpy()] if g is not None and not g.is_empty]
        if geoms:
            out[code] = shapely.make_valid(shapely.union_all(shapely.make_valid(np.asarray(geoms))))
    return out


def range_area_by_season(range_gdf, countries) -> pd.DataFrame:
    """``range_area_km2`` (WGS84 ellipsoid) and ``range_share`` (of that season's whole
    range) per seasonal code 1-5 and Range State: columns ``seasonal``, ``iso3``,
    ``range_area_km2``, ``range_share``, ``geometry``."""
    frames = []
    for code, geom in seasonal_ranges(range_gdf).items():
        frames.append(range_by_country(geom, countries).reset_index().assign(seasonal=code))
    if not frames:
        return pd.DataFrame(columns=["seasonal", "iso3", "range_area_km2", "range_share", "geometry"])
    return pd.concat(frames, ignore_index=True)[["seasonal", "iso3", "range_area_km2", "range_share", "geometry"]]
