"""The status stage's occurrence read: the column-only GeoParquet path gives the same points
as reading the whole layer, and falls back to it where a coordinate is missing."""

import geopandas as gpd
import numpy as np
import pandas as pd
import pandas.testing as pdt
from shapely.geometry import Point

from cami_geo.io import vector
from cami_geo.io.vector import read_geoparquet
from cami_geo.model import OCCURRENCE_COLUMNS
from cami_geo.status import pipeline
from cami_geo.status.pipeline import group_rows, occurrence_points, read_layer, read_occurrences


def _write(tmp_path, lons):
    n = len(lons)
    df = pd.DataFrame({c: pd.Series([None] * n, dtype=object) for c in OCCURRENCE_COLUMNS})
    df["species_slug"] = ["saiga_tatarica"] * (n - 1) + [""]
    df["decimal_longitude"] = lons
    df["decimal_latitude"] = [45.0 + i for i in range(n)]
    df["iso3"] = ["KAZ", "mng", None, "KAZ"][:n]
    df["occurrence_status"] = ["present", "absent", "", "present"][:n]
    df["year"] = [2020, 2021, None, 2019][:n]
    df["cycle"] = [2024] * n
    df["synthetic"] = ["true", "false", "1", None][:n]
    df["coordinate_uncertainty_m"] = [10.0, None, 5000.0, 1.0][:n]
    geo = gpd.GeoDataFrame(df, geometry=[Point(70.0 + i, 45.0 + i) for i in range(n)], crs="EPSG:4326")
    path = tmp_path / "occurrences.parquet"
    geo.to_parquet(path)
    return [str(path)]


def test_column_read_gives_the_same_points(tmp_path):
    source = _write(tmp_path, [70.0, 71.0, 72.0, 73.0])
    fast = read_occurrences(source)
    assert "geometry" not in fast.columns  # the column-only path was taken
    pdt.assert_frame_equal(occurrence_points(fast),
                           occurrence_points(read_layer(source, "occurrences", OCCURRENCE_COLUMNS)))


def test_missing_coordinate_falls_back_to_the_geometry(tmp_path):
    source = _write(tmp_path, [70.0, np.nan, 72.0, 73.0])
    pts = occurrence_points(read_occurrences(source))
    assert pts["lon"].tolist() == [70.0, 71.0, 72.0, 73.0]


def test_group_rows():
    g = group_rows(np.array(["KAZ", "MNG", "KAZ", "", "MNG"], dtype=object))
    assert {k: v.tolist() for k, v in g.items()} == {"KAZ": [0, 2], "MNG": [1, 4], "": [3]}
    assert group_rows(np.array([], dtype=object)) == {}


def test_geoparquet_read_equals_geopandas_and_reuses_the_worker_crs(tmp_path, monkeypatch):
    monkeypatch.setattr(vector, "_CRS_CACHE", {})
    pipeline.warm_up_worker()
    assert len(vector._CRS_CACHE) == 1
    path = _write(tmp_path, [70.0, 71.0, 72.0, 73.0])[0]
    ours, ref = read_geoparquet(path), gpd.read_parquet(path)
    assert len(vector._CRS_CACHE) == 1  # the file's CRS was the one parsed in the warm-up
    assert list(ours.columns) == list(ref.columns) and ours.geometry.name == ref.geometry.name
    assert ours.crs == ref.crs
    pdt.assert_frame_equal(pd.DataFrame(ours.drop(columns="geometry")), pd.DataFrame(ref.drop(columns="geometry")))
    assert list(ours.geometry.to_wkb()) == list(ref.geometry.to_wkb())
    # another CRS: parsed from the file, as geopandas does
    gpd.read_parquet(path).to_crs("EPSG:3857").to_parquet(tmp_path / "m.parquet")
    assert read_geoparquet(tmp_path / "m.parquet").crs == gpd.read_parquet(tmp_path / "m.parquet").crs
