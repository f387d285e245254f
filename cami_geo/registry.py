"""Reference registries: CAMI species, Range States and the IUCN Threats Classification Scheme 3.3.

The registries ship as package data (``cami_geo/data/*.csv``) and can be extended from the
configuration (``registry:`` section) without code changes: extra species, extra synonyms
or common names for a known species, extra Range States, or a corrected Range State list.

Fields whose value rests on weak sources are listed per species in ``unverified``; use
:func:`Registry.flagged` to show such a value with its ``[unverified]`` flag.
"""

from __future__ import annotations

import csv
import difflib
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any, Iterable

SENSITIVITY_LEVELS = ("exact", "0.001deg", "0.01deg", "0.1deg", "1deg", "withheld")
"""Generalisation levels, finest first (GBIF practice, Chapman 2020)."""

UNVERIFIED = "[unverified]"


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(";") if v.strip()]


def normalise_name(text: str) -> str:
    """Fold case, accents-insensitive spacing and punctuation so names compare loosely.

    >>> normalise_name("  Panthera   UNCIA ")
    'panthera uncia'
    """
    text = unicodedata.normalize("NFKC", str(text)).casefold()
    text = text.replace("ё", "е")
    text = re.sub(r"[\s_]+", " ", text)
    text = re.sub(r"[\"'`’().,]", "", text)
    return text.strip()


def slugify(name: str) -> str:
    """File-system and wildcard safe id for a species name ('Panthera uncia' -> 'panthera_uncia')."""
    return re.sub(r"[^a-z0-9]+", "_", normalise_name(name)).strip("_")


@dataclass(frozen=True)
class Species:
    slug: str
    scientific_name: str
    common_name: str
    cms_appendix: str
    iucn_category: str
    iucn_population_trend: str
    range_states: tuple[str, ...]
    default_sensitivity: str
    synonyms: tuple[str, ...] = ()
    subspecies: tuple[str, ...] = ()
    common_names: dict[str, tuple[str, ...]] = field(default_factory=dict)
    unverified: tuple[str, ...] = ()
    sources: str = ""
    notes: str = ""
    cami_no: int | None = None

    def flagged(self, attribute: str) -> str:
        """The attribute's value as text, with ``[unverified]`` appended when it is flagged."""
        value = getattr(self, attribute)
        if isinstance(value, tuple):
            value = ", ".join(value)
        value = str(value)
        return f"{value} {UNVERIFIED}" if attribute in self.unverified and value else value


@dataclass(frozen=True)
class RangeState:
    iso3: str
    iso2: str
    iso_numeric: str
    name_en: str
    name_ru: str
    capital: str
    capital_lat: float
    capital_lon: float
    core_cami: bool


@dataclass(frozen=True)
class Threat:
    code: str
    level: int
    parent_code: str
    name: str


class Registry:
    """The species, Range State and threat registries, with config overrides applied."""

    def __init__(self, species: Iterable[Species], states: Iterable[RangeState], threats: Iterable[Threat]):
        self.species: dict[str, Species] = {s.slug: s for s in species}
        self.states: dict[str, RangeState] = {s.iso3: s for s in states}
        self.threats: dict[str, Threat] = {t.code: t for t in threats}
        self._names: dict[str, str] = {}
        for sp in self.species.values():
            for name in (sp.scientific_name, sp.slug, *sp.synonyms, *sp.subspecies,
                         *(n for names in sp.common_names.values() for n in names)):
                self._names.setdefault(normalise_name(name), sp.slug)
        self._iso2 = {s.iso2: s.iso3 for s in self.states.values()}
        self._numeric = {s.iso_numeric: s.iso3 for s in self.states.values()}
        self._threat_names = {normalise_name(t.name): t.code for t in self.threats.values()}

    # -- species ---------------------------------------------------------------------
    def resolve_species(self, name: Any) -> str | None:
        """The slug of the species a name refers to (scientific name, synonym, subspecies,
        common name in any registered language; any case or spacing), or None."""
        if name is None:
            return None
        key = normalise_name(name)
        if not key:
            return None
        if key in self._names:
            return self._names[key]
        # "Genus species subspecies author" forms: try the first three, then two words.
        words = key.split(" ")
        for n in (3, 2):
            if len(words) > n and " ".join(words[:n]) in self._names:
                return self._names[" ".join(words[:n])]
        return None

    def suggest_species(self, name: Any, n: int = 3) -> list[str]:
        """Nearest registered names for a name that did not resolve ("did you mean")."""
        key = normalise_name(name or "")
        hits = difflib.get_close_matches(key, list(self._names), n=n * 3, cutoff=0.6)
        out: list[str] = []
        for hit in hits:
            label = self.species[self._names[hit]].scientific_name
            if label not in out:
                out.append(label)
        return out[:n]

    def species_by_name(self, name: str) -> Species:
        slug = self.resolve_species(name)
        if slug is None:
            raise KeyError(name)
        return self.species[slug]

    # -- Range States ----------------------------------------------------------------
    def resolve_country(self, code: Any) -> str | None:
        """ISO alpha-3 for an alpha-2, alpha-3, numeric code or English/Russian name."""
        if code is None:
            return None
        text = str(code).strip()
        if not text:
            return None
        up = text.upper()
        if up in self.states:
            return up
        if up in self._iso2:
            return self._iso2[up]
        if text.isdigit() and text.zfill(3) in self._numeric:
            return self._numeric[text.zfill(3)]
        key = normalise_name(text)
        for st in self.states.values():
            if key in (normalise_name(st.name_en), normalise_name(st.name_ru)):
                return st.iso3
        return None

    def range_states_of(self, slug: str) -> tuple[str, ...]:
        return self.species[slug].range_states

    def species_in(self, iso3: str) -> list[str]:
        return [s.slug for s in self.species.values() if iso3 in s.range_states]

    # -- threats ---------------------------------------------------------------------
    def resolve_threat(self, value: Any) -> str | None:
        """IUCN 3.3 code for a code ('4.1', '4.1.0' is not a code) or an exact threat name."""
        if value is None:
            return None
        text = str(value).strip()
        if text in self.threats:
            return text
        m = re.match(r"^(\d+(?:\.\d+){0,2})\b", text)
        if m and m.group(1) in self.threats:
            return m.group(1)
        return self._threat_names.get(normalise_name(text))

    def threat_name(self, code: str) -> str:
        return self.threats[code].name if code in self.threats else ""


def _read_csv(name: str) -> list[dict[str, str]]:
    with resources.files("cami_geo.data").joinpath(name).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


LANGS = ("en", "ru", "mn", "zh", "kk")


def _species_from_row(row: dict[str, Any]) -> Species:
    return Species(
        slug=row.get("slug") or slugify(row["scientific_name"]),
        scientific_name=row["scientific_name"],
        common_name=row.get("common_name", ""),
        cms_appendix=str(row.get("cms_appendix", "")),
        iucn_category=str(row.get("iucn_category", "")),
        iucn_population_trend=str(row.get("iucn_population_trend", "")),
        range_states=tuple(_as_list(row.get("range_states_iso3") or row.get("range_states"))),
        default_sensitivity=row.get("default_sensitivity") or "0.1deg",
        synonyms=tuple(_as_list(row.get("synonyms"))),
        subspecies=tuple(_as_list(row.get("subspecies"))),
        common_names={lang: tuple(_as_list(row.get(f"names_{lang}"))) for lang in LANGS},
        # flags name Species attributes; the CSV column name range_states_iso3 is accepted too
        unverified=tuple("range_states" if f == "range_states_iso3" else f
                         for f in _as_list(row.get("unverified"))),
        sources=row.get("sources", ""),
        notes=row.get("notes", ""),
        cami_no=int(row["cami_no"]) if str(row.get("cami_no") or "").isdigit() else None,
    )


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    return _split(str(value))


def _state_from_row(row: dict[str, Any]) -> RangeState:
    return RangeState(
        iso3=row["iso3"], iso2=row["iso2"], iso_numeric=str(row["iso_numeric"]).zfill(3),
        name_en=row["name_en"], name_ru=row.get("name_ru", ""), capital=row.get("capital", ""),
        capital_lat=float(row.get("capital_lat") or "nan"),
        capital_lon=float(row.get("capital_lon") or "nan"),
        core_cami=str(row.get("core_cami", "")).lower() == "true",
    )


def load_registry(overrides: dict[str, Any] | None = None) -> Registry:
    """Build the registry from package data plus the config's ``registry`` section.

    ``overrides`` may hold ``species`` (a list of species rows: new species, or changed
    fields of a known one by ``scientific_name``), ``synonyms`` (name -> accepted
    scientific name) and ``range_states`` (a list of Range State rows).
    """
    overrides = overrides or {}
    species = {s.slug: s for s in (_species_from_row(r) for r in _read_csv("species.csv"))}
    for row in overrides.get("species", []) or []:
        slug = row.get("slug") or slugify(row["scientific_name"])
        base = species.get(slug)
        merged = {**(_species_as_row(base) if base else {}), **row, "slug": slug}
        species[slug] = _species_from_row(merged)
    for name, accepted in (overrides.get("synonyms", {}) or {}).items():
        slug = slugify(accepted)
        if slug not in species:
            raise KeyError(f"synonym {name!r} points to {accepted!r}, which is not a registered species")
        sp = species[slug]
        species[slug] = Species(**{**sp.__dict__, "synonyms": sp.synonyms + (name,)})
    states = {s.iso3: s for s in (_state_from_row(r) for r in _read_csv("range_states.csv"))}
    for row in overrides.get("range_states", []) or []:
        states[row["iso3"]] = _state_from_row(row)
    threats = [Threat(code=r["code"], level=int(r["level"]), parent_code=r["parent_code"], name=r["name"])
               for r in _read_csv("iucn_threats.csv")]
    return Registry(species.values(), states.values(), threats)


def _species_as_row(sp: Species) -> dict[str, Any]:
    row = {k: v for k, v in sp.__dict__.items() if k != "common_names"}
    row["range_states_iso3"] = list(sp.range_states)
    for lang, names in sp.common_names.items():
        row[f"names_{lang}"] = list(names)
    return row


@lru_cache(maxsize=1)
def default_registry() -> Registry:
    """The registry as shipped, without config overrides."""
    return load_registry()
