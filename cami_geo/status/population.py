"""Population figures per species x Range State: the latest national estimate, sums of
subpopulations only where no national estimate exists, conflicts shown side by side, and
the trend (as reported, else a log-linear fit over the last ``trend_years`` years).

Pure functions over a frame with the columns of :data:`cami_geo.model.POPULATION_COLUMNS`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

POPULATION_FIGURES = ["population_best", "population_min", "population_max", "population_year",
                      "population_unit", "population_method", "population_source", "population_scope",
                      "population_note", "trend", "trend_method"]

TREND_WORDS = {
    "decreasing": "decreasing", "declining": "decreasing", "decline": "decreasing", "down": "decreasing",
    "decrease": "decreasing", "increasing": "increasing", "increase": "increasing", "up": "increasing",
    "stable": "stable", "unknown": "unknown", "fluctuating": "fluctuating",
}
STABLE_RATE = 0.01
"""A fitted annual change within +-1 % is called stable."""


def normalise_trend(value: Any) -> str:
    text = str(value or "").strip().lower()
    if not text or text in ("nan", "<na>", "none"):
        return ""
    return TREND_WORDS.get(text, text)


def _num(series: pd.Series) -> pd.Series:
    return pd.to_numeric(series, errors="coerce")


def _fmt(x: float) -> str:
    return f"{x:,.0f}" if pd.notna(x) else "?"


def _scope_kind(scope: Any) -> str:
    s = str(scope or "").strip().lower()
    if not s or s in ("nan", "<na>") or s == "national":
        return "national"
    return s.split(":", 1)[0]


def prepare(pop: pd.DataFrame) -> pd.DataFrame:
    """Typed copy: numeric year and estimates, ``scope_kind`` (national / subnational /
    subpopulation), normalised trend. Rows without a year or any estimate are dropped."""
    out = pop.copy()
    for col in ("year", "estimate_min", "estimate_best", "estimate_max"):
        out[col] = _num(out[col]) if col in out else np.nan
    for col in ("unit", "method", "source", "scope", "trend", "notes", "iso3"):
        if col not in out:
            out[col] = ""
        out[col] = out[col].astype("string").fillna("")
    has_value = out[["estimate_min", "estimate_best", "estimate_max"]].notna().any(axis=1)
    out = out[out["year"].notna() & has_value].copy()
    out["year"] = out["year"].astype(int)
    out["scope_kind"] = out["scope"].map(_scope_kind)
    out["trend_norm"] = out["trend"].map(normalise_trend)
    return out


MIN_FIT_ESTIMATES = 3
"""A trend is fitted only from at least this many estimates in distinct years."""


def fit_trend(years: Any, values: Any, *, trend_years: int = 10) -> tuple[str, str, float]:
    """Log-linear least-squares trend over the last ``trend_years`` years of a series.

    Returns ``(trend, method, annual_rate)``: trend is 'increasing', 'decreasing' or
    'stable' (|rate| <= 1 %/yr), '' when fewer than :data:`MIN_FIT_ESTIMATES` distinct
    years with positive values fall in the window.
    ``annual_rate`` = exp(slope) - 1 of ln(N) ~ year.
    """
    y = np.asarray(years, dtype=float)
    v = np.asarray(values, dtype=float)
    ok = np.isfinite(y) & np.isfinite(v) & (v > 0)
    y, v = y[ok], v[ok]
    if y.size == 0:
        return "", "", float("nan")
    last = y.max()
    keep = y > last - trend_years
    y, v = y[keep], v[keep]
    if np.unique(y).size < MIN_FIT_ESTIMATES:
        return "", "", float("nan")
    slope = np.polyfit(y, np.log(v), 1)[0]
    rate = math.exp(slope) - 1.0
    trend = "stable" if abs(rate) <= STABLE_RATE else ("increasing" if rate > 0 else "decreasing")
    method = (f"log-linear fit over {int(y.min())}-{int(y.max())} ({y.size} estimates, last {trend_years} "
              f"years): {rate * 100:+.1f} %/yr")
    return trend, method, rate


def national_figures(rows: pd.DataFrame, *, trend_years: int = 10) -> dict[str, Any]:
    """Population figures of one species in one Range State from its prepared rows."""
    out: dict[str, Any] = {k: np.nan for k in POPULATION_FIGURES}
    for k in ("population_unit", "population_method", "population_source", "population_scope",
              "population_note", "trend", "trend_method"):
        out[k] = ""
    if rows.empty:
        return out
    nat = rows[rows["scope_kind"] == "national"]
    if not nat.empty:
        year = int(nat["year"].max())
        cur = nat[nat["year"] == year]
        bests = cur["estimate_best"].where(cur["estimate_best"].notna(),
                                           ((cur["estimate_min"] + cur["estimate_max"]) / 2).round())
        distinct = cur.assign(_b=bests).drop_duplicates(subset=["_b", "estimate_min", "estimate_max"])
        out["population_year"] = year
        out["population_scope"] = "national"
        out["population_best"] = float(distinct["_b"].min()) if distinct["_b"].notna().any() else np.nan
        out["population_min"] = float(pd.concat([cur["estimate_min"], bests]).min())
        out["population_max"] = float(pd.concat([cur["estimate_max"], bests]).max())
        out["population_unit"] = "; ".join(dict.fromkeys(v for v in distinct["unit"] if v))
        out["population_method"] = "; ".join(dict.fromkeys(v for v in distinct["method"] if v))
        out["population_source"] = "; ".join(dict.fromkeys(v for v in distinct["source"] if v))
        if len(distinct) > 1:
            sides = "; ".join(f"{_fmt(b)} ({s or 'no source'})" for b, s in zip(distinct["_b"], distinct["source"]))
            out["population_note"] = (f"conflicting estimates for {year}: {sides}; best shows the lowest, "
                                      "the interval spans all")
        elif cur["estimate_best"].isna().all():
            lo, hi = cur["estimate_min"].iloc[0], cur["estimate_max"].iloc[0]
            if pd.notna(lo) and pd.notna(hi):
                out["population_note"] = (f"no best estimate given: best is the midpoint of "
                                          f"{_fmt(lo)}-{_fmt(hi)}")
            else:
                out["population_note"] = (f"only a {'minimum' if pd.notna(lo) else 'maximum'} "
                                          f"({_fmt(lo if pd.notna(lo) else hi)}) given: no best estimate")
        subs = rows[(rows["scope_kind"] != "national") & (rows["year"] == year)]
        if not subs.empty:
            extra = f"{len(subs)} subnational/subpopulation estimate(s) for {year} not added to the national figure"
            out["population_note"] = "; ".join(x for x in (out["population_note"], extra) if x)
        # a year with only min and max contributes their midpoint, as for the latest year
        nat_best = nat["estimate_best"].where(nat["estimate_best"].notna(),
                                              ((nat["estimate_min"] + nat["estimate_max"]) / 2).round())
        series = nat.assign(_b=nat_best).groupby("year")["_b"].apply(
            lambda s: float(np.exp(np.log(s[s > 0]).mean())) if (s > 0).any() else np.nan)
        reported = [t for t in cur["trend_norm"] if t]
    else:
        # No national estimate: the latest estimate of each subpopulation / area, summed.
        latest = rows.sort_values("year").groupby("scope", sort=True).tail(1)
        year = int(latest["year"].max())
        out["population_year"] = year
        out["population_scope"] = "sum of " + "/".join(sorted(set(latest["scope_kind"])))
        out["population_best"] = float(latest["estimate_best"].sum(min_count=1))
        mins = latest["estimate_min"].where(latest["estimate_min"].notna(), latest["estimate_best"])
        maxs = latest["estimate_max"].where(latest["estimate_max"].notna(), latest["estimate_best"])
        out["population_min"] = float(mins.sum(min_count=1))
        out["population_max"] = float(maxs.sum(min_count=1))
        out["population_unit"] = "; ".join(dict.fromkeys(v for v in latest["unit"] if v))
        out["population_method"] = "; ".join(dict.fromkeys(v for v in latest["method"] if v))
        out["population_source"] = "; ".join(dict.fromkeys(v for v in latest["source"] if v))
        years = sorted(set(latest["year"]))
        span = str(years[0]) if len(years) == 1 else f"{years[0]}-{years[-1]}"
        out["population_note"] = (f"sum of {len(latest)} {'/'.join(sorted(set(latest['scope_kind'])))} "
                                  f"estimate{'s' if len(latest) > 1 else ''} ({span}); no national estimate")
        series = rows.groupby("year")["estimate_best"].sum(min_count=1) if latest["scope"].nunique() == 1 \
            else pd.Series(dtype=float)
        reported = [t for t in latest["trend_norm"] if t]
    if reported:
        uniq = list(dict.fromkeys(reported))
        out["trend"] = uniq[0] if len(uniq) == 1 else "conflicting: " + " / ".join(uniq)
        out["trend_method"] = "as reported"
    else:
        trend, method, _ = fit_trend(series.index, series.values, trend_years=trend_years)
        out["trend"], out["trend_method"] = trend, method
    return out


def population_by_country(pop: pd.DataFrame, iso3s: list[str], *, trend_years: int = 10) -> pd.DataFrame:
    """One row per ISO3 in ``iso3s`` with :data:`POPULATION_FIGURES` (empty where no estimate)."""
    prep = prepare(pop) if len(pop) else pd.DataFrame(columns=["iso3"])
    rows = []
    for iso in iso3s:
        sub = prep[prep["iso3"] == iso] if len(prep) else prep
        rows.append({"iso3": iso, **national_figures(sub, trend_years=trend_years)})
    return pd.DataFrame(rows, columns=["iso3", *POPULATION_FIGURES])


def species_population(by_country: pd.DataFrame) -> dict[str, Any]:
    """Range-wide population: sum of the national bests; interval from the national mins and
    maxes (a country with only a best counts it at both ends). A country with only a minimum
    ("at least N") counts N as its best and minimum, and makes the upper bound unknown; a
    country with only a maximum is left out of the sums. The note says which."""
    est = by_country[by_country["population_year"].notna()]
    out = {"population_best": np.nan, "population_min": np.nan, "population_max": np.nan,
           "population_unit": "", "population_note": "", "n_range_states_with_estimate": int(len(est))}
    if est.empty:
        out["population_note"] = "no population estimate in any Range State"
        return out
    best, lo, hi = est["population_best"], est["population_min"], est["population_max"]
    b = best.where(best.notna(), lo)
    mn = lo.where(lo.notna(), best)
    mx = hi.where(hi.notna(), best)
    used = b.notna()
    if not used.any():
        out["population_note"] = "only maxima given: no range-wide sum"
        return out
    out["population_best"] = float(b[used].sum())
    out["population_min"] = float(mn[used].sum())
    out["population_max"] = float(mx[used].sum()) if mx[used].notna().all() else np.nan
    units = sorted({u for v in est.loc[used, "population_unit"] for u in str(v).split("; ") if u and u != "nan"})
    out["population_unit"] = "; ".join(units)
    years = est.loc[used, "population_year"].astype(int)
    span = f"{years.min()}" if years.min() == years.max() else f"{years.min()}-{years.max()}"
    note = f"sum of the latest estimates of {int(used.sum())} of {len(by_country)} Range States ({span})"
    if len(units) > 1:
        note += "; units differ between Range States"
    iso = est.get("iso3", pd.Series("?", index=est.index))
    at_least = used & best.isna()
    if at_least.any():
        note += ("; counted at their minimum, upper bound unknown: "
                 + ", ".join(f"{i} (at least {_fmt(v)})" for i, v in zip(iso[at_least], lo[at_least])))
    max_only = ~used
    if max_only.any():
        note += "; only a maximum, not in the sums: " + ", ".join(
            f"{i} (at most {_fmt(v)})" for i, v in zip(iso[max_only], hi[max_only]))
    out["population_note"] = note
    return out


def species_trend(by_country: pd.DataFrame, fallback: str = "", *, min_coverage: float = 0.5) -> tuple[str, str]:
    """Range-wide trend: the trend of the Range States holding most of the estimated
    population (weighted by population_best), provided the Range States with a trend hold
    at least ``min_coverage`` of it; else ``fallback`` (the IUCN trend in the registry)."""
    best = by_country["population_best"].fillna(0.0)
    total = float(best.sum())
    known = by_country["trend"].astype(str).isin(["increasing", "decreasing", "stable"])
    t = by_country[known]
    coverage = float(best[known].sum()) / total if total > 0 else 0.0
    if t.empty or coverage < min_coverage:
        why = (f"national trends cover {coverage:.0%} of the estimated population" if len(t)
               else "no national trend")
        if fallback:
            return normalise_trend(fallback), f"IUCN Red List trend (registry); {why}"
        return "", why
    w = best[known]
    weights = w.groupby(t["trend"]).sum().sort_values(ascending=False)
    share = weights.iloc[0] / total
    return (weights.index[0],
            f"trend of Range States holding {share:.0%} of the estimated population "
            f"({len(t)} of {len(by_country)} Range States with a trend)")
