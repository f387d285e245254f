"""The intake stage: read every file of a submission, check every row, lose nothing.

``run_intake_stage`` (Snakemake rule ``intake``) and ``cami-geo validate`` share
:func:`validate_submission` / :func:`validate_file`. For every file, rows in = accepted +
rejected; every error and warning is a problem with file, row, field, reason and severity.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import shapely

from .boundaries import load_boundaries, load_configured, load_point_boundaries  # noqa: F401 (load_boundaries: API)
from .checks import ProblemLog, empty_problems
from .checks.common import CheckContext
from .checks.geo import Countries
from .checks.occurrences import check_occurrences
from .errors import CamiGeoError, InputError
from .io.aliases import canonical_columns
from .io.manifest import (MANIFEST_NAME, TABLE_SUFFIXES, VECTOR_SUFFIXES, FileSpec, Manifest,
                          kind_from_name, read_manifest)
from .io.smart import is_smart, split_smart
from .io.tables import Table, read_table
from .model import (COLUMNS, CRS_WGS84, OCCURRENCE_COLUMNS, POPULATION_COLUMNS, PROBLEM_COLUMNS, RANGE_COLUMNS,
                    THREAT_COLUMNS)
from .workflow import registry_from_config, write_digest

if TYPE_CHECKING:  # pragma: no cover
    import geopandas as gpd

# geopandas (and GDAL through io.vector) are imported where vector data is read or written:
# `cami-geo validate` of a table needs neither.

log = logging.getLogger("cami_geo.intake")
log.addHandler(logging.NullHandler())  # no traceback on a user's terminal; the workflow log gets it

SIDECAR_SUFFIXES = (".shx", ".dbf", ".prj", ".cpg", ".qix", ".sbn", ".sbx", ".xml", ".qmd", ".aux.xml", ".ovr")
WORKBOOK_SHEETS = ("occurrences", "threats", "population")


@dataclass
class Part:
    """Rows of one kind read from a file: text frame with canonical columns, geometries, row numbers."""

    kind: str
    frame: pd.DataFrame
    rows: np.ndarray
    geoms: np.ndarray | None = None
    extra: list[str] = field(default_factory=list)
    ragged: dict[int, int] = field(default_factory=dict)
    label: str | None = None
    """File name used in problems when a file holds several tables (``workbook.xlsx:threats``,
    so a row number names its sheet); records keep the plain file name (each sheet is
    another kind, so record ids stay unique within each output)."""


@dataclass
class FileResult:
    """What one file gave: accepted records per kind, problems, and the counts."""

    file: str
    kind: str
    rows_in: int = 0
    accepted: int = 0
    rejected: int = 0
    records: dict[str, pd.DataFrame] = field(default_factory=dict)
    problems: pd.DataFrame = field(default_factory=empty_problems)
    points: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)
    unreadable: str | None = None
    raster: dict[str, Any] | None = None

    def summary(self) -> dict[str, Any]:
        return {"file": self.file, "kind": self.kind, "rows_in": self.rows_in, "accepted": self.accepted,
                "rejected": self.rejected, "errors": int((self.problems["severity"] == "error").sum()),
                "warnings": int((self.problems["severity"] == "warning").sum()), "notes": self.notes,
                **({"unreadable": self.unreadable} if self.unreadable else {})}


@dataclass
class SubmissionResult:
    submission: str
    manifest: Manifest
    files: list[FileResult]
    cycle: int | None
    countries: Countries | None = None

    @property
    def rows_in(self) -> int:
        return sum(f.rows_in for f in self.files)

    @property
    def accepted(self) -> int:
        return sum(f.accepted for f in self.files)

    @property
    def rejected(self) -> int:
        return sum(f.rejected for f in self.files)

    def problems(self) -> pd.DataFrame:
        frames = [f.problems for f in self.files if len(f.problems)]
        if not frames:
            return empty_problems()
        out = pd.concat(frames, ignore_index=True)
        # a file read in parts (SMART, workbook sheets) keeps its rows in order
        return out.sort_values(["file", "row"], kind="stable", na_position="first").reset_index(drop=True)

    def records(self, kind: str) -> pd.DataFrame | None:
        frames = [f.records[kind] for f in self.files if kind in f.records and len(f.records[kind])]
        return pd.concat(frames, ignore_index=True) if frames else None


# -- reading ------------------------------------------------------------------------------

def discover_files(folder: Path) -> list[Path]:
    """Data files of a submission folder (manifest, hidden files and Shapefile sidecars left out)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not any(x.startswith(".") for x in p.relative_to(folder).parts))
    shp_stems = {p.with_suffix("") for p in files if p.suffix.lower() == ".shp"}
    out = []
    for p in files:
        if p.name == MANIFEST_NAME and p.parent == folder:
            continue
        if p.suffix.lower() in SIDECAR_SUFFIXES and (p.with_suffix("") in shp_stems or Path(str(p).split(".")[0]) in shp_stems):
            continue
        if p.name.lower().endswith(".aux.xml"):
            continue
        out.append(p)
    return out


def canonicalise(frame: pd.DataFrame, kind: str) -> tuple[pd.DataFrame, list[str]]:
    """Rename the columns holding known fields to their canonical names; other columns keep
    their names (prefixed with 'submitted:' when they would collide with a canonical name)."""
    mapping = canonical_columns(frame.columns, kind)
    chosen = set(mapping.values())
    rename = {v: k for k, v in mapping.items()}
    for c in frame.columns:
        if c not in chosen and c in mapping:
            rename[c] = f"submitted:{c}"
    extra = [rename.get(c, c) for c in frame.columns if c not in chosen]
    return frame.rename(columns=rename), extra


def _table_part(table: Table, kind: str) -> Part:
    frame, extra = canonicalise(table.frame, kind)
    return Part(kind=kind, frame=frame, rows=table.rows, extra=extra, ragged=table.ragged)


def _vector_part(gdf: gpd.GeoDataFrame, kind: str) -> Part:
    attrs = pd.DataFrame(gdf.drop(columns="geometry"))
    frame, extra = canonicalise(attrs, kind)
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    if kind == "occurrences":
        types = np.array([g.geom_type if g is not None else "" for g in geoms], dtype=object)
        pts = types == "Point"
        if pts.any() or not {"decimal_latitude", "decimal_longitude"} <= set(frame.columns):
            x = np.full(len(geoms), "", dtype=object)
            y = np.full(len(geoms), "", dtype=object)
            if pts.any():
                xy = shapely.get_coordinates(geoms[pts])
                x[pts] = [repr(float(v)) for v in xy[:, 0]]
                y[pts] = [repr(float(v)) for v in xy[:, 1]]
            frame = frame.drop(columns=[c for c in ("decimal_latitude", "decimal_longitude", "x", "y", "crs") if c in frame.columns])
            frame["decimal_longitude"] = x
            frame["decimal_latitude"] = y
    return Part(kind=kind, frame=frame.reset_index(drop=True), rows=np.arange(1, len(gdf) + 1, dtype=np.int64),
                geoms=geoms, extra=extra)


def sniff_kind(path: Path, name: str) -> str | None:
    """Kind of a file whose name does not say it, from its content (DwC-A, GBIF, SMART), or None."""
    suffix = path.suffix.lower()
    from .io.dwca import is_dwca, is_gbif_simple

    if suffix == ".zip" and is_dwca(path):
        return "occurrences"
    if suffix in (".csv", ".tsv", ".txt"):
        from .io.tables import read_csv_head

        try:
            head = read_csv_head(path, name=name)
        except InputError:
            return None
        if is_smart(head):
            return "smart"
        if is_gbif_simple(head) or {"decimalLatitude", "decimalLongitude"} <= set(head):
            return "occurrences"
    return None


def read_parts(path: Path, *, name: str, kind: str, spec: FileSpec) -> tuple[list[Part], list[str]]:
    """Read one file into parts of one kind (two for a SMART export). Raises InputError."""
    suffix = path.suffix.lower()
    if not path.exists():
        raise InputError(f"{name} does not exist.")
    if path.stat().st_size == 0:
        raise InputError(f"{name} is empty.")
    if suffix == ".zip":
        from .io.archives import member_names

        names = member_names(path)
        if any(Path(n).name == "meta.xml" for n in names):
            from .io.dwca import read_dwca

            table = read_dwca(path, name=name)
            return [_table_part(table, "occurrences")], table.notes
        if any(n.lower().endswith(".shp") for n in names):
            from .io.vector import read_zipped_shapefile

            gdf = read_zipped_shapefile(path, layer=spec.layer, crs=spec.crs, name=name)
            return [_vector_part(gdf, kind)], [f"zipped Shapefile, {len(gdf)} features"]
        tables = [n for n in names if n.lower().endswith((".csv", ".tsv", ".txt", ".xlsx", ".gpkg", ".geojson", ".json"))]
        if len(tables) == 1:
            import tempfile

            from .io.archives import safe_extract

            with tempfile.TemporaryDirectory(prefix="cami_zip_") as tmp:
                files = safe_extract(path, tmp)
                inner = next(p for p in files if p.name == Path(tables[0]).name)
                return read_parts(inner, name=f"{name}/{inner.name}", kind=kind, spec=spec)
        raise InputError(f"{name} is a zip archive holding neither a Darwin Core Archive, a Shapefile nor exactly one "
                         "table or vector file.")
    if suffix in VECTOR_SUFFIXES:
        from .io.vector import read_vector

        gdf = read_vector(path, layer=spec.layer, crs=spec.crs, name=name)
        notes = [f"layer {gdf.attrs.get('layer')!r}, {len(gdf)} features"]
        if gdf.attrs.get("other_layers"):
            notes.append("OTHER_LAYERS:" + ", ".join(gdf.attrs["other_layers"]))
        return [_vector_part(gdf, kind)], notes
    if kind == "workbook":
        from .io.tables import read_xlsx, xlsx_sheet_names

        parts = []
        for sheet in xlsx_sheet_names(path):
            if sheet in WORKBOOK_SHEETS:
                table = read_xlsx(path, sheet=sheet, name=name, allow_empty=True)
                part = _table_part(table, sheet)
                part.label = f"{name}:{sheet}"
                parts.append(part)
        return parts, [f"workbook sheets: {', '.join(p.kind for p in parts)}"]
    if suffix in TABLE_SUFFIXES or kind in ("occurrences", "threats", "population", "smart"):
        table = read_table(path, sheet=spec.sheet, name=name)
        if kind == "smart" or is_smart(table.frame.columns):
            frame, sighting, human = split_smart(table.frame)
            parts = [Part("occurrences", frame[sighting].reset_index(drop=True), table.rows[sighting]),
                     Part("threats", frame[human].reset_index(drop=True), table.rows[human])]
            other = ~sighting & ~human
            parts.append(Part("smart_other", frame[other].reset_index(drop=True), table.rows[other]))
            return parts, table.notes + ["SMART export: staff names dropped"]
        return [_table_part(table, kind)], table.notes
    raise InputError(f"{name} has a file type ({suffix or 'no extension'}) cami-geo does not read.")


# -- checking -----------------------------------------------------------------------------

def _check_part(part: Part, *, file: str, ctx: CheckContext, spec: FileSpec, manifest: Manifest,
                records: bool = True) -> tuple[pd.DataFrame, ProblemLog]:
    plog = ProblemLog(part.label or file, part.rows, ctx.overrides)
    if part.ragged:
        ragged = np.isin(part.rows, list(part.ragged))
        plog.add("row_ragged", ragged, "row", "row has a different number of fields than the header; extra fields ignored, missing ones empty")
    file_crs = spec.crs or manifest.crs
    if part.kind == "occurrences":
        rec = check_occurrences(part.frame, plog, ctx, file_crs=file_crs, records=records)
    elif part.kind == "threats":
        geoms = part.geoms
        if geoms is None and "wkt" in part.frame.columns:
            from .checks.features import geometry_from_wkt

            geoms = geometry_from_wkt(part.frame, plog, crs=file_crs)
        elif geoms is None:
            from .checks.features import geometry_from_columns

            geoms = geometry_from_columns(part.frame, plog, ctx, file_crs=file_crs)
        from .checks.features import check_threats

        rec = check_threats(part.frame, geoms, plog, ctx, extra=part.extra)
    elif part.kind == "range":
        geoms = part.geoms
        if geoms is None and "wkt" in part.frame.columns:
            from .checks.features import geometry_from_wkt

            geoms = geometry_from_wkt(part.frame, plog, crs=file_crs)
        elif geoms is None:
            geoms = np.full(len(part.frame), None, dtype=object)
        from .checks.features import check_range

        rec = check_range(part.frame, geoms, plog, ctx)
    elif part.kind == "population":
        from .checks.features import check_population

        rec = check_population(part.frame, plog, ctx)
    elif part.kind == "smart_other":
        plog.add("smart_category", np.ones(len(part.frame), bool), "Observation Category",
                 "SMART observation is neither a wildlife sighting nor a human activity; not imported",
                 part.frame.get("name", pd.Series("", index=part.frame.index)).to_numpy(dtype=object))
        rec = pd.DataFrame(index=range(len(part.frame)))
    else:  # pragma: no cover
        raise InputError(f"{file}: unknown kind {part.kind!r}.")
    return rec, plog


def _provenance(rec: pd.DataFrame, rows: np.ndarray, *, file: str, manifest: Manifest, cycle: int | None,
                flags: np.ndarray, ctx: CheckContext) -> pd.DataFrame:
    sub = manifest.submission
    rec = rec.copy()
    rec.insert(0, "record_id", (f"{sub}/{file}#" + pd.Series(rows, dtype="int64").astype("str")).to_numpy(dtype=object))
    rec["submission"] = sub
    rec["source_file"] = file
    rec["source_row"] = pd.array(rows, dtype="Int64")
    rec["cycle"] = pd.array([cycle] * len(rec), dtype="Int64")
    rec["contributor"] = manifest.contributor
    rec["licence"] = manifest.licence
    rec["synthetic"] = bool(manifest.synthetic)
    rec["flags"] = flags
    return rec


def _sensitivity(slugs: pd.Series, manifest: Manifest, ctx: CheckContext) -> np.ndarray:
    if manifest.sensitivity:
        return np.full(len(slugs), manifest.sensitivity, dtype=object)
    default = {s: ctx.registry.species[s].default_sensitivity for s in pd.unique(slugs) if s in ctx.registry.species}
    from .checks.common import lookup

    return lookup(slugs.to_numpy(dtype=object), default, "0.1deg")


def _finish(kind: str, rec: pd.DataFrame, keep: np.ndarray, plog: ProblemLog, rows: np.ndarray, *, file: str,
            manifest: Manifest, cycle: int | None, ctx: CheckContext) -> pd.DataFrame:
    flags = plog.warning_codes(len(rec))
    acc = rec.loc[keep].reset_index(drop=True)
    acc = _provenance(acc, rows[keep], file=file, manifest=manifest, cycle=cycle, flags=flags[keep], ctx=ctx)
    import geopandas as gpd

    if kind == "occurrences":
        acc["sensitivity"] = _sensitivity(acc["species_slug"], manifest, ctx)
        geom = shapely.points(acc["decimal_longitude"].to_numpy(dtype=float), acc["decimal_latitude"].to_numpy(dtype=float)) if len(acc) else []
        return gpd.GeoDataFrame(acc[OCCURRENCE_COLUMNS], geometry=gpd.GeoSeries(geom, crs=CRS_WGS84), crs=CRS_WGS84)
    if kind in ("threats", "range"):
        cols = COLUMNS[kind]
        return gpd.GeoDataFrame(acc[cols], geometry=gpd.GeoSeries(acc["geometry"].to_numpy(dtype=object) if len(acc) else [], crs=CRS_WGS84),
                                crs=CRS_WGS84)
    return acc[POPULATION_COLUMNS]


def validate_file(path: Path, *, file: str, kind: str | None, spec: FileSpec, manifest: Manifest, ctx: CheckContext,
                  cycle: int | None, raster_dir: Path | None = None, keep_records: bool = True) -> FileResult:
    """Read and check one file. An unreadable file gives a result with ``unreadable`` set
    and one file-level error problem (never raises for bad content).

    With ``keep_records=False`` (``cami-geo validate``) only the counts and problems are
    kept, not the normalised records nor the points for the report map.
    """
    result = FileResult(file=file, kind=kind or "unknown")
    plog_file = ProblemLog(file, np.array([], dtype=np.int64), ctx.overrides)
    if kind is None:
        plog_file.add_file("file_unknown_kind", f"cannot tell what {file} holds: name it occurrences*, threats*, population* or range*, "
                                               "or give its kind under files: in submission.yaml")
        result.problems = plog_file.frame()
        return result
    if kind == "ignore":
        result.notes.append("ignored as the manifest says")
        return result
    try:
        if kind == "raster":
            result.raster = convert_raster(path, file=file, out_dir=raster_dir)
            result.notes.append("raster" + (" converted to Cloud-Optimized GeoTIFF" if raster_dir else " readable"))
            return result
        parts, notes = read_parts(path, name=file, kind=kind, spec=spec)
        for note in notes:
            if note.startswith("OTHER_LAYERS:"):
                plog_file.add_file("file_other_layers", f"{file} has further layers ({note.split(':', 1)[1]}) that were not read; "
                                                        "save each layer as its own file, or name the layer to read under files: in submission.yaml")
            else:
                result.notes.append(note)
        problems, points = [], []
        for part in parts:
            rec, plog = _check_part(part, file=file, ctx=ctx, spec=spec, manifest=manifest, records=keep_records)
            n = len(part.frame)
            rejected = np.zeros(n, dtype=bool)
            rejected[plog.rejected_positions()] = True
            if part.kind == "smart_other":
                rejected[:] = True
            keep = ~rejected
            result.rows_in += n
            result.accepted += int(keep.sum())
            result.rejected += int(rejected.sum())
            if part.kind != "smart_other" and keep_records:
                out = _finish(part.kind, rec, keep, plog, part.rows, file=file, manifest=manifest, cycle=cycle, ctx=ctx)
                prev = result.records.get(part.kind)
                result.records[part.kind] = out if prev is None else pd.concat([prev, out], ignore_index=True)
            if part.kind == "occurrences" and keep_records:
                points.append(pd.DataFrame({"lon": rec["decimal_longitude"].to_numpy(dtype=float),
                                            "lat": rec["decimal_latitude"].to_numpy(dtype=float), "accepted": keep,
                                            "row": part.rows}))
            problems.append(plog.frame())
        if result.rows_in == 0:
            plog_file.add_file("file_no_rows", f"{file} holds a header but no data rows")
        if plog_file.parts:
            problems.append(plog_file.frame())
        problems = [p for p in problems if len(p)]
        result.problems = pd.concat(problems, ignore_index=True) if problems else empty_problems()
        result.points = pd.concat(points, ignore_index=True) if points else None
    except InputError as exc:
        result.unreadable = str(exc)
        plog_file.add_file("file_unreadable", str(exc))
        result.problems = plog_file.frame()
    except CamiGeoError:
        raise
    except Exception as exc:  # a reader library failed on content it should have refused
        log.exception("reading %s failed", file)
        msg = f"{file} could not be read ({type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else 'no detail'})."
        result.unreadable = msg
        plog_file.add_file("file_unreadable", msg)
        result.problems = plog_file.frame()
    return result


def convert_raster(path: Path, *, file: str, out_dir: Path | None) -> dict[str, Any]:
    """Read a GeoTIFF's header and, with ``out_dir``, write it as a Cloud-Optimized GeoTIFF."""
    import rasterio
    import rasterio.shutil
    from rasterio.errors import RasterioError

    try:
        with rasterio.open(path) as src:
            info = {"crs": src.crs.to_string() if src.crs else "", "width": src.width, "height": src.height}
        out_path = ""
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            target = out_dir / f"{path.stem}.tif"
            rasterio.shutil.copy(path, target, driver="COG", compress="DEFLATE")
            out_path = str(target)
    except RasterioError as exc:
        raise InputError(f"{file} is not a readable GeoTIFF ({str(exc).splitlines()[0][:160]}).") from None
    return {"name": path.stem, "path": out_path, **info}


def make_context(settings: dict[str, Any], boundaries: gpd.GeoDataFrame, manifest: Manifest, *, species: str | None = None,
                 today: date | None = None) -> CheckContext:
    registry = registry_from_config(settings)
    ctx = CheckContext(registry=registry, countries=Countries(boundaries), checks=dict(settings.get("checks") or {}),
                       species=species or manifest.species, crs=manifest.crs, range_states=manifest.range_states)
    if today is not None:
        ctx.today = today
    # an unknown manifest species is reported on every row that relies on it (species_unknown
    # with "did you mean"), so one typo does not stop the whole workflow
    return ctx


def file_kind(path: Path, rel: str, manifest: Manifest, *, forced: str | None = None) -> tuple[str | None, FileSpec]:
    """Kind of a file: ``forced`` (CLI --kind), manifest ``files``, its name, its content."""
    spec = manifest.files.get(rel) or manifest.files.get(path.name) or FileSpec()
    kind = forced or spec.kind
    if kind is None and path.suffix.lower() in (".xlsx", ".xlsm") and spec.sheet is None:
        from .io.tables import xlsx_sheet_names

        if set(xlsx_sheet_names(path)) & set(WORKBOOK_SHEETS):
            kind = "workbook"
    kind = kind or kind_from_name(path.name) or sniff_kind(path, rel)
    return kind, spec


def validate_submission(folder: Path, *, settings: dict[str, Any], boundaries: gpd.GeoDataFrame,
                        raster_dir: Path | None = None, files: list[Path] | None = None, kind: str | None = None,
                        species: str | None = None, today: date | None = None, keep_records: bool = True) -> SubmissionResult:
    """Read and check every file of a submission folder (or the given ``files`` in it)."""
    folder = Path(folder)
    mpath = folder / MANIFEST_NAME
    manifest = read_manifest(mpath) if mpath.exists() else Manifest(submission=folder.name)
    cycle = manifest.cycle if manifest.cycle is not None else settings.get("cycle")
    ctx = make_context(settings, boundaries, manifest, species=species, today=today)
    paths = files if files is not None else discover_files(folder)
    declared = set(manifest.files)
    present = {p.relative_to(folder).as_posix() for p in paths} | {p.name for p in paths}
    results = []
    for p in paths:
        rel = p.relative_to(folder).as_posix() if p.is_relative_to(folder) else p.name
        k, spec = file_kind(p, rel, manifest, forced=kind)
        results.append(validate_file(p, file=rel, kind=k, spec=spec, manifest=manifest, ctx=ctx, cycle=cycle,
                                     raster_dir=raster_dir, keep_records=keep_records))
    for name in sorted(declared - present):
        if files is None:
            r = FileResult(file=name, kind=manifest.files[name].kind or "unknown")
            plog = ProblemLog(name, np.array([], dtype=np.int64), ctx.overrides)
            msg = f"{name} is listed in submission.yaml but is not in the submission folder"
            plog.add_file("file_unreadable", msg)
            r.problems, r.unreadable = plog.frame(), msg
            results.append(r)
    return SubmissionResult(submission=manifest.submission, manifest=manifest, files=results, cycle=cycle,
                            countries=ctx.countries)


# -- writing ------------------------------------------------------------------------------

def empty_geo(columns: list[str]) -> gpd.GeoDataFrame:
    import geopandas as gpd

    return gpd.GeoDataFrame({c: pd.Series(dtype=object) for c in columns}, geometry=gpd.GeoSeries([], crs=CRS_WGS84), crs=CRS_WGS84)


def problem_table(res: SubmissionResult) -> pd.DataFrame:
    """All problems with PROBLEM_COLUMNS, in file and row order."""
    p = res.problems()
    out = pd.DataFrame({"submission": res.submission, "file": p["file"], "row": p["row"].astype("Int64"), "field": p["field"],
                        "reason": p["reason"], "severity": p["severity"], "value": p["value"]})
    return out[PROBLEM_COLUMNS]


def report_dict(res: SubmissionResult) -> dict[str, Any]:
    """The validate report: ``{"rows_in", "accepted", "rejected", "problems": [...]}``."""
    p = res.problems()
    row = p["row"].array
    if isinstance(row, pd.arrays.IntegerArray):   # Python ints and None, without a scalar test per row
        rows = [None if na else int(r) for r, na in zip(row.to_numpy(dtype="int64", na_value=0).tolist(), row.isna().tolist())]
    else:
        rows = [(None if pd.isna(r) else int(r)) for r in p["row"]]
    problems = [{"file": f, "row": r, "field": fl, "reason": rs, "severity": sv}
                for f, r, fl, rs, sv in zip(p["file"].tolist(), rows, p["field"].tolist(), p["reason"].tolist(),
                                            p["severity"].tolist())]
    return {"rows_in": res.rows_in, "accepted": res.accepted, "rejected": res.rejected, "problems": problems}


def summary_dict(res: SubmissionResult) -> dict[str, Any]:
    """``validation.json``: manifest, counts per file, problem counts by check and the problems."""
    p = res.problems()
    by_check = p.groupby(["code", "severity"]).size().reset_index(name="n") if len(p) else pd.DataFrame(columns=["code", "severity", "n"])
    return {
        "submission": res.submission, "manifest": res.manifest.as_dict(), "cycle": res.cycle,
        **{k: v for k, v in report_dict(res).items() if k != "problems"},
        "files": [f.summary() for f in res.files],
        "by_check": [{"check": c, "severity": s, "count": int(n)} for c, s, n in by_check.itertuples(index=False)],
        "problems": report_dict(res)["problems"],
    }


INT_COLUMNS = {"source_row", "cycle", "year", "individual_count", "presence", "origin", "seasonal"}
FLOAT_COLUMNS = {"decimal_latitude", "decimal_longitude", "coordinate_uncertainty_m", "estimate_min", "estimate_best",
                 "estimate_max"}


def typed(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``df`` restricted to ``columns`` (+ geometry) with one fixed type per column, so that
    every submission's files, empty or not, have the same schema."""
    keep = columns + (["geometry"] if "geometry" in df.columns else [])
    out = df[keep].copy()
    for c in columns:
        if c in INT_COLUMNS:
            out[c] = pd.to_numeric(out[c], errors="coerce").astype("Int64")
        elif c in FLOAT_COLUMNS:
            out[c] = pd.to_numeric(out[c], errors="coerce").astype("float64")
        elif c == "synthetic":
            out[c] = out[c].astype(bool)
        else:
            col = out[c]
            if len(col) == 0 or not (col.dtype == object or pd.api.types.is_string_dtype(col)):
                out[c] = col.astype("str")
            elif col.isna().any():
                out[c] = col.where(col.notna(), "")
    return out


def _typed(gdf: gpd.GeoDataFrame, columns: list[str]) -> gpd.GeoDataFrame:
    return typed(gdf, columns)


def write_outputs(res: SubmissionResult, outputs: dict[str, Any]) -> None:
    """Write the intake outputs (see docs/architecture.md) for one submission."""
    import geopandas as gpd

    from .textsafe import write_csv

    for kind, cols in (("occurrences", OCCURRENCE_COLUMNS), ("threats", THREAT_COLUMNS), ("range", RANGE_COLUMNS)):
        rec = res.records(kind)
        gdf = gpd.GeoDataFrame(rec, geometry="geometry", crs=CRS_WGS84) if rec is not None else empty_geo(cols)
        path = Path(outputs[kind])
        path.parent.mkdir(parents=True, exist_ok=True)
        _typed(gdf, cols).to_parquet(path, index=False)
    pop = res.records("population")
    write_csv(typed(pop if pop is not None else pd.DataFrame(columns=POPULATION_COLUMNS), POPULATION_COLUMNS), outputs["population"])
    write_csv(problem_table(res), outputs["problems"])
    rasters = [{"submission": res.submission, "source_file": f.file, **f.raster, "synthetic": res.manifest.synthetic}
               for f in res.files if f.raster]
    write_csv(pd.DataFrame(rasters, columns=["submission", "source_file", "name", "path", "crs", "width", "height", "synthetic"]),
              outputs["rasters"])
    Path(outputs["summary"]).write_text(json.dumps(summary_dict(res), ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    from .io.report import validation_html

    Path(outputs["report"]).write_text(validation_html(res, countries=res.countries), encoding="utf-8")


def run_intake_stage(inputs: dict[str, Any], outputs: dict[str, Any], params: dict[str, Any]) -> None:
    """Snakemake stage ``intake``: read, check and normalise one submission.

    Parameters
    ----------
    inputs : ``boundaries`` (boundary layer path), ``files`` (the submission's files)
    outputs : ``occurrences``, ``threats``, ``range`` (GeoParquet, EPSG:4326), ``population``,
        ``problems``, ``rasters`` (CSV), ``summary`` (JSON), ``report`` (HTML), optionally
        ``digest`` (see :func:`cami_geo.workflow.write_digest`)
    params : ``submission_dir`` and ``settings`` (the whole configuration)
    """
    settings = params["settings"]
    boundaries = load_configured(inputs["boundaries"], settings)
    raster_dir = Path(outputs["rasters"]).parent / "rasters"
    res = validate_submission(Path(params["submission_dir"]), settings=settings, boundaries=boundaries, raster_dir=raster_dir)
    write_outputs(res, outputs)
    if outputs.get("digest"):
        rasters = sorted(str(p) for p in raster_dir.rglob("*") if p.is_file()) if raster_dir.is_dir() else []
        write_digest(outputs["digest"], [outputs[k] for k in DIGESTED if outputs.get(k)] + rasters)
    log.info("%s: %d rows in, %d accepted, %d rejected", res.submission, res.rows_in, res.accepted, res.rejected)


DIGESTED = ("occurrences", "threats", "range", "population", "problems", "rasters", "summary")
"""The intake outputs the combine stage reads, named in the intake's digest."""


# -- command line ---------------------------------------------------------------------------

def _default_settings() -> dict[str, Any]:
    import cami_geo
    from .config import load

    repo = Path(cami_geo.__file__).resolve().parents[1]
    return load(repo, Path.cwd(), {})


_PROBLEM_KEYS = ("file", "row", "field", "reason", "severity")


def report_json(report: dict[str, Any]) -> str:
    """``json.dumps(report, ensure_ascii=False, indent=1)`` for the validate report, written
    without the pure-Python encoder that ``indent`` selects (10^5 problems take seconds)."""
    from json.encoder import encode_basestring as enc

    counts = [report.get(k) for k in ("rows_in", "accepted", "rejected")]
    problems = report.get("problems")
    if (list(report) != ["rows_in", "accepted", "rejected", "problems"] or any(type(c) is not int for c in counts)
            or type(problems) is not list):
        return json.dumps(report, ensure_ascii=False, indent=1)
    items = []
    for p in problems:
        if type(p) is not dict or tuple(p) != _PROBLEM_KEYS:
            return json.dumps(report, ensure_ascii=False, indent=1)
        f, r, fl, rs, sv = p["file"], p["row"], p["field"], p["reason"], p["severity"]
        if not (type(f) is str and type(fl) is str and type(rs) is str and type(sv) is str and (r is None or type(r) is int)):
            return json.dumps(report, ensure_ascii=False, indent=1)
        items.append(f'  {{\n   "file": {enc(f)},\n   "row": {"null" if r is None else int.__repr__(r)},\n   "field": {enc(fl)},'
                     f'\n   "reason": {enc(rs)},\n   "severity": {enc(sv)}\n  }}')
    body = "[\n" + ",\n".join(items) + "\n ]" if items else "[]"
    return (f'{{\n "rows_in": {int.__repr__(counts[0])},\n "accepted": {int.__repr__(counts[1])},\n '
            f'"rejected": {int.__repr__(counts[2])},\n "problems": {body}\n}}')


def cli_validate(args) -> int:
    """``cami-geo validate PATH... [--report FILE.json] [--kind K] [--species S] [--boundaries B] [--quiet]``.

    Returns 0 when every row is accepted, 1 when rows were rejected (or a folder holds a
    file of unknown kind), 2 when a file of a folder cannot be read (its sentence goes to
    stderr after the other files' problems); raises :class:`InputError` (exit 2) when a
    single file or the folder itself cannot be read.
    """
    import cami_geo

    settings = _default_settings()
    repo = Path(cami_geo.__file__).resolve().parents[1]
    bconf = settings.get("boundaries") or {}
    if args.boundaries:
        bpath, layer = Path(args.boundaries), None
    else:
        bpath = Path(bconf.get("path", "data/raw/boundaries/countries.gpkg"))
        if not bpath.exists():
            bpath = repo / "data/raw/boundaries/countries.gpkg"
        layer = bconf.get("layer")
    boundaries = load_point_boundaries(bpath, layer=layer, id_field=bconf.get("id_field", "iso3"))
    results = []
    for path in args.paths:
        path = Path(path)
        if path.is_dir():
            res = validate_submission(path, settings=settings, boundaries=boundaries, kind=args.kind, species=args.species,
                                      keep_records=False)
        elif path.is_file():
            res = validate_submission(path.parent, settings=settings, boundaries=boundaries, files=[path], kind=args.kind,
                                      species=args.species, keep_records=False)
            if res.files and res.files[0].kind == "unknown":
                raise InputError(f"cannot tell what {path.name} holds: name it occurrences*, threats*, population* or range*, or pass --kind.")
        else:
            raise InputError(f"{path} does not exist.")
        unreadable = [f.unreadable for f in res.files if f.unreadable]
        if unreadable and not path.is_dir():
            raise InputError(unreadable[0])
        results.append(res)
    report = {"rows_in": 0, "accepted": 0, "rejected": 0, "problems": []}
    for res in results:
        r = report_dict(res)
        for k in ("rows_in", "accepted", "rejected"):
            report[k] += r[k]
        report["problems"].extend(r["problems"])
    if not args.quiet:
        for p in report["problems"]:
            row = "" if p["row"] is None else f":{p['row']}"
            print(f"{p['file']}{row}: {p['severity']}: {p['field'] + ': ' if p['field'] else ''}{p['reason']}")
    n_err = sum(1 for p in report["problems"] if p["severity"] == "error")
    n_warn = len(report["problems"]) - n_err
    print(f"{report['rows_in']} rows in, {report['accepted']} accepted, {report['rejected']} rejected "
          f"({n_err} errors, {n_warn} warnings)")
    if args.report:
        Path(args.report).parent.mkdir(parents=True, exist_ok=True)
        Path(args.report).write_text(report_json(report), encoding="utf-8")
    unreadable = [f.unreadable for res in results for f in res.files if f.unreadable]
    for msg in unreadable:
        print(f"cami-geo: {msg}", file=sys.stderr)
    if unreadable:
        return 2
    # a file of unknown kind in a folder is an error too, though it has no rows
    return 1 if report["rejected"] or n_err else 0
