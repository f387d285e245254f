"""Vector files (GeoPackage, GeoJSON, Shapefile, zipped Shapefile) read with GDAL (pyogrio)
into GeoDataFrames in EPSG:4326 whose attribute cells are text, features numbered from 1;
the project's own GeoParquet read back (:func:`read_geoparquet`) and GeoPackages written
reproducibly (:func:`reproducible_gpkg`)."""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Iterator

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio

from ..errors import InputError
from ..model import CRS_WGS84
from .archives import safe_extract


def _attr_text(series: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(series):
        return series.dt.strftime("%Y-%m-%d").fillna("")
    if pd.api.types.is_float_dtype(series):
        return series.map(lambda v: "" if pd.isna(v) else (str(int(v)) if float(v).is_integer() else repr(float(v))))
    return series.map(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))


def read_vector(path: str | Path, *, layer: str | None = None, crs: str | None = None, name: str | None = None) -> gpd.GeoDataFrame:
    """Read a vector layer; attributes as text, geometry in EPSG:4326.

    A layer without a CRS is taken as EPSG:4326 when its coordinates fit degrees, else
    ``crs`` must be given (manifest ``files: {name: {crs: ...}}``).
    """
    path = Path(path)
    name = name or path.name
    if path.stat().st_size == 0:
        raise InputError(f"{name} is empty.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # GDAL's chatter; failures raise below
        return _read_vector(path, layer=layer, crs=crs, name=name)


def _read_vector(path: Path, *, layer: str | None, crs: str | None, name: str) -> gpd.GeoDataFrame:
    try:
        layers = pyogrio.list_layers(path)
    except Exception as exc:
        raise InputError(f"{name} is not a vector file GDAL can read ({_first_line(exc)}).") from None
    if len(layers) == 0:
        raise InputError(f"{name} holds no layers.")
    others = []
    if layer is None:
        layer = str(layers[0][0])
        others = [str(l[0]) for l in layers[1:]]
    elif layer not in [str(l[0]) for l in layers]:
        raise InputError(f"{name} has no layer {layer!r} (layers: {', '.join(str(l[0]) for l in layers)}).")
    try:
        gdf = pyogrio.read_dataframe(path, layer=layer)
    except Exception as exc:
        raise InputError(f"{name} layer {layer!r} cannot be read ({_first_line(exc)}).") from None
    if not isinstance(gdf, gpd.GeoDataFrame):
        gdf = gpd.GeoDataFrame(gdf, geometry=gpd.GeoSeries([None] * len(gdf)))
    if gdf.crs is None:
        if crs:
            gdf = gdf.set_crs(crs)
        else:
            b = gdf.total_bounds if len(gdf) and gdf.geometry.notna().any() else np.array([0, 0, 0, 0])
            if np.all(np.isfinite(b)) and (abs(b[[0, 2]]) > 180).any() | (abs(b[[1, 3]]) > 90).any():
                raise InputError(f"{name} has no CRS and its coordinates are not degrees; add a .prj or set files: {{{name}: {{crs: EPSG:...}}}} in submission.yaml.")
            gdf = gdf.set_crs(CRS_WGS84)
    try:
        gdf = gdf.to_crs(CRS_WGS84)
    except Exception as exc:
        raise InputError(f"{name} cannot be transformed to WGS84 ({_first_line(exc)}).") from None
    for col in gdf.columns:
        if col != gdf.geometry.name:
            gdf[col] = _attr_text(gdf[col])
    gdf = gdf.rename_geometry("geometry") if gdf.geometry.name != "geometry" else gdf
    gdf = gdf.reset_index(drop=True)
    gdf.attrs["other_layers"] = others
    gdf.attrs["layer"] = layer
    return gdf


def read_zipped_shapefile(path: str | Path, *, layer: str | None = None, crs: str | None = None, name: str | None = None) -> gpd.GeoDataFrame:
    """Extract a zipped Shapefile safely into a temporary folder and read it."""
    path = Path(path)
    name = name or path.name
    with tempfile.TemporaryDirectory(prefix="cami_zip_") as tmp:
        files = safe_extract(path, tmp)
        shps = sorted(p for p in files if p.suffix.lower() == ".shp")
        if layer:
            shps = [p for p in shps if p.stem == layer] or shps
        if not shps:
            raise InputError(f"{name} holds no .shp file.")
        if len(shps) > 1 and not layer:
            raise InputError(f"{name} holds several shapefiles ({', '.join(p.name for p in shps)}); name one with files: {{{name}: {{layer: ...}}}}.")
        return read_vector(shps[0], crs=crs, name=f"{name}/{shps[0].name}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


_CRS_CACHE: dict[str, Any] = {}


def _crs_of(projjson: dict):
    """The pyproj CRS of a PROJJSON dict, parsed once per process: PROJ takes about 40 ms
    for the EPSG:4326 that geopandas writes into GeoParquet (it looks up the datum
    ensemble's members by name), and every species' layers carry it (see
    :func:`cami_geo.status.pipeline.warm_up_worker`)."""
    from pyproj import CRS

    key = json.dumps(projjson, sort_keys=True)
    if key not in _CRS_CACHE:
        _CRS_CACHE[key] = CRS.from_user_input(projjson)
    return _CRS_CACHE[key]


def read_geoparquet(source: Any):
    """``geopandas.read_parquet(source)``; a file with one WKB geometry column and a
    PROJJSON CRS (what geopandas writes) is read here, the CRS through :func:`_crs_of`."""
    import pyarrow.parquet as pq

    table = pq.read_table(source)
    geo = json.loads((table.schema.metadata or {}).get(b"geo", b"{}"))
    col = geo.get("primary_column")
    meta = (geo.get("columns") or {}).get(col) or {}
    if list(geo.get("columns") or {}) != [col] or col not in table.column_names or meta.get("encoding") != "WKB" \
            or not isinstance(meta.get("crs"), dict):
        if hasattr(source, "seek"):
            source.seek(0)
        return gpd.read_parquet(source)
    df = table.to_pandas()
    df[col] = gpd.GeoSeries.from_wkb(df[col].to_numpy(), index=df.index, crs=_crs_of(meta["crs"]))
    return gpd.GeoDataFrame(df, geometry=col)


FAST_SQLITE = {"OGR_SQLITE_SYNCHRONOUS": "OFF", "OGR_SQLITE_JOURNAL": "OFF", "OGR_SQLITE_CACHE": "256"}
"""GDAL options for writing a GeoPackage without SQLite's journal or syncing, with a larger
page cache: safe when the file is written under a temporary name and moved into place only
when complete. The features written are the same."""


GPKG_TIMESTAMP = "2000-01-01T00:00:00.000Z"
"""``OGR_CURRENT_DATE`` used for GeoPackage timestamps unless ``SOURCE_DATE_EPOCH`` is set."""


@contextlib.contextmanager
def reproducible_gpkg() -> Iterator[None]:
    """GeoPackages written meanwhile get fixed timestamps (``OGR_CURRENT_DATE``:
    :data:`GPKG_TIMESTAMP`, or ``SOURCE_DATE_EPOCH`` when set), so the same features give
    the same bytes, and :data:`FAST_SQLITE`: the file must be written under a temporary name
    and moved into place only when complete (a crash then leaves no half-written file under
    the real name either way). The previous options are restored afterwards."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    stamp = GPKG_TIMESTAMP
    if epoch.isdigit():
        stamp = _dt.datetime.fromtimestamp(int(epoch), tz=_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    with gdal_config({"OGR_CURRENT_DATE": stamp, **FAST_SQLITE}):
        yield


@contextlib.contextmanager
def gdal_config(options: dict[str, str]) -> Iterator[None]:
    """GDAL configuration ``options`` for the duration, then their previous values."""
    before = {k: pyogrio.get_gdal_config_option(k) for k in options}
    pyogrio.set_gdal_config_options(options)
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options(before)
