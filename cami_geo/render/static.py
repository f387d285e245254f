"""Static maps for documents (matplotlib): PNG at the configured dpi and SVG.

They draw the same :class:`cami_geo.render.maps.MapContent` as the interactive maps, with
the same colours (:mod:`cami_geo.render.symbology`), in an equal-area projection: Albers
Equal Area for North Asia (ESRI:102025) for the overview, and an Albers Equal Area
centred on the map's extent (standard parallels at 1/6 and 5/6 of its latitude span) for
species and Range State maps. Every map carries a legend, a scale bar in km, the source
and cycle, the attribution and the UN disclaimer; same content gives the same bytes.

Speed: geometries are projected with one pyproj transformer (:func:`transformer_to`), clipped
to the visible frame (plus a margin, so that no clipping edge shows) and generalised at
:data:`DRAW_TOLERANCE_PX` of an output pixel before they become matplotlib paths; each style is one collection
(no geopandas plotting, which redraws the whole figure after every layer). Occurrence cells are
drawn in runs of one size and colour, all runs of a layer by one artist (:func:`_marker_runs`);
the SVG writer styles a run's markers once (:func:`_canvas_class`); the PNG is encoded by
:func:`_png_bytes`. The PNG's text is drawn from glyph images kept (:data:`_GLYPH_IMAGES`): FreeType
hints and renders a glyph only the first time it is drawn at a given size and position within
a pixel; those images, the strings' measurements (PNG and SVG) and their layouts are kept from
one map job to the next (:mod:`cami_geo.render.textcache`), since most of a map's text (disclaimer,
source, legend entries, country names) is on other maps too.
"""

from __future__ import annotations

import html
import math
import os
import re
import textwrap
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import shapely
from shapely.geometry import box

from cami_geo.render import symbology as sym
from cami_geo.render import textcache
from cami_geo.render.png import png_bytes as _png_bytes

if TYPE_CHECKING:  # pragma: no cover
    from cami_geo.render.maps import MapContent

NORTH_ASIA_ALBERS = "ESRI:102025"

RASTERIZE_CELLS = 2_000
"""Above this many occurrence cells the markers are embedded in the SVG as an image (at the
PNG's dpi), which keeps the SVG of a million-record map small."""


MAX_MARKER_RUNS = 400
"""Most scatter calls one occurrence layer is split into (see :func:`_draw_cells`)."""

FIGSIZE_IN = (10, 8.2)
AXES_RECT = [0.02, 0.17, 0.68, 0.74]
"""The map frame on the page (figure fractions): 6.8 in x 6.07 in."""

DRAW_TOLERANCE_PX = 0.25
"""Geometries are generalised (Douglas-Peucker, topology preserved) at a quarter of an output
pixel at 300 dpi or the configured dpi, whichever is finer: at most 1/1200 inch (0.02 mm) on
the printed page, well under the thinnest line drawn (0.35 pt = 0.12 mm) and under the
anti-aliasing resolution of the PNG, so the simplification cannot be seen, in the SVG at its
page size either. In degrees this is the map's width in degrees / 8,160 (for a 45 deg-wide
Range State map about 0.0055 deg, for a 10 deg-wide species map about 0.0012 deg; the basemap
itself is already generalised at 0.02 deg for the web, so for the basemap this mostly drops
points outside the frame)."""

CLIP_MARGIN = 0.02
"""Geometries are cut to the visible frame enlarged by this fraction on every side, so that the
new edges along the cut (and the ends of cut outlines) lie outside the frame."""


def projection_for(content: "MapContent") -> tuple[str, str]:
    """(CRS string, human label) of the equal-area projection for a map."""
    w, s, e, n = content.bounds
    if content.key == "overview":
        return NORTH_ASIA_ALBERS, "Asia North Albers Equal Area Conic (ESRI:102025)"
    lon0 = round((w + e) / 2, 1)
    lat1 = round(s + (n - s) / 6, 1)
    lat2 = round(n - (n - s) / 6, 1)
    lat0 = round((s + n) / 2, 1)
    proj = ALBERS_CRS.format(lat0=lat0, lon0=lon0, lat1=lat1, lat2=lat2)
    return proj, f"Albers Equal Area (lon_0={lon0}°, lat_1={lat1}°, lat_2={lat2}°, WGS84)"


ALBERS_CRS = "+proj=aea +lat_0={lat0} +lon_0={lon0} +lat_1={lat1} +lat_2={lat2} +datum=WGS84 +units=m +no_defs"
"""The CRS of a species or Range State map (:func:`projection_for`)."""
_ALBERS_RE = re.compile(r"\+proj=aea (\+lat_0=-?[0-9.]+ \+lon_0=-?[0-9.]+ \+lat_1=-?[0-9.]+ \+lat_2=-?[0-9.]+)"
                        r" \+datum=WGS84 \+units=m \+no_defs")
_ALBERS_PIPELINE = ("+proj=pipeline +step +proj=unitconvert +xy_in=deg +xy_out=rad "
                    "+step +proj=aea {} +x_0=0 +y_0=0 +ellps=WGS84")
"""The operation ``Transformer.from_crs("EPSG:4326", crs, always_xy=True)`` finds for an
:data:`ALBERS_CRS`, with its parameters (``+lat_0=... +lat_2=...``) as the CRS gives them."""


def transformer_to(crs: str):
    """The pyproj transformer from longitude/latitude (WGS84) to ``crs``.

    For an Albers projection of :func:`projection_for` it is made from its PROJ pipeline, the
    one ``Transformer.from_crs("EPSG:4326", crs, always_xy=True)`` finds (degrees to radians,
    then the projection on the WGS84 ellipsoid: no datum change), without the search through
    PROJ's database by which ``from_crs`` finds it: some 25 ms in every map job, PROJ opening
    its database again after the stage worker's fork. Other CRSs go through ``from_crs``."""
    from pyproj import Transformer

    m = _ALBERS_RE.fullmatch(crs)
    if m:
        return Transformer.from_pipeline(_ALBERS_PIPELINE.format(m[1]))
    return Transformer.from_crs("EPSG:4326", crs, always_xy=True)


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


class _Projector:
    """Lon/lat geometries -> map coordinates, cut to the CAMI window and to the visible frame."""

    def __init__(self, crs: str, bounds: tuple[float, float, float, float], dpi: int):
        from cami_geo.render.maps import CAMI_WINDOW

        self.transformer = transformer_to(crs)
        self.window = box(*CAMI_WINDOW)  # keeps the antimeridian (and the far side of Russia) off the map
        w, s, e, n = bounds
        xy = shapely.get_coordinates(box(w, s, e, n).segmentize(0.5))
        fx, fy = self.transformer.transform(xy[:, 0], xy[:, 1])
        fx0, fx1, fy0, fy1 = float(np.min(fx)), float(np.max(fx)), float(np.min(fy)), float(np.max(fy))
        # widen the frame to the axes' shape so that the map fills it at equal scale
        box_ratio = (FIGSIZE_IN[0] * AXES_RECT[2]) / (FIGSIZE_IN[1] * AXES_RECT[3])
        cx, cy, dx, dy = (fx0 + fx1) / 2, (fy0 + fy1) / 2, fx1 - fx0, fy1 - fy0
        if dx / dy < box_ratio:
            dx = dy * box_ratio
        else:
            dy = dx / box_ratio
        self.view = (cx - dx / 2, cy - dy / 2, cx + dx / 2, cy + dy / 2)
        self.dx, self.dy = dx, dy
        mx, my = dx * CLIP_MARGIN, dy * CLIP_MARGIN
        self.clip = (self.view[0] - mx, self.view[1] - my, self.view[2] + mx, self.view[3] + my)
        px = FIGSIZE_IN[0] * AXES_RECT[2] * max(int(dpi), 300)
        self.tolerance = dx / px * DRAW_TOLERANCE_PX

    def _xy(self, coords: np.ndarray) -> np.ndarray:
        x, y = self.transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    def project(self, geoms) -> tuple[np.ndarray, np.ndarray]:
        """(kept row positions, projected geometries): missing, empty and off-window ones dropped."""
        values = np.asarray(geoms, dtype=object)
        ok = ~shapely.is_missing(values) & ~shapely.is_empty(values)
        keep = np.flatnonzero(ok)
        g = shapely.intersection(values[keep], self.window)
        ok = ~shapely.is_empty(g)
        keep, g = keep[ok], g[ok]
        if len(g):
            g = shapely.transform(g, self._xy)
        return keep, g

    def for_drawing(self, geoms: np.ndarray) -> np.ndarray:
        """Projected geometries cut to the frame (plus margin) and generalised below a pixel."""
        if len(geoms) == 0:
            return geoms
        g = shapely.clip_by_rect(geoms, *self.clip)
        return shapely.simplify(g, self.tolerance, preserve_topology=True)


def _polygon_paths(geoms: np.ndarray, merge: bool = False) -> tuple[list, list]:
    """(one compound path per polygon part, one coordinate array per ring) of polygonal geometries,
    as geopandas drew them (exterior and interiors closed, in one path per polygon). With
    ``merge``, all parts form one path: the same drawing for polygons that do not overlap (the
    basemap), in one draw call instead of one per island."""
    from matplotlib.path import Path as MplPath

    parts = shapely.get_parts(geoms)
    parts = parts[(shapely.get_type_id(parts) == 3) & ~shapely.is_empty(parts)]
    if len(parts) == 0:
        return [], []
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    xy, ring_of_coord = shapely.get_coordinates(rings, return_index=True)
    ring_start = np.searchsorted(ring_of_coord, np.arange(len(rings)))
    ring_end = np.r_[ring_start[1:], len(xy)]
    codes = np.full(len(xy), MplPath.LINETO, dtype=MplPath.code_type)
    codes[ring_start] = MplPath.MOVETO
    codes[ring_end - 1] = MplPath.CLOSEPOLY
    part_first_ring = np.searchsorted(ring_part, np.arange(len(parts)))
    part_start = ring_start[part_first_ring]
    part_end = np.r_[part_start[1:], len(xy)]
    if merge:
        paths = [MplPath(xy, codes)]
    else:
        paths = [MplPath(xy[a:b], codes[a:b]) for a, b in zip(part_start.tolist(), part_end.tolist())]
    outlines = [xy[a:b] for a, b in zip(ring_start.tolist(), ring_end.tolist())]
    return paths, outlines


def _line_segments(geoms: np.ndarray) -> list:
    parts = shapely.get_parts(geoms)
    parts = parts[np.isin(shapely.get_type_id(parts), [1, 2]) & ~shapely.is_empty(parts)]
    if len(parts) == 0:
        return []
    xy, line_of_coord = shapely.get_coordinates(parts, return_index=True)
    start = np.searchsorted(line_of_coord, np.arange(len(parts)))
    end = np.r_[start[1:], len(xy)]
    return [xy[a:b] for a, b in zip(start.tolist(), end.tolist())]


def _draw_polygons(ax, geoms: np.ndarray, *, facecolor: str, edgecolor: str = "none", linewidth: float = 0.0,
                   alpha: float | None = None, zorder: float, merge: bool = False) -> list:
    """Fill polygons as one collection; returns the ring outlines (for drawing them separately)."""
    from matplotlib.collections import PathCollection

    paths, outlines = _polygon_paths(geoms, merge)
    if paths:
        coll = PathCollection(paths, facecolors=facecolor, edgecolors=edgecolor, linewidths=linewidth,
                              alpha=alpha, zorder=zorder)
        ax.add_collection(coll, autolim=False)
    return outlines


def _draw_lines(ax, segments: list, *, color: str, linewidth: float, linestyle="-", zorder: float,
               merge: bool = False) -> None:
    """Lines as one collection; with ``merge`` as one path of many pieces: the same drawing for
    opaque lines (a dash pattern starts afresh at every piece either way), one draw call."""
    from matplotlib.collections import LineCollection, PathCollection

    if not segments:
        return
    if merge and len(segments) > 1:
        from matplotlib.path import Path as MplPath

        xy = np.concatenate(segments)
        codes = np.full(len(xy), MplPath.LINETO, dtype=MplPath.code_type)
        codes[np.cumsum([0] + [len(s) for s in segments[:-1]])] = MplPath.MOVETO
        ax.add_collection(PathCollection([MplPath(xy, codes)], facecolors="none", edgecolors=color,
                                         linewidths=linewidth, linestyles=linestyle, zorder=zorder), autolim=False)
        return
    ax.add_collection(LineCollection(segments, colors=color, linewidths=linewidth, linestyles=linestyle,
                                     zorder=zorder), autolim=False)


def _overlapping(geoms: np.ndarray) -> bool:
    """Whether any two of the polygons share interior area (touching along a border is fine)."""
    if len(geoms) < 2:
        return False
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    pairs = left < right
    if not pairs.any():
        return False
    return bool(shapely.relate_pattern(geoms[left[pairs]], geoms[right[pairs]], "2********").any())


def render_static(content: "MapContent", *, png: str | Path | None, svg: str | Path | None = None,
                  dpi: int = 300) -> None:
    """Draw ``content`` and write it as PNG (at ``dpi``) and/or SVG."""
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    from cami_geo.render.maps import basemap_styles

    crs, crs_label = projection_for(content)
    pj = _Projector(crs, content.bounds, dpi)
    fx0, fy0, fx1, fy1 = pj.view
    dx, dy = pj.dx, pj.dy

    textcache.read()
    rc = {"svg.hashsalt": "cami-geo", "svg.fonttype": "none", "font.family": "DejaVu Sans",
          "path.simplify": True}
    with matplotlib.rc_context(rc):
        fig = Figure(figsize=FIGSIZE_IN)  # not pyplot: no global state, no redraw after every layer
        _canvas_class()(fig)  # Agg for the PNG, with an SVG writer that styles markers once per run
        ax = fig.add_axes(AXES_RECT)
        ax.set_facecolor(sym.WATER)
        focus = set(content.focus)

        base = basemap_styles(content)
        rows, base_geoms = pj.project(base.geometry.values)
        base_draw = pj.for_drawing(base_geoms)
        base_fill = base["fill"].to_numpy()[rows]
        base_iso = base["iso3"].astype(str).to_numpy()[rows]
        base_names = base["name"].tolist()
        for colour in (sym.LAND_NEIGHBOUR, sym.LAND_RANGE_STATE):
            _draw_polygons(ax, base_draw[base_fill == colour], facecolor=colour, edgecolor=sym.BORDER,
                           linewidth=0.35, zorder=1, merge=True)
        z = 2
        for spec in content.layers:
            if spec.kind == "cells":
                _draw_cells(ax, spec, pj.transformer, z)
            else:
                _draw_features(ax, spec.data, pj, z)
            z += 1
        hl = np.isin(base_iso, list(focus))
        if hl.any():
            _, outlines = _polygon_paths(base_draw[hl])
            _draw_lines(ax, outlines, color=sym.HIGHLIGHT, linewidth=0.9, zorder=z + 1, merge=True)
        ax.set_xlim(fx0, fx1)
        ax.set_ylim(fy0, fy1)
        ax.set_aspect("equal")
        ax.set_xlabel("")
        ax.set_ylabel("")
        if len(base_geoms):
            # country names at a point inside the part of the country in view (unsimplified geometry)
            view = box(fx0, fy0, fx1, fy1)
            parts = _in_view(base_geoms, view)
            areas = shapely.area(parts)
            for i in np.flatnonzero(~shapely.is_empty(parts) & (areas >= (dx * dy) * 0.002)).tolist():
                pt = shapely.point_on_surface(parts[i])
                iso = base_iso[i]
                ax.text(pt.x, pt.y, _plain(str(base_names[rows[i]])), fontsize=6 if iso in focus else 5,
                        color="#3b3b3b" if iso in focus else "#777777", ha="center", va="center",
                        style="normal" if iso in focus else "italic", zorder=z + 2, clip_on=True)
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
            _save_png(fig, png, dpi)
        if svg:
            Path(svg).parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(svg, format="svg", dpi=dpi, metadata={"Date": None, "Creator": None})
    textcache.write()


def _in_view(geoms: np.ndarray, view) -> np.ndarray:
    """Each (repaired) geometry's part inside ``view``; one that GEOS cannot cut counts as empty."""
    try:
        return shapely.intersection(shapely.make_valid(geoms), view)
    except shapely.errors.GEOSException:
        out = []
        for g in geoms:
            try:
                out.append(shapely.make_valid(g).intersection(view))
            except shapely.errors.GEOSException:
                out.append(shapely.Polygon())
        return np.array(out, dtype=object)


def _save_png(fig, path: str | Path, dpi: int) -> None:
    """The page as ``fig.savefig(path, dpi=dpi, metadata={"Software": None})`` draws it (same
    pixels, same dpi), written by :func:`_png_bytes`: RGB when opaque (it is: white figure
    background), rows unfiltered, zlib level 1. Maps are mostly flat colour, which deflate packs
    well without PNG's per-row filters (:mod:`cami_geo.render.png`). The file is smaller than
    matplotlib's and written about 4 times faster."""
    fig.set_dpi(dpi)
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())
    opaque = bool((rgba.view("<u4") >= 0xFF000000).all())  # alpha 255: the high byte of each RGBA pixel read as <u4
    Path(path).write_bytes(_png_bytes(rgba[..., :3] if opaque else rgba, dpi))


def _column(gdf, name: str) -> list:
    return gdf[name].tolist() if name in gdf.columns else [None] * len(gdf)


def _style_key(values: tuple) -> tuple:
    return tuple("" if (v is None or (isinstance(v, float) and np.isnan(v))) else v for v in values)


def _draw_features(ax, gdf, pj: _Projector, z: int) -> None:
    """Polygons (fill, then outline), lines and points of a feature layer, one collection per style,
    styles in order of first appearance so that drawing order stays that of the data."""
    if gdf is None or len(gdf) == 0:
        return
    rows, geoms = pj.project(gdf.geometry.values)
    if len(rows) == 0:
        return
    kinds = shapely.get_type_id(geoms)
    fill, opacity, stroke = _column(gdf, "fill"), _column(gdf, "fill_opacity"), _column(gdf, "stroke")
    weight, dash, radius = _column(gdf, "weight"), _column(gdf, "dash"), _column(gdf, "radius")
    polys = np.isin(kinds, [3, 6])
    lines = np.isin(kinds, [1, 2, 5])
    points = np.isin(kinds, [0, 4])
    drawn = pj.for_drawing(geoms[polys | lines])
    poly_draw, line_draw = drawn[polys[polys | lines]], drawn[lines[polys | lines]]
    for key, idx in _style_groups([_style_key((fill[r], opacity[r], stroke[r], weight[r], dash[r]))
                                   for r in rows[polys].tolist()]):
        f, o, s, w, d = key
        group = poly_draw[idx]
        # translucent fills that overlap must stay separate paths (the overlap shows darker)
        outlines = _draw_polygons(ax, group, facecolor=f, alpha=float(o), zorder=z,
                                  merge=not _overlapping(group))
        _draw_lines(ax, outlines, color=s, linewidth=0.5 * float(w), linestyle=(sym.dash_tuple(d or None) or "-"),
                    zorder=z, merge=True)
    for key, idx in _style_groups([_style_key((stroke[r], weight[r])) for r in rows[lines].tolist()]):
        s, w = key
        _draw_lines(ax, _line_segments(line_draw[idx]), color=s, linewidth=0.45 * float(w), zorder=z, merge=True)
    if points.any():
        pts = shapely.centroid(geoms[points])
        prow = rows[points].tolist()
        ax.scatter(shapely.get_x(pts), shapely.get_y(pts), s=[(0.8 * radius[r]) ** 2 for r in prow],
                   c=[fill[r] for r in prow], edgecolors="white", linewidths=0.3, zorder=z)


def _style_groups(keys: list[tuple]) -> list[tuple[tuple, np.ndarray]]:
    """(style key, positions) in first-seen order."""
    order: dict[tuple, list[int]] = {}
    for i, k in enumerate(keys):
        order.setdefault(k, []).append(i)
    return [(k, np.asarray(idx, dtype=np.intp)) for k, idx in order.items()]


def _draw_cells(ax, spec, transformer, z: int) -> None:
    """Occurrence cells as circles sized by record count, largest first (small ones stay on top).

    Cells of one size and colour that follow each other in that order form a run, drawn as one
    scatter draws: matplotlib stamps one rasterised circle many times instead of drawing every
    circle, with the same drawing order as one scatter of all cells. All runs of a layer are one
    artist (:func:`_marker_runs`)."""
    cells = spec.data
    if cells is None or len(cells) == 0:
        return
    from matplotlib.colors import to_rgba_array

    half = cells["step"].to_numpy(dtype=float) / 2  # corner + half a cell = centre, as on the web map
    x, y = transformer.transform(cells["lon"].to_numpy(dtype=float) + half, cells["lat"].to_numpy(dtype=float) + half)
    n = cells["n"].to_numpy(dtype=float)
    radius = 3 + np.minimum(9, 3 * np.log10(np.maximum(n, 1)))
    synthetic = cells["synthetic"].to_numpy(dtype=bool)
    order = np.argsort(-radius, kind="stable")
    x, y, size, synthetic = np.asarray(x)[order], np.asarray(y)[order], (0.7 * radius[order]) ** 2, synthetic[order]
    palette = to_rgba_array([spec.fill, spec.synthetic_fill])  # colour names parsed once, not per cell
    edge = spec.stroke if spec.stroke != "#ffffff" else "#333333"
    raster = len(cells) > RASTERIZE_CELLS
    if (palette[0] == palette[1]).all():  # one colour for all cells (Range State maps): runs by size only
        synthetic = np.zeros_like(synthetic)
    change = np.flatnonzero((np.diff(size) != 0) | (np.diff(synthetic) != 0)) + 1
    if len(change) >= MAX_MARKER_RUNS:
        _scatter(ax, x, y, size, palette[synthetic.astype(np.intp)], edge, z, raster)
        return
    xy = np.column_stack([x, y])
    runs = [(xy[a:b], float(size[a]), int(synthetic[a]))
            for a, b in zip(np.r_[0, change].tolist(), np.r_[change, len(x)].tolist())]
    _marker_runs(ax, runs, palette, edge, z, raster)


def _marker_runs(ax, runs: list[tuple[np.ndarray, float, int]], palette: np.ndarray, edgecolor: str,
                 zorder: int, rasterized: bool) -> None:
    """Runs of markers, each ``(points, size, palette index)``, drawn in order as one artist.

    The drawing is that of one ``_scatter(ax, points, ..., [size], palette[index])`` per run (the
    same renderer calls: ``draw_markers`` with the circle scaled to the run's size, the run's
    points and face colour, in a group of its own), without making, adding and preparing a
    collection per run: a Range State map has some 250 runs, drawn twice (PNG and SVG)."""
    coll = _runs_class()(runs, palette, edgecolor, ax.transData, zorder)
    coll.set_rasterized(rasterized)
    ax.add_collection(coll, autolim=False)


class _FastPNGImage:
    """What matplotlib's SVG writer uses of ``PIL.Image`` to embed a raster (``fromarray(im)``,
    then ``.save(file, format="png")``), writing the PNG with :func:`_png_bytes`; any other
    array, or other arguments, go to PIL."""

    def __init__(self, pixels: np.ndarray):
        self.pixels = pixels

    @classmethod
    def fromarray(cls, obj, *args, **kwargs):
        from PIL import Image

        pixels = np.asarray(obj) if not args and not kwargs else None
        if pixels is not None and pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] in (3, 4):
            return cls(pixels)
        return Image.fromarray(obj, *args, **kwargs)

    def save(self, fp, format: str | None = None, **params) -> None:
        if params or (format or "png").lower() != "png" or (format is None and not str(fp).lower().endswith(".png")):
            from PIL import Image

            Image.fromarray(self.pixels).save(fp, format=format, **params)
            return
        data = _png_bytes(self.pixels, None)
        if hasattr(fp, "write"):
            fp.write(data)
        else:
            Path(fp).write_bytes(data)


_GLYPH_IMAGES: dict = textcache.glyphs
"""Glyph images rendered for the PNG, by font file, size, dpi, glyph, transformation, position
within the pixel (in 1/64 px) and hinting; each with its offset from the glyph's whole-pixel
position. Kept from one map job to the next by :mod:`cami_geo.render.textcache`."""

MAX_GLYPH_IMAGES = 20_000


_FONT_KEYS: dict = {}


def _font_key(prop) -> tuple:
    """(font files as (path, face index), kerning factor, last-resort font) of a FontProperties:
    what, besides size, dpi and hinting, the fonts matplotlib draws ``prop`` with depend on."""
    import matplotlib
    from matplotlib.font_manager import fontManager

    paths = tuple(fontManager._find_fonts_by_props(prop))
    key = _FONT_KEYS.get(paths)
    if key is None:
        files = tuple((os.path.realpath(getattr(p, "path", p)), int(getattr(p, "face_index", 0)))
                      for p in paths)
        key = _FONT_KEYS[paths] = files
    return key, matplotlib.rcParams["text.kerning_factor"], matplotlib.rcParams["font.enable_last_resort"]


@lru_cache(maxsize=1)
def _canvas_class():
    """An Agg canvas (the PNG) whose SVG output is matplotlib's, with one change in how it is
    written: ``RendererSVG.draw_markers`` computes the same style string for every marker of a
    call (one occurrence run: one size, one colour); here it is computed once per call. Same
    bytes, a fifth less time for the SVG of a map with some 10,000 vector markers. Its Agg
    renderer draws text from kept glyph images (:data:`_GLYPH_IMAGES`): same pixels; hinting and
    rendering the thousand-odd glyphs of a map's legend and notes took a fifth of a small map's
    PNG."""
    import codecs

    from matplotlib import cbook
    from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg, get_hinting_flag
    from matplotlib.backends.backend_mixed import MixedModeRenderer
    from matplotlib.backends import backend_svg
    from matplotlib.backends.backend_svg import RendererSVG
    from matplotlib.ft2font import LoadFlags, RenderMode
    from PIL import Image as PILImage

    class _RendererSVG(RendererSVG):
        def draw_markers(self, gc, marker_path, marker_trans, path, trans, rgbFace=None):
            style = RendererSVG._get_style(self, gc, rgbFace)  # gc and face are those of every marker
            self._get_style = lambda gc_, face_: style  # shadows the method for this call only
            try:
                super().draw_markers(gc, marker_path, marker_trans, path, trans, rgbFace)
            finally:
                del self._get_style

        def get_text_width_height_descent(self, s, prop, ismath):
            """``RendererSVG.get_text_width_height_descent`` (text to path, unhinted), kept
            (:mod:`cami_geo.render.textcache`)."""
            if ismath:
                return super().get_text_width_height_descent(s, prop, ismath)
            key = ("svg", LoadFlags.NO_HINTING.value, *_font_key(prop), prop.get_size_in_points(), 72, s)
            value = textcache.metrics.get(key)
            if value is None:
                value = textcache.metrics[key] = super().get_text_width_height_descent(s, prop, ismath)
                textcache.added()
            return value

        def draw_image(self, gc, x, y, im, transform=None):
            """``RendererSVG.draw_image`` with the embedded PNG written by :func:`_png_bytes`
            (rows unfiltered, zlib level 1) instead of PIL (adaptive row filters, level 6): the
            same pixels, about as many bytes, 4 to 5 times faster. matplotlib makes the PNG with
            ``Image.fromarray(im).save(...)``, ``Image`` being its module's name for PIL's."""
            if getattr(backend_svg, "Image", None) is not PILImage:  # another matplotlib: as it is
                return super().draw_image(gc, x, y, im, transform)
            backend_svg.Image = _FastPNGImage
            try:
                return super().draw_image(gc, x, y, im, transform)
            finally:
                backend_svg.Image = PILImage

    class _RendererAgg(RendererAgg):
        def _draw_text_glyphs_and_boxes(self, gc, x, y, angle, glyphs, boxes):
            """``RendererAgg._draw_text_glyphs_and_boxes`` with the glyph images kept
            (:data:`_GLYPH_IMAGES`): the same calls, except that a glyph already rendered at
            the same size, transformation and position within its pixel is not rendered again
            but drawn from its kept image, moved by whole pixels."""
            if not gc.get_antialiased():
                return super()._draw_text_glyphs_and_boxes(gc, x, y, angle, glyphs, boxes)
            cos = math.cos(math.radians(angle))
            sin = math.sin(math.radians(angle))
            load_flags = get_hinting_flag()
            matrices = {}
            fonts = {}
            height = int(self.height)
            for font, size, glyph_index, slant, extend, dx, dy in glyphs:  # dy is upwards.
                font_id = fonts.get(id(font))
                if font_id is None:
                    font_id = fonts[id(font)] = (font.fname, font.face_index)
                matrix = matrices.get((slant, extend))
                if matrix is None:
                    matrix = matrices[slant, extend] = (
                        (0x10000 * np.array([[cos, -sin], [sin, cos]]) @ [[extend, extend * slant], [0, 1]])
                        .round().astype(int))
                delta = [round(0x40 * (x + dx * cos - dy * sin)),
                         # FreeType's y is upwards.
                         round(0x40 * (self.height - y + dx * sin + dy * cos))]
                key = (*font_id, size, self.dpi, glyph_index, matrix.tobytes(), delta[0] & 0x3F, delta[1] & 0x3F,
                       load_flags.value)
                image = textcache.glyph(key)
                if image is None:
                    font.set_size(size, self.dpi)
                    font._set_transform(matrix, delta)
                    bitmap = font._render_glyph(glyph_index, load_flags, RenderMode.NORMAL)
                    if len(_GLYPH_IMAGES) >= MAX_GLYPH_IMAGES:
                        _GLYPH_IMAGES.clear()
                    image = _GLYPH_IMAGES[key] = (bitmap.buffer, bitmap.left - (delta[0] >> 6),
                                                  bitmap.top - (delta[1] >> 6))
                    textcache.added()
                buffer, left, top = image
                # draw_text_image's y is downwards & the bitmap bottom side.
                self._renderer.draw_text_image(buffer, left + (delta[0] >> 6),
                                               height - (top + (delta[1] >> 6)) + buffer.shape[0], 0, gc)
            if boxes:
                super()._draw_text_glyphs_and_boxes(gc, x, y, angle, (), boxes)

        def get_text_width_height_descent(self, s, prop, ismath):
            """``RendererAgg.get_text_width_height_descent``, kept (:mod:`cami_geo.render.textcache`)."""
            if ismath:
                return super().get_text_width_height_descent(s, prop, ismath)
            key = ("agg", get_hinting_flag().value, *_font_key(prop), prop.get_size_in_points(), self.dpi, s)
            value = textcache.metrics.get(key)
            if value is None:
                value = textcache.metrics[key] = super().get_text_width_height_descent(s, prop, ismath)
                textcache.added()
            return value

        def draw_text(self, gc, x, y, s, prop, angle, ismath=False, mtext=None):
            """``RendererAgg.draw_text`` with the string's layout kept (:mod:`cami_geo.render.textcache`)
            when all its glyphs come from the first font file."""
            if ismath:
                return super().draw_text(gc, x, y, s, prop, angle, ismath, mtext)
            font = self._prepare_font(prop)
            flags = get_hinting_flag()
            features = mtext.get_fontfeatures() if mtext is not None else None
            language = mtext.get_language() if mtext is not None else None
            size = prop.get_size_in_points()
            key = ("agg", flags.value, *_font_key(prop), size, self.dpi, repr(features), repr(language), s)
            kept = textcache.layouts.get(key)
            if kept is None:
                items = font._layout(s, flags=flags, features=features, language=language)
                glyphs = [(item.ft_object, size, item.glyph_index, 0, 1, item.x, item.y) for item in items]
                if all(item.ft_object is font for item in items):
                    textcache.layouts[key] = tuple((item.glyph_index, item.x, item.y) for item in items)
                    textcache.added()
            else:
                glyphs = [(font, size, glyph_index, 0, 1, gx, gy) for glyph_index, gx, gy in kept]
            self._draw_text_glyphs_and_boxes(gc, x, y, angle, glyphs, [])

    class _Canvas(FigureCanvasAgg):
        def get_renderer(self):
            """``FigureCanvasAgg.get_renderer`` making a :class:`_RendererAgg`."""
            w, h = self.get_width_height(physical=True)
            key = w, h, self.figure.dpi
            if self._lastKey != key:
                self.renderer = _RendererAgg(w, h, self.figure.dpi)
                self._lastKey = key
            return self.renderer

        def print_svg(self, filename, *, bbox_inches_restore=None, metadata=None, **kwargs):
            """``FigureCanvasSVG.print_svg`` with :class:`_RendererSVG` (``fig.savefig(..., format="svg")``
            calls it with the usual preparation: dpi, face colour)."""
            with cbook.open_file_cm(filename, "w", encoding="utf-8") as fh:
                if not cbook.file_requires_unicode(fh):
                    fh = codecs.getwriter("utf-8")(fh)
                dpi = self.figure.dpi
                self.figure.dpi = 72
                width, height = self.figure.get_size_inches()
                renderer = MixedModeRenderer(
                    self.figure, width, height, dpi,
                    _RendererSVG(width * 72, height * 72, fh, image_dpi=dpi, metadata=metadata),
                    bbox_inches_restore=bbox_inches_restore)
                self.figure.draw(renderer)
                renderer.finalize()

    return _Canvas


@lru_cache(maxsize=1)
def _runs_class():
    """The artist of :func:`_marker_runs`: a PathCollection (clip, alpha, colours, rasterisation as
    :func:`_scatter` sets them) whose ``draw`` makes, for every run, the calls
    ``Collection.draw`` makes for a collection of one path, one size and one face colour."""
    from matplotlib import artist
    from matplotlib.collections import PathCollection
    from matplotlib.path import Path as MplPath
    from matplotlib.transforms import Affine2D, IdentityTransform

    class MarkerRuns(PathCollection):
        def __init__(self, runs, palette, edgecolor, offset_transform, zorder):
            self._runs = runs
            super().__init__((_circle(),), np.asarray([runs[0][1]], dtype=float), facecolors=palette,
                             edgecolors=edgecolor, linewidths=0.3,
                             offsets=np.concatenate([r[0] for r in runs]), offset_transform=offset_transform,
                             alpha=0.85, zorder=zorder)
            self.set_transform(IdentityTransform())

        @artist.allow_rasterization
        def draw(self, renderer):
            if not self.get_visible():
                return
            transform = self.get_transform()
            offset_trf = self.get_offset_transform()
            faces = self.get_facecolor()  # the palette with the collection's alpha
            dpi = self.get_figure(root=True).dpi
            gc = renderer.new_gc()
            self._set_gc_clip(gc)
            gc.set_snap(self.get_snap())
            gc.set_foreground(tuple(self.get_edgecolor()[0]), isRGBA=True)
            gc.set_linewidth(self.get_linewidth()[0])
            gc.set_dashes(*self.get_linestyle()[0])
            gc.set_antialiased(self.get_antialiased()[0])
            gc.set_url(self.get_urls()[0])
            path = self.get_paths()[0]
            for offsets, size, colour in self._runs:
                renderer.open_group("PathCollection", self.get_gid())
                trf = offset_trf
                if not trf.is_affine:
                    offsets = trf.transform_non_affine(offsets)
                    trf = trf.get_affine()
                scale = np.sqrt(size) * dpi / 72.0  # as PathCollection.set_sizes
                marker = Affine2D(np.array([[scale, 0.0, 0.0], [0.0, scale, 0.0], [0.0, 0.0, 1.0]])) + transform
                renderer.draw_markers(gc, path, marker.frozen(), MplPath(offsets), trf, tuple(faces[colour]))
                renderer.close_group("PathCollection")
            gc.restore()
            self.stale = False

    return MarkerRuns


@lru_cache(maxsize=1)
def _circle():
    """The marker: a circle of diameter 1 as a 64-sided polygon. It draws like scatter's Bezier
    circle (anti-aliased edge pixels differ by at most 14/255 at the largest marker size) but
    matplotlib measures its extent without solving Bezier curves, which it does for every
    collection at every draw."""
    from matplotlib.path import Path as MplPath

    t = np.linspace(0.0, 2 * np.pi, 65)
    return MplPath(np.column_stack([np.cos(t), np.sin(t)]) * 0.5, closed=True, readonly=True)


def _scatter(ax, x, y, sizes, colours, edgecolor: str, zorder: int, rasterized: bool) -> None:
    """``ax.scatter(x, y, s=sizes, c=colours, edgecolors=edgecolor, linewidths=0.3, alpha=0.85, ...)``
    without its argument handling and data-limit update (the map sets its own limits)."""
    from matplotlib.collections import PathCollection
    from matplotlib.transforms import IdentityTransform

    coll = PathCollection((_circle(),), np.asarray(sizes, dtype=float),
                          facecolors=colours, edgecolors=edgecolor, linewidths=0.3,
                          offsets=np.column_stack([x, y]), offset_transform=ax.transData, alpha=0.85, zorder=zorder)
    coll.set_transform(IdentityTransform())
    coll.set_rasterized(rasterized)
    ax.add_collection(coll, autolim=False)
