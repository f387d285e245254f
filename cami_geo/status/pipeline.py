"""Status stages: per species (``status_species``) and the tables across species
(``status_tables``). Signatures follow :mod:`cami_geo.workflow`: ``f(inputs, outputs,
params)``; ``params["settings"]`` is the validated configuration.

Every column written is documented in ``docs/data-dictionary.md``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError
from ..model import OCCURRENCE_COLUMNS, POPULATION_COLUMNS, RANGE_COLUMNS, THREAT_COLUMNS
from ..textsafe import write_csv
from ..workflow import path_list
from . import criterion_b as cb
from .actions import action_needs
from .population import population_by_country, species_population, species_trend
from .ranges import range_by_country, species_range
from .threats import (THREAT_TABLE_COLUMNS, infrastructure_share, main_threats, species_threats,
                      threat_locations, threats_by_country)

log = logging.getLogger("cami_geo.status")

BY_COUNTRY_COLUMNS = [
    "species", "species_slug", "iso3", "country", "cycle", "n_records", "n_absences", "first_year",
    "last_year", "population_best", "population_min", "population_max", "population_year",
    "population_unit", "population_method", "population_source", "population_scope", "population_note",
    "trend", "trend_method", "eoo_km2", "aoo_km2", "range_area_km2", "range_share", "range_source",
    "n_threats", "main_threats", "n_complete_barriers", "infrastructure_buffer_share", "data_gap",
    "years_since_estimate", "synthetic_records",
]
SPECIES_COLUMNS = [
    "species", "species_slug", "common_name", "cms_appendix", "iucn_category", "cycle", "n_range_states",
    "n_range_states_with_data", "n_range_states_with_estimate", "population_best", "population_min",
    "population_max", "population_unit", "population_note", "trend", "trend_method", "eoo_km2", "aoo_km2",
    "aoo_km2_median", "aoo_km2_max", "eoo_flag", "n_locations", "n_subpopulations", "category_b",
    "category_b_note", "method", "n_locations_threats", "n_locations_threats_note", "range_area_km2",
    "n_records", "n_threats", "synthetic_records",
]
CHANGE_FIGURES = ["population_best", "eoo_km2", "aoo_km2", "n_records"]


# ---------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------
_LAYER_CACHE: dict[tuple, Any] = {}


def layer_file(source: Any, layer: str) -> Path | None:
    """The file holding ``layer`` of a species' clean data: ``source`` is a GeoPackage, or a
    list of GeoParquet files named ``<layer>.parquet`` (one per layer); None when absent."""
    if isinstance(source, (list, tuple)):
        for p in source:
            if Path(p).suffix == ".parquet" and Path(p).stem == layer:
                return Path(p)
        gpkgs = [p for p in source if Path(p).suffix != ".parquet"]
        return Path(gpkgs[0]) if gpkgs else None
    return Path(source)


def read_layer(path: Any, layer: str, columns: list[str]):
    """A layer of a species' clean data as a GeoDataFrame (empty, with ``columns``, if absent).

    ``path``: a GeoPackage, a ``<layer>.parquet`` GeoParquet file, or a list of those (see
    :func:`layer_file`). Read once per process and file version (the status and GIS-layer
    steps of one species run in one process); callers get their own copy.
    """
    path = layer_file(path, layer)
    if path is None:
        return _empty_layer(columns)
    try:
        st = Path(path).stat()
        key = (str(Path(path).resolve()), st.st_mtime_ns, st.st_size, layer, tuple(columns))
    except OSError:
        key = None
    if key is not None and key in _LAYER_CACHE:
        return _LAYER_CACHE[key].copy()
    gdf = _read_layer(path, layer, columns)
    if key is not None:
        if len(_LAYER_CACHE) >= 6:  # the three layers of one species, twice over at most
            _LAYER_CACHE.clear()
        _LAYER_CACHE[key] = gdf
        return gdf.copy()
    return gdf


POINT_COLUMNS = ["species_slug", "decimal_longitude", "decimal_latitude", "iso3", "occurrence_status", "year",
                 "cycle", "synthetic", "coordinate_uncertainty_m"]
"""The occurrence columns :func:`occurrence_points` (and the species filter) use."""


def read_occurrences(source: Any):
    """The ``occurrences`` layer for :func:`occurrence_points`. From GeoParquet whose
    ``decimal_longitude`` / ``decimal_latitude`` are all numbers, only :data:`POINT_COLUMNS`
    are read, without the geometry (the points are those coordinates; the geometry is only
    needed where a coordinate is missing); otherwise the whole layer (:func:`read_layer`)."""
    path = layer_file(source, "occurrences")
    if path is not None and path.suffix == ".parquet" and path.exists():
        try:
            import pyarrow.parquet as pq

            names = set(pq.read_schema(path).names)
            if {"decimal_longitude", "decimal_latitude"} <= names:
                cols = [c for c in POINT_COLUMNS if c in names]
                df = pq.read_table(path, columns=cols).to_pandas()
                if not (pd.to_numeric(df["decimal_longitude"], errors="coerce").isna().any()
                        or pd.to_numeric(df["decimal_latitude"], errors="coerce").isna().any()):
                    for c in POINT_COLUMNS:
                        if c not in df.columns:
                            df[c] = pd.NA
                    return df
        except Exception:  # unreadable here: read_layer says why
            pass
    return read_layer(source, "occurrences", OCCURRENCE_COLUMNS)


def _empty_layer(columns: list[str]):
    import geopandas as gpd

    return gpd.GeoDataFrame({c: pd.Series(dtype="object") for c in columns}, geometry=gpd.GeoSeries([], crs="EPSG:4326"))


def warm_up_worker() -> None:
    """Stage worker hook (:mod:`cami_geo.stageworker`), run once before it forks jobs: the
    CRS of an EPSG:4326 GeoParquet file, parsed (:func:`cami_geo.io.vector._crs_of`) and checked as
    :func:`_conformed` does (PROJ's first EPSG look-up in a process takes about 25 ms), for
    every job to inherit."""
    import io

    import geopandas as gpd

    from ..io.vector import read_geoparquet

    buf = io.BytesIO()
    gpd.GeoDataFrame(geometry=gpd.GeoSeries([], crs="EPSG:4326")).to_parquet(buf, index=False)
    buf.seek(0)
    _conformed(read_geoparquet(buf), [])


def _read_layer(path: str | Path, layer: str, columns: list[str]):
    import geopandas as gpd
    import pyogrio

    path = Path(path)
    if not path.exists():
        return _empty_layer(columns)
    if path.suffix == ".parquet":
        from ..io.vector import read_geoparquet

        try:
            gdf = read_geoparquet(path)
        except Exception as exc:
            raise InputError(f"{path} cannot be read as GeoParquet: {str(exc).splitlines()[0]}") from None
        return _conformed(gdf, columns)
    try:
        layers = {str(n) for n in pyogrio.list_layers(path)[:, 0]}
    except Exception as exc:
        raise InputError(f"{path} cannot be read as a GeoPackage: {str(exc).splitlines()[0]}") from None
    if layer not in layers:
        return _empty_layer(columns)
    try:
        fields = set(pyogrio.read_info(path, layer=layer)["fields"])
        # points with coordinate columns: the geometry is not needed (it is the slow part)
        skip_geom = layer == "occurrences" and {"decimal_longitude", "decimal_latitude"} <= fields
        gdf = pyogrio.read_dataframe(path, layer=layer, read_geometry=not skip_geom, use_arrow=True)
        if skip_geom:
            gdf = gpd.GeoDataFrame(gdf, geometry=gpd.GeoSeries([None] * len(gdf), index=gdf.index,
                                                                crs="EPSG:4326"))
    except Exception as exc:
        raise InputError(f"Layer {layer!r} of {path} cannot be read: {str(exc).splitlines()[0]}") from None
    return _conformed(gdf, columns)


def _conformed(gdf, columns: list[str]):
    if gdf.crs is None:
        gdf = gdf.set_crs("EPSG:4326")
    elif gdf.crs.to_epsg() != 4326:
        gdf = gdf.to_crs("EPSG:4326")
    for c in columns:
        if c not in gdf.columns:
            gdf[c] = pd.NA
    return gdf


def read_table(path: str | Path | None, columns: list[str]) -> pd.DataFrame:
    if not path or not Path(path).exists() or Path(path).stat().st_size == 0:
        return pd.DataFrame(columns=columns)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError:
        return pd.DataFrame(columns=columns)
    except Exception as exc:
        raise InputError(f"{path} cannot be read as CSV: {str(exc).splitlines()[0]}") from None
    for c in columns:
        if c not in df.columns:
            df[c] = pd.NA
    return df


def _truthy(s: pd.Series) -> np.ndarray:
    return s.astype("string").str.strip().str.lower().isin(["true", "1", "yes", "t"]).to_numpy()


def occurrence_points(occ) -> pd.DataFrame:
    """lon, lat, iso3, present, year, cycle, synthetic, uncertainty_m from the clean layer."""
    lon = pd.to_numeric(occ.get("decimal_longitude"), errors="coerce") if "decimal_longitude" in occ else None
    lat = pd.to_numeric(occ.get("decimal_latitude"), errors="coerce") if "decimal_latitude" in occ else None
    if len(occ) and (lon is None or lon.isna().any()) and occ.geometry.notna().any():
        ok = occ.geometry.notna() & ~occ.geometry.is_empty
        gx = pd.Series(np.nan, index=occ.index)
        gy = pd.Series(np.nan, index=occ.index)
        gx[ok], gy[ok] = occ.geometry[ok].x, occ.geometry[ok].y
        lon = gx if lon is None else lon.fillna(gx)
        lat = gy if lat is None else lat.fillna(gy)
    if lon is None:
        lon = pd.Series(np.nan, index=occ.index)
        lat = pd.Series(np.nan, index=occ.index)
    status = occ["occurrence_status"] if "occurrence_status" in occ else pd.Series("", index=occ.index)
    return pd.DataFrame({
        "lon": np.asarray(lon, dtype=float), "lat": np.asarray(lat, dtype=float),
        "iso3": occ["iso3"].astype("string").fillna("").str.upper().to_numpy(),
        "present": cb.present_mask(status),
        "year": pd.to_numeric(occ["year"], errors="coerce").to_numpy(),
        "cycle": pd.to_numeric(occ["cycle"], errors="coerce").to_numpy(),
        "synthetic": _truthy(occ["synthetic"]),
        "uncertainty_m": pd.to_numeric(occ["coordinate_uncertainty_m"], errors="coerce").to_numpy(),
    })


def _fill_iso3(pts: pd.DataFrame, countries) -> None:
    """Records without an iso3: the Range State whose polygon holds the point."""
    import shapely

    missing = (pts["iso3"] == "") & pts["lon"].notna()
    if not missing.any():
        return
    for iso3, geom in zip(countries.index, countries.geometry.values):
        if geom is None:
            continue
        shapely.prepare(geom)
        m = missing.to_numpy() & shapely.contains_xy(geom, pts["lon"].to_numpy(), pts["lat"].to_numpy())
        pts.loc[m, "iso3"] = iso3
        missing &= ~pd.Series(m, index=pts.index)


# ---------------------------------------------------------------------------------------
# per species
# ---------------------------------------------------------------------------------------
def _settings(params: dict[str, Any]) -> dict[str, Any]:
    return params.get("settings") or {}


_BOUNDARY_CACHE: dict[tuple, Any] = {}


def boundaries_cached(path: str | Path, layer: str | None, id_field: str, ids: list[str] | None = None):
    """:func:`cami_geo.boundaries.load_boundaries` (only the features of ``ids`` when given),
    read once per process, file version and ``ids``."""
    from ..boundaries import load_boundaries

    p = Path(path)
    key = (str(p.resolve()), p.stat().st_mtime_ns if p.exists() else 0, layer, id_field,
           None if ids is None else tuple(ids))
    if key not in _BOUNDARY_CACHE:
        _BOUNDARY_CACHE.clear()
        _BOUNDARY_CACHE[key] = load_boundaries(p, layer=layer, id_field=id_field, ids=ids)
    return _BOUNDARY_CACHE[key]


def species_slug_from_outputs(outputs: dict[str, Any]) -> str:
    return Path(str(outputs["by_country"])).parent.name


def run_status_stage(inputs: dict[str, Any], outputs: dict[str, Any], params: dict[str, Any]) -> None:
    """Stage ``status_species``: :func:`run_status_species_stage`, then, when ``outputs`` name
    them (``gpkg``, ``aoo_grid``, ``threat_density``), the species' GIS layers
    (:func:`cami_geo.status.layers.run_status_layers_stage`) from the same clean data and the
    ``by_country`` file just written."""
    prepared = run_status_species_stage(inputs, outputs, params)
    layer_keys = ("gpkg", "aoo_grid", "threat_density")
    if any(outputs.get(k) for k in layer_keys):
        from .layers import run_status_layers_stage

        run_status_layers_stage({"clean": inputs["clean"], "boundaries": inputs["boundaries"],
                                 "by_country": outputs["by_country"]},
                                {k: outputs[k] for k in layer_keys if outputs.get(k)}, params,
                                prepared=prepared)


def of_species(frame, slug: str):
    """The rows of ``frame`` whose ``species_slug`` is ``slug`` or empty (records the
    intake could not tie to a species stay with every species' partition)."""
    if "species_slug" not in frame or not len(frame):
        return frame
    sl = frame["species_slug"].astype("string").fillna("")
    return frame[(sl == slug) | (sl == "")]


def group_rows(codes: np.ndarray) -> dict[Any, np.ndarray]:
    """Row positions (ascending) of each distinct value of ``codes``: one pass instead of a
    comparison over every row per value."""
    if len(codes) == 0:
        return {}
    f, labels = pd.factorize(codes)
    order = np.argsort(f, kind="stable")
    bounds = np.searchsorted(f[order], np.arange(len(labels) + 1))
    return {lab: order[bounds[i]:bounds[i + 1]] for i, lab in enumerate(labels)}


_NO_ROWS = np.empty(0, dtype="int64")


def prepare_species(clean: Any, boundaries: Any, settings: dict[str, Any], registry, slug: str) -> dict[str, Any]:
    """What the status and GIS-layer steps of one species both read and derive from its
    clean data: Range States, records (``pts``; ``present`` with coordinates; ``aoo_ok``,
    which of those are usable for AOO), range, threats, and the range and threats per
    Range State."""
    sp = registry.species[slug]
    bcfg = settings.get("boundaries", {}) or {}
    states = list(sp.range_states)
    # only the Range States: the status and its layers use no other boundary
    countries = boundaries_cached(boundaries, bcfg.get("layer"), bcfg.get("id_field", "iso3"), ids=states)
    rs = countries.reindex(states)
    valid_rs = rs[rs.geometry.notna()] if len(rs) else rs

    occ = of_species(read_occurrences(clean), slug)
    thr = species_threats(read_layer(clean, "threats", THREAT_COLUMNS), slug)
    rng = of_species(read_layer(clean, "range", RANGE_COLUMNS), slug)
    pts = occurrence_points(occ)
    _fill_iso3(pts, valid_rs)
    present = pts[pts["present"] & pts["lon"].notna() & pts["lat"].notna()]
    max_unc = (settings.get("checks", {}) or {}).get("max_uncertainty_m")
    aoo_ok = (present["uncertainty_m"].isna() | (present["uncertainty_m"] <= max_unc)).to_numpy(dtype=bool) \
        if max_unc else np.ones(len(present), dtype=bool)
    lon_all, lat_all = present["lon"].to_numpy(), present["lat"].to_numpy()
    rgeom, rsource = species_range(rng, lon_all, lat_all)
    parts_rs = range_by_country(rgeom, valid_rs)
    parts = parts_rs.reindex(states)
    return {"slug": slug, "countries": countries, "valid_rs": valid_rs, "pts": pts, "present": present,
            "aoo_ok": aoo_ok, "unique": cb.unique_points(lon_all, lat_all), "rng": rng, "thr": thr,
            "rgeom": rgeom, "rsource": rsource, "parts_rs": parts_rs, "parts": parts,
            "tbc": threats_by_country(thr, parts, valid_rs, registry),
            # per Range State: row positions of its records, taken once (not a pass over all per state)
            "rows_of": group_rows(pts["iso3"].to_numpy())}


def run_status_species_stage(inputs: dict[str, Any], outputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Write ``by_country.csv``, ``species.csv`` and ``threats.csv`` for one species.

    Returns what was read and derived from the clean data on the way (records, range,
    threats, Range States), for :func:`cami_geo.status.layers.write_species_layers` to
    reuse in the same process."""
    from ..workflow import registry_from_config

    t0 = time.perf_counter()
    settings = _settings(params)
    st = settings.get("status", {}) or {}
    cycle = settings.get("cycle")
    method = st.get("method", "iucn")
    registry = registry_from_config(settings)
    slug = species_slug_from_outputs(outputs)
    if slug not in registry.species:
        raise InputError(f"Species {slug!r} (from the output path) is not in the registry.")
    sp = registry.species[slug]
    states = [s for s in sp.range_states]
    prep = prepare_species(inputs["clean"], inputs["boundaries"], settings, registry, slug)
    valid_rs, pts, present, aoo_ok = prep["valid_rs"], prep["pts"], prep["present"], prep["aoo_ok"]
    thr, rgeom, rsource, parts, tbc = prep["thr"], prep["rgeom"], prep["rsource"], prep["parts"], prep["tbc"]
    rows_of, uniq_all = prep["rows_of"], prep["unique"]
    pop = read_table(inputs.get("population"), POPULATION_COLUMNS)
    if len(pop):
        pop = pop[(pop["species_slug"].fillna("") == slug)
                  | (pop["species_slug"].fillna("").eq("") & pop["species"].map(
                      lambda n: registry.resolve_species(n) == slug))]
    kw = dict(aoo_cell_km=st.get("aoo_cell_km", 2), location_cell_km=st.get("location_cell_km", 10),
              subpopulation_radius_km=st.get("subpopulation_radius_km", 5),
              n_shifts=st.get("aoo_grid_shifts", 4))
    log.info("%s: %d records (%d present) read in %.2f s", slug, len(pts), len(present), time.perf_counter() - t0)

    # population
    popc = population_by_country(pop, states, trend_years=int(st.get("trend_years", 10))).set_index("iso3")
    lon_all, lat_all = present["lon"].to_numpy(), present["lat"].to_numpy()
    if len(present):
        crs_eq = cb.laea_crs(*uniq_all)
    elif len(valid_rs):  # centre of the Range States' bounding box
        x0, y0, x1, y1 = valid_rs.total_bounds
        crs_eq = cb.laea_crs(np.array([(x0 + x1) / 2]), np.array([(y0 + y1) / 2]))
    else:
        crs_eq = cb.CONR_CRS
    infra = infrastructure_share(thr, parts, float(st.get("infrastructure_buffer_km", 5)), crs_eq)

    p_present = pts["present"].to_numpy()
    p_lon, p_lat = pts["lon"].to_numpy(), pts["lat"].to_numpy()
    p_year, p_cycle, p_synth = pts["year"].to_numpy(), pts["cycle"].to_numpy(), pts["synthetic"].to_numpy()
    p_ok = np.ones(len(pts), dtype=bool)  # usable for AOO (records not present count as usable)
    p_ok[present.index.to_numpy()] = aoo_ok
    rows = []
    for iso3 in states:
        idx = rows_of.get(iso3, _NO_ROWS)
        c_present = p_present[idx]
        pr = idx[c_present & ~np.isnan(p_lon[idx])]
        if len(pr):
            c_lon, c_lat = p_lon[pr], p_lat[pr]
            e = cb.measures(c_lon, c_lat, method, **kw, aoo_points=cb.aoo_points_of(c_lon, c_lat, p_ok[pr]),
                            counts=False)
            eoo, aoo_v = e.eoo_km2, e.aoo_km2
        else:
            eoo = aoo_v = np.nan
        p = popc.loc[iso3]
        tb = tbc[tbc["iso3"] == iso3]
        cyc_rec = p_cycle[idx]
        this_cycle_rec = bool(((cyc_rec == cycle) | np.isnan(cyc_rec)).any()) if cycle is not None else len(idx) > 0
        pop_c = pop[pop["iso3"].fillna("") == iso3] if len(pop) else pop
        pc = pd.to_numeric(pop_c["cycle"], errors="coerce") if len(pop_c) else pd.Series(dtype=float)
        this_cycle_pop = bool(((pc == cycle) | pc.isna()).any()) if len(pop_c) else False
        years = p_year[idx]
        years = years[np.isfinite(years)]
        py = p["population_year"]
        rows.append({
            "species": sp.scientific_name, "species_slug": slug, "iso3": iso3,
            "country": registry.states[iso3].name_en if iso3 in registry.states else iso3,
            "cycle": cycle, "n_records": int(c_present.sum()), "n_absences": int((~c_present).sum()),
            "first_year": int(years.min()) if len(years) else pd.NA,
            "last_year": int(years.max()) if len(years) else pd.NA,
            **{k: p[k] for k in popc.columns},
            "eoo_km2": eoo, "aoo_km2": aoo_v,
            "range_area_km2": parts.at[iso3, "range_area_km2"] if iso3 in parts.index else np.nan,
            "range_share": parts.at[iso3, "range_share"] if iso3 in parts.index else np.nan,
            "range_source": rsource,
            "n_threats": int(tb["n_features"].sum()), "main_threats": main_threats(tbc, iso3),
            "n_complete_barriers": int(tb["n_complete_barriers"].sum()),
            "infrastructure_buffer_share": infra.get(iso3, np.nan),
            "data_gap": not (this_cycle_rec or this_cycle_pop),
            "years_since_estimate": (int(cycle) - int(py)) if cycle is not None and pd.notna(py) else pd.NA,
            "synthetic_records": int(p_synth[idx].sum()),
        })
    by_country = pd.DataFrame(rows, columns=BY_COUNTRY_COLUMNS)
    for c in ("population_year", "years_since_estimate", "first_year", "last_year"):
        by_country[c] = pd.to_numeric(by_country[c], errors="coerce").astype("Int64")

    # rasters
    ridx = read_table(inputs.get("rasters"), ["submission", "source_file", "name", "path", "crs", "width",
                                                "height", "synthetic"])
    if len(ridx) and len(parts):
        from .rasters import raster_columns

        rc = raster_columns(ridx, parts["geometry"], base=Path.cwd())
        if len(rc.columns):
            by_country = by_country.join(rc, on="iso3")

    # species row
    m = cb.measures(lon_all, lat_all, method, **kw, aoo_points=cb.aoo_points_of(lon_all, lat_all, aoo_ok),
                    _unique=uniq_all)
    spop = species_population(by_country)
    trend, trend_method = species_trend(by_country, sp.iucn_population_trend)
    decline = "v" if trend == "decreasing" else None
    if m.n_unique:
        code, note = cb.category_b(m.eoo_km2, m.aoo_km2, m.n_locations, decline=decline,
                                   nt_eoo_km2=st.get("nt_eoo_km2", cb.DEFAULT_NT_EOO_KM2),
                                   nt_aoo_km2=st.get("nt_aoo_km2", cb.DEFAULT_NT_AOO_KM2))
        if decline:
            note += f"; decline from the range-wide trend ({trend_method})"
    else:
        code, note = "", "preliminary: no present records, criterion B not assessed"
    n_loc_thr, loc_note = threat_locations(lon_all, lat_all, thr, buffer_km=float(st.get("infrastructure_buffer_km", 5)),
                                           crs=crs_eq, method=method, cell_km=kw["location_cell_km"])
    has_data = (by_country["n_records"] + by_country["n_absences"] > 0) | by_country["population_best"].notna()
    species_row = {
        "species": sp.scientific_name, "species_slug": slug, "common_name": sp.common_name,
        "cms_appendix": sp.flagged("cms_appendix"), "iucn_category": sp.flagged("iucn_category"), "cycle": cycle,
        "n_range_states": len(states), "n_range_states_with_data": int(has_data.sum()),
        "n_range_states_with_estimate": spop.pop("n_range_states_with_estimate"), **spop,
        "trend": trend, "trend_method": trend_method,
        "eoo_km2": m.eoo_km2 if m.n_unique else np.nan, "aoo_km2": m.aoo_km2 if m.n_unique else np.nan,
        "aoo_km2_median": m.aoo_km2_median if m.n_unique else np.nan,
        "aoo_km2_max": m.aoo_km2_max if m.n_unique else np.nan, "eoo_flag": m.eoo_flag,
        "n_locations": m.n_locations if m.n_unique else pd.NA,
        "n_subpopulations": m.n_subpopulations if m.n_unique else pd.NA,
        "category_b": code, "category_b_note": note, "method": method,
        "n_locations_threats": n_loc_thr if m.n_unique else pd.NA, "n_locations_threats_note": loc_note,
        "range_area_km2": float(np.nansum(parts["range_area_km2"])) if rgeom is not None else np.nan,
        "n_records": int(pts["present"].sum()), "n_threats": int(tbc["n_features"].sum()) if len(tbc) else 0,
        "synthetic_records": int(pts["synthetic"].sum()),
    }
    species_df = pd.DataFrame([species_row], columns=SPECIES_COLUMNS)
    threats_df = tbc.assign(species=sp.scientific_name, species_slug=slug)[THREAT_TABLE_COLUMNS]

    write_csv(by_country, outputs["by_country"])
    write_csv(species_df, outputs["species"])
    write_csv(threats_df, outputs["threats"])
    log.info("%s: status written in %.2f s", slug, time.perf_counter() - t0)
    return prep


# ---------------------------------------------------------------------------------------
# across species
# ---------------------------------------------------------------------------------------
def _concat(paths: list[str]) -> pd.DataFrame:
    frames = []
    for p in paths:
        try:
            frames.append(pd.read_csv(p, keep_default_na=True))
        except pd.errors.EmptyDataError:
            continue
        except Exception as exc:
            raise InputError(f"{p} cannot be read as CSV: {str(exc).splitlines()[0]}") from None
    frames = [f for f in frames if len(f.columns)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def add_change(current: pd.DataFrame, previous: pd.DataFrame) -> pd.DataFrame:
    """``<figure>_prev`` and ``<figure>_change`` (current - previous) for every figure of
    :data:`CHANGE_FIGURES` the previous table has; ``previous_cycle`` beside them."""
    out = current.copy()
    if previous is None or previous.empty or "iso3" not in previous:
        return out
    key = "species_slug" if "species_slug" in previous and "species_slug" in out else "species"
    if key not in previous:
        return out
    figs = [f for f in CHANGE_FIGURES if f in previous.columns]
    prev = previous[[key, "iso3", *figs] + (["cycle"] if "cycle" in previous else [])].copy()
    prev = prev.drop_duplicates(subset=[key, "iso3"], keep="last")
    prev = prev.rename(columns={f: f"{f}_prev" for f in figs} | {"cycle": "previous_cycle"})
    out = out.merge(prev, on=[key, "iso3"], how="left")
    for f in figs:
        out[f"{f}_prev"] = pd.to_numeric(out[f"{f}_prev"], errors="coerce")
        out[f"{f}_change"] = pd.to_numeric(out[f], errors="coerce") - out[f"{f}_prev"]
    return out


def run_status_tables_stage(inputs: dict[str, Any], outputs: dict[str, Any], params: dict[str, Any]) -> None:
    """Concatenate the per-species files; add change since the previous cycle; action needs.

    With ``outputs["slices"]`` (paths from :func:`cami_geo.status.slices.slice_paths`) and
    ``inputs`` ``population``, ``submissions``, also writes each species' and Range State's
    slice of the tables (see :mod:`cami_geo.status.slices`).
    """
    settings = _settings(params)
    by_country = _concat(path_list(inputs.get("by_country")))
    by_species = _concat(path_list(inputs.get("species")))
    threats = _concat(path_list(inputs.get("threats")))
    if by_country.empty:
        by_country = pd.DataFrame(columns=BY_COUNTRY_COLUMNS)
    if by_species.empty:
        by_species = pd.DataFrame(columns=SPECIES_COLUMNS)
    if threats.empty:
        threats = pd.DataFrame(columns=THREAT_TABLE_COLUMNS)
    prev_paths = path_list(inputs.get("previous"))
    if prev_paths:
        previous = _concat(prev_paths)
        by_country = add_change(by_country, previous)
    by_country = by_country.sort_values(["species", "iso3"], kind="stable").reset_index(drop=True)
    by_species = by_species.sort_values("species", kind="stable").reset_index(drop=True)
    threats = threats.sort_values(["species", "iso3", "iucn_code"], kind="stable").reset_index(drop=True)
    actions = action_needs(by_country, settings.get("action_rules") or [], settings.get("cycle"))
    write_csv(by_country, outputs["by_country"])
    write_csv(by_species, outputs["by_species"])
    write_csv(threats, outputs["threats"])
    write_csv(actions, outputs["actions"])
    slice_files = path_list(outputs.get("slices"))
    if slice_files:
        from ..workflow import registry_from_config
        from .slices import read_tables, write_slices

        tables = {"by_country": by_country, "by_species": by_species, "threats": threats, "actions": actions,
                  **read_tables(inputs)}
        write_slices(tables, slice_files, registry_from_config(settings))
