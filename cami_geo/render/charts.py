"""Population time-series charts for the technical documents (matplotlib, PNG bytes).

National estimates are drawn as a solid line with filled markers; subnational and
subpopulation estimates (never added to the national figure, DOMAIN.md section 2) as dashed
lines with hollow markers, one series per named area. Vertical bars span min-max.

matplotlib is imported only when a chart is drawn (a document without population figures
never loads it), and without pyplot: a :class:`matplotlib.figure.Figure` on the Agg canvas.

Each chart is drawn once (:func:`population_chart` returns PNG bytes that the HTML, DOCX and
PDF all embed). Its margins are those ``Figure.tight_layout`` would choose, computed from
the extents of the few texts around the axes (:func:`_margins`) instead of a layout pass
over every artist; the CJK fallback fonts are only asked for when a label needs them.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import math
import os
from pathlib import Path
from typing import Any, Iterable

_FONTS = ["DejaVu Sans", "Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Serif CJK SC"]
_PAD = 1.08
"""Padding around the drawing, in font sizes (the default of ``Figure.tight_layout``)."""


def _fonts(texts: Iterable[str]) -> list[str]:
    """The font list for the chart's texts: DejaVu Sans alone when it has every character
    (Latin, Greek, Cyrillic and common punctuation: the same glyphs as with the fallback
    list, without loading the CJK fonts matplotlib would otherwise open for each chart)."""
    if all(ord(ch) < 0x0530 or 0x2000 <= ord(ch) <= 0x206F for text in texts for ch in text):
        return _FONTS[:1]
    return list(_FONTS)


def _num(value: Any) -> float | None:
    try:
        out = float(str(value).replace(",", "").strip())
    except (TypeError, ValueError):
        return None
    return None if math.isnan(out) else out


def _plain(text: Any) -> str:
    """Submission text as a matplotlib label: no mathtext, no control characters."""
    out = "".join(ch for ch in str(text or "") if ch >= " ")
    return out.replace("$", r"\$")


CHART_CACHE_ENV = "CAMI_GEO_CHART_CACHE"
"""Environment variable naming the folder of drawn charts (:func:`population_chart`'s
``cache``); empty turns it off. Default: ``cami-geo-<uid>/chart-cache`` in the system's
temporary directory (:func:`cami_geo.cachedir.cache_dir`)."""


def chart_cache_dir() -> Path | None:
    """The folder of drawn charts the document stages use, or None (off, or not safe)."""
    from ..cachedir import cache_dir

    return cache_dir("chart-cache", CHART_CACHE_ENV)


def population_chart(rows: Iterable[dict[str, Any]], *, title: str, unit: str = "",
                     width_in: float = 6.4, height_in: float = 3.0, dpi: int = 150,
                     cache: str | Path | None = None) -> bytes | None:
    """A PNG of population estimates over time, or None when no row has a year and a figure.

    ``rows`` are population.csv rows (``year``, ``estimate_best``, ``estimate_min``,
    ``estimate_max``, ``scope``) of one species in one Range State.

    ``cache``: a folder of charts already drawn, named by what they are drawn from
    (:func:`_cache_key`). The same chart is in a species' report and in the profile of its
    Range State, two jobs: the second reads the first's PNG instead of drawing it again.
    """
    series: dict[str, list[tuple[float, float | None, float | None, float | None]]] = {}
    for row in rows:
        year = _num(row.get("year"))
        best, lo, hi = _num(row.get("estimate_best")), _num(row.get("estimate_min")), _num(row.get("estimate_max"))
        if year is None or (best is None and lo is None and hi is None):
            continue
        scope = str(row.get("scope") or "national").strip() or "national"
        series.setdefault(scope, []).append((year, best, lo, hi))
    if not series:
        return None
    target = None
    if cache:
        target = Path(cache) / f"{_cache_key(series, title, unit, width_in, height_in, dpi)}.png"
        try:
            png = target.read_bytes()
            if png.startswith(b"\x89PNG\r\n\x1a\n") and png.endswith(_IEND):
                return png
        except OSError:
            pass
    png = _draw(series, title, unit, width_in, height_in, dpi)
    if target is not None:
        _store(target, png)
    return png


_IEND = b"IEND\xaeB`\x82"
"""The last 8 bytes of every PNG file (the IEND chunk's type and CRC)."""


def _cache_key(series: dict[str, list[tuple[Any, ...]]], *args: Any) -> str:
    """What a chart is drawn from: its series (in order, exact values), title, unit and size,
    and what draws it (:func:`_drawing_digest`)."""
    h = hashlib.sha256(_drawing_digest().encode())
    h.update(repr((list(series.items()), args)).encode())
    return h.hexdigest()


@functools.lru_cache(maxsize=1)
def _drawing_digest() -> str:
    """This module's code, the versions of matplotlib, FreeType and PIL, matplotlib's
    settings and the font files the charts may use."""
    import matplotlib
    import PIL
    from matplotlib import font_manager, ft2font

    fonts = []
    for family in _FONTS:
        try:
            path = font_manager.findfont(family, fallback_to_default=False)
            st = os.stat(path)
            fonts.append((family, path, st.st_size, st.st_mtime_ns))
        except (ValueError, OSError):
            fonts.append((family, None))
    h = hashlib.sha256(Path(__file__).read_bytes())
    h.update(repr((matplotlib.__version__, ft2font.__freetype_version__, PIL.__version__,
                   sorted((k, repr(v)) for k, v in matplotlib.rcParams.items()), fonts)).encode())
    return h.hexdigest()


def warm_up() -> None:
    """For a process that forks chart-drawing jobs (the stage worker): work out
    :func:`_drawing_digest` and draw a sample chart (fonts opened, text layouts cached)."""
    _drawing_digest()
    population_chart([{"year": "2000", "estimate_best": "1200", "estimate_min": "1000", "estimate_max": "1500"},
                      {"year": "2003", "estimate_best": "1400", "scope": "subpopulation: Area"}],
                     title="Warm-up in Range State (XXX)", unit="individuals")


def _store(target: Path, png: bytes) -> None:
    """Write ``png`` to the cache (:func:`cami_geo.cachedir.store`); a cache that cannot be
    written is no cache."""
    from ..cachedir import store

    with contextlib.suppress(OSError):
        store(target, png)


def _draw(series: dict[str, list[tuple[float, float | None, float | None, float | None]]], title: str,
          unit: str, width_in: float, height_in: float, dpi: int) -> bytes:
    """The chart of ``series`` (scope -> points), drawn."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    labels = [_plain("national" if scope == "national" else scope.replace(":", ": ", 1)) for scope in series]
    texts = [_plain(title), _plain(unit or "individuals"), "year", *labels]
    with matplotlib.rc_context({"font.family": _fonts(texts), "font.size": 8, "svg.hashsalt": "cami-geo",
                                "axes.spines.top": False, "axes.spines.right": False}):
        fig = Figure(figsize=(width_in, height_in), dpi=dpi)
        canvas = FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        cmap = matplotlib.colormaps["tab10"]
        order = sorted(series, key=lambda s: (s != "national", s))
        for i, scope in enumerate(order):
            pts = sorted(series[scope], key=lambda p: p[0])
            national = scope == "national"
            color = "#1f4e79" if national else cmap((i % 9) + 1)
            xs = [p[0] for p in pts]
            ys = [p[1] if p[1] is not None else ((p[2] or 0) + (p[3] or 0)) / 2 for p in pts]
            ax.plot(xs, ys, linestyle="-" if national else "--", marker="o", markersize=5,
                    color=color, markerfacecolor=color if national else "white", linewidth=1.5,
                    label=_plain("national" if national else scope.replace(":", ": ", 1)))
            for x, y, lo, hi in zip(xs, ys, [p[2] for p in pts], [p[3] for p in pts]):
                if lo is not None or hi is not None:
                    ax.vlines(x, lo if lo is not None else y, hi if hi is not None else y,
                              color=color, linewidth=1, alpha=0.7)
        ax.set_title(_plain(title), fontsize=9, y=1.0)  # where matplotlib would place it, without its search
        ax.set_xlabel("year")
        ax.set_ylabel(_plain(unit or "individuals"))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.set_ylim(bottom=0)
        years = [p[0] for pts in series.values() for p in pts]
        if min(years) == max(years):
            ax.set_xlim(min(years) - 1, max(years) + 1)
        ax.grid(axis="y", color="#dddddd", linewidth=0.5)
        ax.legend(fontsize=7, frameon=False, loc="best")
        margins = _margins(fig, ax, canvas)
        if margins is None:
            fig.tight_layout()
        else:
            fig.subplots_adjust(**margins)
        canvas.draw()
        return _png(canvas, dpi)


def _visible_ticks(axis: Any, lo: float, hi: float) -> tuple[list[float], list[str]] | None:
    """The major tick positions ``axis`` draws within [lo, hi] and their labels (None if the
    axis would draw an offset or multiplier text, which :func:`_margins` does not place)."""
    from matplotlib.transforms import _interval_contains_close

    locs = [v for v in axis.get_majorticklocs() if _interval_contains_close((lo, hi), v)]
    formatter = axis.get_major_formatter()
    labels = formatter.format_ticks(locs)
    if formatter.get_offset():
        return None
    return locs, labels


def _margins(fig: Any, ax: Any, canvas: Any) -> dict[str, float] | None:
    """The subplot parameters ``fig.tight_layout()`` gives a chart of one Axes with its
    title above, its axis labels and tick labels at the left and bottom and its legend
    inside, from the extents of those texts alone (tight_layout lays out every artist,
    ticks included, which costs as much as drawing the chart). None when the chart is not
    of that simple shape (a title or y label longer than the axes, an offset text): the
    caller then uses tight_layout itself."""
    try:
        from matplotlib import rcParams as rc
        from matplotlib.font_manager import FontProperties
        from matplotlib.text import Text

        renderer = canvas.get_renderer()
        dpi = fig.dpi
        fig_w, fig_h = fig.get_size_inches() * dpi  # pixels
        pt = dpi / 72.0
        pad = _PAD * FontProperties(size=rc["font.size"]).get_size_in_points() * pt
        box = ax.get_position(original=True)  # where tight_layout measures from
        ax_w, ax_h = box.width * fig_w, box.height * fig_h
        x0, x1 = ax.get_xlim()
        y0, y1 = ax.get_ylim()
        xticks, yticks = _visible_ticks(ax.xaxis, x0, x1), _visible_ticks(ax.yaxis, y0, y1)
        if xticks is None or yticks is None or x1 <= x0:
            return None

        def extent(text: str, axis: str) -> tuple[float, float]:
            t = Text(0, 0, text, fontproperties=FontProperties(size=rc[f"{axis}tick.labelsize"]))
            t.set_figure(fig)
            bb = t.get_window_extent(renderer)
            return bb.width, bb.height

        ytick_w = max((extent(s, "y")[0] for s in yticks[1] if s), default=0.0)
        xsizes = [extent(s, "x") if s else (0.0, 0.0) for s in xticks[1]]
        xtick_h = max((h for _, h in xsizes), default=0.0)
        overhang = max([0.0] + [(v - x0) / (x1 - x0) * ax_w + w / 2 - ax_w
                                for v, (w, _) in zip(xticks[0], xsizes)])
        ylabel = ax.yaxis.label.get_window_extent(renderer)
        xlabel = ax.xaxis.label.get_window_extent(renderer)
        title = ax.title.get_window_extent(renderer)
        if title.width > ax_w or ylabel.height > ax_h:
            return None
        out_y = (rc["ytick.major.size"] + rc["ytick.major.pad"]) * pt if yticks[0] else 0.0
        out_x = (rc["xtick.major.size"] + rc["xtick.major.pad"]) * pt if xticks[0] else 0.0
        left = pad + out_y + ytick_w + (ax.yaxis.labelpad * pt + ylabel.width if ylabel.width else 0.0)
        bottom = pad + out_x + xtick_h + (ax.xaxis.labelpad * pt + xlabel.height if xlabel.height else 0.0)
        top = pad + max(0.0, title.y1 - ax.bbox.y1) if ax.get_title() else pad
        right = pad + overhang
        params = {"left": left / fig_w, "right": 1 - right / fig_w, "bottom": bottom / fig_h, "top": 1 - top / fig_h}
        if params["left"] >= params["right"] or params["bottom"] >= params["top"]:
            return None
        return params
    except Exception:  # noqa: BLE001 - a chart of another shape: tight_layout measures it
        return None


def _png(canvas: Any, dpi: int) -> bytes:
    """The drawn canvas as PNG: the pixels ``savefig(format="png")`` writes, without its
    second, layout-only draw; RGB when every pixel is opaque (a chart's background is), so
    that the PDF writer has no alpha channel to split off and compress."""
    from PIL import Image

    w, h = canvas.get_width_height(physical=True)
    image = Image.frombuffer("RGBA", (w, h), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
    if image.getchannel("A").getextrema() == (255, 255):
        image = image.convert("RGB")
    buf = io.BytesIO()
    image.save(buf, format="png", dpi=(dpi, dpi))
    return buf.getvalue()
