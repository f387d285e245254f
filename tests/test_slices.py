"""Per-species and per-Range State slices of the status tables (cami_geo.status.slices).

A slice must hold every row its documents use (the renderers filter the whole tables the
same way), and nothing that changes when only another species changes.
"""

from __future__ import annotations

import pandas as pd

from cami_geo.registry import load_registry
from cami_geo.status.slices import TABLES, country_slice, slice_paths, species_slice, write_slices

REG = load_registry()


def tables() -> dict[str, pd.DataFrame]:
    by_country = pd.DataFrame({
        "species": ["Saiga tatarica", "Saiga tatarica", "Panthera uncia"],
        "species_slug": ["saiga_tatarica", "saiga_tatarica", "panthera_uncia"],
        "iso3": ["KAZ", "MNG", "KGZ"], "n_records": [10, 5, 7]})
    by_species = pd.DataFrame({"species": ["Saiga tatarica", "Panthera uncia", "Camelus ferus"],
                               "species_slug": ["saiga_tatarica", "panthera_uncia", "camelus_ferus"],
                               "n_records": [15, 7, 0]})
    threats = pd.DataFrame({"species": ["Saiga tatarica"], "species_slug": ["saiga_tatarica"], "iso3": ["KAZ"],
                            "iucn_code": ["4.1"]})
    actions = pd.DataFrame({"species": ["Panthera uncia"], "species_slug": ["panthera_uncia"], "iso3": ["KGZ"],
                            "rule": ["old_estimate"]})
    population = pd.DataFrame({
        "submission": ["pop_2026", "pop_2026", "snow_2026"],
        "species": ["Saiga tatarica", "saiga", "Panthera uncia"],
        "species_slug": ["saiga_tatarica", "", "panthera_uncia"],  # the 2nd: blank slug, name resolves
        "iso3": ["KAZ", "MNG", "KGZ"], "estimate_best": ["1000", "50", "300"]})
    submissions = pd.DataFrame({
        "submission": ["multi_2026", "pop_2026", "saiga_kaz_2026", "snow_2026"],
        "species": ["", "Saiga tatarica;Panthera uncia", "Saiga tatarica", "Panthera uncia"],
        "range_states": ["", "KAZ;KGZ;MNG", "KAZ", "KGZ"]})
    return {"by_country": by_country, "by_species": by_species, "threats": threats, "actions": actions,
            "population": population, "submissions": submissions}


def test_species_slice_keeps_its_rows_and_blank_slugs_that_resolve_to_it():
    sl = species_slice(tables(), "saiga_tatarica", REG)
    assert set(sl) == set(TABLES)
    assert list(sl["by_country"].iso3) == ["KAZ", "MNG"]
    assert list(sl["by_species"].species_slug) == ["saiga_tatarica"]
    assert list(sl["population"].estimate_best) == ["1000", "50"]
    assert sl["actions"].empty
    # cited by its population rows, declaring the species, or declaring none
    assert list(sl["submissions"].submission) == ["multi_2026", "pop_2026", "saiga_kaz_2026"]


def test_country_slice_keeps_species_listed_there_and_its_submissions():
    sl = country_slice(tables(), "KGZ", REG)
    assert list(sl["by_country"].species_slug) == ["panthera_uncia"]
    assert list(sl["actions"].rule) == ["old_estimate"]
    assert "panthera_uncia" in set(sl["by_species"].species_slug)
    assert "camelus_ferus" not in set(sl["by_species"].species_slug)  # not a Range State of the camel
    assert list(sl["submissions"].submission) == ["multi_2026", "pop_2026", "snow_2026"]


def test_a_change_to_one_species_leaves_the_other_species_slices_unchanged(tmp_path):
    base = tables()
    paths = slice_paths(str(tmp_path / "a"), ["saiga_tatarica", "panthera_uncia"], ["KGZ", "KAZ"])
    write_slices(base, paths, REG)
    changed = tables()
    changed["by_country"].loc[0, "n_records"] = 9  # a saiga figure in Kazakhstan
    changed["submissions"].loc[2, "range_states"] = "KAZ;UZB"
    paths_b = slice_paths(str(tmp_path / "b"), ["saiga_tatarica", "panthera_uncia"], ["KGZ", "KAZ"])
    write_slices(changed, paths_b, REG)
    differs = {pa.split("/a/", 1)[1] for pa, pb in zip(paths, paths_b)
               if open(pa, "rb").read() != open(pb, "rb").read()}
    assert differs == {"slices/species/saiga_tatarica/by_country.csv", "slices/species/saiga_tatarica/submissions.csv",
                       "slices/country/KAZ/by_country.csv", "slices/country/KAZ/submissions.csv"}
