"""Coordinates as SFPs write them: decimal degrees (decimal point or comma), degrees-minutes-
seconds strings (``41°45'00"N``, ``41 45 00 N``, ``41°45,5'`` ...), and projected x/y in a
declared CRS. Everything is converted to WGS84 decimal degrees (EPSG:4326).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ..errors import InputError

# pyproj (slow to import) is imported where a CRS is read or points are transformed.

_HEMI = {"N": 1, "S": -1, "E": 1, "W": -1, "С": 1, "Ю": -1, "В": 1, "З": -1}
_HEMI_AXIS = {"N": "lat", "S": "lat", "E": "lon", "W": "lon", "С": "lat", "Ю": "lat", "В": "lon", "З": "lon"}
_NUM = re.compile(r"\d+(?:[.,]\d+)?")
_LETTER = re.compile(r"(?<![A-Za-zА-Яа-я])([NSEWСЮВЗсювз])(?:\.?\s*[шдШД]\.?)?(?![A-Za-zА-Яа-я])")


def parse_dms(text: str, axis: str) -> float | None:
    """One degrees-minutes-seconds string in decimal degrees, or None when it is not one.

    >>> parse_dms("41°45'00\\"N", "lat")
    41.75
    >>> parse_dms("69 10 30 W", "lon")
    -69.175
    """
    s = str(text).strip()
    if not s:
        return None
    nums = _NUM.findall(s)
    if not 1 <= len(nums) <= 3:
        return None
    letters = _LETTER.findall(s)
    sign = -1 if s.lstrip().startswith("-") else 1
    if letters:
        letter = letters[-1].upper()
        if _HEMI_AXIS[letter] != axis or len(letters) > 1:
            return None
        sign *= _HEMI[letter]
    rest = _NUM.sub("", _LETTER.sub("", s))
    if re.search(r"[^\s°º˚o'′’‘\"″”“:;dmsDMS,\-]", rest.replace("''", "\"")):
        return None
    parts = [float(n.replace(",", ".")) for n in nums]
    d, m, sec = (parts + [0.0, 0.0])[:3]
    if m >= 60 or sec >= 60 or (len(parts) > 1 and not float(d).is_integer()):
        return None
    return sign * (d + m / 60 + sec / 3600)


def parse_degrees(values: pd.Series, axis: str, *, stripped: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse a column of coordinates written in any of the accepted forms.

    Parameters
    ----------
    values : text cells
    axis : 'lat' or 'lon' (decides which hemisphere letters fit)
    stripped : the cells are already stripped text without missing values

    Returns
    -------
    degrees : float array, NaN where empty or not readable
    empty : bool array, the cell was empty
    decimals : int array, digits after the decimal separator (-1 for DMS or unread cells)
    """
    from ..checks.common import NULL_TOKENS

    s = values if values.dtype == "str" else values.astype("str")
    fast = _parse_degrees_buffers(s) if stripped else None
    if fast is None:
        fast = _parse_degrees_arrow(s, stripped=stripped)
    if fast is not None:
        num, empty, decimals = fast
        failed = np.isnan(num) & ~empty
        if failed.any():
            s = s.fillna("").str.strip()
            idx = np.flatnonzero(failed)
            parsed = [parse_dms(v, axis) for v in s.iloc[idx].to_numpy(dtype=object)]
            num[idx] = [np.nan if p is None else p for p in parsed]
            decimals[idx] = -1
        return num, empty, decimals
    s = s.fillna("").str.strip()
    nulls = s.isin(NULL_TOKENS)
    if nulls.any():
        s = s.where(~nulls, "")
    empty = np.array(s == "", dtype=bool)
    t = s.str.replace(",", ".", regex=False)
    from ..checks.common import to_number

    num = to_number(t, cleaned=True)
    dot = t.str.find(".").to_numpy()
    length = t.str.len().to_numpy()
    decimals = np.where(dot >= 0, length - dot - 1, 0).astype(np.int64)
    failed = np.isnan(num) & ~empty
    if failed.any():
        idx = np.flatnonzero(failed)
        parsed = [parse_dms(v, axis) for v in s.to_numpy()[idx]]
        num[idx] = [np.nan if p is None else p for p in parsed]
        decimals[idx] = -1
    return num, empty, decimals.astype(np.int64)


def _parse_degrees_buffers(s: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """:func:`_parse_degrees_arrow` for stripped ASCII text without nulls or decimal commas,
    computed on the column's bytes (see :func:`_degrees_from_arrow`)."""
    arr = getattr(s.array, "_pa_array", None)
    return None if arr is None else _degrees_from_arrow(arr)


def _degrees_from_arrow(arr) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The decimal-number part of :func:`parse_degrees` (numbers, empty cells, digits after the
    decimal point) for a pyarrow text column of stripped ASCII cells without nulls or decimal
    commas, computed on its bytes (no copy of 10^6 cells); None when it does not apply or a
    cell is not a plain number (then :func:`_parse_degrees_arrow` decides)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from ..checks.common import NULL_TOKENS, string_buffers

    if arr.null_count:
        return None
    empties, decs, chunks = [], [], []
    tokens = None
    for chunk in arr.chunks:
        sb = string_buffers(chunk)
        if sb is None:
            return None
        off, data = sb
        n = len(chunk)
        body = data[off[0]:off[-1]] if n else data[:0]
        if len(body) and (body.max() >= 0x80 or (body == 0x2C).any()):
            return None  # non-ASCII (byte offsets are not character offsets) or a decimal comma
        length = np.diff(off).astype(np.int64, copy=False)
        empty = length == 0
        short = np.flatnonzero((length > 0) & (length <= 4))   # NULL_TOKENS are 1..4 bytes
        if len(short):
            if tokens is None:
                tokens = pa.array(list(NULL_TOKENS), type=chunk.type)
            hit = np.asarray(pc.is_in(chunk.take(pa.array(short)), value_set=tokens).to_numpy(zero_copy_only=False), dtype=bool)
            if hit.any():
                empty[short[hit]] = True
        dot = np.asarray(pc.find_substring(chunk, ".").to_numpy(zero_copy_only=False), dtype=np.int64)
        dec = np.where(dot >= 0, length - dot - 1, 0).astype(np.int64, copy=False)
        dec[empty] = 0
        bits = ~empty if not chunk.offset else np.concatenate([np.zeros(chunk.offset, dtype=bool), ~empty])
        valid = pa.py_buffer(np.packbits(bits, bitorder="little").tobytes())   # '' and null tokens -> null
        bufs = chunk.buffers()
        chunks.append(pa.Array.from_buffers(chunk.type, n, [valid, bufs[1], bufs[2]], null_count=int(empty.sum()),
                                            offset=chunk.offset))
        empties.append(empty)
        decs.append(dec)
    try:
        num = pc.cast(pa.chunked_array(chunks, type=arr.type), pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    num = np.array(num.to_numpy(zero_copy_only=False), dtype=float)
    empty = np.concatenate(empties) if empties else np.zeros(0, dtype=bool)
    decimals = np.concatenate(decs) if decs else np.zeros(0, dtype=np.int64)
    return num, empty, decimals


def _parse_degrees_arrow(s: pd.Series, *, stripped: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The decimal-number part of :func:`parse_degrees` with pyarrow compute, for an
    ASCII pyarrow-backed text column; None when it does not apply (then the pandas path runs)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from ..checks.common import NULL_TOKENS

    arr = getattr(s.array, "_pa_array", None)
    if arr is None:
        return None
    try:
        if not stripped or arr.null_count:
            arr = pc.fill_null(arr, "")
        if pc.any(pc.invert(pc.string_is_ascii(arr))).as_py():
            return None  # byte offsets would not be character offsets
        if not stripped:
            arr = pc.utf8_trim_whitespace(arr)
        nulls = pc.is_in(arr, value_set=pa.array(list(NULL_TOKENS), type=arr.type))
        if pc.any(nulls).as_py():
            arr = pc.if_else(nulls, pa.scalar("", arr.type), arr)
        is_empty = pc.equal(arr, "")
        empty = np.asarray(is_empty.to_numpy(zero_copy_only=False), dtype=bool)
        t = pc.replace_substring(arr, ",", ".")
        dot = np.asarray(pc.find_substring(t, ".").to_numpy(zero_copy_only=False), dtype=np.int64)
        length = np.asarray(pc.binary_length(t).to_numpy(zero_copy_only=False), dtype=np.int64)
        decimals = np.where(dot >= 0, length - dot - 1, 0).astype(np.int64)
        blank = pc.if_else(is_empty, pa.scalar(None, t.type), t)  # '' stays '' after the replacement
        try:
            num = np.array(pc.cast(blank, pa.float64()).to_numpy(zero_copy_only=False), dtype=float)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            num = np.array(pd.to_numeric(pd.Series(t.to_numpy(zero_copy_only=False), dtype=object), errors="coerce"), dtype=float)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, TypeError):
        return None
    return num, empty, decimals


_NS = r"[NSСЮсю](?:\.?\s*ш\.?)?"
_EW = r"[EWВЗвз](?:\.?\s*д\.?)?"
_PAIRS = [
    # (regex with two groups, order of the groups)
    (rf"^\s*(.*?{_NS})\s*[,;/]?\s*(.*?{_EW})\s*$", "latlon"),
    (rf"^\s*(.*?{_EW})\s*[,;/]?\s*(.*?{_NS})\s*$", "lonlat"),
    (rf"^\s*([NSСЮ]\s*[^NSEWСЮВЗ]+?)\s*[,;/]?\s*([EWВЗ].*?)\s*$", "latlon"),
    (r"^\s*(-?\d+(?:\.\d+)?)\s*(?:[,;/]\s*|\s+)(-?\d+(?:\.\d+)?)\s*$", "latlon"),
    (r"^\s*(-?\d+(?:,\d+)?)\s*(?:[;/]\s*|\s+)(-?\d+(?:,\d+)?)\s*$", "latlon"),
]


def split_coordinates(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Split one 'verbatim coordinates' column into latitude and longitude texts.

    Accepts '48.1234, 66.5678' (latitude first, as Darwin Core's verbatimCoordinates),
    '48,1234; 66,5678', and degrees-minutes-seconds pairs with hemisphere letters in
    either order ('41°45'00"N 69°10'30"E', '69°10'30"E 41°45'00"N'). Cells that fit no form
    give two empty texts only when the cell is empty, else the whole cell as latitude (so
    it is reported as unreadable, not as missing).
    """
    s = values.astype(str).fillna("").str.strip()
    lat = pd.Series("", index=s.index, dtype=object)
    lon = pd.Series("", index=s.index, dtype=object)
    todo = np.array(s != "", dtype=bool)
    for pattern, order in _PAIRS:
        if not todo.any():
            break
        m = s[todo].str.extract(pattern)
        ok = m[0].notna().to_numpy()
        idx = s.index[todo][ok]
        a, b = m.loc[ok, 0].str.strip(" ,;"), m.loc[ok, 1].str.strip(" ,;")
        lat[idx], lon[idx] = (a.to_numpy(), b.to_numpy()) if order == "latlon" else (b.to_numpy(), a.to_numpy())
        pos = np.flatnonzero(todo)[ok]
        todo[pos] = False
    rest = s.index[todo]
    lat[rest] = s[rest]
    lon[rest] = "?"
    return lat, lon


def crs_from_text(text: str, *, where: str):
    """A pyproj CRS from 'EPSG:32642', '32642', 'UTM 42N', a WKT or PROJ string."""
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    s = str(text).strip()
    m = re.fullmatch(r"(?i)(?:wgs\s*84\s*/?\s*)?utm\s*(?:zone\s*)?(\d{1,2})\s*([NS])?", s)
    try:
        if m:
            zone, hemi = int(m.group(1)), (m.group(2) or "N").upper()
            return CRS.from_epsg((32600 if hemi == "N" else 32700) + zone)
        if s.isdigit():
            return CRS.from_epsg(int(s))
        if s.upper() in ("WGS84", "WGS 84"):
            return CRS.from_epsg(4326)
        return CRS.from_user_input(s)
    except CRSError:
        raise InputError(f"{where}: {s!r} is not a coordinate reference system pyproj knows (e.g. EPSG:32642 or 'UTM 42N').") from None


def to_wgs84(x: np.ndarray, y: np.ndarray, crs) -> tuple[np.ndarray, np.ndarray]:
    """Transform x/y in ``crs`` (a pyproj CRS) to WGS84 (lon, lat) degrees; NaN where the transform fails."""
    from pyproj import Transformer

    tr = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    lon, lat = tr.transform(np.asarray(x, dtype=float), np.asarray(y, dtype=float), errcheck=False)
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    bad = ~np.isfinite(lon) | ~np.isfinite(lat)
    lon[bad] = np.nan
    lat[bad] = np.nan
    return lon, lat
