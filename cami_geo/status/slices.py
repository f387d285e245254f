"""Per-document slices of the status tables, so that a species' or Range State's maps and
documents re-run only when their own rows change.

``status_tables`` writes, beside the whole tables, one folder per species
(``data/processed/slices/species/<slug>/``) and per Range State
(``data/processed/slices/country/<ISO3>/``) holding :data:`TABLES`: the same columns as
the whole tables, only the rows that document may use. A slice may hold more rows than the
document shows (renderers filter again), never fewer:

- species: rows whose ``species_slug`` is the species (or is blank and the species name
  resolves to it); ``by_species`` its row; submissions cited by its population rows,
  declaring the species, or declaring no species.
- Range State: rows whose ``iso3`` is the Range State; ``by_species`` the species listed
  in it (registry) or with a row in it; submissions cited by its population rows,
  declaring it, or declaring no Range State.

Every slice is written with rows in the whole table's order, so the same rows give the
same bytes and Snakemake's checksum comparison can skip unchanged documents.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ..registry import Registry
from ..textsafe import write_csv
from ..workflow import SLICE_TABLES as TABLES, slice_paths  # noqa: F401 - the Snakefile imports them light



def _text(df: pd.DataFrame, col: str) -> pd.Series:
    if col not in df.columns:
        return pd.Series("", index=df.index, dtype=object)
    return df[col].astype(object).where(df[col].notna(), "").astype(str).str.strip()


def _split(value: str) -> list[str]:
    return [v.strip() for v in str(value).replace(",", ";").split(";") if v.strip()]


def _species_mask(df: pd.DataFrame, slug: str, registry: Registry) -> pd.Series:
    slugs = _text(df, "species_slug")
    mask = slugs == slug
    blank = slugs == ""
    if blank.any() and "species" in df.columns:
        mask |= blank & _text(df, "species").map(lambda s: registry.resolve_species(s) == slug)
    return mask


def _iso3_mask(df: pd.DataFrame, iso3: str) -> pd.Series:
    return _text(df, "iso3").str.upper() == iso3


def _submissions(subs: pd.DataFrame, used: set[str], registry: Registry, *, slug: str | None = None,
                 iso3: str | None = None) -> pd.DataFrame:
    if subs.empty:
        return subs
    keep = []
    for sid, species, states in zip(_text(subs, "submission"), _text(subs, "species"), _text(subs, "range_states")):
        if sid in used:
            keep.append(True)
        elif slug is not None:
            declared = [registry.resolve_species(s) or s for s in _split(species)]
            keep.append(not declared or slug in declared)
        else:
            declared_states = [registry.resolve_country(s) or s for s in _split(states)]
            keep.append(not declared_states or iso3 in declared_states)
    return subs[pd.Series(keep, index=subs.index, dtype=bool)]


def species_slice(tables: dict[str, pd.DataFrame], slug: str, registry: Registry) -> dict[str, pd.DataFrame]:
    """The rows of :data:`TABLES` a species' map and documents may use."""
    out = {name: tables[name][_species_mask(tables[name], slug, registry)]
           for name in ("by_country", "by_species", "threats", "actions", "population")}
    used = set(_text(out["population"], "submission"))
    out["submissions"] = _submissions(tables["submissions"], used, registry, slug=slug)
    return out


def country_slice(tables: dict[str, pd.DataFrame], iso3: str, registry: Registry) -> dict[str, pd.DataFrame]:
    """The rows of :data:`TABLES` a Range State's map and profile may use."""
    out = {name: tables[name][_iso3_mask(tables[name], iso3)]
           for name in ("by_country", "threats", "actions", "population")}
    slugs = set(registry.species_in(iso3)) | set(_text(out["by_country"], "species_slug"))
    by_species = tables["by_species"]
    out["by_species"] = by_species[_text(by_species, "species_slug").isin(slugs)]
    used = set(_text(out["population"], "submission"))
    out["submissions"] = _submissions(tables["submissions"], used, registry, iso3=iso3)
    return out


def write_slices(tables: dict[str, pd.DataFrame], paths: list[str], registry: Registry) -> None:
    """Write every ``.../slices/{species|country}/<key>/<table>.csv`` named in ``paths``."""
    cache: dict[tuple[str, str], dict[str, pd.DataFrame]] = {}
    for path in paths:
        p = Path(path)
        kind, key, table = p.parent.parent.name, p.parent.name, p.stem
        if table not in TABLES or kind not in ("species", "country"):
            raise ValueError(f"{path} is not a slice path (slices/species|country/<key>/<table>.csv).")
        if (kind, key) not in cache:
            cache[(kind, key)] = (species_slice(tables, key, registry) if kind == "species"
                                  else country_slice(tables, key.upper(), registry))
        write_csv(cache[(kind, key)][table].reset_index(drop=True), p)


def read_tables(inputs: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """The whole population and submissions tables named in ``inputs`` (as text)."""
    out = {}
    for name in ("population", "submissions"):
        path = inputs.get(name)
        out[name] = (pd.read_csv(path, dtype=str, keep_default_na=False) if path and Path(path).exists()
                     else pd.DataFrame())
    return out
