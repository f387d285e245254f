"""Range State boundaries: build them from Natural Earth, load them for the pipeline.

Default source: Natural Earth admin-0 countries 1:10m (public domain) as carried by the npm
package ``world-atlas`` 2.0.2 (``countries-10m.json``, TopoJSON, ISO 3166-1 numeric ids, no
CRS in the file: it is WGS84 longitude/latitude, so EPSG:4326 is set). About 50 of its
geometries are invalid as stored and are repaired with ``shapely.make_valid``.

The shipped layer ``data/raw/boundaries/countries.gpkg`` holds every Range State of every
registered species and every country that touches one (so that "at sea", "outside every
Range State" and "in a neighbouring country" can be told apart), with columns
``iso3, iso_numeric, name, range_state`` (bool) and polygon geometry in EPSG:4326.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import shapely

from .errors import InputError
from .model import CRS_WGS84
from .registry import Registry

# ISO 3166-1 numeric -> alpha-3 for neighbours of Range States that are not themselves
# Range States (Natural Earth ids; names come from the file).
NEIGHBOURS_ISO3 = {
    "004": "AFG", "008": "ALB", "031": "AZE", "048": "BHR", "050": "BGD", "051": "ARM",
    "064": "BTN", "100": "BGR", "104": "MMR", "112": "BLR", "156": "CHN", "196": "CYP",
    "233": "EST", "246": "FIN", "268": "GEO", "300": "GRC", "356": "IND", "364": "IRN",
    "368": "IRQ", "376": "ISR", "398": "KAZ", "400": "JOR", "408": "PRK", "410": "KOR",
    "414": "KWT", "417": "KGZ", "418": "LAO", "422": "LBN", "428": "LVA", "440": "LTU",
    "496": "MNG", "512": "OMN", "524": "NPL", "578": "NOR", "586": "PAK", "616": "POL",
    "634": "QAT", "643": "RUS", "682": "SAU", "275": "PSE", "760": "SYR", "762": "TJK",
    "784": "ARE", "792": "TUR", "795": "TKM", "804": "UKR", "818": "EGY", "860": "UZB",
    "704": "VNM", "392": "JPN", "144": "LKA", "462": "MDV", "887": "YEM", "498": "MDA",
    "642": "ROU",
}


def build_from_world_atlas(topojson: Path, out: Path, registry: Registry) -> gpd.GeoDataFrame:
    """Write the boundary layer for every Range State of the registry and its neighbours.

    Parameters
    ----------
    topojson : path to ``world-atlas/countries-10m.json``
    out : GeoPackage to write (layer ``countries``)
    """
    world = gpd.read_file(topojson, layer="countries").set_crs(CRS_WGS84, allow_override=True)
    world["iso_numeric"] = world["id"].astype(str).str.zfill(3)
    world["geometry"] = shapely.make_valid(world.geometry.values)
    world["geometry"] = world.geometry.apply(polygonal)
    numeric_to_iso3 = dict(NEIGHBOURS_ISO3)
    numeric_to_iso3.update({s.iso_numeric: s.iso3 for s in registry.states.values()})
    range_states = set(registry.states)
    core = world[world["iso_numeric"].map(numeric_to_iso3).isin(range_states)]
    core_union = shapely.union_all(core.geometry.values).buffer(0.01)
    touching = world[world.intersects(core_union)]
    keep = touching[touching["iso_numeric"].isin(numeric_to_iso3)].copy()
    keep["iso3"] = keep["iso_numeric"].map(numeric_to_iso3)
    keep["range_state"] = keep["iso3"].isin(range_states)
    keep = keep.dissolve(by="iso3", as_index=False, aggfunc="first")
    keep = keep[["iso3", "iso_numeric", "name", "range_state", "geometry"]].sort_values("iso3")
    keep = keep.reset_index(drop=True)
    assert keep.is_valid.all()
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        out.unlink()
    keep.to_file(out, layer="countries", driver="GPKG")
    return keep


def polygonal(geom):
    """Keep only the polygon parts of a repaired geometry (make_valid can add lines)."""
    if geom is None or geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [g for g in shapely.get_parts(geom) if g.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else None


def load_boundaries(path: str | Path, *, layer: str | None = None, id_field: str = "iso3") -> gpd.GeoDataFrame:
    """Load a boundary layer and return it in EPSG:4326 indexed by ISO alpha-3.

    Any polygon layer GDAL reads works, as long as ``id_field`` holds ISO alpha-3 codes.
    Invalid geometries are repaired. Raises :class:`InputError` with one sentence when
    the file or the field is missing.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"Boundary layer {path} does not exist; set boundaries.path in config/config.yaml.")
    try:
        gdf = pyogrio.read_dataframe(path, layer=layer)
    except Exception as exc:  # GDAL's message is kept, the traceback is not
        raise InputError(f"Boundary layer {path} cannot be read: {exc}") from None
    if id_field not in gdf.columns:
        raise InputError(f"Boundary layer {path} has no field {id_field!r} (fields: {', '.join(map(str, gdf.columns))}).")
    if gdf.crs is None:
        gdf = gdf.set_crs(CRS_WGS84)
    gdf = gdf.to_crs(CRS_WGS84)
    gdf = gdf.rename(columns={id_field: "iso3"})
    bad = ~gdf.is_valid
    if bad.any():
        gdf.loc[bad, "geometry"] = shapely.make_valid(gdf.geometry[bad].values)
    if "range_state" not in gdf.columns:
        gdf["range_state"] = True
    if "name" not in gdf.columns:
        gdf["name"] = gdf["iso3"]
    return gdf.set_index("iso3", drop=False).sort_index()


def country_areas_km2(boundaries: gpd.GeoDataFrame) -> pd.Series:
    """Area of each country in km2, measured on the WGS84 ellipsoid (geodesic)."""
    from pyproj import Geod

    geod = Geod(ellps="WGS84")
    return boundaries.geometry.apply(lambda g: abs(geod.geometry_area_perimeter(g)[0]) / 1e6)


def load_configured(path: str | Path, settings: dict) -> gpd.GeoDataFrame:
    """:func:`load_boundaries` with the layer and id field of the ``boundaries`` config section."""
    b = (settings or {}).get("boundaries") or {}
    return load_boundaries(path, layer=b.get("layer"), id_field=b.get("id_field", "iso3"))
