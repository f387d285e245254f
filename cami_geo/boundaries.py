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

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import shapely

from .errors import InputError
from .model import CRS_WGS84

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Iterable

    import geopandas as gpd
    import pandas as pd

    from .registry import Registry

# geopandas and GDAL (pyogrio) are imported where a layer is read with them: `cami-geo
# validate` reads the shipped GeoPackage without them (see load_point_boundaries).

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
    import geopandas as gpd

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


def load_boundaries(path: str | Path, *, layer: str | None = None, id_field: str = "iso3",
                    ids: Iterable[str] | None = None) -> gpd.GeoDataFrame:
    """Load a boundary layer and return it in EPSG:4326 indexed by ISO alpha-3.

    Any polygon layer GDAL reads works, as long as ``id_field`` holds ISO alpha-3 codes.
    Invalid geometries are repaired. Raises :class:`InputError` with one sentence when
    the file or the field is missing. ``ids``: keep only the features with these codes,
    before the validity check and repair (most of the time here, for every feature).
    """
    import pyogrio

    path = Path(path)
    if not path.exists():
        raise InputError(f"Boundary layer {path} does not exist; set boundaries.path in config/config.yaml.")
    try:
        gdf = pyogrio.read_dataframe(path, layer=layer)
    except Exception as exc:  # GDAL's message is kept, the traceback is not
        raise InputError(f"Boundary layer {path} cannot be read: {exc}") from None
    if id_field not in gdf.columns:
        raise InputError(f"Boundary layer {path} has no field {id_field!r} (fields: {', '.join(map(str, gdf.columns))}).")
    if ids is not None:
        gdf = gdf[gdf[id_field].isin(list(ids))]
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


@dataclass
class BoundaryTable:
    """The columns of a boundary layer the point checks read (what
    :class:`cami_geo.checks.geo.Countries` takes from :func:`load_boundaries`'s frame):
    ISO3 codes, the Range State flag and the geometries, sorted by ISO3."""

    iso3: list
    range_state: list
    name: list
    geometry: np.ndarray

    def __getitem__(self, column: str) -> list:
        return {"iso3": self.iso3, "range_state": self.range_state, "name": self.name}[column]

    def __len__(self) -> int:
        return len(self.iso3)


def load_point_boundaries(path: str | Path, *, layer: str | None = None, id_field: str = "iso3") -> "BoundaryTable | gpd.GeoDataFrame":
    """What :func:`load_boundaries` gives the point checks, read without GDAL and geopandas
    (slow to import) when the layer is a plain GeoPackage table of 2D polygons in EPSG:4326,
    as the shipped one is: a :class:`BoundaryTable` with the same codes, flags and
    geometries. Any other layer (or any doubt) goes through :func:`load_boundaries`."""
    try:
        table = _read_plain_gpkg(Path(path), layer=layer, id_field=id_field)
    except Exception:  # noqa: BLE001 - the GDAL reader decides, and words any error
        table = None
    return table if table is not None else load_boundaries(path, layer=layer, id_field=id_field)


_GPKG_WKB_TYPES = {"POLYGON": 3, "MULTIPOLYGON": 6}
_GPKG_ENVELOPE_BYTES = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}


def _read_plain_gpkg(path: Path, *, layer: str | None, id_field: str) -> BoundaryTable | None:
    import sqlite3

    if path.suffix.lower() != ".gpkg" or not path.is_file():
        return None
    with open(path, "rb") as fh:
        if fh.read(16) != b"SQLite format 3\x00":
            return None
    con = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
    try:
        contents = con.execute("SELECT table_name, data_type FROM gpkg_contents").fetchall()
        if len(contents) != 1 or contents[0][1] != "features" or (layer is not None and layer != contents[0][0]):
            return None
        table = contents[0][0]
        geo = con.execute("SELECT column_name, upper(geometry_type_name), srs_id, z, m FROM gpkg_geometry_columns "
                          "WHERE table_name = ?", (table,)).fetchall()
        if len(geo) != 1 or geo[0][1] not in _GPKG_WKB_TYPES or geo[0][3] != 0 or geo[0][4] != 0:
            return None
        geom_col, wkb_type, srs_id = geo[0][0], _GPKG_WKB_TYPES[geo[0][1]], geo[0][2]
        srs = con.execute("SELECT upper(organization), organization_coordsys_id FROM gpkg_spatial_ref_sys WHERE srs_id = ?",
                          (srs_id,)).fetchall()
        if srs != [("EPSG", 4326)]:
            return None
        types = {r[1]: str(r[2]).upper() for r in con.execute(f'PRAGMA table_info("{table.replace(chr(34), chr(34) * 2)}")')}
        if types.get(id_field) != "TEXT" or types.get("range_state", "BOOLEAN") != "BOOLEAN" or types.get("name", "TEXT") != "TEXT":
            return None
        q = lambda c: '"' + c.replace('"', '""') + '"'  # noqa: E731
        cols = [q(id_field), q("range_state") if "range_state" in types else "1",
                q("name") if "name" in types else q(id_field), q(geom_col)]
        rows = con.execute(f"SELECT {', '.join(cols)} FROM {q(table)}").fetchall()
    finally:
        con.close()
    if not rows:
        return None
    iso3 = [r[0] for r in rows]
    if any(type(i) is not str for i in iso3) or len(set(iso3)) != len(iso3):
        return None
    wkb = []
    for r in rows:
        blob = r[3]
        if type(blob) is not bytes or len(blob) < 8 or blob[:2] != b"GP" or blob[2] != 0:
            return None
        flags = blob[3]
        env = (flags >> 1) & 7
        if flags & 0b110000 or env not in _GPKG_ENVELOPE_BYTES:   # empty or extended geometry
            return None
        w = blob[8 + _GPKG_ENVELOPE_BYTES[env]:]
        if len(w) < 5 or struct.unpack("<I" if w[0] == 1 else ">I", w[1:5])[0] != wkb_type:
            return None
        wkb.append(w)
    geoms = shapely.from_wkb(wkb)
    if shapely.has_z(geoms).any():
        return None
    bad = ~shapely.is_valid(geoms)
    if bad.any():
        geoms[bad] = shapely.make_valid(geoms[bad])
    order = sorted(range(len(rows)), key=iso3.__getitem__)
    return BoundaryTable(iso3=[iso3[k] for k in order], range_state=[rows[k][1] for k in order],
                         name=[rows[k][2] for k in order], geometry=geoms[order])
