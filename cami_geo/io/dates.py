"""Dates as SFPs write them: ISO 8601 (full, year-month, year, with time, intervals), the
local forms dd.mm.yyyy, dd/mm/yyyy and dd-mm-yyyy (day first: the form used across the CAMI
region; US month-first dates are not guessed), yyyy/mm/dd, and SMART's "Jan 5, 2017 3:04:05 PM"."""

from __future__ import annotations

import numpy as np
import pandas as pd

_FORMATS = [
    # (regex the text must match, strptime format applied to the matched part)
    (r"^\d{4}-\d{1,2}-\d{1,2}", "%Y-%m-%d"),
    (r"^\d{1,2}\.\d{1,2}\.\d{4}", "%d.%m.%Y"),
    (r"^\d{1,2}/\d{1,2}/\d{4}", "%d/%m/%Y"),
    (r"^\d{1,2}-\d{1,2}-\d{4}", "%d-%m-%Y"),
    (r"^\d{4}/\d{1,2}/\d{1,2}", "%Y/%m/%d"),
    (r"^\d{4}\.\d{1,2}\.\d{1,2}", "%Y.%m.%d"),
    (r"^[A-Za-z]{3,9}\.? \d{1,2}, \d{4}", "%b %d, %Y"),
    (r"^\d{1,2} [A-Za-z]{3,9} \d{4}", "%d %b %Y"),
]


def parse_dates(values: pd.Series) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """Parse a column of dates.

    Returns
    -------
    iso : text Series, ``YYYY-MM-DD``, ``YYYY-MM`` or ``YYYY`` ('' where empty or unreadable)
    year : float array (NaN where unknown)
    status : array of 'ok', 'missing' or 'invalid' (looks like a date but is not a real one,
        or is not a date form we read)
    """
    s = values.astype("str").fillna("").str.strip()
    slash = s.str.contains("/", regex=False).to_numpy(dtype=bool)
    if slash.any():  # ISO intervals: the start
        s = s.copy()
        s[slash] = s[slash].str.replace(r"^(\d{4}(?:-\d{2}){0,2}(?:T\S*)?)/(?:\d{4}|P)\S*$", r"\1", regex=True)
    n = len(s)
    iso = np.full(n, "", dtype=object)
    year = np.full(n, np.nan)
    status = np.where((s == "").to_numpy(), "missing", "invalid").astype(object)
    todo = status == "invalid"
    for pattern, fmt in _FORMATS:
        if not todo.any():
            break
        sub = s[todo]
        part = sub.str.extract(f"({pattern})", expand=False)
        has = part.notna().to_numpy()
        if not has.any():
            continue
        norm = part[has]
        if fmt.startswith("%b"):  # "January 5" / "Jan. 5" -> "Jan 5"
            norm = norm.str.replace(r"^([A-Za-z]{3})[A-Za-z]*\.?", r"\1", regex=True)
        elif "%b" in fmt:
            norm = norm.str.replace(r" ([A-Za-z]{3})[A-Za-z]* ", r" \1 ", regex=True)
        parsed = pd.to_datetime(norm, format=fmt, errors="coerce")
        idx = np.flatnonzero(todo)[has]
        ok = parsed.notna().to_numpy()
        iso[idx[ok]] = parsed[ok].dt.strftime("%Y-%m-%d").to_numpy()
        year[idx[ok]] = parsed[ok].dt.year.to_numpy()
        status[idx[ok]] = "ok"
        # matched the shape but not a real date: leave 'invalid' and stop trying other forms
        todo[idx] = False
    # year-month and year alone
    if todo.any():
        sub = s[todo]
        ym = sub.str.fullmatch(r"\d{4}-\d{2}").to_numpy()
        yy = sub.str.fullmatch(r"\d{4}(\.0)?").to_numpy()
        idx = np.flatnonzero(todo)
        for mask, width in ((ym, 7), (yy, 4)):
            if mask.any():
                vals = sub[mask].str.slice(0, width)
                month_ok = np.ones(mask.sum(), dtype=bool)
                if width == 7:
                    month_ok = vals.str.slice(5, 7).astype(int).between(1, 12).to_numpy()
                j = idx[mask][month_ok]
                iso[j] = vals[month_ok].to_numpy()
                year[j] = vals[month_ok].str.slice(0, 4).astype(int).to_numpy()
                status[j] = "ok"
    return pd.Series(iso, index=values.index, dtype=object), year, status.astype(str)


def parse_year(values: pd.Series) -> np.ndarray:
    """A year column as floats (NaN where empty or not a whole number)."""
    num = np.array(pd.to_numeric(values.astype(str).str.strip().str.replace(",", ".", regex=False), errors="coerce"), dtype=float)
    num[~np.isfinite(num) | (num != np.round(num))] = np.nan
    return num
