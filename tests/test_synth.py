"""`cami-geo synth`: synthetic trees of a requested size, inside the Range States, deterministic."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import yaml

from cami_geo.boundaries import load_boundaries
from cami_geo.cli import main


def test_synth_tree(tmp_path, boundaries_path, registry):
    assert main(["synth", "--records", "3000", str(tmp_path / "a")]) == 0
    subs = sorted((tmp_path / "a" / "data/raw/submissions").iterdir())
    assert len(subs) == len(registry.species)
    occ = pd.concat([pd.read_csv(s / "occurrences.csv") for s in subs])
    assert len(occ) == 3000
    assert occ.occurrenceID.is_unique
    for s in subs:
        manifest = yaml.safe_load((s / "submission.yaml").read_text())
        assert manifest["synthetic"] is True
    # every point lies in the country its countryCode names, which is a Range State of the species
    b = load_boundaries(boundaries_path, layer="countries")
    iso2_to_3 = {st.iso2: st.iso3 for st in registry.states.values()}
    pts = gpd.GeoDataFrame(occ, geometry=gpd.points_from_xy(occ.decimalLongitude, occ.decimalLatitude), crs=4326)
    pts["iso3"] = pts.countryCode.map(iso2_to_3)
    inside = pts.apply(lambda r: b.loc[r.iso3].geometry.covers(r.geometry), axis=1)
    assert inside.all()
    slugs = pts.scientificName.map(registry.resolve_species)
    assert all(iso in registry.species[sl].range_states for sl, iso in zip(slugs, pts.iso3))
    # threats: lines, points and polygons with IUCN codes, starting inside a Range State of the species
    for s in subs:
        thr = gpd.read_file(s / "threats.geojson")
        assert len(thr) >= 6 and set(thr.geom_type) == {"LineString", "Point", "Polygon"}
        assert set(thr.iucn_code) <= {"4.1", "5.1.1", "3.2"} and thr.notes.str.contains("SYNTHETIC").all()
        slug = registry.resolve_species(thr.species.iloc[0])
        states = b.loc[[st for st in registry.species[slug].range_states if st in b.index]].union_all()
        assert thr.geometry.intersects(states.buffer(1.0)).all()


def test_synth_is_deterministic(tmp_path):
    main(["synth", "--records", "500", str(tmp_path / "a")])
    main(["synth", "--records", "500", str(tmp_path / "b")])
    for f in [*(tmp_path / "a").rglob("*.csv"), *(tmp_path / "a").rglob("*.geojson")]:
        assert f.read_bytes() == (tmp_path / "b" / f.relative_to(tmp_path / "a")).read_bytes()
