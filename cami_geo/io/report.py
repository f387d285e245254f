"""The HTML validation report an SFP reads: counts, problems grouped by check with row
numbers, and a small inline SVG map of accepted and rejected points. Every piece of text
from the submission passes through :func:`cami_geo.render.escape.escape_html`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..checks import CHECKS
from ..render.escape import escape_html as esc

if TYPE_CHECKING:  # pragma: no cover
    from ..intake import SubmissionResult

MAX_ROWS_LISTED = 60
MAX_POINTS = 5000

_CSS = """body{font-family:system-ui,Segoe UI,Arial,sans-serif;max-width:960px;margin:1.5em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top;max-width:32em;overflow-wrap:anywhere}
.error{color:#a40000}.warning{color:#8a5a00}.demo{background:#fff3cd;border:1px solid #e0c060;padding:.5em 1em;font-weight:bold}
.ok{color:#1a6b1a}small{color:#666}"""


def _outlines(countries, box: tuple[float, float, float, float], to_xy) -> str:
    """SVG paths of the country outlines inside ``box`` (simplified for a small map)."""
    import shapely

    if countries is None:
        return ""
    x0, y0, x1, y1 = box
    clip = shapely.box(x0, y0, x1, y1)
    tol = max(x1 - x0, y1 - y0) / 400
    paths = []
    for iso, geom in countries.geoms.items():
        if not geom.intersects(clip):
            continue
        part = shapely.simplify(shapely.intersection(geom, clip), tol)
        d = []
        for poly in shapely.get_parts(part):
            if poly.geom_type != "Polygon":
                continue
            for ring in [poly.exterior, *poly.interiors]:
                xy = [to_xy(x, y) for x, y in ring.coords]
                d.append("M" + "L".join(f"{a:.1f},{b:.1f}" for a, b in xy) + "Z")
        if d:
            paths.append(f'<path d="{"".join(d)}" fill="#fbfbf5" stroke="#999" stroke-width="0.6"><title>{esc(iso)}</title></path>')
    return "".join(paths)


def _svg_map(points: pd.DataFrame | None, *, countries=None, width: int = 640, height: int = 400) -> str:
    """A small SVG map of accepted (green) and rejected (red) points over the country
    outlines of the boundary layer.

    Longitude/latitude drawn with the longitude scaled by cos(mid-latitude) (equirectangular
    with a standard parallel); the extent is that of the accepted points (all points when
    none was accepted), so a few wild rejected points do not shrink the map to nothing.
    """
    if points is None or not len(points):
        return "<p><small>No point records to map.</small></p>"
    pts = points[np.isfinite(points["lon"]) & np.isfinite(points["lat"]) & (points["lat"].abs() <= 90) & (points["lon"].abs() <= 180)]
    if not len(pts):
        return "<p><small>No readable coordinates to map.</small></p>"
    frame = pts[pts["accepted"]] if pts["accepted"].any() else pts
    pad_x = max(0.1 * (frame["lon"].max() - frame["lon"].min()), 0.5)
    pad_y = max(0.1 * (frame["lat"].max() - frame["lat"].min()), 0.5)
    x0, x1 = max(frame["lon"].min() - pad_x, -180), min(frame["lon"].max() + pad_x, 180)
    y0, y1 = max(frame["lat"].min() - pad_y, -90), min(frame["lat"].max() + pad_y, 90)
    inside = pts["lon"].between(x0, x1) & pts["lat"].between(y0, y1)
    off_map = int((~inside).sum())
    pts = pts[inside]
    if len(pts) > MAX_POINTS:
        pts = pts.sample(MAX_POINTS, random_state=0)
    k = max(np.cos(np.radians((y0 + y1) / 2)), 0.2)
    s = min(width / max((x1 - x0) * k, 1e-6), height / max(y1 - y0, 1e-6))

    def to_xy(x, y):
        return (x - x0) * k * s, (y1 - y) * s

    items = [_outlines(countries, (x0, y0, x1, y1), to_xy)]
    for lon, lat, ok, row in zip(pts["lon"], pts["lat"], pts["accepted"], pts["row"]):
        cx, cy = to_xy(lon, lat)
        colour = "#1a9641" if ok else "#d7191c"
        items.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{2.5 if ok else 4}" fill="{colour}" fill-opacity="0.8">'
                     f"<title>row {int(row)}: {lat:.5f}, {lon:.5f}</title></circle>")
    w, h = (x1 - x0) * k * s, (y1 - y0) * s
    note = f" {off_map} rejected point(s) lie outside this extent." if off_map else ""
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0f}" height="{h:.0f}" viewBox="0 0 {w:.0f} {h:.0f}" '
            f'style="border:1px solid #ccc;background:#eef4f8" role="img" aria-label="map of accepted and rejected points">'
            + "".join(items) + "</svg>"
            f"<p><small>Longitude {x0:.2f} to {x1:.2f}, latitude {y0:.2f} to {y1:.2f} (WGS84).{note} "
            '<span style="color:#1a9641">&#9679; accepted</span> <span style="color:#d7191c">&#9679; rejected</span>. '
            "This page is for the submitter: it shows precise locations; do not publish it.</small></p>")


def _rows_text(rows: pd.Series) -> str:
    vals = sorted(int(r) for r in rows.dropna().unique())
    if not vals:
        return "(whole file)"
    shown = ", ".join(str(v) for v in vals[:MAX_ROWS_LISTED])
    return shown + (f" and {len(vals) - MAX_ROWS_LISTED} more" if len(vals) > MAX_ROWS_LISTED else "")


def validation_html(res: "SubmissionResult", *, countries=None) -> str:
    """The validation report of one submission as a self-contained HTML page.

    ``countries`` (:class:`cami_geo.checks.geo.Countries`, optional) adds country outlines
    to the map.
    """
    m = res.manifest
    p = res.problems()
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Validation of {esc(res.submission)}</title>"
             f"<style>{_CSS}</style></head><body>",
             f"<h1>Validation report: {esc(res.submission)}</h1>"]
    if m.synthetic:
        parts.append('<p class="demo">This submission is synthetic demo data: its records are made up for testing and must not be used as evidence.</p>')
    parts.append("<table>" + "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in [
        ("Species", m.species or "(per row)"), ("Range States", ", ".join(m.range_states)), ("Contributor", m.contributor),
        ("Submitted", m.submitted), ("Cycle", res.cycle), ("Licence", m.licence), ("Sensitivity", m.sensitivity or "species default"),
    ]) + "</table>")
    status = "ok" if res.rejected == 0 and not any(f.unreadable for f in res.files) else "error"
    parts.append(f'<h2>Counts</h2><p class="{status}"><b>{res.rows_in}</b> rows in, <b>{res.accepted}</b> accepted, '
                 f"<b>{res.rejected}</b> rejected.</p>")
    parts.append("<table><tr><th>File</th><th>Kind</th><th>Rows in</th><th>Accepted</th><th>Rejected</th><th>Errors</th>"
                 "<th>Warnings</th><th>Notes</th></tr>")
    for f in res.files:
        s = f.summary()
        parts.append(f"<tr><td>{esc(f.file)}</td><td>{esc(f.kind)}</td><td>{s['rows_in']}</td><td>{s['accepted']}</td>"
                     f"<td>{s['rejected']}</td><td>{s['errors']}</td><td>{s['warnings']}</td>"
                     f"<td>{esc('; '.join(f.notes))}{'<br><span class=error>' + esc(f.unreadable) + '</span>' if f.unreadable else ''}</td></tr>")
    parts.append("</table>")
    parts.append("<h2>Problems by check</h2>")
    if not len(p):
        parts.append('<p class="ok">No problems found.</p>')
    else:
        parts.append("<p>An <span class=error>error</span> rejects the row; a <span class=warning>warning</span> keeps it, flagged. "
                     "Rows are numbered as in a spreadsheet (header = row 1); features of a vector file from 1.</p>")
        order = p.assign(_e=(p["severity"] != "error")).sort_values(["_e"], kind="stable")
        for (code, sev), grp in order.groupby(["code", "severity"], sort=False):
            title = CHECKS.get(code, ("", code))[1]
            parts.append(f'<h3 class="{esc(sev)}">{esc(title)} ({esc(sev)}, {len(grp)})</h3><table>'
                         "<tr><th>File</th><th>Field</th><th>Rows</th><th>Example reason</th></tr>")
            for (file, fld), g in grp.groupby(["file", "field"], sort=False):
                parts.append(f"<tr><td>{esc(file)}</td><td>{esc(fld)}</td><td>{esc(_rows_text(g['row']))}</td>"
                             f"<td>{esc(g['reason'].iloc[0])}</td></tr>")
            parts.append("</table>")
        parts.append("<h2>Every problem</h2><table><tr><th>File</th><th>Row</th><th>Field</th><th>Severity</th><th>Reason</th><th>Value</th></tr>")
        for f_, r_, fl, sv, rs, v in p[["file", "row", "field", "severity", "reason", "value"]].head(2000).itertuples(index=False):
            parts.append(f"<tr><td>{esc(f_)}</td><td>{'' if pd.isna(r_) else int(r_)}</td><td>{esc(fl)}</td>"
                         f'<td class="{esc(sv)}">{esc(sv)}</td><td>{esc(rs)}</td><td>{esc(v)}</td></tr>')
        parts.append("</table>")
        if len(p) > 2000:
            parts.append(f"<p>{len(p) - 2000} more problems are in problems.csv.</p>")
    points = [f.points for f in res.files if f.points is not None and len(f.points)]
    parts.append("<h2>Map of point records</h2>")
    parts.append(_svg_map(pd.concat(points, ignore_index=True) if points else None, countries=countries))
    parts.append("</body></html>")
    return "\n".join(parts)
