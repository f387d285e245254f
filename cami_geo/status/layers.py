"""GIS layers per species: a GeoPackage (``range``, ``aoo_cells``, ``summary_by_country``),
the AOO occupancy grid and a threat density grid as Cloud-Optimized GeoTIFFs.

Everything is computed from the **precise** (restricted) clean copy, as the status figures
are. The AOO grid and the ``aoo_cells`` layer reveal where records are to within one
2 x 2 km cell and an occurrence-hull range has record coordinates as its vertices, so these
files are RESTRICTED outputs (write them under ``data/processed/restricted/``); the raster
and the GeoPackage say so in their metadata.

The AOO grid is the grid placement :mod:`.criterion_b` chooses for the species row of
``species.csv`` (same records, same projection, same origin search), so the number of
occupied cells x cell area equals that ``aoo_km2``. Every column and band is described in
``docs/data-dictionary.md``.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely

from ..errors import InputError
from ..io.vector import reproducible_gpkg
from ..model import SEASONAL_CODES
from . import criterion_b as cb
from .ranges import geodesic_area_km2, geodesic_length_km, range_by_country, seasonal_ranges, union_of_polygons

log = logging.getLogger("cami_geo.status")

RESTRICTED_NOTE = ("RESTRICTED: computed from precise (unpublished) occurrence records; reveals where "
                   "the species was recorded to within one grid cell. Do not publish.")
THREAT_CELL_KM = 10.0
AOO_NODATA = 255
THREAT_NODATA = -9999.0
MAX_THREAT_CELLS = 25_000_000

RANGE_LAYER_COLUMNS = ["species", "species_slug", "iso3", "country", "seasonal", "seasonal_name",
                       "range_source", "area_km2", "share"]
AOO_CELL_COLUMNS = ["species", "species_slug", "cell_id", "col", "row", "n_records", "n_unique",
                    "area_km2", "method", "crs"]
SUMMARY_COLUMNS = ["species", "species_slug", "iso3", "country", "n_records", "n_absences", "first_year",
                   "last_year", "eoo_km2", "aoo_km2", "range_area_km2", "range_share", "range_source",
                   "n_threats", "n_complete_barriers"]
THREAT_BANDS = (
    ("threat_points", "threat point features per 10 km cell (count)", "count"),
    ("threat_line_length_km", "length of threat line features per 10 km cell (km, WGS84 geodesic)", "km"),
    ("threat_polygon_area_km2", "area of threat polygon features per 10 km cell (km2, equal-area)", "km2"),
)


# ---------------------------------------------------------------------------------------
# the AOO grid
# ---------------------------------------------------------------------------------------
@dataclass
class AOOGrid:
    """Occupied cells of one grid placement. Cell (col, row) spans x from ``x0 + col * s``
    to ``x0 + (col + 1) * s`` and y from ``y1 - (row + 1) * s`` to ``y1 - row * s`` in
    ``crs`` (metres); rows count southwards."""

    crs: str
    method: str
    cell_m: float
    x0: float
    y1: float
    cells: pd.DataFrame  # col, row, n_records, n_unique

    @property
    def n_cells(self) -> int:
        return len(self.cells)

    def boxes(self) -> np.ndarray:
        s = self.cell_m
        c = self.cells["col"].to_numpy(dtype="float64")
        r = self.cells["row"].to_numpy(dtype="float64")
        return shapely.box(self.x0 + c * s, self.y1 - (r + 1) * s, self.x0 + (c + 1) * s, self.y1 - r * s)


def _wrap(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lon = np.asarray(lon, dtype="float64").ravel()
    lat = np.asarray(lat, dtype="float64").ravel()
    ok = np.isfinite(lon) & np.isfinite(lat) & (np.abs(lat) <= 90)
    lon, lat = lon[ok], lat[ok]
    lon = np.where((lon >= 180) | (lon < -180), (lon + 180.0) % 360.0 - 180.0, lon) + 0.0
    return lon, lat + 0.0


def aoo_grid(lon: Any, lat: Any, method: str = "iucn", cell_km: float = 2.0, *, n_shifts: int = 4,
             crs: str | None = None) -> AOOGrid:
    """The occupied cells of the grid placement giving the AOO of the points, with the number
    of records (duplicates included) and of unique points per cell.

    Same arithmetic as :func:`criterion_b.shifted_cell_counts` (``iucn``: sub-cells of side
    cell / n_shifts, origin (i, j) with the fewest occupied cells, the first in row-major
    order on ties) and :func:`criterion_b.conr_cell_counts` (``conr``). ``crs`` defaults to
    the one criterion B uses for these points (LAEA centred on them; ConR's cea); the status
    stage passes the LAEA centred on *all* present records while AOO keeps out records with
    a large uncertainty, and so must this.
    """
    cb._check_method(method)
    lon, lat = _wrap(lon, lat)
    ulon, ulat = cb.unique_points(lon, lat)
    if crs is None:
        crs = cb.CONR_CRS if method == "conr" or ulon.size == 0 else cb.laea_crs(ulon, ulat)
    s = float(cell_km) * 1000.0
    empty = pd.DataFrame({"col": pd.Series(dtype="int64"), "row": pd.Series(dtype="int64"),
                          "n_records": pd.Series(dtype="int64"), "n_unique": pd.Series(dtype="int64")})
    if ulon.size == 0:
        return AOOGrid(crs, method, s, 0.0, 0.0, empty)
    ux, uy = cb.project(ulon, ulat, crs)
    x, y = cb.project(lon, lat, crs)
    if method == "conr":
        h = int(np.argmin(cb.conr_cell_counts(ux, uy, s)))
        x0 = float(np.floor(ux.min())) - h * s / 4 - 2 * s
        y1 = float(np.floor(uy.max())) + h * s / 4 + 2 * s

        def cell(px, py):
            return np.floor((px - x0) / s).astype("int64"), np.floor((y1 - py) / s).astype("int64")
    else:
        k = int(np.argmin(cb.shifted_cell_counts(ux, uy, s, n_shifts)))
        i, j = divmod(k, n_shifts)
        sub = s / n_shifts
        x0, y1 = i * sub, j * sub

        def cell(px, py):
            cx = (np.floor(px / sub).astype("int64") - i) // n_shifts
            cy = (np.floor(py / sub).astype("int64") - j) // n_shifts
            return cx, -cy - 1
    c, r = cell(x, y)
    uc, ur = cell(ux, uy)
    rec = pd.DataFrame({"col": c, "row": r}).value_counts().rename("n_records")
    uni = pd.DataFrame({"col": uc, "row": ur}).value_counts().rename("n_unique")
    cells = pd.concat([rec, uni], axis=1).fillna(0).astype("int64").reset_index()
    cells = cells.sort_values(["row", "col"], kind="stable").reset_index(drop=True)
    return AOOGrid(crs, method, s, float(x0), float(y1), cells)


# ---------------------------------------------------------------------------------------
# Cloud-Optimized GeoTIFF
# ---------------------------------------------------------------------------------------
def write_cog(path: str | Path, data: np.ndarray, *, crs: str, transform, nodata: float,
              descriptions: list[str], tags: dict[str, str], band_tags: list[dict[str, str]] | None = None,
              units: list[str] | None = None, resampling: str = "NEAREST") -> None:
    """Write ``data`` (bands, rows, cols) as a COG (GDAL's COG driver: tiled 512 x 512,
    DEFLATE, overviews where the image is larger than a tile), atomically."""
    import rasterio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.asarray(data)
    if data.ndim == 2:
        data = data[None]
    fd, tmp = tempfile.mkstemp(suffix=".tif", dir=path.parent)
    os.close(fd)
    try:
        with rasterio.open(tmp, "w", driver="COG", width=data.shape[2], height=data.shape[1],
                           count=data.shape[0], dtype=data.dtype.name, crs=crs, transform=transform,
                           nodata=nodata, compress="DEFLATE", resampling=resampling) as ds:
            ds.write(data)
            ds.update_tags(**tags)
            for b, d in enumerate(descriptions, start=1):
                ds.set_band_description(b, d)
            for b, t in enumerate(band_tags or [], start=1):
                ds.update_tags(b, **t)
            for b, u in enumerate(units or [], start=1):
                ds.set_band_unit(b, u)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _affine(x_left: float, y_top: float, s: float):
    from affine import Affine

    return Affine(s, 0.0, x_left, 0.0, -s, y_top)


def write_aoo_tif(grid: AOOGrid, path: str | Path, *, species: str = "", slug: str = "") -> tuple[int, int]:
    """The occupancy grid of ``grid`` as a uint8 COG: 1 occupied, 0 not, 255 nodata; extent
    the occupied cells plus one cell on every side (a 1 x 1 nodata raster without cells).
    Returns (height, width)."""
    s = grid.cell_m
    tags = {"TIFFTAG_IMAGEDESCRIPTION": f"AOO occupancy grid of {species or slug}. {RESTRICTED_NOTE}",
            "access": "restricted", "restricted_note": RESTRICTED_NOTE, "species": species,
            "species_slug": slug, "method": grid.method, "cell_km": f"{s / 1000:g}",
            "n_occupied_cells": str(grid.n_cells), "aoo_km2": f"{grid.n_cells * (s / 1000) ** 2:g}",
            "values": "1 occupied, 0 not occupied, 255 nodata", "crs": grid.crs}
    if grid.n_cells == 0:
        data = np.full((1, 1), AOO_NODATA, dtype="uint8")
        write_cog(path, data, crs=grid.crs, transform=_affine(grid.x0, grid.y1 + s, s), nodata=AOO_NODATA,
                  descriptions=["AOO occupancy (no present records: nodata)"], tags=tags)
        return 1, 1
    c = grid.cells["col"].to_numpy()
    r = grid.cells["row"].to_numpy()
    cmin, cmax, rmin, rmax = c.min(), c.max(), r.min(), r.max()
    height, width = int(rmax - rmin) + 3, int(cmax - cmin) + 3
    data = np.zeros((height, width), dtype="uint8")
    data[r - rmin + 1, c - cmin + 1] = 1
    transform = _affine(grid.x0 + (cmin - 1) * s, grid.y1 - (rmin - 1) * s, s)
    write_cog(path, data, crs=grid.crs, transform=transform, nodata=AOO_NODATA,
              descriptions=[f"AOO occupancy, {s / 1000:g} km cells (1 occupied, 0 not)"], tags=tags)
    return height, width


# ---------------------------------------------------------------------------------------
# threat density
# ---------------------------------------------------------------------------------------
def threat_density(threats, range_geom, crs: str, cell_km: float = THREAT_CELL_KM):
    """Per ``cell_km`` cell of a grid aligned on multiples of ``cell_km`` in the equal-area
    ``crs``, over the bounds of the species range: band 0 the number of point threat
    features (a multipoint feature counts 1, shared among its points), band 1 the length
    (km) of line features, band 2 the area (km2) of polygon features. Line pieces are cut at
    cell edges in ``crs`` and scaled so that each feature's pieces add up to its WGS84
    geodesic length; polygon pieces are measured in ``crs`` (equal-area). Parts outside the
    grid are not counted. Returns ``(data, transform)`` or ``(None, None)`` without range."""
    s = cell_km * 1000.0
    if range_geom is None or range_geom.is_empty:
        return None, None
    pr = cb.project_geoms(np.asarray([shapely.segmentize(range_geom, 0.05)]), crs)[0]
    bx0, by0, bx1, by1 = pr.bounds
    c0, c1 = int(np.floor(bx0 / s)), int(np.ceil(bx1 / s))
    r0, r1 = int(np.floor(by0 / s)), int(np.ceil(by1 / s))
    c1, r1 = max(c1, c0 + 1), max(r1, r0 + 1)
    width, height = c1 - c0, r1 - r0
    if width * height > MAX_THREAT_CELLS:
        raise InputError(f"The species range spans {width} x {height} cells of {cell_km:g} km, too large for "
                         "a threat density grid.")
    x_left, y_top = c0 * s, r1 * s
    data = np.zeros((3, height, width), dtype="float64")
    if threats is not None and len(threats):
        geoms = np.asarray(threats.geometry.values)
        geoms = geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))]
        proj = cb.project_geoms(geoms, crs) if geoms.size else geoms
        for g, pg in zip(geoms, proj):
            kind = shapely.get_type_id(g)
            if kind in (0, 4):  # (multi)point
                pts = shapely.get_coordinates(pg)
                col = np.floor((pts[:, 0] - x_left) / s).astype("int64")
                row = np.floor((y_top - pts[:, 1]) / s).astype("int64")
                ok = (col >= 0) & (col < width) & (row >= 0) & (row < height)
                np.add.at(data[0], (row[ok], col[ok]), 1.0 / len(pts))
                continue
            if kind not in (1, 2, 3, 5, 6):
                continue
            gx0, gy0, gx1, gy1 = pg.bounds
            ca, cz = max(int(np.floor((gx0 - x_left) / s)), 0), min(int(np.floor((gx1 - x_left) / s)), width - 1)
            ra, rz = max(int(np.floor((y_top - gy1) / s)), 0), min(int(np.floor((y_top - gy0) / s)), height - 1)
            if ca > cz or ra > rz:
                continue
            cc, rr = np.meshgrid(np.arange(ca, cz + 1), np.arange(ra, rz + 1))
            cc, rr = cc.ravel(), rr.ravel()
            boxes = shapely.box(x_left + cc * s, y_top - (rr + 1) * s, x_left + (cc + 1) * s, y_top - rr * s)
            pieces = shapely.intersection(pg, boxes)
            if kind in (1, 2, 5):  # lines
                lp = pg.length
                if lp <= 0:
                    continue
                np.add.at(data[1], (rr, cc), shapely.length(pieces) * (geodesic_length_km(g) / lp))
            else:
                np.add.at(data[2], (rr, cc), shapely.area(pieces) / 1e6)
    return data.astype("float32"), _affine(x_left, y_top, s)


def write_threat_tif(threats, range_geom, crs: str, path: str | Path, *, species: str = "", slug: str = "",
                     cell_km: float = THREAT_CELL_KM) -> tuple[int, int]:
    """Threat density COG (3 float32 bands, see :func:`threat_density`); a 1 x 1 nodata
    raster when the species has no range. Returns (height, width)."""
    data, transform = threat_density(threats, range_geom, crs, cell_km)
    n_in = len(threats) if threats is not None else 0
    tags = {"TIFFTAG_IMAGEDESCRIPTION": f"Threat density of {species or slug} per {cell_km:g} km cell over the "
                                        "bounds of its range (band 1 count, band 2 km, band 3 km2).",
            "access": "restricted (derived from precise threat features and records; 10 km cells)",
            "species": species, "species_slug": slug, "cell_km": f"{cell_km:g}", "crs": crs,
            "n_threat_features_input": str(n_in)}
    btags = [{"name": n, "units": u} for n, _, u in THREAT_BANDS]
    if data is None:
        data = np.full((3, 1, 1), THREAT_NODATA, dtype="float32")
        transform = _affine(0.0, cell_km * 1000.0, cell_km * 1000.0)
        tags["TIFFTAG_IMAGEDESCRIPTION"] += " No range: nodata."
    write_cog(path, data, crs=crs, transform=transform, nodata=THREAT_NODATA,
              descriptions=[d for _, d, _ in THREAT_BANDS], tags=tags, band_tags=btags,
              units=[u for _, _, u in THREAT_BANDS], resampling="AVERAGE")
    return data.shape[1], data.shape[2]


# ---------------------------------------------------------------------------------------
# GeoPackage
# ---------------------------------------------------------------------------------------
def _write_layer(gdf, path: Path, layer: str, geometry_type: str, description: str) -> None:
    import pyogrio

    pyogrio.write_dataframe(gdf, path, layer=layer, driver="GPKG", geometry_type=geometry_type,
                            promote_to_multi=geometry_type.startswith("Multi") or None,
                            layer_options={"DESCRIPTION": description[:2000]}, use_arrow=True)


def _multi(geoms) -> list:
    out = []
    for g in geoms:
        if g is None or g.is_empty:
            out.append(None)
            continue
        polys = [p for p in shapely.get_parts(shapely.get_parts(g)) if p.geom_type == "Polygon" and not p.is_empty]
        out.append(shapely.MultiPolygon(polys) if polys else None)
    return out


def range_layer(rng, rgeom, rsource: str, valid_rs, registry, species: str, slug: str, *, _parts=None):
    """Rows of the ``range`` layer: the status range (all seasons; ``seasonal`` empty) and,
    where range polygons have seasonal codes, the extant range of each season, each cut into
    Range States (plus the part outside every Range State, ``iso3`` empty). ``_parts``:
    ``range_by_country(rgeom, valid_rs)`` when the caller has it already."""
    import geopandas as gpd

    scopes: list[tuple[Any, str, Any, str]] = []
    if rgeom is not None:
        scopes.append((pd.NA, "all seasons (the range used by status)", rgeom, rsource))
    if rgeom is not None and rsource.startswith("range polygons"):
        for code, g in seasonal_ranges(rng).items():
            scopes.append((code, SEASONAL_CODES.get(code, str(code)), g,
                           f"range polygons (presence 1, seasonal {code})"))
    rs_union = union_of_polygons(valid_rs.geometry.values)
    rows = []
    for k, (code, name, geom, source) in enumerate(scopes):
        total = geodesic_area_km2(geom)
        # the status range's parts when the caller has them
        parts = _parts if k == 0 and _parts is not None else range_by_country(geom, valid_rs)
        for iso3, p in parts.iterrows():
            if p["geometry"] is None:
                continue
            rows.append((iso3, code, name, source, p["range_area_km2"], p["range_share"], p["geometry"]))
        rest = geom if rs_union is None else shapely.difference(geom, rs_union)
        rest_area = geodesic_area_km2(rest)
        if rest_area > 0:
            rows.append(("", code, name, source, rest_area, rest_area / total if total > 0 else np.nan, rest))
    df = pd.DataFrame(rows, columns=["iso3", "seasonal", "seasonal_name", "range_source", "area_km2", "share",
                                     "geometry"])
    country = {k: (registry.states[k].name_en if k in registry.states else k) for k in df["iso3"] if k}
    out = gpd.GeoDataFrame({
        "species": pd.Series([species] * len(df), dtype="string"),
        "species_slug": pd.Series([slug] * len(df), dtype="string"),
        "iso3": df["iso3"].astype("string"),
        "country": df["iso3"].map(lambda k: country.get(k, "outside the Range States")).astype("string"),
        "seasonal": pd.array(df["seasonal"].tolist(), dtype="Int64"),
        "seasonal_name": df["seasonal_name"].astype("string"),
        "range_source": df["range_source"].astype("string"),
        "area_km2": df["area_km2"].astype("float64"), "share": df["share"].astype("float64"),
    }, geometry=gpd.GeoSeries(_multi(df["geometry"]), crs="EPSG:4326"))
    return out[RANGE_LAYER_COLUMNS + ["geometry"]]


def aoo_cells_layer(grid: AOOGrid, species: str, slug: str):
    import geopandas as gpd

    c = grid.cells
    n = len(c)
    km = grid.cell_m / 1000.0
    return gpd.GeoDataFrame({
        "species": pd.Series([species] * n, dtype="string"),
        "species_slug": pd.Series([slug] * n, dtype="string"),
        "cell_id": pd.Series([f"c{a}_r{b}" for a, b in zip(c["col"], c["row"])], dtype="string"),
        "col": c["col"].astype("int64"), "row": c["row"].astype("int64"),
        "n_records": c["n_records"].astype("int64"), "n_unique": c["n_unique"].astype("int64"),
        "area_km2": np.full(n, km * km), "method": pd.Series([grid.method] * n, dtype="string"),
        "crs": pd.Series([grid.crs] * n, dtype="string"),
    }, geometry=gpd.GeoSeries(grid.boxes() if n else [], crs=grid.crs))


def _read_by_country(by_country) -> pd.DataFrame | None:
    if by_country is None:
        return None
    if isinstance(by_country, pd.DataFrame):
        return by_country
    p = Path(str(by_country))
    if not p.exists() or p.stat().st_size == 0:
        return None
    try:
        return pd.read_csv(p)
    except pd.errors.EmptyDataError:
        return None


# ---------------------------------------------------------------------------------------
# everything for one species
# ---------------------------------------------------------------------------------------
def write_species_layers(clean_gpkg, boundaries_path, settings: dict[str, Any], slug: str, *,
                         gpkg_out, aoo_tif_out, threat_tif_out, by_country=None,
                         prepared: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write the GIS layers of one species from its precise clean GeoPackage.

    ``gpkg_out``: layers ``range`` (EPSG:4326), ``aoo_cells`` (the AOO grid's own
    equal-area CRS) and ``summary_by_country`` (EPSG:4326, country polygons), all present
    even when empty. ``aoo_tif_out``: AOO occupancy COG (RESTRICTED). ``threat_tif_out``:
    threat density COG. ``by_country`` (optional): the species' ``status/<slug>/by_country.csv``
    (path or frame); its figures are joined to ``summary_by_country``. ``prepared``: what
    :func:`cami_geo.status.pipeline.run_status_species_stage` returned for this species from
    the same clean data and settings, used instead of reading and deriving it again.
    Returns a small dict of what was written (cells, CRS, sizes).
    """
    import geopandas as gpd

    from ..workflow import registry_from_config
    from .pipeline import prepare_species

    t0 = time.perf_counter()
    settings = settings or {}
    st = settings.get("status", {}) or {}
    method = st.get("method", "iucn")
    cb._check_method(method)
    registry = registry_from_config(settings)
    if slug not in registry.species:
        raise InputError(f"Species {slug!r} (from the output path) is not in the registry.")
    sp = registry.species[slug]
    species = sp.scientific_name
    states = list(sp.range_states)
    if prepared is None or prepared.get("slug") != slug:
        prepared = prepare_species(clean_gpkg, boundaries_path, settings, registry, slug)
    countries, valid_rs = prepared["countries"], prepared["valid_rs"]
    pts, present, aoo_ok = prepared["pts"], prepared["present"], prepared["aoo_ok"]
    rng, thr, rows_of = prepared["rng"], prepared["thr"], prepared["rows_of"]
    rgeom, rsource = prepared["rgeom"], prepared["rsource"]
    parts_rs, parts, tbc = prepared["parts_rs"], prepared["parts"], prepared["tbc"]
    lon_all, lat_all = present["lon"].to_numpy(), present["lat"].to_numpy()
    cell_km = float(st.get("aoo_cell_km", 2))
    n_shifts = int(st.get("aoo_grid_shifts", 4))

    # the projection: the one criterion B uses for the species row
    if method == "conr":
        crs = cb.CONR_CRS
    elif len(present):
        crs = cb.laea_crs(*prepared["unique"])
    elif rgeom is not None:
        c = shapely.get_coordinates(rgeom)
        crs = cb.laea_crs(c[:, 0], c[:, 1])
    elif len(valid_rs):
        x0, y0, x1, y1 = valid_rs.total_bounds
        crs = cb.laea_crs(np.array([(x0 + x1) / 2]), np.array([(y0 + y1) / 2]))
    else:
        crs = cb.CONR_CRS

    grid = aoo_grid(lon_all[aoo_ok], lat_all[aoo_ok], method, cell_km, n_shifts=n_shifts, crs=crs)
    write_aoo_tif(grid, aoo_tif_out, species=species, slug=slug)
    write_threat_tif(thr, rgeom, crs, threat_tif_out, species=species, slug=slug)

    # GeoPackage
    rlayer = range_layer(rng, rgeom, rsource, valid_rs, registry, species, slug, _parts=parts_rs)
    cells = aoo_cells_layer(grid, species, slug)
    kw = dict(aoo_cell_km=cell_km, location_cell_km=st.get("location_cell_km", 10),
              subpopulation_radius_km=st.get("subpopulation_radius_km", 5), n_shifts=n_shifts)
    bc = _read_by_country(by_country)
    if bc is not None and len(bc) and "iso3" in bc:
        bc = bc.drop_duplicates("iso3", keep="last").set_index("iso3")
        extra = [c for c in bc.columns if c not in ("species", "species_slug", "country")]
    else:
        bc, extra = None, []
    # the by-country figures replace these columns: EOO and AOO per Range State only without them
    need_measures = not {"eoo_km2", "aoo_km2"} <= set(extra)
    p_present = pts["present"].to_numpy()
    p_year = pts["year"].to_numpy()
    present_iso3 = present["iso3"].to_numpy()
    rows = []
    for iso3 in states:
        idx = rows_of.get(iso3, np.empty(0, dtype="int64"))
        c_present = p_present[idx]
        eoo = aoo_v = np.nan
        if need_measures:
            sel = present_iso3 == iso3
            if sel.any():
                e = cb.measures(lon_all[sel], lat_all[sel], method, **kw,
                                aoo_points=cb.aoo_points_of(lon_all[sel], lat_all[sel], aoo_ok[sel]), counts=False)
                eoo, aoo_v = e.eoo_km2, e.aoo_km2
        years = p_year[idx]
        years = years[np.isfinite(years)]
        tb = tbc[tbc["iso3"] == iso3]
        rows.append({
            "species": species, "species_slug": slug, "iso3": iso3,
            "country": registry.states[iso3].name_en if iso3 in registry.states else iso3,
            "n_records": int(c_present.sum()), "n_absences": int((~c_present).sum()),
            "first_year": int(years.min()) if len(years) else pd.NA,
            "last_year": int(years.max()) if len(years) else pd.NA,
            "eoo_km2": eoo, "aoo_km2": aoo_v,
            "range_area_km2": parts.at[iso3, "range_area_km2"] if iso3 in parts.index else np.nan,
            "range_share": parts.at[iso3, "range_share"] if iso3 in parts.index else np.nan,
            "range_source": rsource, "n_threats": int(tb["n_features"].sum()),
            "n_complete_barriers": int(tb["n_complete_barriers"].sum()),
        })
    summary = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    if bc is not None:
        summary = summary.drop(columns=[c for c in extra if c in summary.columns]).join(bc[extra], on="iso3")
    for c in ("first_year", "last_year"):
        summary[c] = pd.to_numeric(summary[c], errors="coerce").astype("Int64")
    for c in summary.columns:
        if summary[c].dtype == object:
            summary[c] = summary[c].astype("string")
    geo = [countries.geometry.get(k) if k in countries.index else None for k in summary["iso3"]]
    summary = gpd.GeoDataFrame(summary, geometry=gpd.GeoSeries(_multi(geo), crs="EPSG:4326"))

    out = Path(gpkg_out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.stem + ".tmp.gpkg")
    if tmp.exists():
        tmp.unlink()
    try:
        with reproducible_gpkg():  # fixed timestamps: the same layers give the same bytes
            _write_layer(rlayer, tmp, "range", "MultiPolygon",
                         f"Range of {species} used by status ({rsource}), per Range State and season; "
                         "EPSG:4326; area_km2 on the WGS84 ellipsoid. RESTRICTED where the range is the "
                         "occurrence hull (its vertices are records).")
            _write_layer(cells, tmp, "aoo_cells", "Polygon",
                         f"Occupied {cell_km:g} km AOO cells of {species} ({method}); CRS {grid.crs}. {RESTRICTED_NOTE}")
            _write_layer(summary, tmp, "summary_by_country", "MultiPolygon",
                         f"By-country status figures of {species}; geometry: the Range State (EPSG:4326).")
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    log.info("%s: GIS layers written in %.2f s (%d AOO cells)", slug, time.perf_counter() - t0, grid.n_cells)
    return {"crs": grid.crs, "n_aoo_cells": grid.n_cells, "aoo_km2": grid.n_cells * cell_km * cell_km,
            "range_source": rsource, "n_threats": 0 if thr is None else len(thr)}


def run_status_layers_stage(inputs: dict[str, Any], outputs: dict[str, Any], params: dict[str, Any], *,
                            prepared: dict[str, Any] | None = None) -> None:
    """GIS layers of one species (run by the ``status_species`` job after its status, see
    :func:`cami_geo.status.pipeline.run_status_stage`): inputs ``clean``, ``boundaries`` (optional ``by_country``);
    outputs ``gpkg``, ``aoo_grid``, ``threat_density``; the species is the stem of
    ``outputs["gpkg"]``."""
    write_species_layers(inputs["clean"], inputs["boundaries"], params.get("settings") or {},
                         Path(str(outputs["gpkg"])).stem, gpkg_out=outputs["gpkg"],
                         aoo_tif_out=outputs["aoo_grid"], threat_tif_out=outputs["threat_density"],
                         by_country=inputs.get("by_country"), prepared=prepared)
