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


def _slug_key(df: pd.DataFrame, registry: Registry) -> pd.Series:
    """Each row's species: its ``species_slug``, or where that is blank, the slug its
    ``species`` name resolves to (None when it does not)."""
    slugs = _text(df, "species_slug")
    blank = slugs == ""
    if not blank.any():
        return slugs
    if "species" not in df.columns:
        return slugs.where(~blank, None)
    return slugs.where(~blank, _text(df, "species").where(blank).map(
        lambda s: registry.resolve_species(s) if isinstance(s, str) else None))


def _submission_keys(subs: pd.DataFrame, registry: Registry) -> list[tuple[str, list[str], list[str]]]:
    """Per submission: its id, the species slugs and the Range States it declares."""
    return [(sid, [registry.resolve_species(s) or s for s in _split(species)],
             [registry.resolve_country(s) or s for s in _split(states)])
            for sid, species, states in zip(_text(subs, "submission"), _text(subs, "species"),
                                            _text(subs, "range_states"))]


class _Keys:
    """The values the slices select rows on, taken once per table (not once per slice)."""

    def __init__(self, tables: dict[str, pd.DataFrame], registry: Registry):
        self.tables, self.registry = tables, registry
        self._cache: dict[tuple[str, str], Any] = {}

    def _get(self, kind: str, name: str, make):
        if (kind, name) not in self._cache:
            self._cache[(kind, name)] = make(self.tables[name])
        return self._cache[(kind, name)]

    def slug(self, name: str) -> pd.Series:
        return self._get("slug", name, lambda df: _slug_key(df, self.registry))

    def iso3(self, name: str) -> pd.Series:
        return self._get("iso3", name, lambda df: _text(df, "iso3").str.upper())

    def species_slug(self, name: str) -> pd.Series:
        return self._get("species_slug", name, lambda df: _text(df, "species_slug"))

    def submissions(self) -> list[tuple[str, list[str], list[str]]]:
        return self._get("submissions", "submissions", lambda df: _submission_keys(df, self.registry))


def _submissions(subs: pd.DataFrame, used: set[str], keys: list[tuple[str, list[str], list[str]]], *,
                 slug: str | None = None, iso3: str | None = None) -> pd.DataFrame:
    if subs.empty:
        return subs
    keep = []
    for sid, declared, declared_states in keys:
        if sid in used:
            keep.append(True)
        elif slug is not None:
            keep.append(not declared or slug in declared)
        else:
            keep.append(not declared_states or iso3 in declared_states)
    return subs[pd.Series(keep, index=subs.index, dtype=bool)]


def species_slice(tables: dict[str, pd.DataFrame], slug: str, registry: Registry, *,
                  keys: _Keys | None = None) -> dict[str, pd.DataFrame]:
    """The rows of :data:`TABLES` a species' map and documents may use (``keys``: the
    tables' :class:`_Keys`, when slicing them more than once)."""
    keys = keys or _Keys(tables, registry)
    out = {name: tables[name][keys.slug(name) == slug]
           for name in ("by_country", "by_species", "threats", "actions", "population")}
    used = set(_text(out["population"], "submission"))
    out["submissions"] = _submissions(tables["submissions"], used, keys.submissions(), slug=slug)
    return out


def country_slice(tables: dict[str, pd.DataFrame], iso3: str, registry: Registry, *,
                  keys: _Keys | None = None) -> dict[str, pd.DataFrame]:
    """The rows of :data:`TABLES` a Range State's map and profile may use."""
    keys = keys or _Keys(tables, registry)
    out = {name: tables[name][keys.iso3(name) == iso3]
           for name in ("by_country", "threats", "actions", "population")}
    slugs = set(registry.species_in(iso3)) | set(_text(out["by_country"], "species_slug"))
    out["by_species"] = tables["by_species"][keys.species_slug("by_species").isin(slugs)]
    used = set(_text(out["population"], "submission"))
    out["submissions"] = _submissions(tables["submissions"], used, keys.submissions(), iso3=iso3)
    return out


def write_slices(tables: dict[str, pd.DataFrame], paths: list[str], registry: Registry) -> None:
    """Write every ``.../slices/{species|country}/<key>/<table>.csv`` named in ``paths``."""
    keys = _Keys(tables, registry)
    cache: dict[tuple[str, str], dict[str, pd.DataFrame]] = {}
    for path in paths:
        p = Path(path)
        kind, key, table = p.parent.parent.name, p.parent.name, p.stem
        if table not in TABLES or kind not in ("species", "country"):
            raise ValueError(f"{path} is not a slice path (slices/species|country/<key>/<table>.csv).")
        if (kind, key) not in cache:
            cache[(kind, key)] = (species_slice(tables, key, registry, keys=keys) if kind == "species"
                                  else country_slice(tables, key.upper(), registry, keys=keys))
        write_csv(cache[(kind, key)][table].reset_index(drop=True), p)


def read_tables(inputs: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """The whole population and submissions tables named in ``inputs`` (as text)."""
    out = {}
    for name in ("population", "submissions"):
        path = inputs.get(name)
        out[name] = (pd.read_csv(path, dtype=str, keep_default_na=False) if path and Path(path).exists()
                     else pd.DataFrame())
    return out
