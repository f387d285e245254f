"""Interactive maps (folium pages; self-contained, offline,
embeddable) per species, per Range State and for the whole initiative, plus their static twins
(:mod:`cami_geo.render.static`).

Everything is built from the **public** (generalised) copy of the data and the status
tables. One :class:`MapContent` is assembled per map (layers with their symbology from
:mod:`cami_geo.render.symbology`, legend, texts); the interactive and the static renderer
draw that same content.

Safety and reproducibility:

- every piece of submission text goes through :func:`cami_geo.render.escape.escape_html`
  before it is put in a popup, tooltip or label; the JSON carrying it is made safe inside
  ``<script>`` as well;
- occurrence points are aggregated to grid cells no finer than each record's public grid
  (its ``sensitivity``), coarser when the map's cell layers together would have more than
  ``MAX_CELLS`` cells (:func:`shared_occurrence_cells`), so the page stays small for a million
  records; records without a public location (withheld) are
  shown only as presence per Range State;
- folium element ids are derived from the map's name (:func:`deterministic_ids`), so the
  same inputs give the same bytes;
- Leaflet is inlined from the pinned npm package (:mod:`cami_geo.render.assets`) and the
  basemap is a vector layer from the boundaries: the page makes no request.

Speed: occurrence cells and their popups are computed with numpy over integer cell keys;
occurrence fields a map does not show are not read; folium is imported only to write the page;
the page parts carrying data are put in as literal text, never compiled as templates
(:func:`literal_element`); a map stage runs without the cyclic garbage collector.
"""

from __future__ import annotations

import functools
import hashlib
from contextlib import contextmanager
import itertools
import json
import logging
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from shapely.geometry import box, mapping

from cami_geo.boundaries import load_configured
from cami_geo.errors import CamiGeoError, InputError
from cami_geo.model import CRS_WGS84, ORIGIN_CODES, SEASONAL_CODES
from cami_geo.render import symbology as sym
from cami_geo.render.cycles import no_cycle_collection
from cami_geo.workflow import registry_from_config
from cami_geo.render.escape import escape_html as esc

log = logging.getLogger("cami_geo.render.maps")

CAMI_WINDOW = (20.0, 5.0, 150.0, 62.0)
"""Longitude/latitude window (W, S, E, N) of the basemap: all CAMI Range States' CAMI parts
(Russia is cut at 150 deg E, which also keeps the antimeridian off the map)."""

FOCUS_WINDOW = (25.0, 20.0, 125.0, 56.0)
"""Where a map without data zooms at most: the CAMI parts of large Range States (Russia, China)."""

UN_DISCLAIMER = (
    "The designations employed and the presentation of material on this map do not imply the expression of "
    "any opinion whatsoever on the part of the Secretariat of the United Nations concerning the legal status "
    "of any country, territory, city or any area or of its authorities, or concerning the delimitation of its "
    "frontiers or boundaries.")
"""The UN formula CMS maps carry; used when the configuration gives no maps.disclaimer."""

MAX_CELLS = 20_000
"""Most occurrence markers on one map, all its cell layers together (:func:`shared_occurrence_cells`);
beyond this the grid is coarsened."""

DETAIL_RECORDS = 5_000
"""Popups list individual records (locality, recorder, date) only up to this many records."""

RECORDS_PER_POPUP = 5

COARSER_GRIDS = [(0.0, 0), (0.01, 2), (0.02, 2), (0.05, 2), (0.1, 1), (0.2, 1), (0.5, 1), (1.0, 0), (2.0, 0), (5.0, 0)]
"""(cell size in degrees, decimals) tried in turn until the cells number at most MAX_CELLS;
a record is never placed on a grid finer than its own sensitivity (0.0: its own grid)."""

SENSITIVITY_DECIMALS = {"exact": 4, "0.001deg": 3, "0.01deg": 2, "0.1deg": 1, "1deg": 0}
"""Decimal places kept for a point of each public sensitivity level (unknown: 2)."""

BASEMAP_TOLERANCE_DEG = 0.02
RANGE_TOLERANCE_DEG = 0.005
THREAT_TOLERANCE_DEG = 0.001


class MapError(CamiGeoError):
    """A map cannot be drawn from the given inputs."""


# --------------------------------------------------------------------------------------
# Content shared by the interactive and the static renderer


@dataclass
class LayerSpec:
    """One toggleable layer.

    ``kind`` is ``"features"`` (a GeoDataFrame in EPSG:4326 with style columns ``stroke``,
    ``fill``, ``fill_opacity``, ``weight``, ``dash``, ``radius`` and the HTML columns
    ``popup``/``tooltip``, already escaped) or ``"cells"`` (a DataFrame ``lat, lon, n,
    synthetic, popup`` of aggregated occurrences, with ``decimals`` kept per cell).
    """

    name: str
    kind: str
    data: Any
    show: bool = True
    fill: str = sym.OCCURRENCE
    stroke: str = "#ffffff"
    synthetic_fill: str = sym.OCCURRENCE_SYNTHETIC


@dataclass
class LegendSection:
    title: str
    entries: list[tuple[str, str, str, dict]]  # (label, colour, shape 'fill'|'line'|'point', extra style)


@dataclass
class MapContent:
    key: str
    title: str
    subtitle: str
    cycle: str
    basemap: gpd.GeoDataFrame
    focus: list[str]
    bounds: tuple[float, float, float, float]
    layers: list[LayerSpec]
    legend: list[LegendSection]
    notes: list[str]
    source: str
    attribution: str
    disclaimer: str
    synthetic: bool
    version: str = ""
    online_tiles: bool = False
    projection: str = ""


# --------------------------------------------------------------------------------------
# Reading inputs


def _empty_gdf(columns: Iterable[str] = ()) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({c: [] for c in columns}, geometry=gpd.GeoSeries([], crs=CRS_WGS84), crs=CRS_WGS84)


OCCURRENCE_MAP_COLUMNS = [
    "species_slug", "iso3", "synthetic", "sensitivity", "occurrence_status", "year", "event_date",
    "coordinate_uncertainty_m", "individual_count", "basis_of_record", "locality", "recorded_by",
    "data_generalizations", "information_withheld"]
"""The occurrence fields a map uses (the others are not read)."""


def _public_path(path: str | Path) -> Path:
    """``path``, once it is known to exist and not to be restricted data (else why not, raised)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"Public data {path} does not exist; run the combine stage first.")
    if "restricted" in path.parts:
        raise MapError(f"Maps read only the public copy of the data, not {path}.")
    return path


def _layer_names(path: Path) -> list[str]:
    return [str(n) for n in pyogrio.list_layers(path)[:, 0]]


def read_public_layer(path: str | Path, layer: str, columns: list[str] | None = None, *,
                      names: list[str] | None = None) -> gpd.GeoDataFrame:
    """One layer of a public GeoPackage in EPSG:4326; a missing or empty layer is an empty frame.
    With ``columns``, only those fields (of the ones the layer has) and the geometry are read;
    ``names``: the file's layer names, when the caller has listed them (:func:`read_map_layers`)."""
    path = _public_path(path)
    try:
        if names is None:
            names = _layer_names(path)
        if layer not in names:
            return _empty_gdf()
        kwargs = {}
        if columns is not None:
            fields = {str(f) for f in pyogrio.read_info(path, layer=layer)["fields"]}
            kwargs["columns"] = [c for c in columns if c in fields]
        try:  # Arrow reads a million records about 7 times faster
            gdf = pyogrio.read_dataframe(path, layer=layer, use_arrow=True, **kwargs)
        except Exception:
            gdf = pyogrio.read_dataframe(path, layer=layer, **kwargs)
    except Exception as exc:
        raise InputError(f"Public data {path} (layer {layer}) cannot be read: {exc}") from None
    if not isinstance(gdf, gpd.GeoDataFrame):
        gdf = gpd.GeoDataFrame(gdf, geometry=gpd.GeoSeries([None] * len(gdf), crs=CRS_WGS84), crs=CRS_WGS84)
    if gdf.crs is None:
        gdf = gdf.set_crs(CRS_WGS84)
    elif not gdf.crs.equals(CRS_WGS84):
        gdf = gdf.to_crs(CRS_WGS84)
    return gdf


def read_map_layers(path: str | Path) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """(occurrences with the fields a map uses, threats, range) of a public GeoPackage, its layers
    listed once for the three."""
    path = _public_path(path)
    try:
        names = _layer_names(path)
    except Exception:  # noqa: BLE001 - read_public_layer lists them again and says what is wrong
        names = None
    return (read_public_layer(path, "occurrences", OCCURRENCE_MAP_COLUMNS, names=names),
            read_public_layer(path, "threats", names=names), read_public_layer(path, "range", names=names))


def read_table(path: str | Path, what: str) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise InputError(f"The {what} table {path} does not exist; run the status stage first.")
    try:
        return pd.read_csv(path, dtype={"iso3": str, "species_slug": str}, keep_default_na=True)
    except Exception as exc:
        raise InputError(f"The {what} table {path} cannot be read: {exc}") from None


def _bool(series: pd.Series) -> pd.Series:
    if series.dtype == bool:
        return series
    return series.astype(str).str.strip().str.lower().isin(["true", "1", "yes", "y", "t"])


def _col(df: pd.DataFrame, name: str) -> pd.Series:
    return df[name] if name in df.columns else pd.Series([None] * len(df), index=df.index, dtype=object)


def _num(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def _fmt_int(value: Any) -> str:
    v = _num(value)
    return "" if v is None else f"{v:,.0f}"


def _text(value: Any) -> str:
    """A cell as plain text ('' for missing; whole floats without '.0')."""
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value.is_integer():
            return str(int(value))
    text = str(value)
    return "" if text in ("nan", "NaT", "None", "<NA>") else text


# --------------------------------------------------------------------------------------
# Geometry helpers


def _located(geoms: gpd.GeoSeries) -> np.ndarray:
    """True where a geometry is present and not empty (withheld records have none)."""
    values = np.asarray(geoms.values, dtype=object)
    return ~shapely.is_missing(values) & ~shapely.is_empty(values)


def _round_coords(obj: Any, decimals: int) -> Any:
    if isinstance(obj, (list, tuple)):
        if obj and isinstance(obj[0], (int, float)):
            return [_round_num(v, decimals) for v in obj]
        return [_round_coords(o, decimals) for o in obj]
    return obj


def _round_num(v: float, decimals: int) -> float | int:
    r = round(float(v), decimals)
    return int(r) if decimals == 0 else r


def _round_array(values: np.ndarray, decimals: int) -> list:
    """``[_round_num(v, decimals) for v in values]`` for a coordinate array, vectorised.

    ``rint(v * 10**d) / 10**d`` is the double nearest to the decimal ``round`` picks except
    where ``v * 10**d`` lies within rounding error of a half; those few are rounded by Python.
    """
    scale = 10.0 ** decimals
    scaled = values * scale
    out = np.rint(scaled)
    near = np.abs(np.abs(scaled - np.trunc(scaled)) - 0.5) < 1e-6
    if decimals == 0:
        if near.any():
            out[near] = [round(float(v)) for v in values[near]]
        return out.astype(np.int64).tolist()
    out /= scale
    if near.any():
        out[near] = [round(float(v), decimals) for v in values[near]]
    return out.tolist()


_RING_TYPES = {"Polygon", "MultiPolygon"}
_LINE_TYPES = {"LineString", "LinearRing", "MultiLineString"}


def _geojson_geometry(geom, decimals: int) -> dict | None:
    if geom is None or geom.is_empty:
        return None
    kind = geom.geom_type
    if kind in _RING_TYPES or kind in _LINE_TYPES or kind in ("Point", "MultiPoint"):
        parts = shapely.get_parts(geom)
        if not shapely.is_empty(parts).any():
            return {"type": "LineString" if kind == "LinearRing" else kind,
                    "coordinates": _coords_nested(geom, kind, parts, decimals)}
    g = mapping(geom)
    if g["type"] == "GeometryCollection":
        return {"type": "GeometryCollection",
                "geometries": [x for x in (_geojson_geometry(p, decimals) for p in geom.geoms) if x]}
    return {"type": g["type"], "coordinates": _round_coords(g["coordinates"], decimals)}


def _coords_nested(geom, kind: str, parts: np.ndarray, decimals: int) -> list:
    """The GeoJSON coordinate nesting of ``geom`` (as shapely's ``mapping``), rounded."""
    flat = _round_array(shapely.get_coordinates(geom, include_z=bool(shapely.has_z(geom))), decimals)
    if kind == "Point":
        return flat[0]
    if kind in ("LineString", "LinearRing", "MultiPoint"):
        return flat
    if kind == "MultiLineString":
        counts = shapely.get_num_coordinates(parts).tolist()
        return _split(flat, counts)
    rings = [shapely.get_rings(p) for p in parts]  # exterior, then interiors, as mapping() orders them
    counts = shapely.get_num_coordinates(np.concatenate(rings)).tolist()
    flat_rings = _split(flat, counts)
    if kind == "Polygon":
        return flat_rings
    out, i = [], 0
    for r in rings:
        out.append(flat_rings[i:i + len(r)])
        i += len(r)
    return out


def _split(items: list, counts: list[int]) -> list[list]:
    out, i = [], 0
    for c in counts:
        out.append(items[i:i + c])
        i += c
    return out


def prepare_basemap(boundaries: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Boundaries clipped to the CAMI window and simplified for a small page."""
    b = boundaries[["iso3", "name", "range_state", "geometry"]].copy()
    b["range_state"] = _bool(b["range_state"])
    window = box(*CAMI_WINDOW)
    b["geometry"] = shapely.intersection(b.geometry.values, window)
    b = b[_located(b.geometry)].copy()
    b["geometry"] = shapely.simplify(b.geometry.values, BASEMAP_TOLERANCE_DEG, preserve_topology=True)
    return gpd.GeoDataFrame(b, geometry="geometry", crs=CRS_WGS84)


MAP_CACHE_ENV = "CAMI_GEO_MAP_CACHE"
"""Environment variable naming the directory of the boundary cache (:func:`load_boundaries_and_basemap`);
empty turns the cache off. Default: ``cami-geo-<uid>/map-cache`` in the system's temporary directory."""


def _map_cache_dir() -> Path | None:
    """The boundary cache's folder (:func:`cami_geo.cachedir.cache_dir`), or None."""
    from ..cachedir import cache_dir

    return cache_dir("map-cache", MAP_CACHE_ENV)


def _map_cache_key(path: Path, settings: dict) -> str:
    """What the boundaries and the basemap are computed from: the boundary file's bytes, the
    boundaries settings, the code computing them (this module and cami_geo.boundaries) and the
    versions of the libraries doing the reading and the geometry."""
    import cami_geo
    import cami_geo.boundaries as cb

    h = hashlib.sha256()
    h.update(path.read_bytes())
    for src in (__file__, cb.__file__):
        h.update(Path(src).read_bytes())
    b = (settings or {}).get("boundaries") or {}
    h.update(repr((b.get("layer"), b.get("id_field", "iso3"), cami_geo.__version__, shapely.__version__,
                   shapely.geos_version_string, gpd.__version__, pd.__version__, np.__version__,
                   pyogrio.__version__, pyogrio.__gdal_version_string__)).encode())
    return h.hexdigest()


def load_boundaries_and_basemap(path: str | Path, settings: dict) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """``load_configured(path, settings)`` and its :func:`prepare_basemap`, computed once per
    boundary file: every map job draws the same basemap, and reading, repairing, clipping and
    simplifying the boundaries took about a tenth of a job's time. The pair is kept in a cache
    file (in :data:`MAP_CACHE_ENV`) named by :func:`_map_cache_key`, so a changed boundary file,
    setting or code gets a new one; the map rules still name the boundary file as their input.
    Any trouble with the cache means computing the pair as without it."""
    import pickle

    path = Path(path)
    folder = _map_cache_dir()
    target = None
    if folder is not None and path.is_file():
        try:
            target = folder / f"boundaries-{_map_cache_key(path, settings)}.pickle"
            with open(target, "rb") as f:
                boundaries, basemap = pickle.load(f)
            if isinstance(boundaries, gpd.GeoDataFrame) and isinstance(basemap, gpd.GeoDataFrame):
                return boundaries, basemap
        except FileNotFoundError:
            pass
        except Exception as exc:  # a damaged file: computed again and replaced
            log.warning("map cache %s not used: %s", target, exc)
    boundaries = load_configured(path, settings)
    basemap = prepare_basemap(boundaries)
    if target is not None:
        from ..cachedir import store

        try:
            store(target, pickle.dumps((boundaries, basemap), protocol=pickle.HIGHEST_PROTOCOL))
        except Exception as exc:
            log.warning("map cache %s not written: %s", target, exc)
    return boundaries, basemap


def _clamp(bounds: tuple | None, window: tuple) -> tuple | None:
    if bounds is None:
        return None
    w, s, e, n = bounds
    W, S, E, N = window
    w, s, e, n = max(w, W), max(s, S), min(e, E), min(n, N)
    return (w, s, e, n) if e > w and n > s else window


def _bounds_of(frames: Iterable[gpd.GeoDataFrame | None], fallback: tuple | None) -> tuple[float, float, float, float] | None:
    boxes = []
    for f in frames:
        if f is None or len(f) == 0:
            continue
        g = f.geometry[_located(f.geometry)]
        if len(g):
            boxes.append(g.total_bounds)
    if not boxes:
        return fallback
    arr = np.array(boxes)
    w, s, e, n = arr[:, 0].min(), arr[:, 1].min(), arr[:, 2].max(), arr[:, 3].max()
    W, S, E, N = CAMI_WINDOW
    w, s, e, n = max(w, W), max(s, S), min(e, E), min(n, N)
    if e <= w or n <= s:
        return fallback
    pad_x, pad_y = max(0.5, (e - w) * 0.05), max(0.5, (n - s) * 0.05)
    return (round(max(w - pad_x, W), 2), round(max(s - pad_y, S), 2),
            round(min(e + pad_x, E), 2), round(min(n + pad_y, N), 2))


# --------------------------------------------------------------------------------------
# Occurrences


def _decimals(sensitivity: pd.Series) -> np.ndarray:
    """Decimal places per record from its sensitivity (each distinct value is parsed once)."""
    codes, uniques = pd.factorize(sensitivity.astype(object), use_na_sentinel=False)
    per_value = (pd.Series(np.asarray(uniques, dtype=object), dtype=object).astype(str).str.strip().str.lower()
                 .map(SENSITIVITY_DECIMALS).fillna(2).astype(int).to_numpy())
    return per_value[codes] if len(codes) else np.zeros(0, dtype=int)


@dataclass
class RecordValues:
    """What :func:`occurrence_cells` reads of every record of a frame, as arrays: computed once
    (:func:`record_values`) for all the layers :func:`shared_occurrence_cells` aggregates (one per
    species on a Range State map, present and absent records on a species map)."""

    x: np.ndarray
    y: np.ndarray
    decimals: np.ndarray
    synthetic: np.ndarray
    year: np.ndarray
    uncertainty: np.ndarray


def record_values(occ: gpd.GeoDataFrame) -> RecordValues:
    pts = np.asarray(occ.geometry.values, dtype=object)
    return RecordValues(
        x=shapely.get_x(pts), y=shapely.get_y(pts), decimals=_decimals(_col(occ, "sensitivity")),
        synthetic=_bool(_col(occ, "synthetic")).to_numpy(dtype=bool),
        year=pd.to_numeric(_col(occ, "year"), errors="coerce").to_numpy(dtype=float),
        uncertainty=pd.to_numeric(_col(occ, "coordinate_uncertainty_m"), errors="coerce").to_numpy(dtype=float))


CELL_COLUMNS = ["lat", "lon", "decimals", "step", "n", "synthetic", "popup"]
"""The columns of a cell layer (:func:`occurrence_cells`)."""


def occurrence_cells(occ: gpd.GeoDataFrame, *, max_cells: int = MAX_CELLS,
                     detail_records: int = DETAIL_RECORDS, rows: np.ndarray | None = None,
                     located: np.ndarray | None = None) -> pd.DataFrame:
    """Aggregate located occurrence records to grid cells no finer than their public grid.

    Returns a frame ``lat, lon, decimals, step, n, synthetic, popup``: ``lat, lon`` are the
    south-west corner of the cell (``decimals`` places, never more than the grid's), ``step``
    its size in degrees (markers are drawn at the centre, corner + step/2), popup HTML already
    escaped; sorted by latitude and longitude. A record's cell is that of its sensitivity
    (0.1deg -> 0.1 deg cells); when that gives more than ``max_cells`` cells the grid is
    coarsened (COARSER_GRIDS) until it does not. ``rows`` (a boolean mask over ``occ``) limits
    the records used without copying the frame; ``located`` is ``_located(occ.geometry)`` when the
    caller has it already. Several layers of one map share the map's MAX_CELLS through
    :func:`shared_occurrence_cells`.

    Vectorised: a cell is identified by an integer key (grid level, row, column) computed
    with numpy; aggregates come from ``bincount``/grouped reductions over that key and the
    popups are built per cell from plain Python lists, never with a per-group pandas loop.
    """
    if occ is None or len(occ) == 0:
        return pd.DataFrame(columns=CELL_COLUMNS)
    values = record_values(occ)
    pos = _cell_records(occ, rows, located, values)
    return _cells_on_grid(occ, values, pos, _grids(values, pos), max_cells, detail_records)


def _cell_records(occ: gpd.GeoDataFrame, rows: np.ndarray | None, located: np.ndarray | None,
                  values: RecordValues) -> np.ndarray:
    """Positions in ``occ`` of the records that go into cells: located, with finite
    coordinates, and among ``rows`` (a boolean mask; None: all)."""
    use = _located(occ.geometry) if located is None else located.copy()
    if rows is not None:
        use &= np.asarray(rows, dtype=bool)
    pos = np.flatnonzero(use)
    finite = np.isfinite(values.x[pos]) & np.isfinite(values.y[pos])
    return pos if finite.all() else pos[finite]  # a point without usable coordinates belongs to no cell


def _grids(values: RecordValues, pos: np.ndarray):
    """The records ``pos`` placed on each grid of COARSER_GRIDS in turn, finest (each record's
    own grid) first: ``(step, decimals, row, column, cell code per record, cell keys)``, step in
    degrees. A generator: a grid is computed only when the one before has too many cells."""
    x, y = values.x[pos], values.y[pos]
    own_d = values.decimals[pos]
    own_step = 10.0 ** -own_d
    for level_step, level_dec in COARSER_GRIDS:
        coarser = own_step < level_step - 1e-12
        step = np.where(coarser, level_step, own_step)
        d = np.where(coarser, level_dec, own_d)
        # the cell's south-west corner: public points sit at cell centres (x.x5 on a 0.1 deg grid) or
        # on the grid itself, and either way the corner has no more decimals than the grid
        iy = np.floor(y / step + 1e-6)
        ix = np.floor(x / step + 1e-6)
        codes, uniques = pd.factorize(_cell_key(step, iy, ix))
        yield step, d, iy, ix, codes, uniques


def shared_occurrence_cells(occ: gpd.GeoDataFrame, layers: list[np.ndarray], *, located: np.ndarray | None = None,
                            max_cells: int | None = None) -> list[pd.DataFrame]:
    """:func:`occurrence_cells` of each layer's records (``layers``: boolean masks over ``occ``),
    all layers of a map together at most ``max_cells`` (default MAX_CELLS) cells, shared by
    water-filling: layers are served from the fewest cells on their own grids up, each getting
    an equal part of what is left; a layer whose cells fit its part keeps its own grid (and
    leaves the rest to the others), a larger one is coarsened to fit its part. Only when even
    the coarsest grid (COARSER_GRIDS) has more cells than a layer's part can the map exceed
    the cap."""
    max_cells = MAX_CELLS if max_cells is None else max_cells
    if occ is None or len(occ) == 0:
        return [pd.DataFrame(columns=CELL_COLUMNS) for _ in layers]
    values = record_values(occ)
    located = _located(occ.geometry) if located is None else located
    positions = [_cell_records(occ, rows, located, values) for rows in layers]
    grids = [_grids(values, pos) for pos in positions]
    finest = [next(g) if len(pos) else None for g, pos in zip(grids, positions)]
    demand = [0 if f is None else len(f[5]) for f in finest]
    out = [pd.DataFrame(columns=CELL_COLUMNS) for _ in layers]
    left = max_cells
    waiting = sorted((i for i in range(len(layers)) if demand[i]), key=lambda i: (demand[i], i))
    for k, i in enumerate(waiting):
        part = left // (len(waiting) - k)
        out[i] = _cells_on_grid(occ, values, positions[i], itertools.chain([finest[i]], grids[i]), part,
                                DETAIL_RECORDS)
        left = max(0, left - len(out[i]))
    return out


def _cells_on_grid(occ: gpd.GeoDataFrame, values: RecordValues, pos: np.ndarray, grids, max_cells: int,
                   detail_records: int) -> pd.DataFrame:
    """The cells (:func:`occurrence_cells`) of the records ``pos`` on the first of ``grids``
    (:func:`_grids`) with at most ``max_cells`` cells, else on the last."""
    if len(pos) == 0:
        return pd.DataFrame(columns=CELL_COLUMNS)
    for step, d, iy, ix, codes, uniques in grids:
        if len(uniques) <= max_cells:
            break
    n_cells = len(uniques)
    # one representative (the first) record per cell gives the cell's corner, grid and decimals
    first = _first_index(codes)
    c_step, c_d = step[first], d[first]
    c_lat = _round_each(iy[first] * c_step, c_d)
    c_lon = _round_each(ix[first] * c_step, c_d)
    n = np.bincount(codes, minlength=n_cells).astype(np.int64)
    n_syn = np.bincount(codes, weights=values.synthetic[pos], minlength=n_cells).astype(np.int64)
    by_cell = pd.DataFrame({"year": values.year[pos], "unc": values.uncertainty[pos]}).groupby(codes, sort=True)
    y_min = by_cell["year"].min().to_numpy()
    y_max = by_cell["year"].max().to_numpy()
    u_max = by_cell["unc"].max().to_numpy()
    # same order as before: by latitude, longitude, decimals, grid
    order = np.lexsort((c_step, c_d, c_lon, c_lat))
    details: list[list[str]] | None = None
    if len(codes) <= detail_records:
        details = _detail_lines(occ, codes, n_cells, pos)
    c_lat, c_lon, c_d, c_step, n, n_syn = c_lat[order], c_lon[order], c_d[order], c_step[order], n[order], n_syn[order]
    lines = [details[i] for i in order.tolist()] if details is not None else None
    popups = _cell_popups(c_lat, c_lon, c_d, c_step, n, n_syn, y_min[order], y_max[order], u_max[order], lines)
    return pd.DataFrame({"lat": c_lat, "lon": c_lon, "decimals": c_d.astype(np.int64), "step": c_step,
                         "n": n.astype(np.int64), "synthetic": n_syn > 0, "popup": popups}, columns=CELL_COLUMNS)


def _cell_key(step: np.ndarray, iy: np.ndarray, ix: np.ndarray) -> np.ndarray:
    """One key per record naming its cell (grid size, row, column): an int64 packing the three
    (rows and columns of lon/lat points fit even on the finest, 0.0001 deg, grid), else tuples."""
    _, step_idx = np.unique(step, return_inverse=True)
    if len(iy) and (np.abs(iy).max() >= 1_900_000 or np.abs(ix).max() >= 3_900_000):
        return pd.Series(list(zip(step_idx.tolist(), iy.tolist(), ix.tolist())), dtype=object).to_numpy()
    return ((step_idx.astype(np.int64) * 4_000_000 + (iy.astype(np.int64) + 2_000_000)) * 8_000_000
            + (ix.astype(np.int64) + 4_000_000))


def _first_index(codes: np.ndarray) -> np.ndarray:
    """Index of the first record of each cell (codes from pd.factorize: numbered in order of first
    appearance, so a record opens a new cell where its code exceeds every code before it)."""
    if len(codes) == 0:
        return np.zeros(0, dtype=np.int64)
    seen = np.maximum.accumulate(codes)
    return np.flatnonzero(np.r_[True, codes[1:] > seen[:-1]])


def _detail_lines(occ: gpd.GeoDataFrame, codes: np.ndarray, n_cells: int,
                  pos: np.ndarray | None = None) -> list[list[str]]:
    """The popup lines of the first RECORDS_PER_POPUP records (in input order) of every cell
    (``codes``: the cell of each record used, ``pos``: their rows in ``occ``, None for all)."""
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_codes)) + 1]
    rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    keep = order[rank < RECORDS_PER_POPUP]
    keep_codes = codes[keep]
    at = keep if pos is None else pos[keep]

    def texts(name: str) -> list[str]:
        return _col(occ, name).iloc[at].map(_text).tolist()

    date, year, locality, recorded_by, count, basis = (
        texts("event_date"), texts("year"), texts("locality"), texts("recorded_by"),
        texts("individual_count"), texts("basis_of_record"))
    gen = _col(occ, "data_generalizations").iloc[at].astype(object).map(_text).tolist()
    out: list[list[str]] = [[] for _ in range(n_cells)]
    for c, line in zip(keep_codes.tolist(), map(_record_line, date, year, locality, recorded_by, count, basis, gen)):
        out[c].append(line)
    return out


def _round_each(values: np.ndarray, decimals: np.ndarray) -> np.ndarray:
    out = values.copy()
    for d in np.unique(decimals):
        sel = decimals == d
        out[sel] = np.round(values[sel], int(d))
    return out


def _record_line(date: str, year: str, locality: str, recorded_by: str, count: str, basis: str, gen: str) -> str:
    when = date or year
    parts = [f"<b>{esc(when)}</b>"] if when else []
    if locality:
        parts.append(f"Locality: {esc(locality)}")
    if recorded_by:
        parts.append(f"Recorded by: {esc(recorded_by)}")
    if count:
        parts.append(f"Individuals: {esc(count)}")
    if basis:
        parts.append(esc(basis))
    if gen:
        parts.append(f"<i>{esc(gen)}</i>")
    return "<li>" + "<br>".join(parts) + "</li>"


def _cell_popups(lat: np.ndarray, lon: np.ndarray, dec: np.ndarray, step: np.ndarray, n: np.ndarray,
                 n_syn: np.ndarray, y0: np.ndarray, y1: np.ndarray, unc: np.ndarray,
                 lines: list[list[str]] | None) -> list[str]:
    """The popup of every cell: record count, cell extent, synthetic records, years, coordinate
    uncertainty and the first records' lines. Number formats are prepared once per grid and the
    repeated parts (counts, years, uncertainty) formatted once per distinct value."""
    count = len(lat)
    where = [""] * count
    for d, s in sorted(set(zip(dec.tolist(), step.tolist()))):
        at = np.flatnonzero((dec == d) & (step == s))
        head = f" in this {s:g}&deg; cell<br>Latitude "
        la, lo = lat[at], lon[at]
        for i, a, b, c, e in zip(at.tolist(), _fixed_texts(la, d), _fixed_texts(_round_floats(la + s, d), d),
                                 _fixed_texts(lo, d), _fixed_texts(_round_floats(lo + s, d), d)):
            where[i] = f"{head}{a}&ndash;{b}&deg;, longitude {c}&ndash;{e}&deg;"
    counts: dict[int, str] = {}
    extras: dict[tuple, str] = {}
    out = []
    for i, (k, ks, a, b, u) in enumerate(zip(n.tolist(), n_syn.tolist(), y0.tolist(), y1.tolist(), unc.tolist())):
        text = counts.get(k)
        if text is None:
            text = counts[k] = f"<b>{k:,} record{'s' if k != 1 else ''}</b>"
        key = (ks, a, b, u)
        extra = extras.get(key)
        if extra is None:
            parts = []
            if ks:
                parts.append(f"<span class=\"cami-syn\">{ks:,} synthetic (demo)</span>")
            if a == a:  # not NaN
                parts.append(f"Years: {int(a)}" + (f"&ndash;{int(b)}" if b == b and b != a else ""))
            if u == u:
                parts.append(f"Coordinate uncertainty up to {u / 1000:,.1f} km")
            extra = extras[key] = "".join("<br>" + p for p in parts)
        html = text + where[i] + extra
        if lines is not None and lines[i]:
            html += "<ul class=\"cami-rec\">" + "".join(lines[i]) + "</ul>"
            if k > len(lines[i]):
                html += f"&hellip; and {k - len(lines[i]):,} more"
        out.append(html)
    return out


def _fixed_texts(values: np.ndarray, decimals: int) -> list[str]:
    """``[f"{v:.{decimals}f}" for v in values]`` with each distinct value formatted once (cells of
    one grid share their rows' latitudes and their columns' longitudes). Values are told apart by
    their bits: 0.0 and -0.0 are two values, with two texts."""
    bits = np.ascontiguousarray(values, dtype=np.float64).view(np.int64)
    distinct, which = np.unique(bits, return_inverse=True)
    fmt = f"{{:.{decimals}f}}".format
    return np.array([fmt(v) for v in distinct.view(np.float64).tolist()], dtype=object)[which].tolist()


def _round_floats(values: np.ndarray, decimals: int) -> np.ndarray:
    """``round(v, decimals)`` of each value, as floats (see :func:`_round_array`)."""
    scale = 10.0 ** decimals
    scaled = values * scale
    out = np.rint(scaled) / scale
    near = np.abs(np.abs(scaled - np.trunc(scaled)) - 0.5) < 1e-6
    if near.any():
        out[near] = [round(float(v), decimals) for v in values[near]]
    return out


def _texts(values: pd.Series) -> pd.Series:
    """``values.map(_text)``; for a text column each distinct value is converted once."""
    if not isinstance(values.dtype, pd.StringDtype) or len(values) < 1000:
        return values.map(_text)
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    texts = np.array([_text(u) for u in uniques] or [""], dtype=object)
    return pd.Series(texts[codes], index=values.index, dtype=object)


def _absent(occ: gpd.GeoDataFrame) -> np.ndarray:
    """True for absence records (occurrence_status 'absent')."""
    if occ is None or len(occ) == 0 or "occurrence_status" not in occ.columns:
        return np.zeros(0 if occ is None else len(occ), dtype=bool)
    return occ["occurrence_status"].astype(str).str.lower().eq("absent").to_numpy(dtype=bool)


def _withheld_by_country(occ: gpd.GeoDataFrame, rows: np.ndarray | None = None,
                         located: np.ndarray | None = None) -> pd.DataFrame:
    if occ is None or len(occ) == 0:
        return pd.DataFrame(columns=["iso3", "n", "note"])
    unlocated = ~(_located(occ.geometry) if located is None else located)
    if rows is not None:
        unlocated &= np.asarray(rows, dtype=bool)
    if not unlocated.any():
        return pd.DataFrame(columns=["iso3", "n", "note"])
    # only the three fields used, and of those only the unlocated records (called once per species on
    # a Range State map: copying the whole columns each time cost more than the rest)
    at = np.flatnonzero(unlocated)
    w = pd.DataFrame({c: occ[c].iloc[at] for c in ("iso3", "information_withheld", "data_generalizations")
                      if c in occ.columns}, index=occ.index[at])
    iso = _texts(_col(w, "iso3"))
    note = _texts(_col(w, "information_withheld")).where(lambda s: s != "", _texts(_col(w, "data_generalizations")))
    frame = pd.DataFrame({"iso3": iso.to_numpy(), "note": note.to_numpy()})
    frame = frame[frame["iso3"] != ""]
    # per Range State: its number of records and its first three distinct notes in sorted order
    notes = frame[frame["note"] != ""].drop_duplicates().sort_values(["iso3", "note"])
    first = notes.groupby("iso3", sort=True)["note"].agg(lambda s: "; ".join(s.iloc[:3]))
    counts = frame.groupby("iso3", sort=True).size()
    return pd.DataFrame({"iso3": counts.index.to_numpy(dtype=object), "n": counts.to_numpy(),
                         "note": first.reindex(counts.index, fill_value="").to_numpy(dtype=object)})


def _any_synthetic(*frames: pd.DataFrame) -> bool:
    for f in frames:
        if f is not None and len(f) and "synthetic" in f.columns and _bool(f["synthetic"]).any():
            return True
    return False


# --------------------------------------------------------------------------------------
# Feature layers with their style columns


def range_layer(rng: gpd.GeoDataFrame, *, colour: str | None = None) -> gpd.GeoDataFrame | None:
    """Range polygons styled by presence and season (or one colour per species)."""
    if rng is None or len(rng) == 0:
        return None
    rng = rng[_located(rng.geometry)]
    if len(rng) == 0:
        return None
    geoms = shapely.simplify(rng.geometry.values, RANGE_TOLERANCE_DEG, preserve_topology=True)
    styles = [sym.range_style(p, s) for p, s in zip(_col(rng, "presence"), _col(rng, "seasonal"))]
    popups, tips = [], []
    synthetic = _bool(_col(rng, "synthetic")).to_numpy(dtype=bool)
    for row, is_synthetic in zip(rng.itertuples(index=False), synthetic):
        label = sym.range_label(getattr(row, "presence", None), getattr(row, "seasonal", None))
        name = _text(getattr(row, "name", ""))
        parts = [f"<b>Range</b>: {esc(label)}"]
        if name:
            parts.append(f"Name: {esc(name)}")
        sp = _text(getattr(row, "species", ""))
        if sp:
            parts.append(f"Species: <i>{esc(sp)}</i>")
        origin = _num(getattr(row, "origin", None))
        if origin is not None:
            parts.append(f"Origin: {esc(ORIGIN_CODES.get(int(origin), ''))}")
        iso = _text(getattr(row, "iso3", ""))
        if iso:
            parts.append(f"Range State: {esc(iso)}")
        if is_synthetic:
            parts.append("<span class=\"cami-syn\">synthetic (demo)</span>")
        popups.append("<br>".join(parts))
        tips.append(esc(name or label))
    return gpd.GeoDataFrame({
        "stroke": [colour or s.colour for s in styles],
        "fill": [colour or s.colour for s in styles],
        "fill_opacity": [s.fill_opacity for s in styles],
        "weight": [1.5] * len(styles),
        "dash": [s.dash for s in styles],
        "radius": [0.0] * len(styles),
        "popup": popups, "tooltip": tips,
        "label": [sym.range_label(p, s) for p, s in zip(_col(rng, "presence"), _col(rng, "seasonal"))],
    }, geometry=geoms, crs=CRS_WGS84)


def threat_layer(thr: gpd.GeoDataFrame) -> gpd.GeoDataFrame | None:
    """Threat features coloured by IUCN first-level category; barrier class in the popup."""
    if thr is None or len(thr) == 0:
        return None
    thr = thr[_located(thr.geometry)]
    if len(thr) == 0:
        return None
    geoms = thr.geometry.values
    kinds = shapely.get_type_id(geoms)
    simple = shapely.simplify(geoms, THREAT_TOLERANCE_DEG, preserve_topology=True)
    geoms = np.where(np.isin(kinds, [0, 4]), geoms, simple)
    rows = []
    synthetic = _bool(_col(thr, "synthetic")).to_numpy(dtype=bool)
    for row, kind, is_synthetic in zip(thr.itertuples(index=False), kinds, synthetic):
        code = _text(getattr(row, "iucn_code", ""))
        key, label, colour = sym.threat_category(code)
        name = _text(getattr(row, "iucn_name", ""))
        barrier = _text(getattr(row, "barrier_class", ""))
        parts = [f"<b>{esc(code)} {esc(name)}</b>".replace("<b> ", "<b>")]
        parts.append(f"Category: {esc(label)}")
        for title, attr in (("Type", "threat_type"), ("Name", "name"), ("Date", "event_date"),
                            ("Severity", "severity"), ("Range State", "iso3")):
            v = _text(getattr(row, attr, ""))
            if v:
                parts.append(f"{title}: {esc(v)}")
        if barrier:
            parts.append(f"Barrier class: <b>{esc(barrier)}</b>")
        if is_synthetic:
            parts.append("<span class=\"cami-syn\">synthetic (demo)</span>")
        is_line = kind in (1, 2, 5)
        is_point = kind in (0, 4)
        rows.append({
            "stroke": colour, "fill": colour,
            "fill_opacity": 0.9 if is_point else (0.0 if is_line else 0.3),
            "weight": sym.barrier_width(barrier) if is_line else 1.0,
            "dash": None, "radius": 5.0 if is_point else 0.0,
            "popup": "<br>".join(parts), "tooltip": esc(_text(getattr(row, "name", "")) or label),
            "label": label,
        })
    return gpd.GeoDataFrame(rows, geometry=list(geoms), crs=CRS_WGS84)


def _country_popup(iso3: str, name: str, rows: pd.DataFrame) -> str:
    parts = [f"<b>{esc(name)}</b> ({esc(iso3)})"]
    if rows is None or len(rows) == 0:
        parts.append("No status row for this cycle.")
        return "<br>".join(parts)
    r = rows.iloc[0]
    best = _num(r.get("population_best"))
    if best is not None:
        interval = ""
        lo, hi = _num(r.get("population_min")), _num(r.get("population_max"))
        if lo is not None or hi is not None:
            interval = f" ({_fmt_int(lo) or '?'}&ndash;{_fmt_int(hi) or '?'})"
        unit = _text(r.get("population_unit")) or "individuals"
        year = _text(r.get("population_year"))
        parts.append(f"Latest estimate: <b>{esc(_fmt_int(best))}</b>{interval} {esc(unit)}"
                     + (f", {esc(year)}" if year else ""))
        for title, col in (("Method", "population_method"), ("Source", "population_source")):
            v = _text(r.get(col))
            if v:
                parts.append(f"{title}: {esc(v)}")
    else:
        parts.append("Latest estimate: none reported")
    for title, col in (("Trend", "trend"), ("Records", "n_records"), ("Years", None),
                       ("EOO (km&sup2;)", "eoo_km2"), ("AOO (km&sup2;)", "aoo_km2"), ("Threat features", "n_threats"),
                       ("Main threats", "main_threats")):
        if col is None:
            y0, y1 = _text(r.get("first_year")), _text(r.get("last_year"))
            if y0:
                parts.append(f"Years: {esc(y0)}" + (f"&ndash;{esc(y1)}" if y1 and y1 != y0 else ""))
            continue
        v = r.get(col)
        if col in ("eoo_km2", "aoo_km2", "n_records", "n_threats"):
            v = _fmt_int(v)
        v = _text(v)
        if v:
            parts.append(f"{title}: {esc(v)}")
    gap = _text(r.get("data_gap")).lower()
    if gap in ("true", "1", "yes"):
        parts.append("<b>Data gap</b>: no data in this cycle")
    if (_num(r.get("synthetic_records")) or 0) > 0:
        parts.append("<span class=\"cami-syn\">includes synthetic (demo) records</span>")
    return "<br>".join(parts)


def _country_rows(df: pd.DataFrame, iso3: str) -> pd.DataFrame:
    if df is None or len(df) == 0 or "iso3" not in df.columns:
        return pd.DataFrame()
    return df[df["iso3"].astype(str) == iso3]


# --------------------------------------------------------------------------------------
# Content builders


def _settings_texts(settings: dict, version: str) -> dict:
    maps = settings.get("maps") or {}
    return {
        "cycle": _text(settings.get("cycle")),
        "attribution": str(maps.get("attribution") or "Boundaries: Natural Earth (public domain)."),
        "disclaimer": str(maps.get("disclaimer") or UN_DISCLAIMER),
        "online_tiles": bool(maps.get("online_tiles", False)),
        "version": version,
    }


def _source_line(cycle: str, version: str) -> str:
    return (f"Source: CAMI Species Focal Point submissions (public, generalised copy) and status tables, "
            f"reporting cycle {cycle}. Map: cami-geo {version}.".replace(" .", "."))


def _grid_note(cells: pd.DataFrame) -> str | None:
    if cells is None or len(cells) == 0:
        return None
    grid = f"{float(cells['step'].min()):g}"
    return f"Occurrence locations are aggregated to cells of {grid}&deg; or coarser (public, generalised copy)."


def _withheld_layer(withheld: pd.DataFrame, basemap: gpd.GeoDataFrame, colour: str = sym.WITHHELD,
                    label: str | None = None) -> gpd.GeoDataFrame | None:
    if withheld is None or len(withheld) == 0:
        return None
    b = basemap.set_index("iso3")
    rows, geoms = [], []
    for r in withheld.itertuples(index=False):
        if r.iso3 not in b.index:
            continue
        name = _text(b.loc[r.iso3, "name"])
        note = f"<br>{esc(r.note)}" if r.note else ""
        rows.append({"stroke": colour, "fill": colour, "fill_opacity": 0.15, "weight": 2.0, "dash": "4 4",
                     "radius": 0.0,
                     "popup": f"<b>{esc(name)}</b>: {int(r.n):,} record{'s' if r.n != 1 else ''}"
                              f"{' of ' + esc(label) if label else ''}, locations withheld{note}",
                     "tooltip": f"{esc(name)}: locations withheld", "label": "Recorded, locations withheld"})
        geoms.append(b.loc[r.iso3, "geometry"])
    if not rows:
        return None
    return gpd.GeoDataFrame(rows, geometry=geoms, crs=CRS_WGS84)


def build_species_content(public: str, by_country: pd.DataFrame, by_species: pd.DataFrame,
                          boundaries: gpd.GeoDataFrame, settings: dict, version: str, slug: str, *,
                          basemap: gpd.GeoDataFrame | None = None) -> MapContent:
    """Everything a species map shows, from the public species GeoPackage and the status tables."""
    reg = registry_from_config(settings)
    sp = reg.species.get(slug)
    texts = _settings_texts(settings, version)
    occ, thr, rng = read_map_layers(public)
    basemap = prepare_basemap(boundaries) if basemap is None else basemap

    sci = sp.scientific_name if sp else slug.replace("_", " ").capitalize()
    common = sp.common_name if sp else ""
    rows = by_country[by_country["species_slug"].astype(str) == slug] if "species_slug" in by_country.columns else by_country.iloc[0:0]
    states = list(dict.fromkeys(list(sp.range_states if sp else []) + sorted(rows["iso3"].dropna().astype(str))))
    states = [s for s in states if s in set(basemap["iso3"])]

    layers: list[LayerSpec] = []
    legend: list[LegendSection] = []
    notes: list[str] = []

    # Choropleth of the latest estimate
    if states:
        chor = basemap[basemap["iso3"].isin(states)]
        data = []
        for r in chor.itertuples(index=False):
            crow = _country_rows(rows, r.iso3)
            label, colour = sym.population_class(crow["population_best"].iloc[0] if len(crow) and "population_best" in crow else None)
            data.append({"stroke": "#636363", "fill": colour, "fill_opacity": 0.7, "weight": 1.0, "dash": None,
                         "radius": 0.0, "popup": _country_popup(r.iso3, r.name, crow),
                         "tooltip": esc(r.name), "label": label})
        layers.append(LayerSpec("Latest population estimate by Range State", "features",
                                gpd.GeoDataFrame(data, geometry=list(chor.geometry), crs=CRS_WGS84)))
        units = sorted({_text(u) for u in _col(rows, "population_unit") if _text(u)}) or ["individuals"]
        legend.append(LegendSection(f"Latest estimate ({esc(', '.join(units))})",
                                    [(lab, c, "fill", {}) for lab, c in sym.population_legend()]))

    rl = range_layer(rng)
    if rl is not None:
        layers.append(LayerSpec("Range (presence, season)", "features", rl))
        present = set(rl["label"])
        entries = []
        for s, c in sym.SEASONAL_COLOURS.items():
            if any(lab.startswith(SEASONAL_CODES[s]) for lab in present):
                entries.append((f"{SEASONAL_CODES[s]}", c, "fill", {}))
        entries += [(lab, c, "fill", {"dash": d, "opacity": o}) for lab, c, o, d in sym.range_legend()[5:]]
        legend.append(LegendSection("Range", entries))

    tl = threat_layer(thr)
    if tl is not None:
        layers.append(LayerSpec("Threats by IUCN category", "features", tl))
        cats = sorted(set(tl["label"]), key=lambda x: (len(x.split(" ")[0]), x))
        legend.append(LegendSection("Threats (IUCN 3.3)", [(esc(lab), sym.threat_category(lab.split(" ")[0])[2], "line", {})
                                                           for lab in cats]))

    absent = _absent(occ)
    occ_located = _located(occ.geometry)
    cells, acells = shared_occurrence_cells(occ, [~absent, absent], located=occ_located)
    if len(cells):
        layers.append(LayerSpec("Occurrence records (aggregated)", "cells", cells))
        notes.append(_grid_note(cells))
    if len(acells):
        layers.append(LayerSpec("Absence records (surveyed, not found)", "cells", acells, fill="#ffffff",
                                stroke=sym.ABSENCE, synthetic_fill="#ffffff"))
    wl = _withheld_layer(_withheld_by_country(occ, located=occ_located), basemap)
    if wl is not None:
        layers.append(LayerSpec("Recorded in Range State, locations withheld", "features", wl))
    occ_entries = []
    if len(cells):
        occ_entries.append(("Occurrence cell (size: number of records)", sym.OCCURRENCE, "point", {}))
        if cells["synthetic"].any():
            occ_entries.append(("Cell with synthetic demo records", sym.OCCURRENCE_SYNTHETIC, "point", {}))
    if len(acells):
        occ_entries.append(("Absence (surveyed, not found)", sym.ABSENCE, "point", {"hollow": True}))
    if wl is not None:
        occ_entries.append(("Recorded, locations withheld", sym.WITHHELD, "fill", {"dash": "4 4", "opacity": 0.15}))
    if occ_entries:
        legend.append(LegendSection("Records", occ_entries))
    if not len(occ) and rl is None and tl is None:
        notes.append("No occurrence, range or threat data in the public copy for this cycle.")

    synthetic = _any_synthetic(occ, thr, rng) or (len(rows) and (pd.to_numeric(_col(rows, "synthetic_records"), errors="coerce").fillna(0) > 0).any())
    # Zoom to the data (and Range States with withheld records); without data, to the Range States.
    data_frames = [rng, thr, occ, wl]
    bounds = _bounds_of(data_frames, None) or _clamp(
        _bounds_of([basemap[basemap["iso3"].isin(states)]], FOCUS_WINDOW), FOCUS_WINDOW)
    return MapContent(
        key=f"species:{slug}", title=sci, subtitle=common, cycle=texts["cycle"], basemap=basemap,
        focus=states, bounds=bounds, layers=layers, legend=legend, notes=[n for n in notes if n],
        source=_source_line(texts["cycle"], version), attribution=texts["attribution"],
        disclaimer=texts["disclaimer"], synthetic=bool(synthetic), version=version,
        online_tiles=texts["online_tiles"])


def build_country_content(public: str, by_country: pd.DataFrame, boundaries: gpd.GeoDataFrame,
                          settings: dict, version: str, iso3: str, *,
                          basemap: gpd.GeoDataFrame | None = None) -> MapContent:
    """Every CAMI species recorded or listed in one Range State."""
    reg = registry_from_config(settings)
    texts = _settings_texts(settings, version)
    basemap = prepare_basemap(boundaries) if basemap is None else basemap
    if iso3 not in set(boundaries["iso3"]):
        raise MapError(f"Range State {iso3} is not in the boundary layer; check boundaries.path and id_field.")
    country_name = _text(boundaries.loc[boundaries["iso3"] == iso3, "name"].iloc[0])
    country_geom = boundaries.loc[boundaries["iso3"] == iso3, "geometry"].iloc[0]

    def in_country(gdf: gpd.GeoDataFrame, use_geometry: bool) -> gpd.GeoDataFrame:
        if len(gdf) == 0:
            return gdf
        mask = _col(gdf, "iso3").astype(str).eq(iso3).to_numpy()
        if use_geometry:
            g = gdf.geometry
            ok = _located(g)
            inter = np.zeros(len(gdf), dtype=bool)
            inter[ok] = shapely.intersects(g[ok].values, country_geom)
            mask = mask | inter
        return gdf if mask.all() else gdf[mask]

    occ, thr, rng = read_map_layers(public)
    occ, thr, rng = in_country(occ, False), in_country(thr, True), in_country(rng, True)
    if len(rng):
        rng = rng.copy()
        rng["geometry"] = shapely.intersection(rng.geometry.values, shapely.buffer(country_geom, 0.0))
        rng = rng[~rng.geometry.is_empty]
    rows = _country_rows(by_country, iso3)

    slugs = set(reg.species_in(iso3))
    for f in (occ, thr, rng, rows):
        slugs |= {s for s in map(_text, pd.unique(_col(f, "species_slug").astype(object))) if s}

    def sort_key(s):
        return reg.species[s].scientific_name if s in reg.species else s

    species = sorted(slugs, key=sort_key)
    occ_slug = _col(occ, "species_slug").astype(str).to_numpy()
    present = ~_absent(occ)
    occ_located = _located(occ.geometry)
    # the species' present records, as masks over occ (no copy of the frame per species); their
    # cell layers share the map's MAX_CELLS
    sp_present = [(occ_slug == slug) & present for slug in species]
    sp_cells = shared_occurrence_cells(occ, sp_present, located=occ_located)
    layers: list[LayerSpec] = []
    sp_entries = []
    notes: list[str] = []
    grid_notes = []
    for i, slug in enumerate(species):
        colour = sym.species_colour(i)
        spec = reg.species.get(slug)
        name = spec.scientific_name if spec else slug
        srow = rows[_col(rows, "species_slug").astype(str) == slug] if len(rows) else rows
        status = _species_status_text(srow)
        sp_rng = rng[_col(rng, "species_slug").astype(str) == slug] if len(rng) else rng
        parts = []
        rl = range_layer(sp_rng, colour=colour)
        if rl is not None:
            layers.append(LayerSpec(f"{name}: range", "features", rl))
        cells = sp_cells[i]
        if len(cells):
            layers.append(LayerSpec(f"{name}: records", "cells", cells, fill=colour, stroke="#333333",
                                    synthetic_fill=colour))
            grid_notes.append(float(cells["step"].min()))
        withheld = _withheld_by_country(occ, rows=sp_present[i], located=occ_located)
        n_withheld = int(withheld["n"].sum()) if len(withheld) else 0
        if n_withheld:
            parts.append(f"{n_withheld:,} records, locations withheld")
        listed = "listed" if spec and iso3 in spec.range_states else "not listed as Range State"
        label = f"<i>{esc(name)}</i>" + (f" ({esc(spec.common_name)})" if spec and spec.common_name else "")
        label += f" &ndash; {esc(listed)}" + (f"; {status}" if status else "") + (f"; {esc(parts[0])}" if parts else "")
        sp_entries.append((label, colour, "point", {}))
        del parts
    tl = threat_layer(thr)
    legend = [LegendSection(f"CAMI species in {esc(country_name)}", sp_entries)] if sp_entries else []
    if tl is not None:
        layers.append(LayerSpec("Threats by IUCN category", "features", tl))
        cats = sorted(set(tl["label"]), key=lambda x: (len(x.split(" ")[0]), x))
        legend.append(LegendSection("Threats (IUCN 3.3)", [(esc(lab), sym.threat_category(lab.split(" ")[0])[2], "line", {})
                                                           for lab in cats]))
    if grid_notes:
        grid = f"{min(grid_notes):g}"
        notes.append(f"Occurrence locations are aggregated to cells of {grid}&deg; or coarser (public, generalised copy).")
    if not species:
        notes.append("No CAMI species is listed or recorded in this Range State.")
    synthetic = _any_synthetic(occ, thr, rng) or (len(rows) and (pd.to_numeric(_col(rows, "synthetic_records"), errors="coerce").fillna(0) > 0).any())
    bounds = _clamp(_bounds_of([basemap[basemap["iso3"] == iso3], occ, rng, thr], FOCUS_WINDOW), FOCUS_WINDOW)
    return MapContent(
        key=f"country:{iso3}", title=country_name, subtitle="CAMI species in this Range State",
        cycle=texts["cycle"], basemap=basemap, focus=[iso3], bounds=bounds, layers=layers, legend=legend,
        notes=notes, source=_source_line(texts["cycle"], version), attribution=texts["attribution"],
        disclaimer=texts["disclaimer"], synthetic=bool(synthetic), version=version,
        online_tiles=texts["online_tiles"])


def _species_status_text(srow: pd.DataFrame) -> str:
    if srow is None or len(srow) == 0:
        return ""
    r = srow.iloc[0]
    out = []
    best = _num(r.get("population_best"))
    if best is not None:
        year = _text(r.get("population_year"))
        out.append(f"estimate {esc(_fmt_int(best))}" + (f" ({esc(year)})" if year else ""))
    trend = _text(r.get("trend"))
    if trend:
        out.append(esc(trend))
    n = _num(r.get("n_records"))
    if n:
        out.append(f"{int(n):,} records")
    if _text(r.get("data_gap")).lower() in ("true", "1", "yes"):
        out.append("data gap")
    return ", ".join(out)


def build_overview_content(by_country: pd.DataFrame, by_species: pd.DataFrame, boundaries: gpd.GeoDataFrame,
                           settings: dict, version: str, *,
                           basemap: gpd.GeoDataFrame | None = None) -> MapContent:
    """Species per Range State and their status."""
    reg = registry_from_config(settings)
    texts = _settings_texts(settings, version)
    basemap = prepare_basemap(boundaries) if basemap is None else basemap
    wanted = settings.get("species") or []
    if wanted:
        slugs = [s for s in (reg.resolve_species(n) for n in wanted) if s]
    else:
        slugs = sorted(reg.species)
    species_rows = by_species.set_index("species_slug") if "species_slug" in by_species.columns and len(by_species) else pd.DataFrame()
    per_state: dict[str, list[str]] = {}
    for s in slugs:
        for iso in reg.species[s].range_states:
            per_state.setdefault(iso, []).append(s)
    for r in by_country.itertuples(index=False):
        iso, s = _text(getattr(r, "iso3", "")), _text(getattr(r, "species_slug", ""))
        if iso and s and s in reg.species and s not in per_state.get(iso, []):
            if not slugs or s in slugs:
                per_state.setdefault(iso, []).append(s)
    first_row: dict[tuple[str, str], int] = {}  # (species, Range State) -> its first status row
    if len(by_country) and "species_slug" in by_country.columns:
        pairs = zip(by_country["species_slug"].astype(str).tolist(), by_country["iso3"].astype(str).tolist())
        for i, pair in enumerate(pairs):
            first_row.setdefault(pair, i)
    chor_rows, geoms = [], []
    for b in basemap.itertuples(index=False):
        sps = sorted(per_state.get(b.iso3, []), key=lambda s: reg.species[s].scientific_name)
        if not sps:
            continue
        label, colour = sym.richness_class(len(sps))
        items = []
        for s in sps:
            spec = reg.species[s]
            at = first_row.get((s, b.iso3))
            srow = by_country.iloc[at:at + 1] if at is not None else by_country.iloc[0:0]
            status = _species_status_text(srow) or "no data this cycle"
            iucn = ""
            if s in species_rows.index and "iucn_category" in species_rows.columns:
                iucn = _text(species_rows.loc[s, "iucn_category"])
            iucn = iucn or spec.iucn_category
            items.append(f"<li><i>{esc(spec.scientific_name)}</i> ({esc(spec.common_name)}; IUCN {esc(iucn)}, "
                         f"CMS App. {esc(spec.cms_appendix)}): {status}</li>")
        popup = f"<b>{esc(b.name)}</b> ({esc(b.iso3)}): {len(sps)} CAMI species<ul class=\"cami-rec\">{''.join(items)}</ul>"
        chor_rows.append({"stroke": "#636363", "fill": colour, "fill_opacity": 0.75, "weight": 1.0, "dash": None,
                          "radius": 0.0, "popup": popup, "tooltip": f"{esc(b.name)}: {len(sps)} species",
                          "label": label})
        geoms.append(b.geometry)
    layers = []
    if chor_rows:
        layers.append(LayerSpec("CAMI species per Range State", "features",
                                gpd.GeoDataFrame(chor_rows, geometry=geoms, crs=CRS_WGS84)))
    legend = [LegendSection("CAMI species per Range State", [(lab, c, "fill", {}) for lab, c in sym.richness_legend()])]
    status_entries = []
    for s in sorted(slugs, key=lambda x: reg.species[x].scientific_name):
        spec = reg.species[s]
        row = species_rows.loc[s] if s in species_rows.index else None
        if isinstance(row, pd.DataFrame):
            row = row.iloc[0]
        iucn = _text(row.get("iucn_category")) if row is not None else ""
        best = _fmt_int(row.get("population_best")) if row is not None else ""
        trend = _text(row.get("trend")) if row is not None else ""
        parts = [f"IUCN {esc(iucn or spec.iucn_category)}"]
        if best:
            parts.append(f"estimate {esc(best)}")
        if trend:
            parts.append(esc(trend))
        status_entries.append((f"<i>{esc(spec.scientific_name)}</i>: {', '.join(parts)}", "#ffffff", "none", {}))
    if status_entries:
        legend.append(LegendSection("Status per species", status_entries))
    synth = False
    for df in (by_country, by_species):
        if len(df) and "synthetic_records" in df.columns:
            synth |= bool((pd.to_numeric(df["synthetic_records"], errors="coerce").fillna(0) > 0).any())
    focus = sorted(per_state)
    bounds = _clamp(_bounds_of([basemap[basemap["iso3"].isin(focus)]], FOCUS_WINDOW), FOCUS_WINDOW)
    return MapContent(
        key="overview", title="Central Asian Mammals Initiative", subtitle="CAMI species per Range State and their status",
        cycle=texts["cycle"], basemap=basemap, focus=focus, bounds=bounds, layers=layers, legend=legend,
        notes=["Each Range State's species, latest estimates and trends are listed in its popup on the interactive map."],
        source=_source_line(texts["cycle"], version), attribution=texts["attribution"],
        disclaimer=texts["disclaimer"], synthetic=synth, version=version, online_tiles=texts["online_tiles"])


# --------------------------------------------------------------------------------------
# Interactive rendering


OSM_TILES = "https://tile.openstreetmap.org"


def content_security_policy(online_tiles: bool = False) -> str:
    """A <meta> Content-Security-Policy: the page may fetch nothing from outside (defence in depth
    behind the escaping); with ``online_tiles`` only OpenStreetMap tile images are allowed."""
    img = "data: blob:" + (f" {OSM_TILES}" if online_tiles else "")
    policy = (f"default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src {img}; "
              "font-src data:; connect-src 'none'; base-uri 'none'; form-action 'none'")
    return (f'<meta http-equiv="Content-Security-Policy" content="{policy}">\n'
            '<link rel="icon" href="data:,">')  # no favicon request either


def basemap_styles(content: MapContent) -> gpd.GeoDataFrame:
    """The basemap with ``fill``, ``stroke``, ``weight``: Range States in land colour, neighbours
    grey, the map's focus outlined; on a Range State map every other country is grey."""
    base = content.basemap.copy()
    focus = base["iso3"].isin(set(content.focus))
    single = content.key.startswith("country:")
    land = focus if single else base["range_state"].astype(bool)
    base["fill"] = np.where(land, sym.LAND_RANGE_STATE, sym.LAND_NEIGHBOUR)
    base["stroke"] = np.where(focus, sym.HIGHLIGHT, sym.BORDER)
    base["weight"] = np.where(focus, 1.6, 0.6)
    base["fill_opacity"] = 1.0
    return base


_TEMPLATE_OPENING = re.compile(r"\{(?=[{%#])")


def _js_json(obj: Any) -> str:
    """JSON safe to place inside a <script> element written by folium.

    folium (branca) parses each element's rendered script once more as a Jinja template, where
    submitted text holding ``{{``, ``{%`` or ``{#`` would be evaluated or break the page. Our
    data-bearing elements are rendered as literal text (:func:`_literal_classes`) and never
    parsed again; as a second defence, should the text ever reach a template: JSON itself never
    puts ``{`` before those characters, so every such ``{`` is inside a string and becomes
    ``\\u007b`` there (the same character once the browser parses it).
    """
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    text = _TEMPLATE_OPENING.sub(r"\\u007b", text)
    return (text.replace("</", "<\\/").replace("<!--", "<\\!--")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


_HELPERS_JS = r"""
function camiRadius(n){ return Math.round((3 + Math.min(9, 3 * Math.log10(Math.max(n, 1)))) * 10) / 10; }
function camiAdd(group, part){
  if (part.kind === 'features') {
    L.geoJSON(part.data, {
      style: function(f){ return part.styles[f.properties.s]; },
      pointToLayer: function(f, ll){ return L.circleMarker(ll, part.styles[f.properties.s]); },
      onEachFeature: function(f, l){
        if (f.properties.p) { l.bindPopup(f.properties.p, {maxWidth: 380}); }
        if (f.properties.t) { l.bindTooltip(f.properties.t, {sticky: true}); }
      },
      attribution: part.attribution || null
    }).addTo(group);
  } else if (part.kind === 'cells') {
    var st = part.style;
    var cells = L.featureGroup();
    for (var i = 0; i < part.pts.length; i++) {
      var q = part.pts[i], h = part.steps[q[5]] / 2;  // south-west corner + half a cell = centre
      var m = L.circleMarker([q[0] + h, q[1] + h], {radius: camiRadius(q[2]), color: st.stroke, weight: 1,
        fillColor: q[4] ? st.synthetic : st.fill, fillOpacity: 0.85});
      m.camiPopup = part.popups[q[3]];
      m.camiLayer = part.name;
      cells.addLayer(m);
    }
    cells.bindPopup(function(layer){ return layer.camiPopup; }, {maxWidth: 380});
    cells.addTo(group);
  }
}
function camiControl(map, position, cls, html){
  var c = L.control({position: position});
  c.onAdd = function(){
    var d = L.DomUtil.create('div', 'cami-box ' + cls);
    d.innerHTML = html;
    L.DomEvent.disableClickPropagation(d);
    L.DomEvent.disableScrollPropagation(d);
    return d;
  };
  c.addTo(map);
  return c;
}
"""

_CSS = """
html, body {width: 100%; height: 100%; margin: 0; padding: 0;}
.leaflet-container {background: %(water)s; font: 12px/1.4 "Helvetica Neue", Arial, Helvetica, sans-serif;}
.leaflet-container .cami-box, .leaflet-container .leaflet-control-layers {font-size: 12px; line-height: 1.35;}
.cami-box {background: rgba(255,255,255,0.93); padding: 6px 8px; border-radius: 4px;
  box-shadow: 0 1px 4px rgba(0,0,0,0.3); max-width: 360px;}
.cami-title h1 {font-size: 15px; margin: 0;}
.cami-title p {margin: 2px 0 0 0;}
.cami-legend {max-height: 45vh; overflow-y: auto;}
.cami-legend h4 {margin: 4px 0 2px 0; font-size: 12px;}
.cami-legend .sw {display: inline-block; width: 14px; height: 10px; margin-right: 5px; vertical-align: middle;
  border: 1px solid #555;}
.cami-legend .ln {display: inline-block; width: 16px; height: 0; margin-right: 5px; vertical-align: middle;
  border-top: 3px solid #555;}
.cami-legend .pt {display: inline-block; width: 10px; height: 10px; margin: 0 7px 0 2px; vertical-align: middle;
  border-radius: 50%; border: 1px solid #fff;}
.leaflet-container .cami-info {font-size: 10px; line-height: 1.3; max-width: 420px;}
.cami-info p {margin: 2px 0;}
.cami-synthetic {background: #7b3294; color: #fff; font-weight: bold; font-size: 14px; letter-spacing: 0.03em;}
.cami-syn {color: #7b3294; font-weight: bold;}
ul.cami-rec {margin: 4px 0; padding-left: 16px; max-height: 220px; overflow-y: auto;}
"""


def _legend_html(sections: list[LegendSection]) -> str:
    out = ["<b>Legend</b>"]
    for s in sections:
        out.append(f"<h4>{s.title}</h4>")
        for label, colour, shape, extra in s.entries:
            if shape == "fill":
                border = "dashed" if extra.get("dash") else "solid"
                op = extra.get("opacity", 0.8)
                sw = (f"<span class=\"sw\" style=\"background:{colour};opacity:{max(op, 0.35)};"
                      f"border-style:{border}\"></span>")
            elif shape == "none":
                sw = ""
            elif shape == "line":
                sw = f"<span class=\"ln\" style=\"border-top-color:{colour}\"></span>"
            else:
                bg = "#ffffff" if extra.get("hollow") else colour
                sw = f"<span class=\"pt\" style=\"background:{bg};border-color:{colour if extra.get('hollow') else '#fff'}\"></span>"
            out.append(f"<div>{sw}{label}</div>")
    return "".join(out)


def _features_part(gdf: gpd.GeoDataFrame, decimals: int, attribution: str | None = None) -> dict:
    styles: list[dict] = []
    index: dict[str, int] = {}
    feats = []
    n = len(gdf)

    def column(name: str) -> list:
        return gdf[name].tolist() if name in gdf.columns else [None] * n

    rows = zip(gdf.geometry.values, column("stroke"), column("weight"), column("fill"), column("fill_opacity"),
               column("dash"), column("radius"), column("popup"), column("tooltip"))
    for geom, stroke, weight, fill, fill_opacity, dash, radius, popup, tooltip in rows:
        g = _geojson_geometry(geom, decimals)
        if g is None:
            continue
        st = {"color": stroke, "weight": float(weight), "opacity": 0.9, "fillColor": fill,
              "fillOpacity": float(fill_opacity)}
        if _text(dash):
            st["dashArray"] = _text(dash)
        if _num(radius):
            st["radius"] = float(radius)
        k = json.dumps(st, sort_keys=True)
        if k not in index:
            index[k] = len(styles)
            styles.append(st)
        props = {"s": index[k]}
        if _text(popup):
            props["p"] = popup
        if _text(tooltip):
            props["t"] = tooltip
        feats.append({"type": "Feature", "properties": props, "geometry": g})
    part = {"kind": "features", "styles": styles, "data": {"type": "FeatureCollection", "features": feats}}
    if attribution:
        part["attribution"] = attribution
    return part


def _cells_part(spec: LayerSpec) -> dict:
    cells = spec.data
    popups: dict[str, int] = {}  # popup text -> index, in order of first use
    steps: dict[float, int] = {}
    popup_ix = [popups.setdefault(p, len(popups)) for p in cells["popup"].tolist()]
    step_ix = [steps.setdefault(float(s), len(steps)) for s in cells["step"].tolist()]
    decimals = cells["decimals"].to_numpy(dtype=np.int64)
    lat, lon = [None] * len(cells), [None] * len(cells)
    for d in np.unique(decimals).tolist():
        at = np.flatnonzero(decimals == d)
        for target, values in ((lat, cells["lat"]), (lon, cells["lon"])):
            rounded = _round_array(values.to_numpy(dtype=float)[at], d)
            for i, v in zip(at.tolist(), rounded):
                target[i] = v
    n = [int(v) for v in cells["n"].tolist()]
    synthetic = [1 if v else 0 for v in cells["synthetic"].tolist()]
    pts = [list(p) for p in zip(lat, lon, n, popup_ix, synthetic, step_ix)]
    return {"kind": "cells", "name": spec.name, "steps": [_round_num(x, 2) if x < 1 else int(x) for x in steps],
            "pts": pts, "popups": list(popups),
            "style": {"fill": spec.fill, "stroke": spec.stroke, "synthetic": spec.synthetic_fill}}


_FETCHING = (
    re.compile(r"""<(?:script|img|iframe|link|source|video|audio|embed|object)\b[^>]*\b(?:src|href|data)\s*=\s*["']?"""
               r"""(?:https?:)?//[^"'\s>]*""", re.IGNORECASE),
    re.compile(r"""url\(\s*["']?(?:https?:)?//[^)]*""", re.IGNORECASE),
    re.compile(r"""@import\b[^;]*""", re.IGNORECASE))
"""What in a page would make the browser fetch something from outside (links to click are fine)."""


def _outside_resource(html: str) -> str | None:
    """The first thing in the page that would make the browser fetch from outside, if any: what
    ``findall`` of the three patterns as one alternation gives first, found without scanning a
    large page with a case-insensitive alternation. Every match of the tag and ``url(`` patterns
    holds a ``//`` (few in a page) and no ``>`` (tag) or ``)`` (``url(``) before it, so each
    ``//`` is checked from the last such character before it."""
    tag, url, imp = _FETCHING
    found = [m for m in (imp.search(html),) if m]
    at = html.find("//")
    while at >= 0:
        for pattern, stop in ((tag, ">"), (url, ")")):
            m = pattern.search(html, html.rfind(stop, 0, at) + 1, at + 2)
            if m:
                found.append(pattern.match(html, m.start()))
        at = html.find("//", at + 1)
    return min(found, key=lambda m: m.start()).group(0) if found else None


def _as_template_output(text: str) -> str:
    """What a Jinja template whose source is ``text`` (holding no template syntax) renders to:
    line breaks as ``\\n`` and one final line break dropped (``keep_trailing_newline`` off)."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text[:-1] if text.endswith("\n") else text


@functools.lru_cache(maxsize=None)
def _literal_classes() -> tuple[type, type]:
    """(LiteralElement, LiteralMacroElement), made on first use (branca is imported only to write a page).

    branca's ``Element(template=text)`` compiles ``text`` as a Jinja template, and
    ``MacroElement.render`` wraps every rendered macro that way: a layer's script, holding
    megabytes of data, was lexed and compiled once more only to give back the same text.
    ``LiteralElement`` holds text and renders it as it is, with no template compiled and no
    parsing (submitted text in it can never be evaluated); the output is the one the compiled
    template gave (:func:`_as_template_output`). ``LiteralMacroElement`` is a MacroElement
    whose rendered header/html/script macros go into the page as LiteralElements; put it after
    folium's classes in the bases (``class L(Layer, LiteralMacroElement)``) so that their
    ``render`` (e.g. a Layer's ``addTo``) still runs and ends here instead of in MacroElement's.
    """
    from branca.element import Element, Figure, MacroElement

    class LiteralElement(Element):
        def __init__(self, text: str):
            super().__init__()  # no template argument: the class's (empty) template, nothing compiled
            self._name = "LiteralElement"
            self.text = _as_template_output(str(text))

        def render(self, **kwargs) -> str:
            return self.text

    class LiteralMacroElement(MacroElement):
        def render(self, **kwargs) -> None:
            figure = self.get_root()
            if not isinstance(figure, Figure):
                raise MapError("A map element can only be rendered inside a figure.")
            module = self._template.module.__dict__
            for macro_name, target in (("header", figure.header), ("html", figure.html),
                                       ("script", figure.script)):
                macro = module.get(macro_name)
                if macro is not None:
                    target.add_child(LiteralElement(macro(self, kwargs)), name=self.get_name())
            for element in self._children.values():
                element.render(**kwargs)

    return LiteralElement, LiteralMacroElement


def literal_element(text: str):
    """A branca element that puts ``text`` into the page as it is (see :func:`_literal_classes`)."""
    return _literal_classes()[0](text)


@contextmanager
def deterministic_ids(key: str):
    """Make branca/folium element ids a function of ``key`` and creation order."""
    from branca.element import Element

    seed = hashlib.sha256(key.encode("utf-8")).hexdigest()
    counter = itertools.count()
    original = Element.__dict__["_generate_id"]

    def _generate_id(cls) -> str:
        return hashlib.sha256(f"{seed}:{next(counter)}".encode()).hexdigest()[:32]

    Element._generate_id = classmethod(_generate_id)
    try:
        yield
    finally:
        Element._generate_id = original



@functools.lru_cache(maxsize=None)
def _cami_elements() -> tuple[type, type]:
    """(CamiLayer, CamiControls): the page's data-bearing elements, made (and their templates
    compiled) on first use. They render through LiteralMacroElement (:func:`_literal_classes`):
    their scripts (all the layers' data) are never compiled as templates."""
    from folium.map import Layer
    from folium.template import Template

    _, LiteralMacroElement = _literal_classes()

    class CamiLayer(Layer, LiteralMacroElement):
        _template = Template(
            "{% macro script(this, kwargs) %}\n"
            "var {{ this.get_name() }} = L.featureGroup();\n"
            "{% for part in this.parts %}camiAdd({{ this.get_name() }}, {{ part }});\n{% endfor %}"
            "{% endmacro %}")

        def __init__(self, name, parts, show=True, control=True):
            super().__init__(name=name, overlay=True, control=control, show=show)
            self._name = "CamiLayer"
            self.parts = [_js_json(p) for p in parts]

    class CamiControls(LiteralMacroElement):
        _template = Template(
            "{% macro script(this, kwargs) %}\n"
            "L.control.scale({imperial: false, maxWidth: 160}).addTo({{ this._parent.get_name() }});\n"
            "{% for c in this.controls %}camiControl({{ this._parent.get_name() }}, {{ c }});\n{% endfor %}"
            "{% endmacro %}")

        def __init__(self, controls):
            super().__init__()
            self._name = "CamiControls"
            self.controls = [", ".join(_js_json(x) for x in c) for c in controls]

    return CamiLayer, CamiControls


def render_html(content: MapContent) -> str:
    """The self-contained HTML page of a map (same content -> same bytes)."""
    import folium

    from cami_geo.render.assets import inline_head

    head = inline_head()
    CamiLayer, CamiControls = _cami_elements()

    with deterministic_ids(content.key):
        w, s, e, n = content.bounds
        m = folium.Map(location=[round((s + n) / 2, 3), round((w + e) / 2, 3)], zoom_start=4, tiles=None,
                       control_scale=False, prefer_canvas=True, min_zoom=2, max_zoom=12)
        m.default_js = []
        m.default_css = []
        fig = m.get_root()
        fig.title = esc(f"{content.title} – CAMI map, cycle {content.cycle}")
        fig.header.add_child(literal_element(content_security_policy(content.online_tiles)), name="cami_csp")
        fig.header.add_child(literal_element(head), name="cami_assets")
        fig.header.add_child(literal_element(f"<style>{_CSS.replace('%(water)s', sym.WATER)}</style>\n"
                                             f"<script>{_HELPERS_JS}</script>"), name="cami_helpers")

        base = basemap_styles(content)
        base["dash"] = None
        base["radius"] = 0.0
        base["popup"] = None
        base["tooltip"] = [esc(x) for x in base["name"]]
        CamiLayer("Countries (basemap)", [_features_part(base, 2, esc(content.attribution))],
                  control=False).add_to(m)
        if content.online_tiles:
            folium.TileLayer("OpenStreetMap", name="OpenStreetMap (online only)", overlay=True, show=False,
                             control=True).add_to(m)
        for spec in content.layers:
            if spec.kind == "cells":
                part = _cells_part(spec)
            else:
                part = _features_part(spec.data, 4)
            CamiLayer(esc(spec.name), [part], show=spec.show).add_to(m)
        folium.LayerControl(collapsed=False, position="topright").add_to(m)

        title = f"<h1>{esc(content.title)}</h1>" + (f"<p>{esc(content.subtitle)}</p>" if content.subtitle else "")
        title += f"<p>Reporting cycle {esc(content.cycle)}</p>"
        info = "".join(f"<p>{n}</p>" for n in content.notes)
        info += (f"<p>{esc(content.source)}</p><p>{esc(content.attribution)}</p>"
                 f"<p class=\"cami-disclaimer\">{esc(content.disclaimer)}</p>")
        content_controls = [("topleft", "cami-title", title)]
        if content.synthetic:
            content_controls.append(("topleft", "cami-synthetic", esc(sym.SYNTHETIC_LABEL)))
        content_controls += [("bottomright", "cami-legend", _legend_html(content.legend)),
                             ("bottomleft", "cami-info", info)]
        CamiControls(content_controls).add_to(m)
        m.fit_bounds([[s, w], [n, e]])
        html = fig.render()
    bad = _outside_resource(html)
    if bad:
        raise MapError(f"The map would load an outside resource ({bad}); it must be self-contained.")
    return html


# --------------------------------------------------------------------------------------
# Embed snippet and writing


def embed_snippet(map_path: str | Path, embed_path: str | Path, title: str, *, width: str = "100%",
                  height: int = 600) -> str:
    """The <iframe> snippet (relative src from the embed file's folder) the Secretariat pastes."""
    rel = os.path.relpath(Path(map_path).resolve(), Path(embed_path).resolve().parent).replace(os.sep, "/")
    return (f"<iframe src=\"{esc(rel)}\" title=\"{esc(title)}\" width=\"{esc(width)}\" height=\"{int(height)}\" "
            f"style=\"border:0\" loading=\"lazy\" referrerpolicy=\"no-referrer\" "
            f"sandbox=\"allow-scripts allow-popups\"></iframe>")


def write_embed(map_path: str | Path, embed_path: str | Path, title: str) -> str:
    snippet = embed_snippet(map_path, embed_path, title)
    text = (f"<!-- CAMI map embed snippet: paste the iframe below into a web page; keep the map file at "
            f"the relative path given in src. -->\n{snippet}\n")
    _write_text(embed_path, text)
    return snippet


def _write_text(path: str | Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8", newline="\n")
    tmp.replace(path)


def _embed_title(content: MapContent) -> str:
    sub = f" ({content.subtitle})" if content.subtitle else ""
    return f"CAMI map: {content.title}{sub}, reporting cycle {content.cycle}"


def write_maps(content: MapContent, outputs: dict, settings: dict) -> None:
    """Write the HTML, the embed snippet and the static maps named in ``outputs``."""
    from cami_geo.render.static import render_static

    html = render_html(content)
    _write_text(outputs["html"], html)
    if outputs.get("embed"):
        write_embed(outputs["html"], outputs["embed"], _embed_title(content))
    dpi = int((settings.get("maps") or {}).get("static_dpi", 300))
    render_static(content, png=outputs.get("png"), svg=outputs.get("svg"), dpi=dpi)
    log.info("map %s: %s (%d bytes)", content.key, outputs["html"], len(html.encode("utf-8")))


# --------------------------------------------------------------------------------------
# Stage functions


def _warm_up_content() -> MapContent:
    """A small map with every kind of thing a real one draws (basemap, feature and cell layers,
    legend sections of each shape, notes, synthetic label): the sample of :func:`warm_up_worker`."""
    basemap = gpd.GeoDataFrame({"iso3": ["AAA", "BBB"], "name": ["Aland", "Bland"], "range_state": [True, False]},
                               geometry=[box(60.0, 40.0, 70.0, 50.0), box(70.0, 40.0, 80.0, 50.0)], crs=CRS_WGS84)
    area = gpd.GeoDataFrame({"stroke": ["#636363"], "fill": [sym.POPULATION_COLOURS[2]], "fill_opacity": [0.7],
                             "weight": [1.0], "dash": ["6 4"], "radius": [0.0], "popup": ["<b>Aland</b>"],
                             "tooltip": ["Aland"], "label": ["1,000 – 9,999"]},
                            geometry=[box(61.0, 41.0, 69.0, 49.0)], crs=CRS_WGS84)
    threat = gpd.GeoDataFrame({"stroke": ["#252525", "#d95f02"], "fill": ["#252525", "#d95f02"],
                               "fill_opacity": [0.0, 0.9], "weight": [3.0, 1.0], "dash": [None, None],
                               "radius": [0.0, 5.0], "popup": ["Road", "Poaching"], "tooltip": ["Road", "Poaching"],
                               "label": ["4 Transportation", "5 Biological resource use"]},
                              geometry=[shapely.LineString([(62, 42), (68, 48)]), shapely.Point(65, 44)],
                              crs=CRS_WGS84)
    occ = gpd.GeoDataFrame({"sensitivity": ["0.1deg"] * 3, "synthetic": [True, False, False], "year": [2020, 2021, 2022],
                            "locality": ["Somewhere", "", "Elsewhere"]},
                           geometry=gpd.points_from_xy([64.05, 64.05, 66.25], [45.05, 45.05, 46.35]), crs=CRS_WGS84)
    cells = occurrence_cells(occ)
    legend = [LegendSection("Latest estimate (individuals)", [(lab, c, "fill", {}) for lab, c in sym.population_legend()]),
              LegendSection("Threats (IUCN 3.3)", [("4 Transportation &amp; service corridors", "#252525", "line", {})]),
              LegendSection("Records", [("Occurrence cell (size: number of records)", sym.OCCURRENCE, "point", {}),
                                        ("Absence (surveyed, not found)", sym.ABSENCE, "point", {"hollow": True}),
                                        ("<i>Species</i>: status", "#ffffff", "none", {})])]
    return MapContent(
        key="warm-up", title="Warm-up map", subtitle="A sample", cycle="2024", basemap=basemap, focus=["AAA"],
        bounds=(58.0, 38.0, 82.0, 52.0),
        layers=[LayerSpec("Estimate", "features", area), LayerSpec("Threats", "features", threat),
                LayerSpec("Records", "cells", cells)],
        legend=legend, notes=[_grid_note(cells)], source=_source_line("2024", ""), attribution="Boundaries: sample.",
        disclaimer=UN_DISCLAIMER, synthetic=True)


def warm_up_worker() -> None:
    """Stage worker hook (:mod:`cami_geo.stageworker`), run once before it forks jobs: draw a
    small sample map (:func:`_warm_up_content`) as every map job does, HTML, PNG and SVG, into
    a temporary folder, so that the forked jobs find warm what a first map in a process sets up:
    the inlined Leaflet assets, folium's and branca's templates, matplotlib's fonts (found,
    opened, their glyph tables loaded) and renderers, pyproj's projection database. The jobs'
    output is the same with or without it (each job still draws its map from nothing)."""
    import tempfile

    try:
        with tempfile.TemporaryDirectory(prefix="cami-geo-warm-up-") as folder, no_cycle_collection():
            outputs = {k: os.path.join(folder, f"warm-up.{k}") for k in ("html", "png", "svg")}
            write_maps(_warm_up_content(), {**outputs, "embed": os.path.join(folder, "embed.html")}, {})
    except Exception as exc:  # noqa: BLE001 - the jobs then pay for it, as without the worker
        log.debug("map warm-up failed: %s", exc)


def _params(params: dict) -> tuple[dict, str]:
    settings = params.get("settings") or {}
    return settings, str(params.get("version", ""))


def run_map_species_stage(inputs: dict, outputs: dict, params: dict) -> None:
    """Species map: ``inputs`` public, by_country, by_species, boundaries; ``outputs`` html, png, svg, embed."""
    with no_cycle_collection():
        settings, version = _params(params)
        slug = Path(inputs["public"]).stem
        by_country = read_table(inputs["by_country"], "status-by-country")
        by_species = read_table(inputs["by_species"], "status-by-species")
        boundaries, basemap = load_boundaries_and_basemap(inputs["boundaries"], settings)
        content = build_species_content(inputs["public"], by_country, by_species, boundaries, settings, version, slug,
                                        basemap=basemap)
        write_maps(content, outputs, settings)


def run_map_country_stage(inputs: dict, outputs: dict, params: dict) -> None:
    """Range State map: ``inputs`` public (clean.gpkg), by_country, boundaries; ``outputs`` html, png, svg, embed."""
    with no_cycle_collection():
        settings, version = _params(params)
        iso3 = Path(outputs["html"]).stem.upper()
        by_country = read_table(inputs["by_country"], "status-by-country")
        boundaries, basemap = load_boundaries_and_basemap(inputs["boundaries"], settings)
        content = build_country_content(inputs["public"], by_country, boundaries, settings, version, iso3, basemap=basemap)
        write_maps(content, outputs, settings)


def run_map_overview_stage(inputs: dict, outputs: dict, params: dict) -> None:
    """Overview map: ``inputs`` by_country, by_species, boundaries; ``outputs`` html, png, embed."""
    with no_cycle_collection():
        settings, version = _params(params)
        by_country = read_table(inputs["by_country"], "status-by-country")
        by_species = read_table(inputs["by_species"], "status-by-species")
        boundaries, basemap = load_boundaries_and_basemap(inputs["boundaries"], settings)
        content = build_overview_content(by_country, by_species, boundaries, settings, version, basemap=basemap)
        write_maps(content, outputs, settings)
