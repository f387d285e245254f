"""The shipped boundary layer: every Range State present, valid, with plausible areas."""

from __future__ import annotations

import pytest

from cami_geo.boundaries import country_areas_km2, load_boundaries
from cami_geo.errors import InputError

# Published total areas (km2, incl. inland water) from national statistics / CIA World
# Factbook. Natural Earth 1:10m is generalised and excludes some water, so 2 % tolerance.
PUBLISHED_AREA_KM2 = {"KAZ": 2_724_900, "MNG": 1_564_116, "KGZ": 199_951, "UZB": 448_978,
                      "TJK": 143_100, "NPL": 147_181}


def test_every_range_state_present_and_valid(boundaries_path, registry):
    b = load_boundaries(boundaries_path, layer="countries")
    assert str(b.crs) == "EPSG:4326"
    assert set(registry.states) <= set(b.index)
    assert b.is_valid.all()
    assert set(b[b.range_state].index) == set(registry.states)
    assert (~b.range_state).sum() >= 10  # neighbours for "outside every Range State"


@pytest.mark.parametrize("iso3", sorted(PUBLISHED_AREA_KM2))
def test_ellipsoidal_area_matches_published(boundaries_path, iso3):
    b = load_boundaries(boundaries_path, layer="countries")
    area = country_areas_km2(b.loc[[iso3]]).iloc[0]
    assert area == pytest.approx(PUBLISHED_AREA_KM2[iso3], rel=0.02)


def test_only_the_given_ids_are_loaded_and_equal_to_the_whole_layer(boundaries_path):
    import shapely

    whole = load_boundaries(boundaries_path, layer="countries")
    some = load_boundaries(boundaries_path, layer="countries", ids=["UZB", "KAZ", "XXX"])
    assert list(some.index) == ["KAZ", "UZB"]
    assert list(some.columns) == list(whole.columns) and str(some.crs) == "EPSG:4326"
    assert (shapely.to_wkb(some.geometry.values) == shapely.to_wkb(whole.loc[["KAZ", "UZB"]].geometry.values)).all()
    assert load_boundaries(boundaries_path, layer="countries", ids=[]).empty


def test_missing_or_wrong_layer_is_one_sentence(tmp_path, boundaries_path):
    with pytest.raises(InputError, match="does not exist"):
        load_boundaries(tmp_path / "nope.gpkg")
    with pytest.raises(InputError, match="has no field 'ISO_A3'"):
        load_boundaries(boundaries_path, layer="countries", id_field="ISO_A3")


def test_point_boundaries_equal_the_geodataframe(boundaries_path):
    """cami-geo validate reads the shipped GeoPackage without GDAL: same codes, flags, names
    and geometries (bit for bit) as load_boundaries."""
    import shapely

    from cami_geo.boundaries import BoundaryTable, load_point_boundaries

    gdf = load_boundaries(boundaries_path, layer="countries")
    table = load_point_boundaries(boundaries_path, layer="countries")
    assert isinstance(table, BoundaryTable)
    assert table.iso3 == list(gdf["iso3"]) and table.name == list(gdf["name"])
    assert [bool(r) for r in table.range_state] == [bool(r) for r in gdf["range_state"]]
    assert list(shapely.to_wkb(table.geometry)) == list(shapely.to_wkb(gdf.geometry.values))


def test_point_boundaries_fall_back_to_gdal(tmp_path, boundaries_path):
    from cami_geo.boundaries import BoundaryTable, load_point_boundaries

    gj = tmp_path / "b.geojson"
    load_boundaries(boundaries_path, layer="countries").iloc[:3].reset_index(drop=True).to_file(gj, driver="GeoJSON")
    assert not isinstance(load_point_boundaries(gj), BoundaryTable)
    with pytest.raises(InputError, match="has no field 'ISO_A3'"):
        load_point_boundaries(boundaries_path, layer="countries", id_field="ISO_A3")
    with pytest.raises(InputError, match="does not exist"):
        load_point_boundaries(tmp_path / "nope.gpkg")
