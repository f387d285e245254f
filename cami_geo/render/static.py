"""Static maps for documents (matplotlib): PNG at the configured dpi and SVG.

They draw the same :class:`cami_geo.render.maps.MapContent` as the interactive maps, with
the same colours (:mod:`cami_geo.render.symbology`), in an equal-area projection: Albers
Equal Area for North Asia (ESRI:102025) for the overview, and an Albers Equal Area
centred on the map's extent (standard parallels at 1/6 and 5/6 of its latitude span) for
species and Range State maps. Every map carries a legend, a scale bar in km, the source
and cycle, the attribution and the UN disclaimer; same content gives the same bytes.
"""

from __future__ import annotations

import html
import re
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry import box

from cami_geo.render import symbology as sym

if TYPE_CHECKING:  # pragma: no cover
    from cami_geo.render.maps import MapContent

NORTH_ASIA_ALBERS = "ESRI:102025"

RASTERIZE_CELLS = 2_000
"""Above this many occurrence cells the markers are embedded in the SVG as an image (at the
PNG's dpi), which keeps the SVG of a million-record map small."""


def projection_for(content: "MapContent") -> tuple[str, str]:
    """(CRS string, human label) of the equal-area projection for a map."""
    w, s, e, n = content.bounds
    if content.key == "overview":
        return NORTH_ASIA_ALBERS, "Asia North Albers Equal Area Conic (ESRI:102025)"
    lon0 = round((w + e) / 2, 1)
    lat1 = round(s + (n - s) / 6, 1)
    lat2 = round(n - (n - s) / 6, 1)
    lat0 = round((s + n) / 2, 1)
    proj = f"+proj=aea +lat_0={lat0} +lon_0={lon0} +lat_1={lat1} +lat_2={lat2} +datum=WGS84 +units=m +no_defs"
    return proj, f"Albers Equal Area (lon_0={lon0}°, lat_1={lat1}°, lat_2={lat2}°, WGS84)"


def _plain(text: str) -> str:
    """Legend text arrives as escaped HTML: back to plain text, safe for matplotlib (no mathtext)."""
    text = re.sub(r"<[^>]+>", "", text)
    return html.unescape(text).replace("$", r"\$")


def _nice_length_km(span_km: float) -> float:
    target = span_km / 5
    for v in (10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000):
        if v >= target:
            return v
    return 2000


def _scale_bar(ax, x0: float, y0: float, xspan: float, yspan: float) -> None:
    length_km = _nice_length_km(xspan / 1000)
    length = length_km * 1000
    h = yspan * 0.012
    half = length / 2
    from matplotlib.patches import Rectangle

    ax.add_patch(Rectangle((x0, y0), half, h, facecolor="black", edgecolor="black", lw=0.5, zorder=20))
    ax.add_patch(Rectangle((x0 + half, y0), half, h, facecolor="white", edgecolor="black", lw=0.5, zorder=20))
    for x, label in ((x0, "0"), (x0 + half, f"{length_km / 2:g}"), (x0 + length, f"{length_km:g} km")):
        ax.text(x, y0 + h * 1.6, label, ha="center", va="bottom", fontsize=6, zorder=20,
                bbox=dict(facecolor="white", alpha=0.6, edgecolor="none", pad=0.5))


def render_static(content: "MapContent", *, png: str | Path | None, svg: str | Path | None = None,
                  dpi: int = 300) -> None:
    """Draw ``content`` and write it as PNG (at ``dpi``) and/or SVG."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    crs, crs_label = projection_for(content)
    w, s, e, n = content.bounds
    frame = gpd.GeoSeries([box(w, s, e, n).segmentize(0.5)], crs="EPSG:4326").to_crs(crs)
    fx0, fy0, fx1, fy1 = frame.total_bounds
    from cami_geo.render.maps import CAMI_WINDOW

    clip = box(*CAMI_WINDOW)  # keeps the antimeridian (and the far side of Russia) off the map

    def proj(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        values = np.asarray(gdf.geometry.values, dtype=object)
        g = gdf[~shapely.is_missing(values) & ~shapely.is_empty(values)].copy()
        if len(g) == 0:
            return g
        g["geometry"] = shapely.intersection(g.geometry.values, clip)
        g = g[~g.geometry.is_empty]
        return g.to_crs(crs)

    rc = {"svg.hashsalt": "cami-geo", "svg.fonttype": "none", "font.family": "DejaVu Sans",
          "path.simplify": True}
    with matplotlib.rc_context(rc):
        fig = Figure(figsize=(10, 8.2))  # not pyplot: no global state, no redraw after every layer
        FigureCanvasAgg(fig)
        ax = fig.add_axes([0.02, 0.17, 0.68, 0.74])
        ax.set_facecolor(sym.WATER)
        focus = set(content.focus)
        from cami_geo.render.maps import basemap_styles

        base = proj(basemap_styles(content))
        for colour in (sym.LAND_NEIGHBOUR, sym.LAND_RANGE_STATE):
            part = base[base["fill"] == colour] if len(base) else base
            if len(part):
                part.plot(ax=ax, color=colour, edgecolor=sym.BORDER, linewidth=0.35, zorder=1)
        z = 2
        for spec in content.layers:
            if spec.kind == "cells":
                _draw_cells(ax, spec, crs, z)
            else:
                _draw_features(ax, proj(spec.data), z)
            z += 1
        if len(base):
            hl = base[base["iso3"].isin(focus)]
            if len(hl):
                hl.boundary.plot(ax=ax, color=sym.HIGHLIGHT, linewidth=0.9, zorder=z + 1)
        # widen the frame to the axes' shape so that the map fills it at equal scale
        box_ratio = (10 * 0.68) / (8.2 * 0.74)
        cx, cy, dx, dy = (fx0 + fx1) / 2, (fy0 + fy1) / 2, fx1 - fx0, fy1 - fy0
        if dx / dy < box_ratio:
            dx = dy * box_ratio
        else:
            dy = dx / box_ratio
        fx0, fx1, fy0, fy1 = cx - dx / 2, cx + dx / 2, cy - dy / 2, cy + dy / 2
        ax.set_xlim(fx0, fx1)
        ax.set_ylim(fy0, fy1)
        ax.set_aspect("equal")
        ax.set_xlabel("")
        ax.set_ylabel("")
        if len(base):
            view = box(fx0, fy0, fx1, fy1)
            for row in base.itertuples(index=False):
                try:
                    part = shapely.make_valid(row.geometry).intersection(view)
                except shapely.errors.GEOSException:
                    continue
                if part.is_empty or part.area < (dx * dy) * 0.002:
                    continue
                pt = part.representative_point()
                ax.text(pt.x, pt.y, _plain(str(row.name)), fontsize=6 if row.iso3 in focus else 5,
                        color="#3b3b3b" if row.iso3 in focus else "#777777", ha="center", va="center",
                        style="normal" if row.iso3 in focus else "italic", zorder=z + 2, clip_on=True)
        ax.set_xticks([])
        ax.set_yticks([])
        for sp in ax.spines.values():
            sp.set_linewidth(0.6)
        _scale_bar(ax, fx0 + (fx1 - fx0) * 0.04, fy0 + (fy1 - fy0) * 0.04, fx1 - fx0, fy1 - fy0)
        ax.annotate("N", xy=(0.96, 0.93), xytext=(0.96, 0.85), xycoords="axes fraction", ha="center",
                    fontsize=9, fontweight="bold", arrowprops=dict(arrowstyle="-|>", color="black", lw=1), zorder=20)

        fig.text(0.02, 0.965, _plain(content.title), fontsize=13, fontweight="bold", ha="left", va="center")
        sub = (f"{_plain(content.subtitle)} — " if content.subtitle else "") + f"reporting cycle {_plain(content.cycle)}"
        fig.text(0.02, 0.935, sub, fontsize=9, ha="left", va="center")
        if content.synthetic:
            fig.text(0.98, 0.965, sym.SYNTHETIC_LABEL.upper(), fontsize=11, fontweight="bold", color="white",
                     ha="right", va="center", bbox=dict(facecolor=sym.OCCURRENCE_SYNTHETIC, edgecolor="none", pad=4))

        handles, labels = [], []
        for section in content.legend:
            handles.append(Patch(facecolor="none", edgecolor="none"))
            labels.append(_plain(section.title))
            for label, colour, shape, extra in section.entries:
                if shape == "fill":
                    handles.append(Patch(facecolor=colour, edgecolor="#555555", alpha=max(extra.get("opacity", 0.8), 0.35),
                                         linestyle="--" if extra.get("dash") else "-", linewidth=0.6))
                elif shape == "none":
                    handles.append(Patch(facecolor="none", edgecolor="none"))
                elif shape == "line":
                    handles.append(Line2D([0], [0], color=colour, lw=2.2))
                else:
                    hollow = extra.get("hollow")
                    handles.append(Line2D([0], [0], marker="o", linestyle="none", markersize=6,
                                          markerfacecolor="white" if hollow else colour,
                                          markeredgecolor=colour if hollow else "#333333", markeredgewidth=0.6))
                labels.append("  " + "\n  ".join(textwrap.wrap(_plain(label), 44)))
        if handles:
            leg = fig.legend(handles, labels, loc="upper left", bbox_to_anchor=(0.715, 0.91), fontsize=6.5,
                             frameon=False, handlelength=1.6, borderaxespad=0.0, labelspacing=0.45)
            for text, h in zip(leg.get_texts(), handles):
                if isinstance(h, Patch) and h.get_facecolor()[3] == 0 and not text.get_text().startswith("  "):
                    text.set_fontweight("bold")

        notes = [_plain(x) for x in content.notes]
        footer = notes + [_plain(content.source), _plain(content.attribution), f"Projection: {crs_label}."]
        y = 0.145
        for line in footer:
            for part in textwrap.wrap(line, 150):
                fig.text(0.02, y, part, fontsize=6.5, ha="left", va="top")
                y -= 0.016
        for part in textwrap.wrap(_plain(content.disclaimer), 170):
            fig.text(0.02, y, part, fontsize=5.8, ha="left", va="top", style="italic", color="#333333")
            y -= 0.014
        if png:
            Path(png).parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(png, dpi=dpi, format="png", metadata={"Software": None})
        if svg:
            Path(svg).parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(svg, format="svg", dpi=dpi, metadata={"Date": None, "Creator": None})


def _draw_features(ax, gdf: gpd.GeoDataFrame, z: int) -> None:
    if gdf is None or len(gdf) == 0:
        return
    types = gdf.geometry.geom_type
    polys = gdf[types.isin(["Polygon", "MultiPolygon"])]
    lines = gdf[types.isin(["LineString", "MultiLineString"])]
    points = gdf[types.isin(["Point", "MultiPoint"])]
    for key, group in _style_groups(polys, ["fill", "fill_opacity", "stroke", "weight", "dash"]):
        fill, opacity, stroke, weight, dash = key
        geoms = gpd.GeoSeries(list(group.geometry), crs=gdf.crs)
        geoms.plot(ax=ax, facecolor=fill, alpha=float(opacity), edgecolor="none", zorder=z)
        geoms.boundary.plot(ax=ax, color=stroke, linewidth=0.5 * float(weight),
                            linestyle=(sym.dash_tuple(dash or None) or "-"), zorder=z)
    for key, group in _style_groups(lines, ["stroke", "weight"]):
        stroke, weight = key
        gpd.GeoSeries(list(group.geometry), crs=gdf.crs).plot(ax=ax, color=stroke, linewidth=0.45 * float(weight),
                                                              zorder=z)
    if len(points):
        xs = shapely.get_x(shapely.centroid(points.geometry.values))
        ys = shapely.get_y(shapely.centroid(points.geometry.values))
        ax.scatter(xs, ys, s=[(0.8 * r) ** 2 for r in points["radius"]], c=list(points["fill"]),
                   edgecolors="white", linewidths=0.3, zorder=z)


def _style_groups(gdf: gpd.GeoDataFrame, columns: list[str]):
    """(style key, rows) in first-seen order, so drawing order stays that of the data."""
    if len(gdf) == 0:
        return []
    keys = [tuple("" if (v is None or (isinstance(v, float) and np.isnan(v))) else v for v in row)
            for row in gdf[columns].itertuples(index=False, name=None)]
    order: dict[tuple, list[int]] = {}
    for i, k in enumerate(keys):
        order.setdefault(k, []).append(i)
    return [(k, gdf.iloc[idx]) for k, idx in order.items()]


def _draw_cells(ax, spec, crs: str, z: int) -> None:
    cells = spec.data
    if cells is None or len(cells) == 0:
        return
    from pyproj import Transformer

    t = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    half = cells["step"].to_numpy(dtype=float) / 2  # corner + half a cell = centre, as on the web map
    x, y = t.transform(cells["lon"].to_numpy(dtype=float) + half, cells["lat"].to_numpy(dtype=float) + half)
    n = cells["n"].to_numpy(dtype=float)
    radius = 3 + np.minimum(9, 3 * np.log10(np.maximum(n, 1)))
    colours = np.where(cells["synthetic"].to_numpy(dtype=bool), spec.synthetic_fill, spec.fill)
    order = np.argsort(-radius, kind="stable")
    ax.scatter(x[order], y[order], s=(0.7 * radius[order]) ** 2, c=list(colours[order]),
               edgecolors=spec.stroke if spec.stroke != "#ffffff" else "#333333", linewidths=0.3, alpha=0.85,
               zorder=z, rasterized=len(cells) > RASTERIZE_CELLS)
