"""Writing submission text into spreadsheets safely.

A cell that starts with ``=``, ``+``, ``-``, ``@`` (or a tab / carriage return) is run as a
formula by Excel and LibreOffice (CSV injection). Every CSV or XLSX cami-geo writes passes
its text cells through :func:`neutralise_formula`, which prefixes such text with a single
quote, as OWASP recommends. Numbers stay numbers: ``-12.5`` in a numeric column is untouched.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?$")


def neutralise_formula(value: Any) -> Any:
    """Prefix text that a spreadsheet would run as a formula with ``'``.

    >>> neutralise_formula("=HYPERLINK(\\"http://x\\")")
    '\\'=HYPERLINK("http://x")'
    >>> neutralise_formula(-3.5)
    -3.5
    >>> neutralise_formula("-12")   # a plain number is not a formula
    '-12'
    >>> neutralise_formula("-1+cmd|' /C calc'!A0")
    "'-1+cmd|' /C calc'!A0"
    """
    if isinstance(value, str) and value.startswith(_TRIGGERS) and not _PLAIN_NUMBER.match(value):
        return "'" + value
    return value


def neutralise_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` with every text cell neutralised (numeric columns untouched).

    Only the cells that start with a trigger character go through
    :func:`neutralise_formula` (a vectorised ``startswith`` finds them); the others could
    not change."""
    out = df.copy()
    for i in range(out.shape[1]):
        s = out.iloc[:, i]
        dtype = s.dtype
        if not (dtype == object or pd.api.types.is_string_dtype(s)):
            continue
        try:
            flagged = s.str.startswith(_TRIGGERS, na=False).to_numpy(dtype=bool)
        except AttributeError:   # an object column without text: nothing to neutralise
            flagged = np.zeros(len(s), dtype=bool)
        if flagged.any():
            values = s.to_numpy(dtype=object, copy=True)
            values[flagged] = [neutralise_formula(v) for v in values[flagged]]
            s = pd.Series(values, index=s.index, name=s.name)
            if dtype != object:
                s = s.astype(dtype)
        elif dtype != object:
            continue   # unchanged
        if dtype == object:
            s = s.infer_objects()   # as Series.map did: [None, 0] is written as ",0.0"
        out.isetitem(i, s)
    return out


def write_csv(df: pd.DataFrame, path: str | Path, **kwargs: Any) -> None:
    """Write ``df`` as UTF-8 CSV with formula-like text neutralised."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    neutralise_frame(df).to_csv(path, index=False, encoding="utf-8", **kwargs)
