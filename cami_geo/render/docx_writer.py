"""Word documents (python-docx): the status report / Range State profile and the
pre-filled status form.

Submission text only ever enters as the text of a run (``cell.text``, ``add_run``), never as
XML. Fields (page numbers, figure numbers) are built element by element. The file is made
byte-stable: fixed core-property dates (1 January of the cycle) and fixed ZIP entry times.

Table cells are many (a few thousand in a status form): each cell's paragraphs are copied
from a prototype that python-docx built once the usual way (``cell.text``, ``add_run``,
bold, size), and only the text of the run is set per cell (python-docx's own run-text
setter); rows are copies of the first row as ``add_row`` made it. Same XML, a fraction of
the proxy and schema-lookup work.
"""

from __future__ import annotations

import copy
import datetime as _dt
import io
import struct
import zipfile
from pathlib import Path
from typing import Any, Iterable, Sequence

from docx import Document
from docx.enum.section import WD_ORIENT
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.oxml.table import CT_Tc
from docx.shared import Cm, Pt, RGBColor
from docx.table import _Cell

from .reports import PRELIMINARY, SYNTHETIC_BANNER, TO_COMPLETE, UNVERIFIED, clean_text

TO_COMPLETE_FILL = "FFF2CC"
HEADER_FILL = "DDE6F1"


# -- low-level helpers --------------------------------------------------------------------
def _doc_date(ctx: dict[str, Any]) -> _dt.datetime:
    try:
        return _dt.datetime(int(ctx["cycle"]), 1, 1, tzinfo=_dt.timezone.utc)
    except (KeyError, TypeError, ValueError):
        return _dt.datetime(2000, 1, 1, tzinfo=_dt.timezone.utc)


def _style_id(doc: Any, name: str) -> str | None:
    """The id python-docx's ``style`` setters give the paragraphs or tables of style ``name``
    (None for the document's default style), worked out once per document: each setter
    looks the name up in styles.xml and scans every style for the default of its type."""
    cache = doc.__dict__.setdefault("_cami_style_ids", {})
    if name not in cache:
        style = doc.styles[name]
        cache[name] = doc.part.get_style_id(style, style.type)
    return cache[name]


def _add_paragraph(doc: Any, text: str = "", style: str | None = None) -> Any:
    """``doc.add_paragraph(text, style)`` with the style id from :func:`_style_id`."""
    p = doc.add_paragraph(text)
    if style is not None:
        p._p.style = _style_id(doc, style)
    return p


def _set_table_style(doc: Any, table: Any, style: str) -> None:
    """``table.style = style`` with the style id from :func:`_style_id`."""
    table._tbl.tblStyle_val = _style_id(doc, style)


def _heading(doc: Any, text: str, level: int) -> Any:
    """``doc.add_heading(text, level)``: a paragraph of style Title or Heading <level>."""
    return _add_paragraph(doc, text, "Title" if level == 0 else f"Heading {level}")


_TEMPLATE: Any = None
"""python-docx's default document as :func:`warm_up` opened it, or None."""


def warm_up() -> None:
    """Stage worker warm-up (:func:`cami_geo.render.reports.warm_up_worker`): open python-docx's
    default document once. A job's documents are deep copies of it (about half the time of
    opening it: reading the package and parsing its parts), two or three per job."""
    global _TEMPLATE
    _TEMPLATE = Document()


def _new_document(ctx: dict[str, Any], title: str, *, landscape: bool) -> Any:
    doc = copy.deepcopy(_TEMPLATE) if _TEMPLATE is not None else Document()
    cp = doc.core_properties
    when = _doc_date(ctx)
    cp.title = clean_text(title)[:250]
    cp.author = "CMS Central Asian Mammals Initiative"
    cp.last_modified_by = f"cami-geo {clean_text(ctx.get('version', ''))}".strip()
    cp.comments = f"Reporting cycle {ctx.get('cycle', '')}"
    cp.created = when
    cp.modified = when
    cp.last_printed = when
    cp.revision = 1
    style = doc.styles["Normal"]
    style.font.name = "Calibri"
    style.font.size = Pt(9.5)
    rpr = style.element.get_or_add_rPr()
    fonts = rpr.find(qn("w:rFonts"))
    if fonts is None:
        fonts = OxmlElement("w:rFonts")
        rpr.append(fonts)
    fonts.set(qn("w:eastAsia"), "Noto Sans CJK SC")
    section = doc.sections[0]
    section.page_width, section.page_height = Cm(21.0), Cm(29.7)
    if landscape:
        section.orientation = WD_ORIENT.LANDSCAPE
        section.page_width, section.page_height = Cm(29.7), Cm(21.0)
    for side in ("left_margin", "right_margin"):
        setattr(section, side, Cm(1.6))
    section.top_margin = section.bottom_margin = Cm(1.5)
    _footer(section, f"{clean_text(title)} (cycle {ctx.get('cycle', '')})")
    return doc


def _field(paragraph: Any, instr: str, placeholder: str = "1") -> None:
    """A Word field (PAGE, NUMPAGES, SEQ ...) as begin / instrText / separate / result / end."""
    def run_with(child: Any) -> None:
        r = OxmlElement("w:r")
        r.append(child)
        paragraph._p.append(r)

    begin = OxmlElement("w:fldChar")
    begin.set(qn("w:fldCharType"), "begin")
    run_with(begin)
    text = OxmlElement("w:instrText")
    text.set(qn("xml:space"), "preserve")
    text.text = f" {instr} "
    run_with(text)
    sep = OxmlElement("w:fldChar")
    sep.set(qn("w:fldCharType"), "separate")
    run_with(sep)
    result = OxmlElement("w:t")
    result.text = placeholder
    run_with(result)
    end = OxmlElement("w:fldChar")
    end.set(qn("w:fldCharType"), "end")
    run_with(end)


def _footer(section: Any, label: str) -> None:
    p = section.footer.paragraphs[0]
    p.alignment = WD_ALIGN_PARAGRAPH.RIGHT
    run = p.add_run(f"{label} | Page ")
    run.font.size = Pt(7.5)
    _field(p, "PAGE")
    p.add_run(" of ").font.size = Pt(7.5)
    _field(p, "NUMPAGES")


def _shade(cell: Any, fill: str) -> None:
    tcpr = (cell._tc if isinstance(cell, _Cell) else cell).get_or_add_tcPr()
    for old in tcpr.findall(qn("w:shd")):
        tcpr.remove(old)
    shd = OxmlElement("w:shd")
    shd.set(qn("w:val"), "clear")
    shd.set(qn("w:color"), "auto")
    shd.set(qn("w:fill"), fill)
    tcpr.append(shd)


def _repeat_header(row: Any) -> None:
    trpr = row._tr.get_or_add_trPr()
    el = OxmlElement("w:tblHeader")
    el.set(qn("w:val"), "true")
    trpr.append(el)


def _set_cell_with_docx(cell: Any, text: Any, *, bold: bool = False, note: str = "", size: float = 8) -> None:
    """A cell's text the python-docx way (the prototypes of :func:`_set_cell` are made so)."""
    cell.text = ""
    p = cell.paragraphs[0]
    run = p.add_run(clean_text(text))
    run.bold = bold
    run.font.size = Pt(size)
    if note:
        q = cell.add_paragraph()
        r = q.add_run(clean_text(note))
        r.italic = True
        r.font.size = Pt(size - 1)


def _to_complete_with_docx(cell: Any) -> None:
    cell.text = ""
    run = cell.paragraphs[0].add_run(TO_COMPLETE)
    run.italic = True
    run.font.size = Pt(8)
    run.font.color.rgb = RGBColor(0x80, 0x60, 0x00)


_PROTOTYPES: dict[tuple[Any, ...], list[Any]] = {}


def _prototype(key: tuple[Any, ...]) -> list[Any]:
    """The content elements (``w:p``) python-docx gives a new cell for ``key``; the text run
    of each paragraph is its last run and holds a placeholder."""
    if key not in _PROTOTYPES:
        tc = CT_Tc.new()
        cell = _Cell(tc, None)
        if key[0] == "complete":
            _to_complete_with_docx(cell)
        else:
            _, bold, size, has_note = key
            _set_cell_with_docx(cell, "x", bold=bold, note="x" if has_note else "", size=size)
        _PROTOTYPES[key] = [child for child in tc if child.tag != qn("w:tcPr")]
    return _PROTOTYPES[key]


_W_TCPR, _W_RPR, _W_T, _XML_SPACE = qn("w:tcPr"), qn("w:rPr"), qn("w:t"), qn("xml:space")
_RUN_BREAKS = frozenset("\t\r\n")


def _set_run_text(r: Any, text: str) -> None:
    """``r.text = text`` (python-docx's run-text setter), without its XPath and character
    loop in the usual case: a run holding one plain ``w:t`` (a prototype's) and a text
    without tabs or line breaks. The setter would replace that ``w:t`` by a new one with
    the text, ``xml:space="preserve"`` when the text has spaces at either end, or by
    nothing for an empty text: the same is done to the ``w:t`` itself. Any other run or
    text goes through the setter (tabs and breaks become elements)."""
    content = [child for child in r if child.tag != _W_RPR]
    if (len(content) == 1 and content[0].tag == _W_T and not content[0].attrib and len(content[0]) == 0
            and _RUN_BREAKS.isdisjoint(text)):
        t = content[0]
        if not text:
            r.remove(t)
            return
        t.text = text
        if len(text.strip()) < len(text):
            t.set(_XML_SPACE, "preserve")
        return
    r.text = text


def _fill(tc: Any, key: tuple[Any, ...], texts: Sequence[str]) -> None:
    """Replace the content of cell ``tc`` by copies of the prototype ``key``, with ``texts``
    (already clean) as the text of each paragraph's last run (``tc.clear_content()``
    done on the element's children: every child but ``w:tcPr``)."""
    for child in [c for c in tc if c.tag != _W_TCPR and isinstance(c.tag, str)]:
        tc.remove(child)
    for proto, text in zip(_prototype(key), texts):
        p = copy.deepcopy(proto)
        _set_run_text(p[-1], text)
        tc.append(p)


def _set_cell(cell: Any, text: Any, *, bold: bool = False, note: str = "", size: float = 8) -> None:
    tc = cell._tc if isinstance(cell, _Cell) else cell
    if note:
        _fill(tc, ("text", bool(bold), size, True), (clean_text(text), clean_text(note)))
    else:
        _fill(tc, ("text", bool(bold), size, False), (clean_text(text),))


def _mark_to_complete(cell: Any) -> None:
    _fill(cell._tc if isinstance(cell, _Cell) else cell, ("complete",), (TO_COMPLETE,))
    _shade(cell, TO_COMPLETE_FILL)


def _add_rows(table: Any, n: int) -> list[Any]:
    """``n`` new rows (``w:tr``) at the bottom of ``table``, as ``table.add_row()`` makes them."""
    if n <= 0:
        return []
    first = table.add_row()._tr
    proto = copy.deepcopy(first)
    tbl = table._tbl
    rows = [first]
    for _ in range(n - 1):
        tr = copy.deepcopy(proto)
        tbl.append(tr)
        rows.append(tr)
    return rows


def _table(doc: Any, header: Sequence[str], rows: Iterable[Sequence[Any]], *,
           notes: Iterable[Sequence[str]] | None = None) -> Any:
    """A real Word table: a repeated, shaded header row and one row per item."""
    rows = [list(r) for r in rows]
    notes = [list(n) for n in notes] if notes is not None else [[""] * len(header) for _ in rows]
    table = doc.add_table(rows=1, cols=len(header))
    _set_table_style(doc, table, "Table Grid")
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    for cell, head in zip(table.rows[0].cells, header):
        _set_cell(cell, head, bold=True)
        _shade(cell, HEADER_FILL)
    _repeat_header(table.rows[0])
    pairs = list(zip(rows, notes))
    for tr, (values, row_notes) in zip(_add_rows(table, len(pairs)), pairs):
        for i, (tc, value) in enumerate(zip(tr.tc_lst, values)):
            _set_cell(tc, value, bold=(i == 0), note=row_notes[i] if i < len(row_notes) else "")
    return table


def _caption(doc: Any, kind: str, text: str) -> None:
    p = _add_paragraph(doc, style="Caption")
    p.add_run(f"{kind} ")
    _field(p, f"SEQ {kind} \\* ARABIC", "1")
    p.add_run(". " + clean_text(text))


def _png_size(png: bytes) -> tuple[int, int]:
    if png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR":
        return struct.unpack(">II", png[16:24])
    return (4, 3)


def _picture(doc: Any, png: bytes, caption: str, *, max_w_cm: float, max_h_cm: float) -> None:
    w, h = _png_size(png)
    width = min(max_w_cm, max_h_cm * w / h) if h else max_w_cm
    doc.add_picture(io.BytesIO(png), width=Cm(width))
    doc.paragraphs[-1].alignment = WD_ALIGN_PARAGRAPH.CENTER
    _caption(doc, "Figure", caption)


def _para(doc: Any, text: str, *, italic: bool = False, bold: bool = False, size: float | None = None) -> Any:
    p = doc.add_paragraph()
    run = p.add_run(clean_text(text))
    run.italic, run.bold = italic, bold
    if size:
        run.font.size = Pt(size)
    return p


def _banner(doc: Any, ctx: dict[str, Any]) -> None:
    if not ctx.get("synthetic"):
        return
    table = doc.add_table(rows=1, cols=1)
    _set_table_style(doc, table, "Table Grid")
    cell = table.rows[0].cells[0]
    _set_cell(cell, f"{SYNTHETIC_BANNER}: this document is built from demonstration data, not from real surveys.",
              bold=True, size=10)
    _shade(cell, "FFF1C2")
    doc.add_paragraph()


_COMPRESSED_MEDIA = (".png", ".jpg", ".jpeg", ".gif")


def _compression(membername: str) -> int:
    """Images are stored as they are: PNG and JPEG data are compressed already, and
    deflating a map of a megabyte again costs tens of milliseconds to gain nothing."""
    return zipfile.ZIP_STORED if membername.lower().endswith(_COMPRESSED_MEDIA) else zipfile.ZIP_DEFLATED


class _StampedZipWriter:
    """python-docx's package-writer interface (``write(pack_uri, blob)``) onto a ZIP file
    whose entries all carry the same date."""

    def __init__(self, zout: zipfile.ZipFile, stamp: tuple[int, ...]):
        self._zout, self._stamp = zout, stamp

    def write(self, pack_uri: Any, blob: bytes) -> None:
        info = zipfile.ZipInfo(pack_uri.membername, date_time=self._stamp)
        info.compress_type = _compression(pack_uri.membername)
        info.external_attr = 0o644 << 16
        self._zout.writestr(info, blob)

    def close(self) -> None:
        pass


def save_deterministic(doc: Any, path: str | Path, when: _dt.datetime) -> None:
    """Save with every ZIP entry dated ``when`` so equal content gives equal bytes.

    The package is written once, as ``doc.save`` writes it (same entries, same order), with
    the fixed dates set as each entry is written: no second pass to unzip and rezip it."""
    out = io.BytesIO()
    stamp = (max(when.year, 1980), when.month, when.day, 0, 0, 0)
    try:
        from docx.opc.pkgwriter import PackageWriter

        package = doc.part.package
        parts, rels = package.parts, package.rels
        writes = (PackageWriter._write_content_types_stream, PackageWriter._write_pkg_rels,
                  PackageWriter._write_parts)
    except (ImportError, AttributeError):  # another python-docx: save, then rewrite the dates
        package = None
    if package is not None:
        for part in parts:
            part.before_marshal()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
            writer = _StampedZipWriter(zout, stamp)
            writes[0](writer, parts)
            writes[1](writer, rels)
            writes[2](writer, parts)
    else:
        buf = io.BytesIO()
        doc.save(buf)
        buf.seek(0)
        with zipfile.ZipFile(buf) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
            for item in zin.infolist():
                info = zipfile.ZipInfo(item.filename, date_time=stamp)
                info.compress_type = _compression(item.filename)
                info.external_attr = 0o644 << 16
                zout.writestr(info, zin.read(item.filename))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(out.getvalue())


# -- the report ---------------------------------------------------------------------------
def _status_header(ctx: dict[str, Any]) -> tuple[list[str], list[str]]:
    extra = [("cms_appendix", "CMS App."), ("iucn_category", "IUCN")] if ctx["kind"] == "country" else []
    keys = [k for k, _ in extra] + [k for k, _ in ctx["row_fields"]]
    header = [ctx["row_label"]] + [h for _, h in extra] + [h for _, h in ctx["row_fields"]]
    return header, keys


def _status_values(ctx: dict[str, Any]) -> tuple[list[list[str]], list[list[str]]]:
    _, keys = _status_header(ctx)
    rows, notes = [], []
    for r in ctx["rows"]:
        rows.append([r["label"]] + [r.get(k, "") for k in keys])
        n = [""] * (len(keys) + 1)
        if r.get("note"):
            n[1 + keys.index("estimate")] = r["note"]
        if r.get("refs"):
            n[1 + keys.index("source")] = "row: " + r["refs"]
        if r.get("synthetic"):
            n[1 + keys.index("records")] = f"{r['synthetic']} synthetic"
        notes.append(n)
    return rows, notes


def write_report_docx(ctx: dict[str, Any], path: str | Path) -> None:
    """The status report (kind 'species') or Range State profile (kind 'country') as DOCX."""
    doc = _new_document(ctx, ctx["title"], landscape=True)
    _heading(doc, clean_text(ctx["title"]), 0)
    kind = "Species status report" if ctx["kind"] == "species" else "Range State profile"
    _para(doc, f"{kind}, CMS Central Asian Mammals Initiative, reporting cycle {ctx['cycle']}. "
               f"Generated by cami-geo {ctx['version']}.", italic=True, size=8.5)
    _banner(doc, ctx)
    cycle = ctx["cycle"]
    if ctx["kind"] == "species":
        s = ctx["summary"]
        _heading(doc, "Summary", level=1)
        eoo = "; ".join(x for x in (f"EOO {s['eoo']} km²" if s["eoo"] else "",
                                    f"AOO {s['aoo']} km²" if s["aoo"] else "",
                                    f"{s['n_locations']} locations" if s["n_locations"] else "",
                                    f"{s['n_subpopulations']} subpopulations" if s["n_subpopulations"] else "") if x)
        if s["eoo_flag"]:
            eoo += f" [{s['eoo_flag']}]"
        items = [
            ("Species", ctx["species"]["title"], ""),
            ("CMS Appendix", s["cms_appendix"], ""),
            ("IUCN Red List category", s["iucn_category"],
             f"IUCN population trend: {s['iucn_trend']}" if s["iucn_trend"] else ""),
            ("Range States", s["range_states"],
             f"{s['n_with_data'] or '0'} of {s['n_range_states']} with data in cycle {cycle}"),
            (f"Range-wide population (cycle {cycle})", s["population"] or "no estimate",
             " ".join(x for x in (s["population_note"], "Source: sum of the national estimates in Table 1.") if x)),
            (f"Trend (cycle {cycle})", s["trend"], ""),
            (f"EOO / AOO (cycle {cycle})", eoo,
             f"Source: computed by cami-geo from the occurrence records of cycle {cycle}."),
            (f"Criterion B (cycle {cycle})", f"{PRELIMINARY}: {s['category_b'] or 'not evaluable'}",
             " ".join(x for x in (s["category_b_note"], "Preliminary: computed from submitted records only; "
                                  "not an IUCN Red List assessment.") if x)),
        ]
        table = _table(doc, ["Item", "Value"], [[a, b] for a, b, _ in items], notes=[["", c] for _, _, c in items])
        table.columns[0].width = Cm(6)
    _heading(doc, "Status by Range State" if ctx["kind"] == "species" else "CAMI species in the country", level=1)
    header, _ = _status_header(ctx)
    rows, notes = _status_values(ctx)
    _table(doc, header, rows, notes=notes)
    what = ctx["species"]["scientific_name"] if ctx["kind"] == "species" else f"the CAMI species in {ctx['country']}"
    _caption(doc, "Table", f"Status of {what}, cycle {cycle}. Population: latest estimate (min–max, unit), "
             "its year, method and source as submitted (row = submission/file#row in the appendix). EOO/AOO in "
             f"km² computed from the occurrence records of cycle {cycle}; records: count (first–last year).")

    _heading(doc, "Map", level=1)
    if ctx["map"]["png"]:
        _picture(doc, ctx["map"]["png"], ctx["map"]["caption"], max_w_cm=22, max_h_cm=14)
    else:
        _para(doc, "No static map was available for this document.", italic=True)
    _para(doc, ctx["map"]["disclaimer"], italic=True, size=7)

    _heading(doc, "Population over time", level=1)
    for chart in ctx["charts"]:
        _picture(doc, chart["png"], chart["caption"], max_w_cm=16, max_h_cm=8)
    if not ctx["charts"]:
        _para(doc, "No population estimate with a year is in the population table.", italic=True)

    label = ctx["row_label"]
    _heading(doc, "Threats by IUCN code", level=1)
    if ctx["threats"]:
        _table(doc, [label, "IUCN code", "Threat (IUCN 3.3)", "Features", "Length km", "Area km²", "Complete barriers"],
               [[t["label"], t["code"], t["name"], t["n_features"], t["length_km"], t["area_km2"],
                 t["n_complete_barriers"]] for t in ctx["threats"]])
        _caption(doc, "Table", f"Threat features within the range by IUCN Threats Classification Scheme 3.3 code, "
                 f"cycle {cycle}. Source: threat features in the submissions listed in the appendix.")
    else:
        _para(doc, f"No threat features were submitted for cycle {cycle}.", italic=True)

    _heading(doc, "Action needs", level=1)
    if ctx["actions"]:
        _table(doc, [label, "Rule", "Action need", "Figures"],
               [[a["label"], a["rule"], a["flag"], a["figures"]] for a in ctx["actions"]])
        _caption(doc, "Table", f"Action needs flagged by the configured rules, cycle {cycle}. Source: action-needs table.")
    else:
        _para(doc, f"No action need was flagged for cycle {cycle}.", italic=True)

    _heading(doc, "Change since the previous cycle", level=1)
    ch = ctx["changes"]
    if ch["rows"]:
        prev = ch["previous_cycle"] or "previous"
        _table(doc, [label, "Measure", f"Cycle {prev}", f"Cycle {cycle}", "Change"],
               [[c["label"], c["measure"], c["previous"], c["current"], c["change"]] for c in ch["rows"]])
        _caption(doc, "Table", f"Change between cycle {prev} and cycle {cycle}. Source: status tables of both cycles.")
    else:
        _para(doc, "No previous-cycle figures are available for comparison.", italic=True)

    doc.add_page_break()
    _heading(doc, "Appendix: provenance", level=1)
    _heading(doc, "Submissions", level=2)
    if ctx["submissions"]:
        _table(doc, ["Submission", "Contributor", "Submitted", "Licence", "Cycle", "Sensitivity", "Species",
                     "Range States", "Rows in / accepted / rejected"],
               [[s["submission"] + (f" ({s['synthetic']})" if s["synthetic"] else ""), s["contributor"],
                 s["submitted"], s["licence"], s["cycle"], s["sensitivity"], s["species"], s["range_states"],
                 s["rows"]] for s in ctx["submissions"]])
    else:
        _para(doc, "No submission is recorded.", italic=True)
    _heading(doc, "Population figures and their source rows", level=2)
    if ctx["population"]:
        _table(doc, [label, "Year", "Best", "Min", "Max", "Unit", "Scope", "Method", "Source", "Trend",
                     "Source row (submission/file#row)"],
               [[p["label"], p["year"], p["best"], p["min"], p["max"], p["unit"], p["scope"], p["method"],
                 p["source"], p["trend"], p["ref"] + (f" ({p['synthetic']})" if p["synthetic"] else "")]
                for p in ctx["population"]])
        _caption(doc, "Table", "Every population estimate in the population table; rows numbered as in a "
                 "spreadsheet (header = row 1). Conflicting estimates are all kept, each with its source.")
    else:
        _para(doc, "No population estimate is in the population table.", italic=True)
    _para(doc, (f"{SYNTHETIC_BANNER}. " if ctx.get("synthetic") else "")
          + f"cami-geo {ctx['version']}, cycle {cycle}. Values marked {UNVERIFIED} rest on weak or secondary "
          f"sources. {PRELIMINARY} criterion-B categories are not IUCN Red List assessments.", italic=True, size=7.5)
    save_deterministic(doc, path, _doc_date(ctx))


# -- the status form ----------------------------------------------------------------------
FORM_FIELDS = [
    # (label, key in the Range State row or None: never pre-filled)
    ("Population estimate (best)", "best"),
    ("Population minimum", "min"),
    ("Population maximum", "max"),
    ("Unit (individuals / mature individuals)", "unit"),
    ("Year of the estimate", "year"),
    ("Method", "method"),
    ("Source (reference)", "source"),
    ("Scope (national / subnational / subpopulation)", "scope"),
    ("Trend", "trend"),
    ("Other estimates on file (population table)", "_others"),
    ("Extent of Occurrence, km² (computed)", "eoo"),
    ("Area of Occupancy, km² (computed)", "aoo"),
    ("Occurrence records this cycle", "records"),
    ("Main threats", "main_threats"),
    ("Threat features by IUCN code", "_threats"),
    ("Conservation measures in place", None),
    ("Protection status / protected areas", None),
    ("Monitoring", None),
    ("Data gaps", "data_gap"),
    ("Action needs", "_actions"),
    ("Comments of the Species Focal Point", None),
]


def _form_table(doc: Any, items: list[tuple[str, str, str]]) -> Any:
    """Field | value | source table; empty values shaded and marked [to complete]."""
    table = doc.add_table(rows=1, cols=3)
    _set_table_style(doc, table, "Table Grid")
    for cell, head in zip(table.rows[0].cells, ["Field", "Value (pre-filled, check and correct)", "Source / cycle"]):
        _set_cell(cell, head, bold=True, size=9)
        _shade(cell, HEADER_FILL)
    _repeat_header(table.rows[0])
    for tr, (label, value, source) in zip(_add_rows(table, len(items)), items):
        tcs = tr.tc_lst
        _set_cell(tcs[0], label, bold=True, size=9)
        if clean_text(value):
            _set_cell(tcs[1], value, size=9)
        else:
            _mark_to_complete(tcs[1])
        _set_cell(tcs[2], source, size=8)
    widths = (Cm(5.2), Cm(8.3), Cm(4.3))
    for tr in table._tbl.tr_lst:
        for tc, width in zip(tr.tc_lst, widths):
            tc.width = width
    return table


def write_form_docx(ctx: dict[str, Any], path: str | Path) -> None:
    """The three-yearly status form of a species, pre-filled, one section per Range State."""
    cycle = ctx["cycle"]
    sp, s = ctx["species"], ctx["summary"]
    title = f"CAMI status form: {sp['title']}, cycle {cycle}"
    doc = _new_document(ctx, title, landscape=False)
    _heading(doc, clean_text(title), level=0)
    _para(doc, "Three-yearly compilation of status and threats across Range States for CMS meetings. "
               f"Pre-filled by cami-geo {ctx['version']} from the status tables of cycle {cycle}: check every "
               f"pre-filled value and correct it where needed; shaded cells marked {TO_COMPLETE} have no data "
               f"yet and are for you to complete. Values marked {UNVERIFIED} rest on weak sources.", size=9)
    _banner(doc, ctx)
    _heading(doc, "Compiled by", level=1)
    _form_table(doc, [("Species Focal Point(s)", "", ""), ("Date of compilation", "", ""),
                      ("Reporting cycle", cycle, "configuration")])
    _heading(doc, "Species", level=1)
    stat = f"cami-geo status, cycle {cycle}"
    _form_table(doc, [
        ("Scientific name", sp["scientific_name"], "CAMI registry"),
        ("Common name", sp["common_name"], "CAMI registry"),
        ("CMS Appendix", s["cms_appendix"], "CAMI registry"),
        ("IUCN Red List category", s["iucn_category"], "CAMI registry"),
        ("IUCN population trend", s["iucn_trend"], "CAMI registry"),
        ("Range States", s["range_states"], "CAMI registry"),
        ("Range-wide population", s["population"], f"sum of national estimates, cycle {cycle}"),
        ("Range-wide trend", s["trend"], stat),
        ("Extent of Occurrence, km²", s["eoo"], stat),
        ("Area of Occupancy, km²", s["aoo"], stat),
        ("Criterion B category (PRELIMINARY)", f"{PRELIMINARY}: {s['category_b']}" if s["category_b"] else "",
         stat + (f"; {s['category_b_note']}" if s["category_b_note"] else "")),
    ])
    _heading(doc, "Status by Range State", level=1)
    for r in ctx["rows"]:
        _heading(doc, clean_text(r["label"]), level=2)
        threats = [t for t in ctx["threats"] if t["label"] == r["label"]]
        actions = [a for a in ctx["actions"] if a["label"] == r["label"]]
        extra = {
            "_threats": "; ".join(
                f"{t['code']} {t['name']}: {t['n_features']} features"
                + (f", {t['length_km']} km" if t["length_km"] else "")
                + (f", {t['area_km2']} km²" if t["area_km2"] else "") for t in threats),
            "_others": "; ".join(
                f"{p['year']}: {p['best'] or (p['min'] + '–' + p['max'])} ({p['scope']}; {p['source'] or 'no source'}; "
                f"{p['ref']})" for p in ctx["population"]
                if p["label"] == r["label"] and p["ref"] not in r["refs"].split("; ")),
            "_actions": "; ".join(f"{a['flag']}" + (f" ({a['figures']})" if a["figures"] else "") for a in actions),
        }
        items = []
        for label, key in FORM_FIELDS:
            value = "" if key is None else (extra[key] if key.startswith("_") else r.get(key, ""))
            if key in ("best", "min", "max", "unit", "year", "method", "scope", "source"):
                source = (r["source"] + (f" (row {r['refs']})" if r["refs"] else "")) if value else ""
                if key == "source":
                    source = f"row {r['refs']}" if value and r["refs"] else ""
            elif key == "_others":
                source = "population table" if value else ""
            elif key in ("eoo", "aoo", "records", "main_threats", "_threats", "data_gap", "_actions", "trend"):
                source = stat if value else ""
            else:
                source = ""
            items.append((label, value, source))
        _form_table(doc, items)
        if r.get("note"):
            _para(doc, f"Note on the estimate: {r['note']}", italic=True, size=8)
    save_deterministic(doc, path, _doc_date(ctx))
