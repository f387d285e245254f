"""Row checks: each check has a code, a default severity (PRODUCT.md "Checks and their
severity") and a title; config ``checks.severity`` may change a severity by code
(``error`` rejects the row, ``warning`` keeps it flagged, ``ignore`` drops the check).

Checks never remove rows themselves: they add problems to a :class:`ProblemLog`, and the
intake decides from the severities which rows are rejected.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

CHECKS: dict[str, tuple[str, str]] = {
    # code: (default severity, title)
    "file_unreadable": ("error", "File cannot be read"),
    "file_unknown_kind": ("error", "File of unknown kind"),
    "file_no_rows": ("warning", "File holds no data rows"),
    "file_other_layers": ("warning", "File has further layers that were not read"),
    "row_ragged": ("warning", "Row has a different number of fields than the header"),
    "coords_missing": ("error", "Coordinates missing"),
    "coords_not_numeric": ("error", "Coordinates not readable as numbers"),
    "coords_out_of_range": ("error", "Coordinates out of range"),
    "coords_zero": ("error", "Zero coordinates"),
    "coords_swapped": ("error", "Latitude and longitude swapped"),
    "coords_sign_flipped": ("error", "Coordinate sign flipped"),
    "crs_invalid": ("error", "Unknown coordinate reference system"),
    "country_mismatch": ("error", "Point outside its declared country"),
    "at_sea": ("error", "Point at sea or outside every mapped country"),
    "outside_range_states": ("error", "Point outside every Range State of the species"),
    "species_missing": ("error", "Species missing"),
    "species_unknown": ("error", "Species not recognised"),
    "duplicate": ("error", "Exact duplicate of an earlier row"),
    "date_invalid": ("error", "Impossible or unreadable date"),
    "date_future": ("error", "Date in the future"),
    "count_invalid": ("error", "individualCount not a non-negative integer"),
    "country_invalid": ("error", "Country code not recognised"),
    "not_listed_range_state": ("warning", "Point in a Range State where the species is not listed"),
    "near_border": ("warning", "Point just outside its country (within the border tolerance)"),
    "near_centroid": ("warning", "Point near a country centroid"),
    "near_capital": ("warning", "Point near a national capital"),
    "equal_coords": ("warning", "Latitude equals longitude"),
    "few_decimals": ("warning", "Coordinates with few decimals"),
    "uncertainty_zero": ("warning", "coordinateUncertaintyInMeters is 0 (treated as unknown)"),
    "uncertainty_large": ("warning", "coordinateUncertaintyInMeters very large (kept out of AOO)"),
    "uncertainty_invalid": ("warning", "coordinateUncertaintyInMeters not a positive number (treated as unknown)"),
    "date_missing": ("warning", "Date missing"),
    "country_filled": ("warning", "Country filled from the point"),
    "status_unknown": ("warning", "occurrenceStatus not recognised (kept as present)"),
    "smart_category": ("error", "SMART observation neither a wildlife sighting nor a human activity"),
    # threats and range
    "geometry_missing": ("error", "Geometry missing"),
    "geometry_invalid": ("error", "Geometry invalid and not repairable"),
    "geometry_repaired": ("warning", "Geometry repaired"),
    "geometry_type": ("error", "Wrong geometry type"),
    "threat_code_missing": ("error", "IUCN threat code missing"),
    "threat_code_unknown": ("error", "IUCN threat code not in the 3.3 scheme"),
    "barrier_class_invalid": ("error", "Barrier class not recognised"),
    "presence_invalid": ("error", "Presence code not 1-6"),
    "origin_invalid": ("error", "Origin code not 1-6"),
    "seasonal_invalid": ("error", "Seasonal code not 1-5"),
    # population
    "year_invalid": ("error", "Year not a year, before 1900 or in the future"),
    "year_missing": ("warning", "Year of the estimate not stated"),
    "estimate_invalid": ("error", "Estimate not a non-negative number"),
    "estimate_missing": ("error", "No estimate given"),
    "estimate_order": ("error", "Estimates not in the order min <= best <= max"),
    "unit_invalid": ("error", "Unit not 'individuals' or 'mature individuals'"),
    "scope_invalid": ("error", "Scope not national, subnational:<area> or subpopulation:<name>"),
    "trend_unknown": ("warning", "Trend not recognised"),
}

PROBLEM_FRAME_COLUMNS = ["pos", "file", "row", "field", "reason", "severity", "value", "code"]


def severity_of(code: str, overrides: dict[str, str] | None = None) -> str:
    """The severity of check ``code`` after config overrides ('error', 'warning' or 'ignore')."""
    if overrides and code in overrides:
        return overrides[code]
    return CHECKS.get(code, ("error", ""))[0]


def _as_array(value: Any, n: int, mask: np.ndarray) -> np.ndarray:
    if callable(value):  # computed for the flagged positions only
        out = np.empty(int(mask.sum()), dtype=object)
        out[:] = list(value(np.flatnonzero(mask)))
        return out
    if isinstance(value, pd.Series):
        value = value.to_numpy()
    if isinstance(value, np.ndarray) and value.shape[0] == n:
        return value[mask]
    return np.full(int(mask.sum()), "" if value is None else value, dtype=object)


class ProblemLog:
    """Problems found in one file, kept as frame pieces (vectorised: one piece per check).

    Parameters
    ----------
    file : the file's path relative to the submission folder
    rows : spreadsheet row (or feature position) of each frame position
    overrides : config ``checks.severity``
    """

    def __init__(self, file: str, rows: np.ndarray, overrides: dict[str, str] | None = None):
        self.file = file
        self.rows = np.asarray(rows)
        self.overrides = overrides or {}
        self.parts: list[pd.DataFrame] = []

    def add(self, code: str, mask: np.ndarray, field: str, reason: Any, value: Any = "") -> None:
        """Record ``code`` for every position where ``mask`` is true.

        ``reason`` and ``value`` are one text for all, arrays aligned with the frame, or
        functions of the flagged positions (an index array) giving their texts.
        """
        sev = severity_of(code, self.overrides)
        mask = np.asarray(mask, dtype=bool)
        if sev == "ignore" or not mask.any():
            return
        n = len(mask)
        pos = np.flatnonzero(mask)
        self.parts.append(pd.DataFrame({
            "pos": pos, "file": self.file, "row": self.rows[pos], "field": field,
            "reason": _as_array(reason, n, mask), "severity": sev,
            "value": _as_array(value, n, mask), "code": code,
        }))

    def add_file(self, code: str, reason: str, field: str = "", value: Any = "") -> None:
        """A problem with the whole file (row left empty)."""
        sev = severity_of(code, self.overrides)
        if sev == "ignore":
            return
        self.parts.append(pd.DataFrame({"pos": [-1], "file": [self.file], "row": [pd.NA], "field": [field],
                                        "reason": [reason], "severity": [sev], "value": [value], "code": [code]}))

    def flagged(self, code: str, n: int) -> np.ndarray:
        """Bool array over the frame's positions: already has a problem ``code``."""
        out = np.zeros(n, dtype=bool)
        for p in self.parts:
            hit = p.loc[(p["code"] == code) & (p["pos"] >= 0), "pos"].to_numpy()
            out[hit] = True
        return out

    def frame(self) -> pd.DataFrame:
        """All problems, ordered by row, as a frame with PROBLEM_FRAME_COLUMNS."""
        if not self.parts:
            return empty_problems()
        df = pd.concat(self.parts, ignore_index=True)
        df["value"] = df["value"].map(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
        df["row"] = df["row"].astype("Int64")
        return df.sort_values(["pos", "severity"], kind="stable").reset_index(drop=True)

    def rejected_positions(self) -> np.ndarray:
        """Frame positions with at least one error."""
        pos = [p.loc[p["severity"] == "error", "pos"].to_numpy() for p in self.parts]
        pos = np.concatenate(pos) if pos else np.array([], dtype=np.int64)
        return np.unique(pos[pos >= 0])

    def warning_codes(self, n: int) -> np.ndarray:
        """For each frame position, the ';'-joined codes of its warnings ('' when none)."""
        out = np.full(n, "", dtype=object)
        for p in self.parts:
            w = p[(p["severity"] == "warning") & (p["pos"] >= 0)]
            if len(w):
                idx = w["pos"].to_numpy()
                cur = out[idx]
                out[idx] = np.where(cur == "", w["code"].to_numpy(), cur + ";" + w["code"].to_numpy())
        return out


def empty_problems() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="Int64" if c in ("pos", "row") else object) for c in PROBLEM_FRAME_COLUMNS})
