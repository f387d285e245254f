"""Static maps (matplotlib): PNG at the configured dpi and not blank, SVG with the legend,
scale bar, source and cycle, disclaimer, in an equal-area projection."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pyproj import CRS

from test_maps import SETTINGS, country_map, overview_map, species_map  # noqa: F401  (module fixtures)


def _svg_text(path: str) -> str:
    root = ET.parse(path).getroot()
    return " ".join(t.strip() for t in root.itertext() if t.strip())


@pytest.mark.parametrize("which", ["species_map", "country_map", "overview_map"])
def test_png_dpi_and_not_blank(which, request):
    png = request.getfixturevalue(which)[1]["png"]
    img = Image.open(png)
    dpi = img.info.get("dpi")
    assert dpi and round(dpi[0]) == SETTINGS["maps"]["static_dpi"] and round(dpi[1]) == SETTINGS["maps"]["static_dpi"]
    assert img.size[0] >= 2500  # 10 in at 300 dpi
    grey = np.asarray(img.convert("L"), dtype=float)
    assert grey.std() > 20, "the static map looks blank"
    # the map frame holds more than one colour (water, land, data)
    rgb = np.asarray(img.convert("RGB"))[600:1800:4, 200:1800:4].astype(np.int64)
    packed = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    assert len(np.unique(packed)) > 20


@pytest.mark.parametrize("which", ["species_map", "country_map"])
def test_svg_carries_legend_scale_source_disclaimer(which, request):
    svg = request.getfixturevalue(which)[1]["svg"]
    text = _svg_text(svg)
    assert "km" in text  # scale bar
    assert "reporting cycle 2026" in text
    assert "Source: CAMI Species Focal Point submissions" in text
    assert "do not imply the expression of any opinion" in text
    assert "Natural Earth" in text
    assert "Albers Equal Area" in text
    assert "SYNTHETIC DEMO DATA" in text
    assert "Threats (IUCN 3.3)" in text
    # no date stamp: the same inputs give the same bytes
    assert "<dc:date>" not in Path(svg).read_text(encoding="utf-8")


def test_species_svg_legend_matches_interactive(species_map):
    text = _svg_text(species_map[1]["svg"])
    html = Path(species_map[1]["html"]).read_text(encoding="utf-8")
    for label in ("Latest estimate (individuals)", "100 – 999", "4 Transportation &amp; service corridors",
                  "Occurrence cell (size: number of records)"):
        assert label in html
        assert label.replace("&amp;", "&") in text


def test_projection_is_equal_area(species_map):
    from cami_geo.render.static import NORTH_ASIA_ALBERS, projection_for

    class C:  # the two attributes projection_for reads
        key, bounds = "species:x", (60.0, 30.0, 100.0, 50.0)

    proj, label = projection_for(C)
    crs = CRS.from_user_input(proj)
    assert "Albers Equal Area" in crs.coordinate_operation.method_name and "Albers Equal Area" in label
    C.key = "overview"
    assert projection_for(C)[0] == NORTH_ASIA_ALBERS
    assert "Albers" in CRS.from_user_input(NORTH_ASIA_ALBERS).name


def test_overview_has_no_svg_but_png(overview_map):
    assert "svg" not in overview_map[1]
    assert Path(overview_map[1]["png"]).stat().st_size > 50_000


def test_scale_bar_length_is_true(species_map):
    """The scale bar's label is a round number of km shorter than the map's width."""
    from cami_geo.render.static import _nice_length_km

    assert _nice_length_km(2600) == 1000
    assert _nice_length_km(700) == 200
    assert _nice_length_km(40) == 10


def test_svg_canvas_writes_matplotlibs_svg(tmp_path):
    """The canvas render_static uses writes the SVG matplotlib writes (markers styled once per run)."""
    import matplotlib
    from matplotlib.figure import Figure

    from cami_geo.render.static import _canvas_class, _scatter

    def draw(canvas_class, path):
        with matplotlib.rc_context({"svg.hashsalt": "test", "svg.fonttype": "none"}):
            fig = Figure(figsize=(3, 2))
            if canvas_class is not None:
                canvas_class(fig)
            ax = fig.add_axes([0.1, 0.1, 0.8, 0.8])
            ax.set_xlim(0, 10)
            ax.set_ylim(0, 10)
            rng = np.random.default_rng(1)
            for size, colour in ((60.0, "#b2182b"), (20.0, "#7b3294")):
                _scatter(ax, rng.uniform(0, 10, 40), rng.uniform(0, 10, 40), [size],
                         matplotlib.colors.to_rgba_array([colour]), "#333333", 2, False)
            ax.text(5, 5, "label")
            fig.savefig(path, format="svg", dpi=300, metadata={"Date": None, "Creator": None})
        return Path(path).read_bytes()

    ours = draw(_canvas_class(), tmp_path / "ours.svg")
    theirs = draw(None, tmp_path / "theirs.svg")
    assert ours == theirs
    assert ours.count(b"<use ") >= 80  # the 80 markers (and the tick marks)


def test_marker_runs_draw_as_one_scatter_per_run(tmp_path):
    """The runs of an occurrence layer, drawn by one artist, give the pixels and the SVG of one
    scatter per run (rasterised in the SVG or not)."""
    import matplotlib
    from matplotlib.colors import to_rgba_array
    from matplotlib.figure import Figure
    from PIL import Image

    from cami_geo.render.static import _canvas_class, _marker_runs, _png_bytes, _scatter

    rng = np.random.default_rng(5)
    palette = to_rgba_array(["#b2182b", "#7b3294"])
    runs = [(rng.uniform(0, 10, (n, 2)), size, i % 2) for i, (n, size) in enumerate(((30, 70.5), (12, 44.1), (25, 20.0), (1, 9.0)))]

    def draw(one_artist: bool, rasterized: bool, name: str) -> tuple[np.ndarray, bytes]:
        with matplotlib.rc_context({"svg.hashsalt": "test", "svg.fonttype": "none"}):
            fig = Figure(figsize=(3, 2))
            _canvas_class()(fig)
            ax = fig.add_axes([0.1, 0.1, 0.8, 0.8])
            ax.set_xlim(0, 10)
            ax.set_ylim(0, 10)
            if one_artist:
                _marker_runs(ax, runs, palette, "#333333", 2, rasterized)
            else:
                for xy, size, colour in runs:
                    _scatter(ax, xy[:, 0], xy[:, 1], [size], palette[colour][None, :], "#333333", 2, rasterized)
            svg = tmp_path / f"{name}.svg"
            fig.savefig(svg, format="svg", dpi=150, metadata={"Date": None, "Creator": None})
            fig.set_dpi(150)
            fig.canvas.draw()
            png = tmp_path / f"{name}.png"
            png.write_bytes(_png_bytes(np.asarray(fig.canvas.buffer_rgba()), 150))
        return np.asarray(Image.open(png)), svg.read_bytes()

    for rasterized in (False, True):
        runs_px, runs_svg = draw(True, rasterized, f"runs{rasterized}")
        scatter_px, scatter_svg = draw(False, rasterized, f"scatter{rasterized}")
        assert (runs_px == scatter_px).all()
        assert runs_svg == scatter_svg
        assert runs_px.std() > 10  # something was drawn


def test_png_bytes_round_trip():
    """The PNG writer keeps every pixel, opaque (RGB) or not (RGBA), and records the dpi."""
    import io

    from PIL import Image

    from cami_geo.render.static import _png_bytes

    rgba = np.random.default_rng(0).integers(0, 256, (37, 53, 4), dtype=np.uint8)
    for pixels in (rgba, rgba[..., :3]):
        img = Image.open(io.BytesIO(_png_bytes(pixels, 300)))
        assert (np.asarray(img) == pixels).all(), pixels.shape
        assert round(img.info["dpi"][0]) == 300


def test_svg_embedded_raster_same_pixels_as_pil():
    """The SVG writer's PNG (rows unfiltered, zlib level 1) decodes to the pixels PIL's would."""
    import io

    from PIL import Image

    from cami_geo.render.static import _FastPNGImage

    rng = np.random.default_rng(0)
    for channels in (3, 4):
        pixels = rng.integers(0, 256, (37, 53, channels), dtype=np.uint8)
        pixels[:10] = 0  # flat rows too
        buf = io.BytesIO()
        img = _FastPNGImage.fromarray(pixels)
        assert isinstance(img, _FastPNGImage)
        img.save(buf, format="png")
        assert (np.asarray(Image.open(io.BytesIO(buf.getvalue()))) == pixels).all()
    # anything else is PIL's
    assert not isinstance(_FastPNGImage.fromarray(np.zeros((4, 4), dtype=np.uint8)), _FastPNGImage)


def _text_page(canvas_class, svg_path=None) -> np.ndarray | bytes:
    """A page of text at several sizes, styles, angles and positions within a pixel, drawn by
    ``canvas_class``: its pixels (Agg), or with ``svg_path`` its SVG's bytes."""
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context({"font.family": "DejaVu Sans", "svg.hashsalt": "test", "svg.fonttype": "none"}):
        fig = Figure(figsize=(3, 2))
        canvas_class(fig)
        for i in range(12):
            fig.text(0.013 * i + 0.003 * (i % 5), 0.08 * i + 0.0011 * i, "Saiga, 1,000 – 9,999 km² $x$ Ωé",
                     fontsize=5 + i * 0.7, fontweight="bold" if i % 3 == 0 else "normal",
                     style="italic" if i % 4 == 1 else "normal", rotation=(0, 0, 30, 90)[i % 4],
                     color="#3b3b3b", alpha=0.6 if i % 2 else None)
        fig.text(0.5, 0.5, "Legend entry", fontsize=6.5)
        fig.legend([matplotlib.patches.Patch(color="red")], ["A wrapped\n  legend label"], loc="upper right")
        if svg_path is not None:
            fig.savefig(svg_path, format="svg", dpi=300, metadata={"Date": None, "Creator": None})
            return Path(svg_path).read_bytes()
        fig.set_dpi(300)
        fig.canvas.draw()
        return np.asarray(fig.canvas.buffer_rgba()).copy()


def test_kept_glyph_images_draw_matplotlibs_pixels():
    """Text drawn with kept glyph images (:data:`_GLYPH_IMAGES`), the first time and again (the
    images then kept), at several sizes, styles, angles and positions within a pixel, gives the
    pixels of matplotlib's own Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from cami_geo.render import static

    theirs = _text_page(FigureCanvasAgg)
    static._GLYPH_IMAGES.clear()
    first = _text_page(static._canvas_class())
    assert static._GLYPH_IMAGES
    again = _text_page(static._canvas_class())
    assert (first == theirs).all() and (again == theirs).all()


def test_text_cache_file_gives_matplotlibs_drawing(tmp_path, monkeypatch):
    """Text measured, laid out and rendered from the text cache as read back from its file (as a
    later map job does) draws matplotlib's own pixels and SVG bytes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from cami_geo.render import static, textcache

    monkeypatch.setenv("CAMI_GEO_MAP_CACHE", str(tmp_path / "cache"))

    def forget():
        for kept in (textcache.metrics, textcache.layouts, textcache.glyphs, textcache._stored):
            kept.clear()
        textcache._state.update(file=None, new=0)

    theirs_png = _text_page(FigureCanvasAgg)
    theirs_svg = _text_page(FigureCanvasAgg, tmp_path / "theirs.svg")
    forget()
    try:
        assert (_text_page(static._canvas_class()) == theirs_png).all()
        assert _text_page(static._canvas_class(), tmp_path / "first.svg") == theirs_svg
        textcache.write()
        assert list((tmp_path / "cache").glob("text-*.pickle"))
        forget()
        textcache.read()
        assert textcache.metrics and textcache.layouts and textcache._stored and not textcache.glyphs
        assert (_text_page(static._canvas_class()) == theirs_png).all()
        assert textcache.glyphs  # drawn from the file's images
        assert _text_page(static._canvas_class(), tmp_path / "again.svg") == theirs_svg
        assert not textcache._state["new"]  # nothing computed again
    finally:
        forget()


def test_albers_transformer_from_pipeline_projects_as_from_crs():
    """The transformer made from the Albers pipeline (no database search) gives the coordinates
    ``Transformer.from_crs`` gives, bit for bit, for the projections of maps anywhere."""
    import re

    from pyproj import Transformer

    from cami_geo.render.static import projection_for, transformer_to

    def numbers(definition: str) -> str:
        return re.sub(r"=(-?[0-9.]+)\b", lambda m: f"={float(m.group(1))!r}", definition)

    rng = np.random.default_rng(3)
    x, y = np.r_[rng.uniform(-180, 180, 20_000), 0.0, 180.0], np.r_[rng.uniform(-89, 89, 20_000), 0.0, -89.5]

    class Content:
        key = "species:x"

    for w, s, e, n in ((20.0, 5.0, 150.0, 62.0), (71.03, 36.6, 80.5, 43.22), (-10.0, -40.0, 5.5, -30.1), (44.5, 38.3, 46.7, 41.35)):
        Content.bounds = (w, s, e, n)
        crs = projection_for(Content)[0]
        ours, theirs = transformer_to(crs), Transformer.from_crs("EPSG:4326", crs, always_xy=True)
        assert ours.definition.startswith("proj=pipeline") and numbers(ours.definition) == numbers(theirs.definition)
        for a, b in zip(ours.transform(x, y), theirs.transform(x, y)):
            assert np.array_equal(a, b)
    Content.key = "overview"
    assert "aea" in transformer_to(projection_for(Content)[0]).definition


def test_png_bytes_do_not_depend_on_the_band_size(monkeypatch):
    """The PNG writer compresses a band of rows at a time; the file is the same whatever the band."""
    from cami_geo.render import png

    pixels = np.random.default_rng(1).integers(0, 256, (41, 29, 3), dtype=np.uint8)
    pixels[5:20] = 7  # flat rows compress differently from noise
    whole = png.png_bytes(pixels, 150)
    for band_bytes in (1, 88, 1000):
        monkeypatch.setattr(png, "BAND_BYTES", band_bytes)
        assert png.png_bytes(pixels, 150) == whole, band_bytes
