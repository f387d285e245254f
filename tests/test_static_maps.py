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
