"""The submission manifest (``submission.yaml``) and the kind of each file."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import InputError
from ..registry import SENSITIVITY_LEVELS

MANIFEST_NAME = "submission.yaml"
TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".xlsx", ".xlsm", ".xls")
VECTOR_SUFFIXES = (".gpkg", ".geojson", ".json", ".shp", ".fgb", ".kml", ".gml")
RASTER_SUFFIXES = (".tif", ".tiff")
KIND_PREFIXES = {
    "occurrences": ("occurrence", "occurrences", "occ", "records", "sightings", "observations"),
    "threats": ("threat", "threats", "infrastructure"),
    "population": ("population", "populations", "estimates"),
    "range": ("range", "ranges", "distribution"),
}
KINDS = ("occurrences", "threats", "population", "range", "raster", "smart", "workbook", "ignore")


@dataclass
class FileSpec:
    """How to read one file: its kind and, optionally, sheet, CRS of x/y columns, layer."""

    kind: str | None = None
    sheet: str | None = None
    crs: str | None = None
    layer: str | None = None


@dataclass
class Manifest:
    """The contents of ``submission.yaml`` (every key optional)."""

    submission: str
    species: str | None = None
    range_states: tuple[str, ...] = ()
    contributor: str = ""
    submitted: str = ""
    cycle: int | None = None
    licence: str = ""
    sensitivity: str | None = None
    files: dict[str, FileSpec] = field(default_factory=dict)
    crs: str | None = None
    synthetic: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"submission": self.submission, "species": self.species, "range_states": list(self.range_states),
                "contributor": self.contributor, "submitted": self.submitted, "cycle": self.cycle,
                "licence": self.licence, "sensitivity": self.sensitivity, "crs": self.crs,
                "synthetic": self.synthetic,
                "files": {k: {kk: vv for kk, vv in v.__dict__.items() if vv is not None} for k, v in self.files.items()}}


def _where(path: Path, key: str) -> str:
    return f"{path.parent.name}/{path.name} key {key!r}"


def read_manifest(path: str | Path, *, submission: str | None = None) -> Manifest:
    """Read and check ``submission.yaml``; raise :class:`InputError` with one sentence if it is wrong."""
    path = Path(path)
    submission = submission or path.parent.name
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8-sig")) or {}
    except yaml.YAMLError as exc:
        msg = str(exc).replace("\n", " ")
        raise InputError(f"{path.parent.name}/{path.name} is not valid YAML ({msg[:200]}).") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path.parent.name}/{path.name} cannot be read ({exc}).") from None
    if not isinstance(data, dict):
        raise InputError(f"{path.parent.name}/{path.name} must be a mapping of keys to values.")
    known = {"species", "range_states", "contributor", "submitted", "cycle", "licence", "license", "sensitivity",
             "files", "crs", "synthetic", "notes", "title", "description", "contact"}
    unknown = sorted(set(map(str, data)) - known)
    if unknown:
        raise InputError(f"{_where(path, unknown[0])} is not a known key (known: {', '.join(sorted(known))}).")
    sens = data.get("sensitivity")
    if sens is not None and str(sens) not in SENSITIVITY_LEVELS:
        raise InputError(f"{_where(path, 'sensitivity')}: {sens!r} is not one of {', '.join(SENSITIVITY_LEVELS)}.")
    cycle = data.get("cycle")
    if cycle is not None:
        try:
            cycle = int(cycle)
        except (TypeError, ValueError):
            raise InputError(f"{_where(path, 'cycle')}: {cycle!r} is not a year.") from None
    rs = data.get("range_states") or []
    if isinstance(rs, str):
        rs = re.split(r"[;,\s]+", rs)
    files: dict[str, FileSpec] = {}
    for name, spec in (data.get("files") or {}).items():
        if isinstance(spec, str):
            spec = {"kind": spec}
        if not isinstance(spec, dict):
            raise InputError(f"{_where(path, 'files')}: entry {name!r} must be a kind or a mapping with kind:.")
        kind = spec.get("kind")
        if kind is not None and kind not in KINDS:
            raise InputError(f"{_where(path, 'files')}: kind {kind!r} of {name!r} is not one of {', '.join(KINDS)}.")
        files[str(name)] = FileSpec(kind=kind, sheet=spec.get("sheet"), crs=None if spec.get("crs") is None else str(spec.get("crs")),
                                    layer=spec.get("layer"))
    return Manifest(
        submission=submission,
        species=None if data.get("species") in (None, "") else str(data["species"]),
        range_states=tuple(str(r).strip().upper() for r in rs if str(r).strip()),
        contributor=str(data.get("contributor") or ""),
        submitted=str(data.get("submitted") or ""),
        cycle=cycle,
        licence=str(data.get("licence") or data.get("license") or ""),
        sensitivity=None if sens is None else str(sens),
        files=files,
        crs=None if data.get("crs") is None else str(data["crs"]),
        synthetic=bool(data.get("synthetic", False)),
    )


def kind_from_name(name: str) -> str | None:
    """The kind a file's name says (``occurrences*``, ``threats*``, ``population*``,
    ``range*``, ``*.tif``), or None."""
    p = Path(name)
    if p.suffix.lower() in RASTER_SUFFIXES:
        return "raster"
    stem = p.name.lower()
    for kind, prefixes in KIND_PREFIXES.items():
        if any(stem.startswith(px) for px in prefixes):
            return kind
    return None
