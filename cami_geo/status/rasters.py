"""Summaries of raster layers (any GeoTIFF) over a species' range in each Range State.

For each layer and country: mean and 10th / 50th / 90th percentiles of the pixels whose
centres fall in the range part (all touched pixels for parts smaller than a pixel),
nodata excluded, the geometry reprojected to the raster's CRS.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

STATS = ("mean", "p10", "p50", "p90")


def raster_column(name: str, stat: str) -> str:
    safe = re.sub(r"[^a-z0-9]+", "_", str(name).lower()).strip("_") or "layer"
    return f"raster_{safe}_{stat}"


def summarise_values(values: np.ndarray) -> dict[str, float]:
    v = np.asarray(values, dtype="float64")
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {s: np.nan for s in STATS}
    p10, p50, p90 = np.percentile(v, [10, 50, 90])
    return {"mean": float(v.mean()), "p10": float(p10), "p50": float(p50), "p90": float(p90)}


def summarise_raster(path: str | Path, parts: pd.Series) -> dict[str, dict[str, float]]:
    """``{iso3: {stat: value}}`` for one raster over each geometry of ``parts`` (EPSG:4326)."""
    import geopandas as gpd
    import rasterio
    from rasterio.mask import mask

    out: dict[str, dict[str, float]] = {}
    with warnings.catch_warnings(), rasterio.open(path) as ds:
        warnings.simplefilter("ignore", PendingDeprecationWarning)  # rasterio's own use of affine
        crs = ds.crs or "EPSG:4326"
        for iso3, geom in parts.items():
            if geom is None or geom.is_empty:
                continue
            g = gpd.GeoSeries([geom], crs="EPSG:4326").to_crs(crs).iloc[0]
            if not shapely.intersects(g, shapely.box(*ds.bounds)):
                out[iso3] = {s: np.nan for s in STATS}
                continue
            vals = None
            for touched in (False, True):
                try:
                    arr, _ = mask(ds, [g], crop=True, filled=False, all_touched=touched, indexes=1)
                except ValueError:  # no overlap
                    break
                vals = np.ma.compressed(arr)
                if vals.size:
                    break
            out[iso3] = summarise_values(vals if vals is not None else np.empty(0))
    return out


def raster_columns(index: pd.DataFrame, parts: pd.Series, base: Path | None = None) -> pd.DataFrame:
    """Columns ``raster_<name>_<stat>`` indexed by iso3 for every raster in the index."""
    cols = {}
    for _, row in index.iterrows():
        path = Path(str(row["path"]))
        if base is not None and not path.is_absolute() and not path.exists():
            path = base / path
        if not path.exists():
            continue
        res = summarise_raster(path, parts)
        for stat in STATS:
            cols[raster_column(row.get("name") or path.stem, stat)] = {k: v[stat] for k, v in res.items()}
    return pd.DataFrame(cols, index=parts.index)
