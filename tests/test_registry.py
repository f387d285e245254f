"""The reference registries: species names as SFPs write them, Range States, threat codes."""

from __future__ import annotations

import csv

import pytest

from cami_geo.registry import UNVERIFIED, load_registry


@pytest.mark.parametrize("name, slug", [
    ("Panthera uncia", "panthera_uncia"),
    ("Uncia uncia", "panthera_uncia"),            # old genus
    ("ирбис", "panthera_uncia"),                  # Russian
    ("ирвэс", "panthera_uncia"),                  # Mongolian
    ("雪豹", "panthera_uncia"),                    # Chinese
    ("Saiga tatarica mongolica", "saiga_tatarica"),  # subspecies
    ("Saiga borealis mongolica", "saiga_tatarica"),  # CITES name
    ("ақбөкен", "saiga_tatarica"),                # Kazakh
    ("  SAIGA   tatarica ", "saiga_tatarica"),    # case and spacing
    ("сайгак", "saiga_tatarica"),
    ("Equus hemionus kulan", "equus_hemionus"),
    ("Ovis ammon polii", "ovis_ammon"),
    ("Cervus elaphus bactrianus", "cervus_hanglu_bactrianus"),  # CMS MOU name
    ("манул", "otocolobus_manul"),
    ("тахь", "equus_ferus_przewalskii"),
    ("Panthera uncia (Schreber, 1775)", "panthera_uncia"),  # with authorship
])
def test_species_names_resolve(registry, name, slug):
    assert registry.resolve_species(name) == slug


def test_unknown_species_gets_suggestions(registry):
    assert registry.resolve_species("Saiga tatrica") is None
    assert registry.suggest_species("Saiga tatrica")[0] == "Saiga tatarica"
    assert registry.resolve_species("Canis lupus") is None


def test_registry_covers_the_17_cami_species_and_their_range_states(registry, repo):
    assert len(registry.species) == 17
    for sp in registry.species.values():
        assert sp.range_states, sp.slug
        assert set(sp.range_states) <= set(registry.states), sp.slug
        assert sp.default_sensitivity in {"exact", "0.001deg", "0.01deg", "0.1deg", "1deg", "withheld"}


def test_range_state_codes(registry):
    assert registry.resolve_country("KZ") == "KAZ"
    assert registry.resolve_country("398") == "KAZ"
    assert registry.resolve_country("Казахстан") == "KAZ"
    assert registry.resolve_country("mongolia") == "MNG"
    assert registry.resolve_country("XX") is None
    kaz = registry.states["KAZ"]
    assert (kaz.iso2, kaz.iso_numeric, kaz.name_ru) == ("KZ", "398", "Казахстан")


def test_threat_codes_match_iucn_33(registry, repo):
    rows = list(csv.DictReader((repo / "cami_geo" / "data" / "iucn_threats.csv").open()))
    assert len(registry.threats) == len(rows) == 130
    assert registry.resolve_threat("4.1") == "4.1"
    assert registry.threat_name("5.1.1").lower().startswith("intentional")
    assert registry.resolve_threat("Roads & railroads") == "4.1"
    assert registry.resolve_threat("4.9") is None


def test_unverified_flags_travel_with_values(registry):
    lynx = registry.species["lynx_lynx"]
    assert "range_states" in lynx.unverified
    assert lynx.flagged("range_states").endswith(UNVERIFIED)
    assert lynx.flagged("iucn_category").endswith(UNVERIFIED)
    saiga = registry.species["saiga_tatarica"]
    assert UNVERIFIED not in saiga.flagged("cms_appendix")


def test_config_adds_species_synonym_and_range_state():
    reg = load_registry({
        "species": [{"scientific_name": "Capra sibirica", "common_name": "Siberian ibex",
                     "range_states_iso3": ["KGZ", "XYZ"], "default_sensitivity": "0.01deg"}],
        "synonyms": {"Irbis irbis": "Panthera uncia"},
        "range_states": [{"iso3": "XYZ", "iso2": "XY", "iso_numeric": "999", "name_en": "Testland"}],
    })
    assert reg.resolve_species("capra  sibirica") == "capra_sibirica"
    assert reg.species["capra_sibirica"].range_states == ("KGZ", "XYZ")
    assert reg.resolve_species("Irbis irbis") == "panthera_uncia"
    assert reg.resolve_country("XY") == "XYZ"
    # changing a field of a known species keeps the rest
    reg2 = load_registry({"species": [{"scientific_name": "Panthera uncia", "default_sensitivity": "1deg"}]})
    assert reg2.species["panthera_uncia"].default_sensitivity == "1deg"
    assert reg2.resolve_species("ирбис") == "panthera_uncia"
