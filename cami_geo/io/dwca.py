"""GBIF downloads: the Darwin Core Archive zip (``meta.xml`` names the core file, its
delimiter, header lines and terms) and the simple download (tab-separated despite .csv)."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from .archives import check_members, open_zip
from .tables import Table, decode, drop_blank_rows

_ESCAPES = {"\\t": "\t", "\\n": "\n", "\\r": "\r", "\\r\\n": "\n", "": ""}


def _unescape(v: str | None, default: str) -> str:
    if v is None:
        return default
    return _ESCAPES.get(v, v)


def is_dwca(path: str | Path) -> bool:
    """Whether a zip archive holds a Darwin Core Archive (``meta.xml``)."""
    try:
        with zipfile.ZipFile(path) as zf:
            return any(Path(n).name == "meta.xml" for n in zf.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


EVENT_TERMS = ("eventDate", "year", "month", "day", "decimalLatitude", "decimalLongitude", "geodeticDatum",
               "coordinateUncertaintyInMeters", "verbatimCoordinates", "countryCode", "country", "locality",
               "recordedBy", "basisOfRecord")
"""Event-core terms copied onto occurrences of a sampling-event archive when they lack them."""


def _tag(el) -> str:
    return el.tag.split("}")[-1]


def _read_file(zf, members: dict, base: str, el, name: str) -> tuple[pd.DataFrame, int, str]:
    """Read one core or extension file described by element ``el`` of meta.xml.

    Returns the frame with term names as columns (the link column named ``_id``), the
    number of header lines skipped, and the file's location in the archive.
    """
    loc = next((x.text for x in el.iter() if _tag(x) == "location"), None)
    if not loc:
        raise InputError(f"{name}: meta.xml names no data file (<files><location>).")
    member = f"{base}/{loc}" if base else loc
    if member not in members:
        raise InputError(f"{name}: the file {loc!r} named in meta.xml is not in the archive.")
    delim = _unescape(el.get("fieldsTerminatedBy"), ",")
    quote = _unescape(el.get("fieldsEnclosedBy"), '"')
    skip = int(el.get("ignoreHeaderLines") or 0)
    encoding = el.get("encoding") or "UTF-8"
    fields, defaults = {}, {}
    for x in el:
        tag = _tag(x)
        if tag in ("field", "id", "coreid"):
            term = "_id" if tag in ("id", "coreid") else (x.get("term") or "").rstrip("/").split("/")[-1]
            if x.get("index") is not None:
                fields.setdefault(int(x.get("index")), term or f"column_{x.get('index')}")
            elif x.get("default") is not None and term:
                defaults[term] = x.get("default")
    data = zf.read(member)
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        text, _ = decode(data, f"{name}/{loc}")
    if not text.strip():
        raise InputError(f"{name}: the file {loc!r} named in meta.xml is empty.")
    try:
        frame = pd.read_csv(io.StringIO(text), sep=delim, header=None, skiprows=skip, dtype=str, keep_default_na=False,
                            na_filter=False, skip_blank_lines=False, engine="python" if len(delim) != 1 else "c",
                            quoting=csv.QUOTE_NONE if not quote else csv.QUOTE_MINIMAL, quotechar=quote or '"')
    except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error, ValueError) as exc:
        raise InputError(f"{name}: {loc} cannot be read with the layout meta.xml gives ({str(exc).splitlines()[0][:120]}).") from None
    cols = [fields.get(i, f"column_{i + 1}") for i in range(frame.shape[1])]
    if len(set(cols)) != len(cols):
        cols = [c if cols.count(c) == 1 else f"{c}_{i}" for i, c in enumerate(cols)]
    frame.columns = cols
    for term, value in defaults.items():
        if term not in frame.columns:
            frame[term] = value
    return frame, skip, loc


def read_dwca(path: str | Path, *, name: str | None = None) -> Table:
    """Read the occurrences of a Darwin Core Archive as a text table with term names as columns.

    An Occurrence core is read as it is. A sampling-event archive (Event core with an
    Occurrence extension) gives the extension's rows, each with the date, place and
    coordinates of its event where the occurrence row has none. Rows are numbered by their
    line in the file they come from (the header line, if any, is line 1).
    """
    path = Path(path)
    name = name or path.name
    with open_zip(path) as zf:
        members = {i.filename: i for i in check_members(zf, name)}
        meta_name = next((m for m in members if Path(m).name == "meta.xml"), None)
        if meta_name is None:
            raise InputError(f"{name} holds no meta.xml, so it is not a Darwin Core Archive.")
        try:
            root = ET.fromstring(zf.read(meta_name))
        except ET.ParseError as exc:
            raise InputError(f"{name}: meta.xml is not valid XML ({exc}).") from None
        core = next((el for el in root.iter() if _tag(el) == "core"), None)
        if core is None:
            raise InputError(f"{name}: meta.xml has no <core> element.")
        base = str(Path(meta_name).parent) if Path(meta_name).parent != Path(".") else ""
        core_type = (core.get("rowType") or "Occurrence").rstrip("/").split("/")[-1]
        occ_ext = next((el for el in root.iter() if _tag(el) == "extension"
                        and (el.get("rowType") or "").rstrip("/").split("/")[-1] == "Occurrence"), None)
        if core_type != "Occurrence" and occ_ext is not None:
            frame, skip, loc = _read_file(zf, members, base, occ_ext, name)
            events, _, eloc = _read_file(zf, members, base, core, name)
            note = f"Darwin Core Archive: occurrences from {loc}, event fields from {eloc}"
            if "_id" in frame.columns and "_id" in events.columns:
                ev = events.drop_duplicates("_id").set_index("_id")
                for term in EVENT_TERMS:
                    if term in ev.columns:
                        fromev = frame["_id"].map(ev[term]).fillna("")
                        frame[term] = fromev if term not in frame.columns else frame[term].where(frame[term] != "", fromev)
        else:
            if core_type != "Occurrence":
                raise InputError(f"{name}: the archive's core is {core_type} and it has no Occurrence extension.")
            frame, skip, loc = _read_file(zf, members, base, core, name)
            note = f"Darwin Core Archive core file {loc}"
    rows = np.arange(len(frame), dtype=np.int64) + skip + 1
    link = "id" if core_type == "Occurrence" else "eventID"
    if "_id" in frame.columns:
        frame = frame.drop(columns=[link]) if link in frame.columns else frame
        frame = frame.rename(columns={"_id": link})
    table = Table(frame=frame, rows=rows, name=name,
                  delimiter="", header_row=skip, notes=[note])
    return drop_blank_rows(table)


def is_gbif_simple(columns) -> bool:
    """Whether a table's columns are those of a GBIF simple download."""
    cols = set(columns)
    return {"gbifID", "decimalLatitude", "decimalLongitude", "issue"} <= cols
