"""Colours, classes and legend entries shared by the interactive and the static maps.

Both renderers take every colour and every legend label from here, so a reader of a
meeting document sees the same symbols as on the web page.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from cami_geo.model import PRESENCE_CODES, SEASONAL_CODES

# Basemap
LAND_RANGE_STATE = "#f4efe1"
LAND_NEIGHBOUR = "#dcdcdc"
BORDER = "#8c8c8c"
WATER = "#d6e6f2"
HIGHLIGHT = "#5b3a29"

# Occurrences
OCCURRENCE = "#b2182b"
OCCURRENCE_SYNTHETIC = "#7b3294"
ABSENCE = "#4d4d4d"
WITHHELD = "#e08214"

SYNTHETIC_LABEL = "Synthetic demo data"

# Range polygons: colour by season (IUCN seasonal codes), opacity and dashes by presence.
SEASONAL_COLOURS = {
    1: "#e6a024",   # resident
    2: "#1a9850",   # breeding season
    3: "#4575b4",   # non-breeding season
    4: "#9e67ab",   # passage
    5: "#969696",   # seasonal occurrence uncertain
}


@dataclass(frozen=True)
class RangeStyle:
    colour: str
    fill_opacity: float
    dash: str | None  # Leaflet dashArray; matplotlib gets the same pattern


def range_style(presence: Any, seasonal: Any) -> RangeStyle:
    """Style of a range polygon from its IUCN presence (1-6) and seasonal (1-5) codes."""
    s = _code(seasonal, 1)
    p = _code(presence, 1)
    colour = SEASONAL_COLOURS.get(s, SEASONAL_COLOURS[5])
    if p == 1:
        return RangeStyle(colour, 0.45, None)
    if p in (2, 3):
        return RangeStyle(colour, 0.25, "6 4")
    if p == 6:
        return RangeStyle(colour, 0.15, "2 4")
    return RangeStyle("#737373", 0.10, "2 6")  # possibly extinct, extinct


def range_label(presence: Any, seasonal: Any) -> str:
    return (f"{SEASONAL_CODES.get(_code(seasonal, 1), 'season unknown')}, "
            f"{PRESENCE_CODES.get(_code(presence, 1), 'presence unknown')}")


def range_legend() -> list[tuple[str, str, float, str | None]]:
    """(label, colour, fill opacity, dash) for the legend of range polygons."""
    out = [(f"Range: {SEASONAL_CODES[s]}", c, 0.45, None) for s, c in SEASONAL_COLOURS.items()]
    out += [("Range: probably/possibly extant", "#ffffff", 0.25, "6 4"),
            ("Range: possibly extinct/extinct", "#737373", 0.10, "2 6")]
    return out


def _code(value: Any, default: int) -> int:
    try:
        v = int(float(value))
    except (TypeError, ValueError):
        return default
    return v


# Threats: colour by first-level IUCN Threats Classification Scheme 3.3 category.
THREAT_CATEGORIES = {
    "1": ("Residential & commercial development", "#a6761d"),
    "2": ("Agriculture & aquaculture", "#66a61e"),
    "3": ("Energy production & mining", "#e7298a"),
    "4": ("Transportation & service corridors", "#252525"),
    "5": ("Biological resource use", "#d95f02"),
    "6": ("Human intrusions & disturbance", "#7570b3"),
    "7": ("Natural system modifications", "#1b9e77"),
    "8": ("Invasive species, genes & diseases", "#e6ab02"),
    "9": ("Pollution", "#666666"),
    "10": ("Geological events", "#8c510a"),
    "11": ("Climate change & severe weather", "#01665e"),
    "12": ("Other threats", "#bababa"),
}
THREAT_UNKNOWN = ("Threat, category not given", "#bababa")


def threat_category(code: Any) -> tuple[str, str, str]:
    """(category key, label, colour) of an IUCN threat code such as '4.1' or '5.1.1'."""
    text = "" if code is None or (isinstance(code, float) and math.isnan(code)) else str(code).strip()
    key = text.split(".")[0] if text else ""
    label, colour = THREAT_CATEGORIES.get(key, THREAT_UNKNOWN)
    return key, f"{key} {label}" if key in THREAT_CATEGORIES else label, colour


def barrier_width(barrier_class: Any) -> float:
    """Line width (px) of a linear threat: complete barriers draw thickest."""
    return {"complete barrier": 4.0, "partial barrier": 3.0}.get(str(barrier_class or "").strip().lower(), 2.0)


# Choropleth of the latest population estimate (individuals or mature individuals).
POPULATION_BINS = [(0, 100), (100, 1_000), (1_000, 10_000), (10_000, 100_000), (100_000, math.inf)]
POPULATION_COLOURS = ["#edf8e9", "#bae4b3", "#74c476", "#31a354", "#006d2c"]
NO_ESTIMATE = ("No estimate", "#ffffff")
NOT_RANGE_STATE = "#e8e8e8"


def _fmt(v: float) -> str:
    return f"{int(v):,}"


def population_class(value: Any) -> tuple[str, str]:
    """(legend label, colour) of a population estimate; missing values get 'No estimate'."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return NO_ESTIMATE
    if math.isnan(v) or v < 0:
        return NO_ESTIMATE
    for (lo, hi), colour in zip(POPULATION_BINS, POPULATION_COLOURS):
        if lo <= v < hi:
            return population_label(lo, hi), colour
    return NO_ESTIMATE


def population_label(lo: float, hi: float) -> str:
    return f"{_fmt(lo)} or more" if math.isinf(hi) else f"{_fmt(lo)} – {_fmt(hi - 1)}"


def population_legend() -> list[tuple[str, str]]:
    return [(population_label(lo, hi), c) for (lo, hi), c in zip(POPULATION_BINS, POPULATION_COLOURS)] + [NO_ESTIMATE]


# Overview choropleth: number of CAMI species per Range State.
RICHNESS_BINS = [(1, 3), (3, 6), (6, 9), (9, 1000)]
RICHNESS_COLOURS = ["#fee6ce", "#fdae6b", "#e6550d", "#a63603"]


def richness_class(n: int) -> tuple[str, str]:
    if n <= 0:
        return "No CAMI species", NOT_RANGE_STATE
    for (lo, hi), colour in zip(RICHNESS_BINS, RICHNESS_COLOURS):
        if lo <= n < hi:
            return richness_label(lo, hi), colour
    return richness_label(*RICHNESS_BINS[-1]), RICHNESS_COLOURS[-1]


def richness_label(lo: int, hi: int) -> str:
    if hi >= 1000:
        return f"{lo} or more species"
    return f"{lo} species" if hi - lo == 1 else f"{lo}–{hi - 1} species"


def richness_legend() -> list[tuple[str, str]]:
    return [(richness_label(lo, hi), c) for (lo, hi), c in zip(RICHNESS_BINS, RICHNESS_COLOURS)]


# Several species on one map (Range State maps): a qualitative palette.
SPECIES_PALETTE = ["#1f78b4", "#e31a1c", "#33a02c", "#ff7f00", "#6a3d9a", "#b15928", "#a6cee3",
                   "#fb9a99", "#b2df8a", "#fdbf6f", "#cab2d6", "#8dd3c7", "#bebada", "#80b1d3",
                   "#fccde5", "#d9d9d9"]


def species_colour(index: int) -> str:
    return SPECIES_PALETTE[index % len(SPECIES_PALETTE)]


def marker_radius_px(n: int) -> float:
    """Radius (px) of an aggregated occurrence marker for ``n`` records."""
    return round(3.0 + min(9.0, 2.0 * math.log10(max(n, 1)) * 1.5), 1)


def dash_tuple(dash: str | None) -> tuple | None:
    """A Leaflet dashArray ('6 4') as a matplotlib dash pattern."""
    if not dash:
        return None
    return (0, tuple(float(x) for x in dash.split()))
