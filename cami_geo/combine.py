"""Combine and public stages: every submission's checked records into the clean data and
its public copy.

:func:`run_combine_stage` reads what the intake stage wrote for each submission
(``data/processed/submissions/<sub>/{occurrences,threats,range}.parquet``, ``population.csv``,
``problems.csv``, ``rasters.csv``, ``validation.json``) and writes the restricted copy and the
tables; :func:`run_public_stage` reads the restricted copy back and writes the public copy:

- ``restricted/{occurrences,threats,range}.parquet`` and
  ``restricted/species/<slug>/{occurrences,threats,range}.parquet``: the precise records
  (columns of :mod:`cami_geo.model` plus ``geometry``, EPSG:4326) as GeoParquet, whole and
  per species. Only status computations open these.
- (public) ``public/{occurrences,threats,range}.parquet``, ``public/species/<slug>.gpkg`` (a
  GeoPackage with the layers ``occurrences``, ``threats``, ``range``, to open in a GIS) and
  ``public/country/<ISO3>.gpkg``: the same records generalised by
  :mod:`cami_geo.sensitivity` (the only copy maps and reports may show), whole, per species
  and per Range State.
- ``population.csv`` (every population row), ``rejected.csv`` (the problems of severity
  ``error``: the rows not accepted), ``problems.csv`` (every problem),
  ``rasters/index.csv`` (with each COG copied beside it as ``<submission>__<name>.tif``)
  and ``submissions.csv`` (provenance, one row per submission).

Every layer exists even when it is empty, and every species and Range State named in the
plan gets its partitions. A threat with no species goes into every species' partition.
Records are sorted by ``record_id`` (natural order: row 9 before row 10); the GeoPackages
are written with a fixed ``OGR_CURRENT_DATE`` (or ``SOURCE_DATE_EPOCH`` when set), so the
same records give byte-identical files (each Arrow column written in one piece, however the
records were read): Snakemake compares a partition's checksum and
re-runs a species' status, maps and reports only when its partition changed (see
docs/architecture.md, "Incremental runs").
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import logging
import multiprocessing
import os
import re
import shutil
from pathlib import Path
from typing import Any, Iterable, NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from .errors import CamiGeoError, InputError
from .io.vector import GPKG_TIMESTAMP, read_geoparquet, reproducible_gpkg
from .model import COLUMNS, CRS_WGS84, LAYERS, PROBLEM_COLUMNS
from .registry import Registry, load_registry
from .sensitivity import coarser_levels, generalise_occurrences, generalise_threats, normalise_level
from .textsafe import write_csv
from .workflow import path_list, write_digest

log = logging.getLogger("cami_geo.combine")

__all__ = ["LAYERS", "SUBMISSION_COLUMNS", "RASTER_INDEX_COLUMNS", "GPKG_TIMESTAMP",
           "run_combine_stage", "run_public_stage", "read_records", "conform", "write_geopackage", "partition",
           "relative_problem_file"]

SUBMISSION_COLUMNS = ["submission", "contributor", "submitted", "licence", "cycle", "sensitivity",
                      "synthetic", "species", "range_states", "rows_in", "accepted", "rejected", "files"]
"""Columns of ``submissions.csv``; ``species``, ``range_states`` and ``files`` are ';'-joined lists."""

RASTER_INDEX_COLUMNS = ["submission", "name", "path", "source_path"]
"""Leading columns of ``rasters/index.csv`` (any further column of ``rasters.csv`` follows).
``path`` is the copy beside the index, relative to the working directory; ``source_path``
the file intake wrote."""

INT_COLUMNS = {"source_row", "cycle", "year", "individual_count", "presence", "origin", "seasonal"}
FLOAT_COLUMNS = {"decimal_latitude", "decimal_longitude", "coordinate_uncertainty_m",
                 "estimate_min", "estimate_best", "estimate_max"}
BOOL_COLUMNS = {"synthetic"}
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


# -- small helpers ------------------------------------------------------------------------

def _submission_of(path: str | Path) -> str:
    """Submission id of a per-submission file: its folder's name."""
    return Path(path).parent.name


def _text(series: pd.Series) -> pd.Series:
    """Values as text, missing ones as ''. Arrow-backed text stays Arrow-backed (fast)."""
    if isinstance(series.dtype, pd.StringDtype):
        return series.fillna("")
    s = series.astype(object)
    return s.where(s.notna(), "").astype(str)


def _rel(path: str | Path) -> str:
    """Path as given when relative, else relative to the working directory; '/' separators."""
    p = Path(path)
    if p.is_absolute():
        try:
            p = Path(os.path.relpath(p, Path.cwd()))
        except ValueError:  # another drive on Windows
            pass
    return p.as_posix()


# -- reading and conforming ------------------------------------------------------------------

def conform(frame: pd.DataFrame, kind: str, *, source: str, submission: str | None = None) -> pd.DataFrame:
    """``frame`` with exactly the model columns of ``kind`` (plus ``geometry`` for vector kinds).

    Missing columns are added empty; integer columns become ``Int64``, measures ``float64``,
    ``synthetic`` ``boolean``, everything else text (None when empty). Extra columns are
    left out (and logged). ``submission`` fills an empty ``submission`` column.

    Raises
    ------
    InputError
        When a numeric or boolean column holds a value that is not one (intake wrote
        something unexpected), naming the file, column and value.
    """
    columns = COLUMNS[kind]
    extra = [c for c in frame.columns if c not in columns and c != "geometry"
             and not (isinstance(frame, gpd.GeoDataFrame) and c == frame.geometry.name)]
    if extra:
        log.warning("%s: columns not in the data model left out: %s", source, ", ".join(map(str, extra)))
    n = len(frame)
    out: dict[str, Any] = {}
    for col in columns:
        raw = frame[col] if col in frame.columns else pd.Series([None] * n, index=frame.index, dtype=object)
        out[col] = _coerce(raw, col, source)
    if submission is not None:
        sub = out["submission"]
        out["submission"] = sub.where(sub.notna() & (_text(sub) != ""), submission)
    data = pd.DataFrame(out, index=frame.index)
    if kind == "population":
        return data
    if isinstance(frame, gpd.GeoDataFrame) and frame.geometry.name in frame.columns:
        geom = frame.geometry
        if geom.crs is None:
            geom = geom.set_crs(CRS_WGS84)
        elif not geom.crs.equals(CRS_WGS84):
            geom = geom.to_crs(CRS_WGS84)
        values = geom.values
    else:
        values = gpd.GeoSeries([None] * n, index=frame.index, crs=CRS_WGS84).values
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(values, index=frame.index, crs=CRS_WGS84),
                            crs=CRS_WGS84)


def _coerce(raw: pd.Series, col: str, source: str) -> pd.Series:
    if col in INT_COLUMNS or col in FLOAT_COLUMNS:
        if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
            num = raw.astype("float64")  # already numbers (what intake writes): no text round trip
        else:
            text = _text(raw).str.strip()
            num = pd.to_numeric(raw.where(text != "", None) if raw.dtype == object or
                                pd.api.types.is_string_dtype(raw) else raw, errors="coerce")
            bad = num.isna() & (text != "") & ~text.str.lower().isin(["nan", "<na>", "none"])
            if bad.any():
                raise InputError(f"{source}: column {col!r} holds {text[bad].iloc[0]!r} where a number is expected.")
            num = num.astype("float64")
        if col in INT_COLUMNS:
            finite = num.dropna()
            if (finite == np.round(finite)).all():
                return num.astype("Int64")
        return num
    if col in BOOL_COLUMNS:
        if pd.api.types.is_bool_dtype(raw):
            return raw.astype("boolean")
        text = _text(raw).str.strip().str.lower()
        val = pd.Series(pd.NA, index=raw.index, dtype="boolean")
        val[text.isin(_TRUE)] = True
        val[text.isin(_FALSE)] = False
        bad = ~text.isin(_TRUE | _FALSE | {"", "nan", "<na>", "none"})
        if bad.any():
            raise InputError(f"{source}: column {col!r} holds {text[bad].iloc[0]!r} where true or false is expected.")
        return val
    if isinstance(raw.dtype, pd.StringDtype):
        # Arrow-backed text (what GeoParquet and CSV reads give): kept as it is; missing
        # values stay missing (written as NULL).
        return raw
    s = raw.astype(object)
    is_na = s.isna()
    if pd.api.types.infer_dtype(s, skipna=True) not in ("string", "empty"):
        s = s.map(lambda v: v if isinstance(v, str) else str(v))
    return s.where(~is_na, None).astype(object)


def _empty(kind: str) -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series([], dtype=object) for c in COLUMNS[kind]})
    if kind != "population":
        frame = gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries([], crs=CRS_WGS84), crs=CRS_WGS84)
    return conform(frame, kind, source="(empty)")


def _read_vector(path: str) -> gpd.GeoDataFrame:
    """A GeoParquet file as geopandas reads it; the CRS parsed once per process
    (:func:`cami_geo.io.vector.read_geoparquet`: PROJ takes ~35 ms per file for it)."""
    try:
        return read_geoparquet(path)
    except Exception as exc:  # the reader's message is kept, the traceback is not
        raise InputError(f"{path} cannot be read as GeoParquet: {exc}") from None


def _read_csv_text(path: str) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except Exception as exc:
        raise InputError(f"{path} cannot be read as CSV: {exc}") from None


def _sort_records(frame: pd.DataFrame) -> pd.DataFrame:
    """Sort by ``record_id`` in natural order ('sub/f.csv#9' before 'sub/f.csv#10').

    The trailing number of an id compares as a number, the rest as text; the sort is
    stable, so equal ids keep their input order and the output is deterministic.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    ids = pa.array(_text(frame["record_id"]).to_numpy(dtype=object), type=pa.large_string())
    if pc.any(pc.match_substring(ids, "\n")).as_py():
        # '.' stops at a line break: such ids keep the whole-id pattern's (no) match
        parts = pc.extract_regex(ids, r"^(?P<prefix>.*?)(?P<number>\d*)$")  # RE2: linear time
        prefix = parts.field("prefix").to_numpy(zero_copy_only=False)
        digits = parts.field("number")
    else:
        # the same split, ten times faster than the lazy pattern: the prefix is the id without
        # its trailing ASCII digits, the number those digits
        prefix = pc.utf8_rtrim(ids, characters="0123456789").to_numpy(zero_copy_only=False)
        digits = pc.extract_regex(ids, r"(?P<number>\d*)$").field("number")
    number = pc.if_else(pc.equal(pc.utf8_length(digits), 0), None, digits)
    number = pc.fill_null(pc.cast(number, pa.float64()), -1.0).to_numpy()
    codes, _ = pd.factorize(pd.Series(prefix, dtype=object), sort=True)
    order = np.lexsort((number, codes))
    return frame.iloc[order].reset_index(drop=True)


def read_records(paths: Iterable[str], kind: str) -> pd.DataFrame:
    """Concatenate the per-submission files of one kind, conformed and sorted by ``record_id``.

    Parameters
    ----------
    paths : iterable of str
        ``<sub>/occurrences.parquet`` etc. (GeoParquet) or ``<sub>/population.csv``.
    kind : {'occurrences', 'threats', 'range', 'population'}

    Returns
    -------
    DataFrame or GeoDataFrame
        Model columns (plus ``geometry`` in EPSG:4326 for vector kinds); empty with the
        same columns and types when there is no file or no row.
    """
    ordered = sorted(path_list(paths), key=lambda p: (_submission_of(p), p))
    for path in ordered:
        if not Path(path).exists():
            raise InputError(f"{path} does not exist; run the intake stage for submission {_submission_of(path)!r} first.")

    def read_one(path: str) -> pd.DataFrame:
        raw = _read_csv_text(path) if kind == "population" else _read_vector(path)
        return conform(raw, kind, source=path, submission=_submission_of(path))

    # two threads: Parquet decoding and WKB parsing release the GIL, so reading one file
    # overlaps conforming another
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        frames = [f for f in pool.map(read_one, ordered) if len(f)]
    if not frames:
        return _empty(kind)
    if kind == "population":
        data = pd.concat(frames, ignore_index=True)
    else:
        data = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=CRS_WGS84)
    return _sort_records(data)


# -- problems -----------------------------------------------------------------------------

def relative_problem_file(submission: str, file: str) -> str:
    """A problem's file relative to ``data/raw/submissions`` ('sub/occurrences.csv').

    >>> relative_problem_file("saiga_kaz_2026", "occurrences.csv")
    'saiga_kaz_2026/occurrences.csv'
    >>> relative_problem_file("saiga_kaz_2026", "data/raw/submissions/saiga_kaz_2026/a/b.csv")
    'saiga_kaz_2026/a/b.csv'
    >>> relative_problem_file("saiga_kaz_2026", "")
    'saiga_kaz_2026'
    """
    f = str(file or "").replace("\\", "/").strip()
    marker = f"submissions/{submission}/"
    if marker in f:
        f = f.split(marker, 1)[1]
    elif f.startswith(f"{submission}/"):
        f = f[len(submission) + 1:]
    while f.startswith("./"):
        f = f[2:]
    return f"{submission}/{f}" if f else submission


def _read_problems(paths: Iterable[str]) -> pd.DataFrame:
    frames = []
    for path in sorted(path_list(paths), key=lambda p: (_submission_of(p), p)):
        sub = _submission_of(path)
        raw = _read_csv_text(path)
        frame = pd.DataFrame({c: (raw[c] if c in raw.columns else pd.Series([""] * len(raw), dtype=object))
                              for c in PROBLEM_COLUMNS}, index=raw.index).astype(object)
        frame["submission"] = np.where(_text(frame["submission"]).str.strip() == "", sub, frame["submission"])
        frame["file"] = [relative_problem_file(s, f) for s, f in zip(frame["submission"], frame["file"])]
        frames.append(frame)
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in PROBLEM_COLUMNS})
    data = pd.concat(frames, ignore_index=True)
    row_num = pd.to_numeric(data["row"], errors="coerce").fillna(-1)
    order = pd.DataFrame({"s": data["submission"], "f": data["file"], "r": row_num}) \
        .sort_values(["s", "f", "r"], kind="stable").index
    return data.loc[order].reset_index(drop=True)


# -- submissions (provenance) ----------------------------------------------------------------

def _filled(value: Any) -> bool:
    return value not in (None, "", [], {}) and not (isinstance(value, float) and np.isnan(value))


def _read_summary(path: str) -> dict[str, Any]:
    """``validation.json`` flattened: the manifest's fields, then the top level's over them.

    Intake writes ``{"submission": id, "manifest": {...}, "cycle", "rows_in", "accepted",
    "rejected", "files": [{"file", "kind", ...}], ...}``; the top level holds the resolved
    values (e.g. the cycle from the config when the manifest has none), so it wins.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path} does not exist; run the intake stage first.") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path} should hold a JSON object, found {type(data).__name__}.")
    merged: dict[str, Any] = {}
    for key in ("manifest", "provenance", "meta", "submission"):
        if isinstance(data.get(key), dict):
            merged.update({k: v for k, v in data[key].items() if _filled(v)})
    merged.update({k: v for k, v in data.items() if _filled(v) and not isinstance(v, dict)})
    return merged


def _file_names(value: Any) -> list[str]:
    """File names from a manifest ``files`` mapping, a list of names or of ``{"file": ...}``."""
    if isinstance(value, dict):
        return [str(k) for k in value]
    if isinstance(value, (list, tuple)):
        return [str(v.get("file")) if isinstance(v, dict) else str(v) for v in value
                if not isinstance(v, dict) or v.get("file")]
    return [str(value)] if _filled(value) else []


def _join(values: Any) -> str:
    if values is None:
        return ""
    if isinstance(values, dict):
        values = list(values)
    if isinstance(values, str):
        return values
    if isinstance(values, (list, tuple, set)):
        return ";".join(sorted({str(v) for v in values if str(v).strip()}))
    return str(values)


def _first(series: pd.Series) -> Any:
    s = series.dropna()
    s = s[_text(s).str.strip() != ""]
    return s.iloc[0] if len(s) else None


def _record_facts(records: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, dict[str, dict[str, list[str]]]]:
    """Per submission: first non-empty provenance value and the sorted distinct lists."""
    cols = ["contributor", "licence", "cycle", "synthetic"]
    lists = {"species": "species", "range_states": "iso3", "files": "source_file"}
    parts = []
    for frame in records.values():
        keep = ["submission"] + [c for c in cols + list(lists.values()) if c in frame.columns]
        # the distinct value combinations first (in record order, so each submission's first
        # non-empty value is kept): a million records hold a few thousand
        small = frame[keep].drop_duplicates() if len(frame) else frame[keep]
        part = pd.DataFrame({c: _text(small[c]).str.strip() for c in keep})
        parts.append(part)
    data = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["submission"])
    data = data.replace("", None)
    firsts = data.groupby("submission", sort=True)[[c for c in cols if c in data.columns]].first()
    distinct: dict[str, dict[str, list[str]]] = {}
    for key, col in lists.items():
        if col not in data.columns:
            continue
        pairs = data[["submission", col]].dropna().drop_duplicates()
        for sub, vals in pairs.groupby("submission")[col]:
            distinct.setdefault(sub, {})[key] = sorted(vals.tolist())
    return firsts, distinct


def _submissions_table(subs: list[str], summaries: dict[str, dict[str, Any]],
                       records: dict[str, pd.DataFrame], problems: pd.DataFrame) -> pd.DataFrame:
    """One provenance row per submission: ``validation.json`` first, the records second.

    The submission's manifest as intake reports it in ``validation.json`` (top level or
    under ``manifest``/``provenance``/``meta``/``submission``) gives contributor, submitted,
    licence, cycle, sensitivity, synthetic, species, range_states, files and the counts;
    what it leaves out is taken from the accepted records (first value; distinct species,
    Range States and files) and the problems (rejected = distinct rows with an error).
    """
    firsts, distinct = _record_facts(records)
    sens = records["occurrences"][["submission", "sensitivity"]].astype(object).dropna().drop_duplicates()
    sens_by_sub = {s: sorted(v.tolist()) for s, v in sens.groupby("submission")["sensitivity"]}
    counts = pd.Series(0, index=pd.Index(subs, dtype=object), dtype="int64")
    for frame in records.values():
        counts = counts.add(_text(frame["submission"]).value_counts(), fill_value=0).astype("int64")
    errors = problems[_text(problems["severity"]).str.strip().str.lower() == "error"]
    n_rejected = errors[["submission", "file", "row"]].drop_duplicates().groupby("submission").size()
    prob_files = problems[["submission", "file"]].drop_duplicates()
    rows = []
    for sub in subs:
        meta = summaries.get(sub, {})
        rec_first = firsts.loc[sub].to_dict() if sub in firsts.index else {}
        rec_lists = distinct.get(sub, {})

        def pick(key: str, *alts: str) -> Any:
            for k in (key, *alts):
                if meta.get(k) not in (None, "", [], {}):
                    return meta[k]
            return rec_first.get(key)

        def pick_list(key: str) -> Any:
            value = meta.get(key)
            return value if value not in (None, "", [], {}) else rec_lists.get(key, [])

        files = _file_names(pick_list("files"))
        if not files:
            files = [f.split("/", 1)[1] for f in prob_files.loc[prob_files["submission"] == sub, "file"] if "/" in f]
        sensitivity = meta.get("sensitivity")
        if sensitivity in (None, ""):
            sensitivity = sens_by_sub.get(sub, [])
        accepted = meta.get("accepted", int(counts.get(sub, 0)))
        rejected = meta.get("rejected", int(n_rejected.get(sub, 0)))
        synthetic = pick("synthetic")
        rows.append({
            "submission": sub,
            "contributor": pick("contributor"),
            "submitted": pick("submitted", "date"),
            "licence": pick("licence", "license"),
            "cycle": pick("cycle"),
            "sensitivity": _join(sensitivity),
            "synthetic": None if synthetic is None else str(synthetic).strip().lower() in _TRUE,
            "species": _join(pick_list("species")),
            "range_states": _join(pick_list("range_states")),
            "rows_in": meta.get("rows_in", int(accepted) + int(rejected)),
            "accepted": accepted,
            "rejected": rejected,
            "files": _join(files),
        })
    table = pd.DataFrame({c: pd.Series([r[c] for r in rows], dtype=object) for c in SUBMISSION_COLUMNS})
    for col in ("rows_in", "accepted", "rejected", "cycle"):
        table[col] = pd.to_numeric(table[col], errors="coerce").astype("Int64")
    table["synthetic"] = table["synthetic"].astype("boolean")
    for col in ("contributor", "submitted", "licence"):
        table[col] = pd.Series([None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
                                for v in table[col]], index=table.index, dtype=object)
    return table


def _submission_levels(subs: list[str], summaries: dict[str, dict[str, Any]]) -> dict[str, str | None]:
    out = {}
    for sub in subs:
        try:
            out[sub] = normalise_level(summaries.get(sub, {}).get("sensitivity"))
        except InputError as exc:
            raise InputError(f"Submission {sub!r}: {exc}") from None
    return out


# -- rasters -------------------------------------------------------------------------------

def _resolve_raster(value: str, csv_path: Path) -> Path | None:
    p = Path(value)
    candidates = [p] if p.is_absolute() else [Path.cwd() / p, csv_path.parent / p,
                                                csv_path.parent / "rasters" / p.name]
    return next((c for c in candidates if c.is_file()), None)


def _rasters(paths: Iterable[str], out_csv: str) -> pd.DataFrame:
    folder = Path(out_csv).parent
    rows: list[dict[str, Any]] = []
    extra_cols: list[str] = []
    for path in sorted(path_list(paths), key=lambda p: (_submission_of(p), p)):
        sub = _submission_of(path)
        table = _read_csv_text(path)
        if table.empty:
            continue
        path_col = next((c for c in ("path", "cog", "file", "source_path") if c in table.columns), None)
        if path_col is None:
            raise InputError(f"{path} has no 'path' column naming the raster files (columns: {', '.join(table.columns)}).")
        used: set[str] = set()
        for _, rec in table.iterrows():
            src = _resolve_raster(rec[path_col], Path(path))
            if src is None:
                raise InputError(f"Raster {rec[path_col]!r} listed in {path} does not exist.")
            name = str(rec.get("name") or "").strip() or src.stem
            safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "raster"
            base, k = safe, 2
            while safe in used:
                safe, k = f"{base}_{k}", k + 1
            used.add(safe)
            dest = folder / f"{sub}__{safe}.tif"
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
            row = {c: rec[c] for c in table.columns if c not in (path_col, "name", "submission")}
            extra_cols += [c for c in row if c not in extra_cols]
            rows.append({"submission": sub, "name": name, "path": _rel(dest), "source_path": _rel(src), **row})
    index = pd.DataFrame(rows, columns=RASTER_INDEX_COLUMNS + [c for c in extra_cols if c not in RASTER_INDEX_COLUMNS])
    return index.sort_values(["submission", "name"], kind="stable").reset_index(drop=True)


# -- GeoPackage writing ----------------------------------------------------------------------

def _geometry_type(kind: str, gdf: gpd.GeoDataFrame) -> str:
    """One declared geometry type per layer, the same for every partition."""
    kinds = shapely.GeometryType
    types = set(np.unique(shapely.get_type_id(np.asarray(gdf.geometry.values, dtype=object))).tolist())
    types.discard(kinds.MISSING)
    if kind == "occurrences":
        return "Point" if types <= {kinds.POINT} else "Unknown"
    if kind == "range":
        return "MultiPolygon" if types <= {kinds.POLYGON, kinds.MULTIPOLYGON} else "Unknown"
    return "Unknown"


@dataclasses.dataclass(frozen=True)
class GpkgTable:
    """A layer as the Arrow table pyogrio's ``write_dataframe(use_arrow=True)`` hands to GDAL
    (:func:`gpkg_table`): the same table gives the same GeoPackage bytes as the frame, and
    partitions are taken from it row by row without converting each again."""

    table: Any
    """pyarrow Table, each column in one piece; ``geometry`` as WKB."""
    crs: str | None
    geometry: str
    """Name of the geometry column."""

    def take(self, positions: np.ndarray) -> "GpkgTable":
        return dataclasses.replace(self, table=self.table.take(positions))

    def __len__(self) -> int:
        return self.table.num_rows


def gpkg_table(frame: gpd.GeoDataFrame, geometry_type: str) -> GpkgTable | None:
    """``frame`` converted as ``pyogrio.write_dataframe(frame, geometry_type=geometry_type,
    promote_to_multi=geometry_type.startswith("Multi"), use_arrow=True)`` converts it; None
    when a column's conversion could depend on which rows are written (object columns of
    other values than text, datetimes with a time zone, categories): such a frame's
    partitions are converted one by one by pyogrio itself.

    Text columns holding only missing values become ``string`` (pyogrio turns Arrow's null
    type into ``string``), so a partition taken from this table has the types pyogrio would
    give the partition's own rows; the geometry column is always ``binary`` (as pyogrio
    makes it when every geometry is missing).
    """
    import pyarrow as pa
    from geopandas.array import to_wkb

    name = frame.geometry.name
    for col, dtype in frame.dtypes.items():
        if col == name:
            continue
        if isinstance(dtype, (pd.DatetimeTZDtype, pd.CategoricalDtype)):
            return None
        if dtype == "object" and pd.api.types.infer_dtype(frame[col]) not in ("string", "empty"):
            return None
    crs = None
    if frame.crs:
        epsg = frame.crs.to_epsg()
        crs = f"EPSG:{epsg}" if epsg else frame.crs.to_wkt("WKT1_GDAL")
    values = np.asarray(frame.geometry.values, dtype=object)
    if geometry_type.startswith("Multi") and len(values):  # pyogrio's promote_to_multi
        values = values.copy()
        type_id = shapely.get_type_id(values)
        kinds = shapely.GeometryType
        for single, make in ((kinds.POINT, shapely.multipoints), (kinds.LINESTRING, shapely.multilinestrings),
                             (kinds.POLYGON, shapely.multipolygons)):
            mask = type_id == single
            if mask.any():
                values[mask] = make(np.atleast_2d(values[mask]), axis=0)
    df = pd.DataFrame(frame, copy=False)
    df[name] = to_wkb(gpd.array.from_shapely(values))
    table = pa.Table.from_pandas(df, preserve_index=False)
    for i, field in enumerate(table.schema):
        if field.name == name and not (pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type)):
            table = table.set_column(i, field.with_type(pa.binary()), table[i].cast(pa.binary()))
        elif pa.types.is_null(field.type):
            table = table.set_column(i, field.with_type(pa.string()), table[i].cast(pa.string()))
    return GpkgTable(table.combine_chunks(), crs, name)


def write_geopackage(path: str | Path, layers: dict[str, gpd.GeoDataFrame | GpkgTable],
                     geometry_types: dict[str, str]) -> None:
    """Write ``layers`` (name -> frame, or the frame's :class:`GpkgTable`) into one
    GeoPackage, replacing the file.

    Every layer is created even when empty (with its declared geometry type and fields);
    timestamps are fixed (see :data:`GPKG_TIMESTAMP`) so the same frames give the same
    bytes. The file is written beside the target and moved into place at the end.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.gpkg")
    if tmp.exists():
        tmp.unlink()
    try:
        with reproducible_gpkg():
            for name, frame in layers.items():
                gtype = geometry_types[name]
                if isinstance(frame, GpkgTable):
                    pyogrio.write_arrow(frame.table, tmp, layer=name, driver="GPKG", geometry_name=frame.geometry,
                                        geometry_type=gtype, crs=frame.crs)
                else:
                    pyogrio.write_dataframe(frame, tmp, layer=name, driver="GPKG", geometry_type=gtype,
                                            promote_to_multi=gtype.startswith("Multi"), use_arrow=True)
        os.replace(tmp, path)
    except Exception as exc:
        if tmp.exists():
            tmp.unlink()
        raise CamiGeoError(f"{path} cannot be written: {exc}") from None


def _slugs(frame: pd.DataFrame) -> np.ndarray:
    return _text(frame["species_slug"]).str.strip().to_numpy(dtype=object)


def partition(frame: gpd.GeoDataFrame, slug: str, *, include_unassigned: bool,
              slugs: np.ndarray | None = None) -> gpd.GeoDataFrame:
    """Rows of one species (``species_slug == slug``), plus those with no species if asked.

    ``slugs`` may pass the frame's stripped ``species_slug`` values, computed once for
    many partitions.
    """
    return frame.iloc[_species_rows(frame, slug, include_unassigned=include_unassigned, slugs=slugs)]


def _species_rows(frame: pd.DataFrame, slug: str, *, include_unassigned: bool,
                  slugs: np.ndarray | None = None) -> np.ndarray:
    """Positions of :func:`partition`'s rows."""
    slugs = _slugs(frame) if slugs is None else slugs
    mask = slugs == slug
    if include_unassigned:
        mask |= slugs == ""
    return np.flatnonzero(mask)


def _country_rows(frame: gpd.GeoDataFrame, geoms: dict[str, Any]) -> dict[str, np.ndarray]:
    """Positions of the rows of each Range State in ``geoms`` (ISO3 -> boundary, or None):
    ``iso3`` equal to it, or a geometry touching its boundary (a road or a range crosses
    borders; the same rule the Range State map applies). One spatial index and one bulk
    query for all Range States."""
    if len(frame) == 0:
        return {iso3: np.empty(0, dtype=np.intp) for iso3 in geoms}
    codes = _text(frame["iso3"]).str.strip().str.upper().to_numpy(dtype=object)
    values = np.asarray(frame.geometry.values, dtype=object)
    located = np.flatnonzero(~shapely.is_missing(values) & ~shapely.is_empty(values))
    keys = [k for k, g in geoms.items() if g is not None]
    hits = {k: np.zeros(len(frame), dtype=bool) for k in geoms}
    if len(located) and keys:
        tree = shapely.STRtree(values[located])
        which, rows = tree.query(np.array([geoms[k] for k in keys], dtype=object), predicate="intersects")
        for i, r in zip(which, rows):
            hits[keys[i]][located[r]] = True
    return {iso3: np.flatnonzero((codes == iso3) | hits[iso3]) for iso3 in geoms}


def write_geoparquet(path: str | Path, frame: gpd.GeoDataFrame) -> None:
    """One layer as GeoParquet (EPSG:4326), written beside the target and moved into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.parquet")
    try:
        frame.to_parquet(tmp, index=False, compression="zstd", write_covering_bbox=False)
        os.replace(tmp, path)
    except Exception as exc:
        if tmp.exists():
            tmp.unlink()
        raise CamiGeoError(f"{path} cannot be written: {exc}") from None


class _Rows(NamedTuple):
    """Rows ``positions`` of ``source`` (a frame or its :class:`GpkgTable`): a partition's
    layer, taken only when its file is written (one partition's copy in memory at a time)."""

    source: Any
    positions: np.ndarray

    def take(self) -> Any:
        return self.source.take(self.positions)


_TASKS: list[tuple[str, dict[str, Any], dict[str, str]]] = []
"""Tasks of the batch being written; forked workers find theirs here (the frames are inherited
with the process, never pickled). One batch at a time (:class:`PartitionBatch`)."""


def _one_chunk(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``frame`` with each Arrow-backed column in one piece.

    GDAL and Parquet write an Arrow column piece by piece, so the bytes of a file depend on
    where the column's pieces begin; those follow how the records were read (per
    submission, per batch of a file read back). In one piece, the same records give the
    same bytes however they were read, and a partition whose records did not change keeps
    its checksum when other submissions change.
    """
    pieces = {}
    for name in frame.columns:
        array = frame[name].array
        data = getattr(array, "_pa_array", None)  # ArrowExtensionArray and ArrowStringArray
        if data is not None and data.num_chunks > 1:
            one = data.combine_chunks()
            # text keeps its dtype (pandas' "str", missing as NaN, or "string", missing as NA)
            one = type(array)(one, dtype=array.dtype) if isinstance(array.dtype, pd.StringDtype) else type(array)(one)
            pieces[name] = pd.Series(one, index=frame.index, name=name)
    if not pieces:
        return frame
    out = frame.copy(deep=False)
    for name, series in pieces.items():
        out[name] = series
    return out


def _write_task(path: str, layers: dict[str, Any], gtypes: dict[str, str]) -> None:
    """Write one partition file and its digest ``<file>.sha256``, which the rules that read
    the partition depend on (:func:`cami_geo.workflow.write_digest`). A layer is a frame,
    a :class:`GpkgTable` (GeoPackage only) or :class:`_Rows` of either."""
    layers = {name: frame.take() if isinstance(frame, _Rows) else frame for name, frame in layers.items()}
    layers = {name: frame if isinstance(frame, GpkgTable) else _one_chunk(frame) for name, frame in layers.items()}
    if str(path).endswith(".parquet"):
        (frame,) = layers.values()
        write_geoparquet(path, frame)
    else:
        write_geopackage(path, layers, gtypes)
    write_digest(f"{path}.sha256", [path])


def _write_batch_task(index: int) -> str:
    path, layers, gtypes = _TASKS[index]
    _write_task(path, layers, gtypes)
    return path


class PartitionBatch:
    """Partition files (GeoPackage, or one GeoParquet layer) being written, ``workers`` at a
    time, while the caller goes on; :meth:`wait` returns when all are written (or raises a
    worker's error).

    With more than one worker the files are written by forked processes (GDAL's GeoPackage
    writer and Parquet encoding each hold one core per file; the partitions are
    independent), largest first; with one, they are written before the constructor returns.
    The bytes do not depend on ``workers``. Combine writes its tables meanwhile. One batch at
    a time per process.
    """

    def __init__(self, tasks: list[tuple[str, dict[str, Any], dict[str, str]]], workers: int = 1):
        order = sorted(range(len(tasks)), key=lambda i: -sum(_rows(f) for f in tasks[i][1].values()))
        workers = max(1, min(int(workers or 1), len(tasks)))
        self._pool = None
        self._futures: list[concurrent.futures.Future] = []
        if workers == 1 or "fork" not in multiprocessing.get_all_start_methods():
            for i in order:
                _write_task(*tasks[i])
            return
        if _TASKS:
            raise RuntimeError("a partition batch is being written already")
        _TASKS.extend(tasks)
        ctx = multiprocessing.get_context("fork")
        self._pool = concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
        self._futures = [self._pool.submit(_write_batch_task, i) for i in order]

    def wait(self) -> None:
        try:
            for future in self._futures:
                future.result()
        finally:
            if self._pool is not None:
                self._pool.shutdown(cancel_futures=True)
                _TASKS.clear()


def write_partitions(tasks: list[tuple[str, dict[str, Any], dict[str, str]]],
                     workers: int = 1) -> None:
    """Write partition files ``workers`` at a time (:class:`PartitionBatch`) and return."""
    PartitionBatch(tasks, workers).wait()


def _rows(layer: Any) -> int:
    """Number of rows a task's layer writes."""
    return len(layer.positions) if isinstance(layer, _Rows) else len(layer)


def _split_by(keys: np.ndarray) -> dict[str, np.ndarray]:
    """Positions of the rows of each value of ``keys`` (one value per row), in row order.

    One stable sort, then slices: much cheaper on a million rows than one boolean
    selection per key.
    """
    codes, uniques = pd.factorize(pd.Series(keys, dtype=object), sort=True)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(uniques) + 1))
    return {str(k): order[bounds[i]:bounds[i + 1]] for i, k in enumerate(uniques)}


def partition_key(path: str | Path) -> tuple[str, tuple[str, ...]]:
    """The partition a file holds and its layers: ``<key>.gpkg`` (every layer) or
    ``<key>/<layer>.parquet`` (one layer)."""
    p = Path(path)
    if p.suffix == ".parquet":
        if p.stem not in LAYERS:
            raise CamiGeoError(f"{path}: a GeoParquet partition is named <key>/<layer>.parquet, layer one of {LAYERS}.")
        return p.parent.name, (p.stem,)
    return p.stem, LAYERS


def _partition_tasks(species_paths: list[str], country_paths: list[str], layers: dict[str, gpd.GeoDataFrame],
                     countries: gpd.GeoDataFrame | None) -> list[tuple[str, dict[str, Any], dict[str, str]]]:
    """Partition files of one copy: per species (and per Range State when asked), each
    layer as rows (:class:`_Rows`) of the copy's layer, taken when the file is written.

    Threats (few, and those with no species go to every species) and Range State parts
    by geometry are selected row by row; occurrences and range polygons are split once.
    GeoPackage partitions are taken from each layer's :class:`GpkgTable`, converted for
    GDAL once for all partitions.
    """
    gtypes: dict[str, str] = {}  # GeoPackage layers only
    tables: dict[str, Any] = {}
    if any(Path(p).suffix == ".gpkg" for p in species_paths + country_paths):
        gtypes = {name: _geometry_type(name, frame) for name, frame in layers.items()}
        tables = {name: gpkg_table(frame, gtypes[name]) for name, frame in layers.items()}
    none = np.empty(0, dtype=np.intp)

    def rows(path: str, name: str, positions: np.ndarray) -> _Rows:
        source = tables.get(name) if Path(path).suffix == ".gpkg" else None
        return _Rows(layers[name] if source is None else source, positions)

    tasks = []
    if species_paths:
        slugs = {name: _slugs(frame) for name, frame in layers.items()}
        by_species = {name: _split_by(slugs[name]) for name in layers if name != "threats"}
    for sp_path in species_paths:
        slug, names = partition_key(sp_path)
        parts = {}
        for name in names:
            if name == "threats":
                positions = _species_rows(layers[name], slug, include_unassigned=True, slugs=slugs[name])
            else:
                positions = by_species[name].get(slug, none)
            parts[name] = rows(sp_path, name, positions)
        tasks.append((sp_path, parts, gtypes))
    if country_paths:
        keys = {p: partition_key(p) for p in country_paths}
        geoms = {k.upper(): (countries.loc[k.upper(), "geometry"] if countries is not None
                             and k.upper() in countries.index else None) for k, _ in keys.values()}
        occ = layers["occurrences"]
        by_country = {"occurrences": _split_by(_text(occ["iso3"]).str.strip().str.upper().to_numpy(dtype=object))}
        by_country.update({name: _country_rows(layers[name], geoms) for name in layers if name != "occurrences"})
    for c_path in country_paths:
        key, names = keys[c_path]
        parts = {name: rows(c_path, name, by_country[name].get(key.upper(), none)) for name in names}
        tasks.append((c_path, parts, gtypes))
    return tasks


# -- the stage -----------------------------------------------------------------------------

def _registry(params: dict[str, Any]) -> Registry:
    registry = params.get("registry")
    if isinstance(registry, Registry):
        return registry
    settings = params.get("settings") or {}
    from .workflow import registry_from_config

    return registry_from_config(settings) if settings else load_registry()


def run_combine_stage(inputs: dict[str, Any], outputs: dict[str, Any], params: dict[str, Any]) -> None:
    """Combine every submission's intake outputs into the clean data (the restricted, precise
    copy), the population, problem, rejected and raster tables and the provenance table.
    :func:`run_public_stage` then makes the public copy from the restricted one.

    Parameters
    ----------
    inputs : dict
        Lists of per-submission files (possibly empty): ``occurrences``, ``threats``,
        ``range`` (GeoParquet), ``population``, ``problems``, ``rasters`` (CSV),
        ``summaries`` (``validation.json``). A file's submission is its folder's name.
    outputs : dict
        ``restricted_<layer>`` for layer in occurrences, threats, range (GeoParquet, each
        with its digest ``<file>.sha256``), ``restricted_species`` (a list of partition files
        ``<slug>/<layer>.parquet``), ``population``, ``rejected``, ``problems``, ``rasters``
        (index CSV; the COGs are copied beside it), ``submissions`` (CSV).
    params : dict
        ``species`` (the plan's slugs), ``settings`` (the configuration), ``version``,
        ``threads`` (partition files written in parallel).

    Raises
    ------
    InputError
        When a per-submission file is missing or unreadable, or holds a value of the
        wrong type, with one sentence naming it.
    """
    summary_paths = path_list(inputs.get("summaries"))
    subs = sorted({_submission_of(p) for key in ("occurrences", "threats", "range", "population",
                                                 "problems", "rasters", "summaries")
                   for p in path_list(inputs.get(key))})
    summaries = {_submission_of(p): _read_summary(p) for p in summary_paths}
    _submission_levels(subs, summaries)  # a bad sensitivity level stops the run here, not one stage later

    occ = read_records(inputs.get("occurrences"), "occurrences")
    thr = read_records(inputs.get("threats"), "threats")
    rng = read_records(inputs.get("range"), "range")
    pop = read_records(inputs.get("population"), "population")
    problems = _read_problems(inputs.get("problems"))
    log.info("%d submissions, %d occurrences, %d threats, %d range polygons, %d population rows, "
             "%d problems", len(subs), len(occ), len(thr), len(rng), len(pop), len(problems))

    # The restricted copy's files are written by forked workers while this process writes
    # the tables (whole copies and partitions, largest first).
    restricted = {"occurrences": occ, "threats": thr, "range": rng}
    batch = PartitionBatch(
        [(outputs[f"restricted_{name}"], {name: frame}, {}) for name, frame in restricted.items()
         if outputs.get(f"restricted_{name}")]
        + _partition_tasks(path_list(outputs.get("restricted_species")), [], restricted, None),
        int(params.get("threads") or 1))
    try:
        write_csv(pop, outputs["population"])
        write_csv(problems, outputs["problems"])
        errors = problems[_text(problems["severity"]).str.strip().str.lower() == "error"]
        write_csv(errors.reset_index(drop=True), outputs["rejected"])
        write_csv(_rasters(inputs.get("rasters"), outputs["rasters"]), outputs["rasters"])
        table = _submissions_table(subs, summaries, {"occurrences": occ, "threats": thr, "range": rng,
                                                     "population": pop}, problems)
        write_csv(table, outputs["submissions"])
    finally:
        batch.wait()
    log.info("%d rejected rows, %d species partitions", len(errors),
             len(path_list(outputs.get("restricted_species"))))


def _read_copy(path: str | None, kind: str) -> gpd.GeoDataFrame:
    """One layer of the restricted copy as combine wrote it (its columns and types kept)."""
    if not path:
        return _empty(kind)
    if not Path(path).exists():
        raise InputError(f"{path} does not exist; run the combine stage first.")
    return _read_vector(path)


def run_public_stage(inputs: dict[str, Any], outputs: dict[str, Any], params: dict[str, Any]) -> None:
    """The public copy: the restricted copy generalised as :mod:`cami_geo.sensitivity` says,
    whole, per species and per Range State (the only copy maps and reports may show).

    A separate stage from :func:`run_combine_stage` so that the status stage, which reads
    only the restricted copy, runs while this one writes the public files.

    Parameters
    ----------
    inputs : dict
        ``restricted_<layer>`` for layer in occurrences, threats, range (GeoParquet, as
        combine wrote them); ``summaries``: each submission's ``validation.json`` (its
        manifest's sensitivity level is one of the levels weighed, the coarsest wins);
        ``boundaries``: the boundary layer (for the Range State partitions).
    outputs : dict
        ``public_<layer>`` (GeoParquet), ``public_species`` and ``public_country`` (lists of
        partition files, each ``<key>.gpkg`` with every layer, key a species slug or an ISO3
        code); every file with its digest ``<file>.sha256``.
    params : dict
        ``settings`` (the configuration; its ``registry`` section extends the registry),
        ``version``, ``threads`` (partition files written in parallel).
    """
    registry = _registry(params)
    summary_paths = path_list(inputs.get("summaries"))
    summaries = {_submission_of(p): _read_summary(p) for p in summary_paths}
    occ = _read_copy(inputs.get("restricted_occurrences"), "occurrences")
    thr = _read_copy(inputs.get("restricted_threats"), "threats")
    rng = _read_copy(inputs.get("restricted_range"), "range")
    subs = set(summaries) | set(pd.unique(_text(occ["submission"]))) | set(pd.unique(_text(thr["submission"])))
    levels = _submission_levels(sorted(subs), summaries)  # None where a submission has no summary

    # The submission's level is one of the levels weighed (the coarsest wins).
    sub_level_occ = pd.Series(_text(occ["submission"]).map(levels).to_numpy(), index=occ.index, dtype=object)
    occ_req = occ.assign(sensitivity=coarser_levels(occ["sensitivity"], sub_level_occ))
    pub_occ = generalise_occurrences(occ_req, registry)
    thr_req = thr.assign(sensitivity=pd.Series(_text(thr["submission"]).map(levels).to_numpy(),
                                               index=thr.index, dtype=object))
    pub_thr = generalise_threats(thr_req, registry).drop(columns="sensitivity")
    public = {"occurrences": pub_occ[occ.columns], "threats": pub_thr[thr.columns], "range": rng}

    country_paths = path_list(outputs.get("public_country"))
    countries = None
    if country_paths:
        from .boundaries import load_configured

        countries = load_configured(inputs["boundaries"], params.get("settings") or {})
    write_partitions(
        [(outputs[f"public_{name}"], {name: frame}, {}) for name, frame in public.items() if outputs.get(f"public_{name}")]
        + _partition_tasks(path_list(outputs.get("public_species")), country_paths, public, countries),
        int(params.get("threads") or 1))
    log.info("%d occurrences, %d threats, %d range polygons in the public copy; %d species and %d Range State "
             "partitions", len(pub_occ), len(pub_thr), len(rng), len(path_list(outputs.get("public_species"))),
             len(country_paths))
