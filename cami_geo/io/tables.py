"""Reading tables (CSV/TSV in any common encoding and delimiter, XLSX) into text frames.

Every reader returns a :class:`Table`: a frame whose cells are text exactly as written
(empty cells are ``""``), the spreadsheet row number of each data row (the header is row
1 of a file without title rows; title rows above the header count, as a spreadsheet user
sees them), and notes about how the file was read (encoding, delimiter, header row).
"""

from __future__ import annotations

import codecs
import csv
import io
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from .csvfast import (DELIMITERS, MAX_TITLE_ROWS, _AsciiText, _ascii_text, _head_lines, _split_lines,  # noqa: F401
                      arrow_csv, sniff_layout, take_prefetched)


@dataclass
class Table:
    """A table read from a file: text cells, spreadsheet row numbers, how it was read."""

    frame: pd.DataFrame
    rows: np.ndarray
    name: str
    encoding: str = ""
    delimiter: str = ""
    header_row: int = 1
    notes: list[str] = field(default_factory=list)
    ragged: dict[int, int] = field(default_factory=dict)
    """Spreadsheet row -> number of fields, for rows whose field count differs from the header's."""


# -- encodings ---------------------------------------------------------------------------

def detect_encoding(data: bytes, name: str) -> str:
    """The encoding of a text table: BOM, then UTF-8, then UTF-16 without BOM, then cp1251/cp1252.

    Raises :class:`InputError` for binary content.
    """
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    sample = data[:65536]
    zeros = sample.count(b"\x00")
    if zeros:
        even, odd = sample[0::2].count(b"\x00"), sample[1::2].count(b"\x00")
        if odd > 0.3 * len(sample) / 2 and even < odd / 10:
            return "utf-16-le"
        if even > 0.3 * len(sample) / 2 and odd < even / 10:
            return "utf-16-be"
        raise InputError(f"{name} is not a text table (it holds binary content); save it as CSV or XLSX.")
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    return _cyrillic_or_western(sample)


def _cyrillic_or_western(sample: bytes) -> str:
    """cp1251 when high bytes come in runs (Cyrillic words), else cp1252 (accents in Latin words)."""
    high = np.frombuffer(sample, dtype=np.uint8) >= 0xC0
    n_high = int(high.sum())
    if n_high == 0:
        return "cp1252"
    paired = int((high[1:] & high[:-1]).sum())
    return "cp1251" if paired / n_high > 0.4 else "cp1252"


def decode(data: bytes, name: str) -> tuple[str, str]:
    """Decode a text table's bytes; returns (text, encoding)."""
    if not data[:4096].strip() and not data.strip():
        raise InputError(f"{name} is empty.")
    text = None
    if not data.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) and b"\x00" not in data[:65536]:
        try:  # the common case: decode once (detect_encoding would decode the whole file to test it)
            text, enc = data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            text = None
    if text is None:
        enc = detect_encoding(data, name)
    try:
        if text is None:
            text = data.decode(enc)
    except UnicodeDecodeError as exc:
        raise InputError(f"{name} cannot be decoded as {enc} (byte {exc.start}); save it as UTF-8.") from None
    if "\x00" in text:
        raise InputError(f"{name} is not a text table (it holds binary content); save it as CSV or XLSX.")
    bad = sum(1 for ch in text[:65536] if (ord(ch) < 32 and ch not in "\r\n\t") or ch == "\ufffd")
    if bad > 0.01 * min(len(text), 65536) + 2:
        raise InputError(f"{name} is not a text table (it holds binary content); save it as CSV or XLSX.")
    return text, enc


# -- delimiter and header ----------------------------------------------------------------

def read_csv_text(text: str, name: str, *, encoding: str = "", raw: bytes | None = None,
                  prefetched: dict | None = None) -> Table:
    """Parse a decoded text table (any delimiter, title rows above the header)."""
    head = _head_lines(text, MAX_TITLE_ROWS + 20)
    if not any(ln.strip() for ln in head):
        raise InputError(f"{name} is empty.")
    delim, header_idx = sniff_layout(head)
    frame = _read_arrow(text, delim, header_idx, head, raw=raw, prefetched=prefetched)
    if frame is not None:
        ragged: dict[int, int] = {}
    else:
      if isinstance(text, _AsciiText):
        text = text.text()
      try:
        frame = pd.read_csv(io.StringIO(text), sep=delim, skiprows=header_idx, header=0, dtype=str,
                            keep_default_na=False, na_filter=False, skip_blank_lines=False,
                            engine="c")
        ragged = {}
      except (pd.errors.ParserError, csv.Error, ValueError):
        try:
            frame, ragged = _read_ragged(text, delim, header_idx)
        except InputError as exc:
            raise InputError(f"{name} {exc}.") from None
      except pd.errors.EmptyDataError:
        raise InputError(f"{name} has no header row.") from None
    frame.columns = _clean_columns(frame.columns)
    _need_columns(frame, name)
    rows = np.arange(len(frame), dtype=np.int64) + header_idx + 2
    table = Table(frame=frame, rows=rows, name=name, encoding=encoding, delimiter=delim,
                  header_row=header_idx + 1, ragged=ragged)
    return drop_blank_rows(table)


def _read_arrow(text: str, delim: str, header_idx: int, head: list[str], *, raw: bytes | None = None,
                prefetched: dict | None = None) -> pd.DataFrame | None:
    """Fast path with pyarrow for a regular table (no blank or ragged lines); None otherwise.

    ``prefetched``: what :func:`cami_geo.io.csvfast.prefetch` read of the same bytes (its
    table is used when it was parsed with this layout)."""
    import pyarrow as pa

    if len(text) < 1_000_000:
        return None  # small files: the pandas C parser is fast enough and keeps blank lines
    header = _split_lines(head[header_idx:header_idx + 1], delim)
    if not header or len(set(header[0])) != len(header[0]):
        return None
    names = header[0]
    data = raw if raw is not None else text.encode("utf-8")
    layout = (delim, header_idx, tuple(names))
    if prefetched is not None and prefetched.get("data") is data and prefetched.get("layout") == layout:
        table = prefetched.get("table")   # None: pyarrow refused the table
        if table is None:
            return None
    else:
        try:
            table = arrow_csv(data, delim, header_idx, names)
        except (pa.ArrowInvalid, pa.ArrowException):
            return None
    frame = table.to_pandas()
    for c in frame.columns:
        if frame[c].dtype != "str":
            frame[c] = frame[c].astype("str")
    if any(s.strip() == "" for s in text[-200:].splitlines()[:-1]):
        return None
    return frame


def _need_columns(frame: pd.DataFrame, name: str) -> None:
    if frame.shape[1] < 2:
        raise InputError(f"{name} holds no table: the header row has one column only "
                         "(separate columns with comma, semicolon, tab or |).")


def _read_ragged(text: str, delim: str, header_idx: int) -> tuple[pd.DataFrame, dict[int, int]]:
    """Python csv fallback for rows with a different number of fields (padded or cut, and noted)."""
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), delimiter=delim))[header_idx:]
    except csv.Error as exc:
        raise InputError(f"cannot be parsed as a table ({exc})") from None
    if not records:
        raise InputError("holds no header row")
    header, body = records[0], records[1:]
    width = len(header)
    ragged = {}
    fixed = []
    for i, rec in enumerate(body):
        if rec and len(rec) != width:
            ragged[header_idx + 2 + i] = len(rec)
        fixed.append((rec + [""] * width)[:width])
    frame = pd.DataFrame(fixed, columns=header, dtype=str) if fixed else pd.DataFrame(columns=header, dtype=str)
    return frame, ragged


def _clean_columns(columns) -> list[str]:
    out, seen = [], Counter()
    for i, c in enumerate(columns):
        c = str(c).strip().lstrip("\ufeff")
        if not c or c.startswith("Unnamed:"):
            c = f"column_{i + 1}"
        seen[c] += 1
        out.append(c if seen[c] == 1 else f"{c}_{seen[c]}")
    return out


def drop_blank_rows(table: Table) -> Table:
    """Remove rows whose every cell is empty (spreadsheet padding); keep the row numbers."""
    f = table.frame
    if len(f.columns) == 0 or len(f) == 0:
        return table
    blank = np.ones(len(f), dtype=bool)
    for col in f.columns:
        s = f[col]
        if s.dtype == "str":  # no object conversion of a whole column
            blank &= (s.isna() | (s == "")).to_numpy(dtype=bool)
        else:
            blank &= (s.to_numpy(dtype=object, na_value="") == "")
        if not blank.any():
            break
    if blank.any():
        keep = ~blank
        table.frame = f.loc[keep].reset_index(drop=True)
        table.rows = table.rows[keep]
        table.notes.append(f"{int(blank.sum())} empty row(s) skipped")
    return table


def read_csv(path: str | Path, *, name: str | None = None) -> Table:
    """Read a CSV/TSV file in any common encoding and delimiter (see module docstring)."""
    path = Path(path)
    name = name or path.name
    pre = take_prefetched(path)
    if pre is not None:
        data = pre["data"]
    else:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(f"{name} cannot be read ({exc.strerror}).") from None
    if data[:4] == b"PK\x03\x04":
        raise InputError(f"{name} is a zip archive, not a text table; name it .zip or .xlsx.")
    ascii_text = _ascii_text(data, name, is_ascii=pre.get("ascii") if pre else None)
    if ascii_text is not None:
        text, enc = ascii_text, "utf-8"
    else:
        text, enc = decode(data, name)
    raw = data[3:] if enc == "utf-8-sig" else data if enc == "utf-8" else None
    table = read_csv_text(text, name, encoding=enc, raw=raw, prefetched=pre)
    table.notes.append(f"read as {enc}, delimiter {table.delimiter!r}, header on row {table.header_row}")
    return table


def read_csv_head(path: str | Path, *, name: str | None = None, nbytes: int = 65536) -> list[str]:
    """The header of a text table, read from its first ``nbytes`` bytes only."""
    path = Path(path)
    name = name or path.name
    with open(path, "rb") as fh:
        data = fh.read(nbytes)
    if data[:4] == b"PK\x03\x04":
        raise InputError(f"{name} is a zip archive, not a text table.")
    enc = detect_encoding(data, name)
    text = data.decode(enc, errors="ignore")
    lines = text.splitlines()[:MAX_TITLE_ROWS + 20]
    if len(lines) > 1 and len(data) == nbytes:
        lines = lines[:-1]  # the last line may be cut
    delim, header_idx = sniff_layout(lines)
    return _clean_columns(_split_lines(lines[header_idx:header_idx + 1], delim)[0]) if lines else []


# -- XLSX ------------------------------------------------------------------------------

def _cell_text(v) -> str:
    if v is None:
        return ""
    if isinstance(v, datetime):
        return v.date().isoformat() if v.time() == time(0) else v.isoformat(sep=" ")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, float):
        return repr(v) if not v.is_integer() else str(int(v))
    return str(v).strip() if isinstance(v, str) else str(v)


def xlsx_sheet_names(path: str | Path) -> list[str]:
    """Sheet names of a workbook ([] when it cannot be opened)."""
    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, read_only=True)
    except Exception:  # an unreadable workbook is reported by read_xlsx
        return []
    try:
        return list(wb.sheetnames)
    finally:
        wb.close()


def read_xlsx(path: str | Path, *, sheet: str | None = None, name: str | None = None, allow_empty: bool = False) -> Table:
    """Read the named sheet, or the first sheet holding a table, of an XLSX workbook.

    With ``allow_empty`` a named sheet holding only its header (an unused template
    sheet) gives an empty table instead of an error.
    """
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    path = Path(path)
    name = name or path.name
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, KeyError, OSError, ValueError, TypeError) as exc:
        raise InputError(f"{name} is not a readable XLSX workbook ({str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__}).") from None
    except Exception as exc:  # zipfile.BadZipFile and parser errors
        raise InputError(f"{name} is not a readable XLSX workbook ({type(exc).__name__}).") from None
    try:
        if sheet is not None:
            if sheet not in wb.sheetnames:
                raise InputError(f"{name} has no sheet {sheet!r} (sheets: {', '.join(wb.sheetnames)}).")
            candidates = [sheet]
        else:
            candidates = [s for s in wb.sheetnames if s.strip().lower() != "instructions"] or wb.sheetnames
        for sname in candidates:
            ws = wb[sname]
            values = [[_cell_text(v) for v in row] for row in ws.iter_rows(values_only=True)]
            if sum(1 for r in values if sum(1 for c in r if c) >= 2) >= 1:
                return _table_from_rows(values, name=f"{name}", sheet=sname)
            if sheet is not None:
                if allow_empty:
                    return _table_from_rows(values or [["", ""]], name=name, sheet=sname) if values else Table(
                        frame=pd.DataFrame(columns=["column_1", "column_2"], dtype=str), rows=np.array([], dtype=np.int64),
                        name=name)
                raise InputError(f"{name} sheet {sheet!r} holds no table.")
    finally:
        wb.close()
    raise InputError(f"{name} holds no sheet with a table (a header row with at least two columns).")


def _table_from_rows(values: list[list[str]], *, name: str, sheet: str) -> Table:
    width = max((len(r) for r in values), default=0)
    values = [r + [""] * (width - len(r)) for r in values]
    counts = [sum(1 for c in r if c) for r in values[:MAX_TITLE_ROWS + 20]]
    widest = max(counts) if counts else 0
    need = max(2, (widest + 1) // 2)
    header_idx = next((i for i, c in enumerate(counts) if c >= need), 0)
    header = values[header_idx]
    last = max((i for i, h in enumerate(header) if h), default=-1)
    # keep columns up to the last with a header or any data
    data = values[header_idx + 1:]
    used = max([last] + [max((i for i, c in enumerate(r) if c), default=-1) for r in data])
    cols = _clean_columns(header[:used + 1])
    if len(cols) < 2:
        raise InputError(f"{name} sheet {sheet!r} holds no table: the header row has fewer than two columns.")
    frame = pd.DataFrame([r[:used + 1] for r in data], columns=cols, dtype=str) if data else pd.DataFrame(columns=cols, dtype=str)
    rows = np.arange(len(frame), dtype=np.int64) + header_idx + 2
    table = Table(frame=frame, rows=rows, name=name, header_row=header_idx + 1,
                  notes=[f"sheet {sheet!r}, header on row {header_idx + 1}"])
    return drop_blank_rows(table)


def read_table(path: str | Path, *, sheet: str | None = None, name: str | None = None) -> Table:
    """Read a CSV/TSV/TXT or XLSX table by its extension."""
    path = Path(path)
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        return read_xlsx(path, sheet=sheet, name=name)
    if path.suffix.lower() == ".xls":
        raise InputError(f"{name or path.name} is an old Excel .xls workbook; save it as .xlsx or CSV.")
    return read_csv(path, name=name)


