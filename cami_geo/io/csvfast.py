"""Reading a large text table with pyarrow, and starting that read early.

``cami-geo validate FILE.csv`` spends most of a second importing pandas and the geometry
libraries before it reads anything. :func:`prefetch` (called by the command line before
those imports) reads the file and parses it with pyarrow in a thread meanwhile (pyarrow
parses without the interpreter lock, on the other cores); :func:`cami_geo.io.tables.read_csv`
then takes the bytes and the table instead of reading again. This module imports neither
pandas nor numpy, so the thread does not wait for them.

The header and delimiter sniffing lives here too (:mod:`cami_geo.io.tables` re-exports it),
so that both paths parse with the same layout and the same pyarrow options.
"""

from __future__ import annotations

import csv
import os
import threading
from collections import Counter
from pathlib import Path

from ..errors import InputError

DELIMITERS = (",", ";", "\t", "|")
MAX_TITLE_ROWS = 30
ARROW_MIN_CHARS = 1_000_000
"""Texts shorter than this are parsed by pandas (see ``cami_geo.io.tables._read_arrow``)."""


# -- delimiter and header ----------------------------------------------------------------

def _split_lines(lines: list[str], delim: str) -> list[list[str]]:
    try:
        return list(csv.reader(lines, delimiter=delim))
    except csv.Error:
        return [ln.split(delim) for ln in lines]


def sniff_layout(lines: list[str]) -> tuple[str, int]:
    """(delimiter, index of the header line) from the first lines of a text table.

    The delimiter is the one giving the most lines with the same number (> 1) of fields;
    the header is the first line with at least half that many non-empty cells (title rows
    above it hold one or two cells).
    """
    best = (",", 1, 0)
    for delim in DELIMITERS:
        rows = _split_lines(lines, delim)
        counts = Counter(len(r) for r in rows if len(r) > 1)
        if not counts:
            continue
        width, freq = max(counts.items(), key=lambda kv: (kv[1], kv[0]))
        if (freq, width) > (best[2], best[1]):
            best = (delim, width, freq)
    delim, width, _ = best
    rows = _split_lines(lines, delim)
    need = max(2, (width + 1) // 2) if width > 1 else 1
    for i, row in enumerate(rows):
        if sum(1 for c in row if c.strip()) >= need:
            return delim, i
    return delim, 0


class _AsciiText:
    """The text of ASCII bytes, decoded only where it is read (same length and offsets as
    the text): a large table read by pyarrow from the bytes never needs the whole text."""

    __slots__ = ("data", "_text")

    def __init__(self, data: bytes):
        self.data = data
        self._text: str | None = None

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, key: slice) -> str:
        return self.data[key].decode("ascii")

    def text(self) -> str:
        if self._text is None:
            self._text = self.data.decode("ascii")
        return self._text

    def splitlines(self) -> list[str]:
        return self.text().splitlines()


def _ascii_text(data: bytes, name: str, *, is_ascii: bool | None = None) -> _AsciiText | None:
    """:func:`decode` for a large file of ASCII bytes without NUL bytes (then it is UTF-8):
    the same checks, without decoding the whole file. None for any other file.
    ``is_ascii``: ``data.isascii()`` when the caller knows it."""
    if len(data) < ARROW_MIN_CHARS or not (data.isascii() if is_ascii is None else is_ascii) or b"\x00" in data:
        return None
    if not data[:4096].strip() and not data.strip():
        raise InputError(f"{name} is empty.")
    head = data[:65536].decode("ascii")
    bad = sum(1 for ch in head if ord(ch) < 32 and ch not in "\r\n\t")
    if bad > 0.01 * min(len(data), 65536) + 2:
        raise InputError(f"{name} is not a text table (it holds binary content); save it as CSV or XLSX.")
    return _AsciiText(data)


def _head_lines(text: str, k: int) -> list[str]:
    """``text.splitlines()[:k]`` without splitting the whole of a large text."""
    size = 65536
    while size < len(text):
        lines = text[:size].splitlines()
        if len(lines) > k:  # line k exists, so lines 0..k-1 are complete
            return lines[:k]
        size *= 4
    return text.splitlines()[:k]


def arrow_csv(raw: bytes, delim: str, header_idx: int, names: list[str], *, use_threads: bool = True):
    """The pyarrow table of a text table's bytes (every column text, nothing read as null;
    large_string, the type of pandas' text columns, so pandas takes the buffers as they
    are). Raises pyarrow's errors."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    return pacsv.read_csv(
        pa.py_buffer(raw),
        read_options=pacsv.ReadOptions(skip_rows=header_idx + 1, column_names=names, block_size=1 << 24,
                                       use_threads=use_threads),
        parse_options=pacsv.ParseOptions(delimiter=delim, newlines_in_values=False, ignore_empty_lines=False),
        convert_options=pacsv.ConvertOptions(column_types={n: pa.large_string() for n in names}, strings_can_be_null=False,
                                             quoted_strings_can_be_null=False))


# -- reading early -------------------------------------------------------------------------

PREFETCH_SUFFIXES = (".csv", ".tsv", ".txt")
_prefetched: dict[str, tuple[threading.Thread, dict, tuple]] = {}


def _stamp(path: Path) -> tuple:
    st = os.stat(path)
    return (st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)


def prefetch(paths) -> None:
    """Start reading each large text-table file of ``paths`` in a thread (folders and other
    files are left alone). Harmless when the files are never read: nothing is kept past
    :func:`take_prefetched`, and a file that changed is read again."""
    for p in paths:
        try:
            path = Path(p)
            if path.suffix.lower() not in PREFETCH_SUFFIXES or not path.is_file():
                continue
            stamp = _stamp(path)
            if stamp[0] < ARROW_MIN_CHARS:
                continue
            key = str(path.resolve())
        except OSError:
            continue
        if key in _prefetched:
            continue
        out: dict = {}
        thread = threading.Thread(target=_read_early, args=(path, out), name="cami-geo-prefetch", daemon=True)
        _prefetched[key] = (thread, out, stamp)
        thread.start()


def _read_early(path: Path, out: dict) -> None:
    """Read the file and parse it with pyarrow as ``cami_geo.io.tables._read_arrow`` would,
    with the layout sniffed from its first lines (when they are ASCII). Work that holds the
    interpreter lock (which the main thread needs for its imports) comes after the parse."""
    try:
        data = path.read_bytes()
    except OSError:
        return
    out["data"] = data
    try:
        if len(data) >= ARROW_MIN_CHARS and data[:65536].isascii():
            head = _head_lines(_AsciiText(data), MAX_TITLE_ROWS + 20)
            delim, header_idx = sniff_layout(head)
            header = _split_lines(head[header_idx:header_idx + 1], delim)
            if any(ln.strip() for ln in head) and header and len(set(header[0])) == len(header[0]):
                import pyarrow as pa

                try:
                    # one thread: the other core is the main thread's, loading the libraries
                    table = arrow_csv(data, delim, header_idx, header[0], use_threads=False)
                except (pa.ArrowInvalid, pa.ArrowException):
                    table = None
                out["table"] = table
                out["layout"] = (delim, header_idx, tuple(header[0]))
        out["ascii"] = data.isascii()
    except Exception:  # noqa: BLE001 - the reader in the main thread parses again and reports
        for k in ("table", "layout", "ascii"):
            out.pop(k, None)


def take_prefetched(path: str | Path) -> dict | None:
    """What :func:`prefetch` read of ``path`` (waiting for it): ``data`` (the bytes),
    ``ascii``, and ``layout`` with ``table`` when pyarrow parsed it; None when the file was
    not prefetched, the read failed or the file changed since."""
    if not _prefetched:
        return None
    try:
        key = str(Path(path).resolve())
    except OSError:
        return None
    item = _prefetched.pop(key, None)
    if item is None:
        return None
    thread, out, stamp = item
    thread.join()
    try:
        if "data" not in out or _stamp(Path(path)) != stamp or len(out["data"]) != stamp[0]:
            return None
    except OSError:
        return None
    return out

