"""Action needs: transparent rules over the species x Range State status table.

Each rule comes from the configuration (``action_rules``: id, description with
``{placeholders}`` for its thresholds, thresholds). A fired rule gives one row naming the
rule, the description filled with the figures that fired it, and those figures as JSON.
"""

from __future__ import annotations

import json
from typing import Any, Callable

import numpy as np
import pandas as pd

from ..errors import ConfigError

ACTION_COLUMNS = ["species", "species_slug", "iso3", "rule", "flag", "figures"]


def _val(row: pd.Series, key: str) -> Any:
    v = row.get(key)
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
        return None
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    return v


def _no_recent_estimate(row, rule, cycle):
    years = int(rule.get("years", 6))
    since = _val(row, "years_since_estimate")
    if since is None:
        return {"years_since_estimate": None, "population_year": None, "cycle": cycle}, \
            f"no estimate at all for the {cycle} cycle"
    if since >= years:
        year = _val(row, "population_year")
        return {"years_since_estimate": since, "population_year": year, "cycle": cycle}, \
            f"last estimate {int(year)}, {int(since)} years before the {cycle} cycle"
    return None


def _records_but_no_estimate(row, rule, cycle):
    n = _val(row, "n_records") or 0
    if n > 0 and _val(row, "population_year") is None:  # no estimate of any kind (a bare minimum counts)
        return {"n_records": n, "population_year": None}, f"{n} records, no population estimate"
    return None


def _declining_with_threats(row, rule, cycle):
    k = int(rule.get("min_threats", 3))
    trend = str(_val(row, "trend") or "")
    n = _val(row, "n_threats") or 0
    if trend == "decreasing" and n >= k:
        return {"trend": trend, "trend_method": _val(row, "trend_method"), "n_threats": n}, \
            f"trend decreasing ({_val(row, 'trend_method') or 'method not given'}), {n} threat features"
    return None


def _complete_barrier(row, rule, cycle):
    n = _val(row, "n_complete_barriers") or 0
    if n > 0:
        return {"n_complete_barriers": n}, f"{n} feature(s) classed as complete barriers for the species"
    return None


RULES: dict[str, Callable] = {
    "no_recent_estimate": _no_recent_estimate,
    "records_but_no_estimate": _records_but_no_estimate,
    "declining_with_threats": _declining_with_threats,
    "complete_barrier": _complete_barrier,
}


def action_needs(by_country: pd.DataFrame, rules: list[dict[str, Any]], cycle: Any = None) -> pd.DataFrame:
    """One row per species x Range State x fired rule (columns :data:`ACTION_COLUMNS`)."""
    for rule in rules:
        if rule.get("id") not in RULES:
            raise ConfigError(f"action_rules: unknown rule id {rule.get('id')!r}; known ids are "
                              f"{', '.join(RULES)}.")
    out = []
    for _, row in by_country.iterrows():
        cyc = cycle if cycle is not None else _val(row, "cycle")
        for rule in rules:
            hit = RULES[rule["id"]](row, rule, cyc)
            if hit is None:
                continue
            figures, why = hit
            params = {k: v for k, v in rule.items() if k not in ("id", "description")}
            try:
                text = str(rule.get("description", rule["id"])).format(**params)
            except (KeyError, IndexError, ValueError):
                text = str(rule.get("description", rule["id"]))
            out.append({"species": row.get("species"), "species_slug": row.get("species_slug"),
                        "iso3": row.get("iso3"), "rule": rule["id"], "flag": f"{text}: {why}",
                        "figures": json.dumps({**figures, **params}, sort_keys=True, default=str)})
    return pd.DataFrame(out, columns=ACTION_COLUMNS)
