"""Population time-series charts for the technical documents (matplotlib, PNG bytes).

National estimates are drawn as a solid line with filled markers; subnational and
subpopulation estimates (never added to the national figure, DOMAIN.md section 2) as dashed
lines with hollow markers, one series per named area. Vertical bars span min-max.

matplotlib is imported only when a chart is drawn (a document without population figures
never loads it), and without pyplot: a :class:`matplotlib.figure.Figure` on the Agg canvas.
"""

from __future__ import annotations

import io
import math
from typing import Any, Iterable

_FONTS = ["DejaVu Sans", "Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Serif CJK SC"]


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


def population_chart(rows: Iterable[dict[str, Any]], *, title: str, unit: str = "",
                     width_in: float = 6.4, height_in: float = 3.0, dpi: int = 150) -> bytes | None:
    """A PNG of population estimates over time, or None when no row has a year and a figure.

    ``rows`` are population.csv rows (``year``, ``estimate_best``, ``estimate_min``,
    ``estimate_max``, ``scope``) of one species in one Range State.
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

    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    with matplotlib.rc_context({"font.family": _FONTS, "font.size": 8, "svg.hashsalt": "cami-geo",
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
        ax.set_title(_plain(title), fontsize=9)
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
        fig.tight_layout()
        canvas.draw()
        return _png(canvas, dpi)


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
