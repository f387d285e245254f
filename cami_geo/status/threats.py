"""Threat features within a species' range, per Range State and IUCN code.

Counts, line length (km, WGS84 geodesic), polygon area (km2, WGS84 ellipsoid), features
classed as complete barriers for the species, and the share of the range within a buffer
of linear infrastructure (buffer built in a Lambert azimuthal equal-area projection
centred on the range).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely

from .ranges import geodesic_area_km2, geodesic_length_km

THREAT_TABLE_COLUMNS = ["species", "species_slug", "iso3", "iucn_code", "iucn_name", "n_features",
                        "length_km", "area_km2", "n_complete_barriers"]
LINEAR_CODES = ("4", "4.1", "4.2", "4.3", "4.4")
"""IUCN 3.3 class 4 (transportation & service corridors) is linear infrastructure; fences
are coded 2.3 / 6.2 / 7.3 (see docs/data-dictionary.md) and count when they are lines."""


def species_threats(threats, slug: str):
    """Threat features of the species plus those with no species (they apply to all)."""
    if threats is None or not len(threats):
        return threats
    sp = threats.get("species_slug", pd.Series("", index=threats.index)).astype("string").fillna("")
    return threats[(sp == slug) | (sp == "")]


def threats_by_country(threats, range_parts: pd.DataFrame, countries, registry=None) -> pd.DataFrame:
    """One row per iso3 x iucn_code with features intersecting the species' range in that
    country (the country itself where the species has no range geometry)."""
    rows = []
    if threats is None or not len(threats):
        return pd.DataFrame(columns=THREAT_TABLE_COLUMNS[2:])
    geoms = threats.geometry.values
    codes = threats.get("iucn_code", pd.Series("", index=threats.index)).astype("string").fillna("").to_numpy()
    barrier = (threats.get("barrier_class", pd.Series("", index=threats.index)).astype("string")
               .fillna("").str.strip().str.lower() == "complete barrier").to_numpy()
    tree = shapely.STRtree(geoms)
    for iso3, cgeom in zip(countries.index, countries.geometry.values):
        area_geom = None
        if iso3 in range_parts.index and range_parts.at[iso3, "geometry"] is not None:
            area_geom = range_parts.at[iso3, "geometry"]
        elif range_parts["geometry"].isna().all():
            area_geom = cgeom
        if area_geom is None or area_geom.is_empty:
            continue
        idx = tree.query(area_geom, predicate="intersects")
        if idx.size == 0:
            continue
        clipped = shapely.intersection(geoms[idx], area_geom)
        df = pd.DataFrame({"iucn_code": codes[idx], "barrier": barrier[idx],
                           "length_km": [geodesic_length_km(g) for g in clipped],
                           "area_km2": [geodesic_area_km2(g) for g in clipped]})
        for code, g in df.groupby("iucn_code", sort=True):
            rows.append({"iso3": iso3, "iucn_code": code,
                         "iucn_name": registry.threat_name(code) if registry is not None else "",
                         "n_features": int(len(g)), "length_km": float(g["length_km"].sum()),
                         "area_km2": float(g["area_km2"].sum()), "n_complete_barriers": int(g["barrier"].sum())})
    return pd.DataFrame(rows, columns=THREAT_TABLE_COLUMNS[2:])


def main_threats(tbc: pd.DataFrame, iso3: str, n: int = 3) -> str:
    """'4.1 Roads & railroads (5); 5.1.1 ... (2)': the most frequent codes in a country."""
    sub = tbc[tbc["iso3"] == iso3].sort_values(["n_features", "iucn_code"], ascending=[False, True]).head(n)
    return "; ".join(f"{c} {nm} ({k})".replace("  ", " ") for c, nm, k in
                     zip(sub["iucn_code"], sub["iucn_name"], sub["n_features"]))


def infrastructure_share(threats, range_parts: pd.DataFrame, buffer_km: float, crs: str) -> pd.Series:
    """Share of each country's range part within ``buffer_km`` of linear infrastructure
    (line features of IUCN class 4), measured in the equal-area ``crs``."""
    from .criterion_b import project_geoms

    out = pd.Series(np.nan, index=range_parts.index, name="infrastructure_buffer_share")
    if threats is None or not len(threats) or buffer_km <= 0:
        return out
    codes = threats.get("iucn_code", pd.Series("", index=threats.index)).astype("string").fillna("")
    lines = threats[codes.str.match(r"^4(\.|$)") & threats.geometry.geom_type.isin(["LineString", "MultiLineString"])]
    if lines.empty:
        return out.where(range_parts["geometry"].isna(), 0.0)
    proj_lines = project_geoms(lines.geometry.values, crs)
    zone = shapely.union_all(shapely.buffer(proj_lines, buffer_km * 1000.0))
    for iso3, part in zip(range_parts.index, range_parts["geometry"]):
        if part is None or part.is_empty:
            continue
        p = project_geoms(part, crs)
        if p.area > 0:
            out[iso3] = float(shapely.intersection(p, zone).area / p.area)
    return out


def _in_some_box(x: np.ndarray, y: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Positions (ascending) of the points (x, y) within or on at least one of the boxes
    ``bounds`` (rows xmin, ymin, xmax, ymax; NaN rows, of empty geometries, hold none)."""
    order = np.argsort(x, kind="stable")
    xs = x[order]
    hit = np.zeros(x.size, dtype=bool)
    for x0, y0, x1, y1 in bounds:
        sl = order[np.searchsorted(xs, x0, "left"):np.searchsorted(xs, x1, "right")]
        hit[sl[(y[sl] >= y0) & (y[sl] <= y1)]] = True
    return np.flatnonzero(hit)


def threat_locations(lon, lat, threats, *, buffer_km: float, crs: str, method: str = "iucn",
                     cell_km: float = 10.0) -> tuple[int, str]:
    """Number of locations defined by threat features where given (IUCN: the area a single
    threatening event can rapidly affect): each polygon threat, and each line threat
    buffered by ``buffer_km``, that holds present records is one location (greedily, the
    feature holding most unassigned records first); the remaining records form locations on
    the ``cell_km`` grid as ConR does. Returns ``(n_locations, note)``."""
    from . import criterion_b as cb

    ulon, ulat = cb.unique_points(lon, lat)
    if ulon.size == 0:
        return 0, ""
    if threats is None or not len(threats):
        return cb.locations(ulon, ulat, method, cell_km), "no threat features: grid locations only"
    geoms = threats.geometry.values
    kinds = shapely.get_type_id(geoms)  # 1/5 lines, 3/6 polygons
    use = np.isin(kinds, [1, 3, 5, 6])
    if not use.any():
        return cb.locations(ulon, ulat, method, cell_km), "no line or polygon threats: grid locations only"
    proj = cb.project_geoms(geoms[use], crs)
    lines = np.isin(kinds[use], [1, 5])
    proj = np.where(lines, shapely.buffer(proj, buffer_km * 1000.0), proj)
    x, y = cb.project(ulon, ulat, crs)
    cand = _in_some_box(x, y, shapely.bounds(proj))
    # point geometries only for the records in a feature's bounding box (usually a few %)
    pts = shapely.points(np.column_stack([x, y])[cand])
    tree = shapely.STRtree(proj)
    pi, gi = tree.query(pts, predicate="within")
    pi = cand[pi]
    assigned = np.zeros(ulon.size, dtype=bool)
    n_feat = 0
    if pi.size:
        df = pd.DataFrame({"p": pi, "g": gi})
        while True:
            df = df[~assigned[df["p"].to_numpy()]]
            if df.empty:
                break
            best = df["g"].value_counts().idxmax()
            assigned[df.loc[df["g"] == best, "p"].to_numpy()] = True
            n_feat += 1
    rest = ~assigned
    n_grid = cb.locations(ulon[rest], ulat[rest], method, cell_km) if rest.any() else 0
    return n_feat + n_grid, (f"{n_feat} threat feature(s) holding records + {n_grid} grid cell(s) of "
                             f"{cell_km:g} km for the other records")
