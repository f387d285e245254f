"""Synthetic submission trees of any size, for benchmarks and scale tests.

``cami-geo synth --records N OUT_DIR`` writes ``OUT_DIR/data/raw/submissions/`` with one
submission per registered species (17 by default): occurrences clustered plausibly inside
the real Range States of the species (Gaussian clusters around centres drawn inside each
Range State; every point is kept only where it falls inside a Range State of the species,
and its countryCode is the country it falls in), threat features (``threats.geojson``: one
per :data:`THREATS_PER_RECORDS` records, at least 6: roads and railways, poaching points,
mining polygons) and the published population estimates of the species. Everything but the population figures is
synthetic and labelled so (``synthetic: true`` in every manifest).

Deterministic: the same N and seed give the same files.
"""

from __future__ import annotations

import csv
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import shapely
import yaml

from .boundaries import load_boundaries
from .registry import Registry, default_registry

CLUSTERS_PER_STATE = 6
CLUSTER_SD_DEG = 0.35
CAMI_REGION = shapely.box(35.0, 25.0, 125.0, 56.0)
"""Cluster centres are drawn in the part of each Range State inside this lon/lat box (the
CAMI region), so that, say, Russian saiga clusters fall in the south, not in Siberia's east."""


def _points_in(geom, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` uniform random points (lon, lat) inside ``geom`` by rejection sampling."""
    minx, miny, maxx, maxy = geom.bounds
    shapely.prepare(geom)
    out = np.empty((0, 2))
    while len(out) < n:
        k = max(64, 4 * (n - len(out)))
        cand = np.column_stack([rng.uniform(minx, maxx, k), rng.uniform(miny, maxy, k)])
        out = np.vstack([out, cand[shapely.contains_xy(geom, cand[:, 0], cand[:, 1])]])
    return out[:n]


def synth_occurrences(slug: str, n: int, boundaries, registry: Registry, rng: np.random.Generator) -> pd.DataFrame:
    """``n`` synthetic occurrence rows (Darwin Core columns) for one species."""
    states = [s for s in registry.species[slug].range_states if s in boundaries.index]
    geoms = {s: boundaries.loc[s].geometry.intersection(CAMI_REGION) for s in states}
    geoms = {s: g for s, g in geoms.items() if not g.is_empty}
    for g in geoms.values():
        shapely.prepare(g)
    centres = np.vstack([_points_in(geoms[s], CLUSTERS_PER_STATE, rng) for s in states])
    lon = np.empty(0)
    lat = np.empty(0)
    iso = np.empty(0, dtype=object)
    while len(lon) < n:
        k = int((n - len(lon)) * 1.3) + 16
        c = centres[rng.integers(0, len(centres), k)]
        x = c[:, 0] + rng.normal(0, CLUSTER_SD_DEG, k)
        y = c[:, 1] + rng.normal(0, CLUSTER_SD_DEG * 0.7, k)
        which = np.full(k, None, dtype=object)
        for s, g in geoms.items():
            inside = shapely.contains_xy(g, x, y) & (which == None)  # noqa: E711
            which[inside] = s
        keep = which != None  # noqa: E711
        lon, lat, iso = np.concatenate([lon, x[keep]]), np.concatenate([lat, y[keep]]), np.concatenate([iso, which[keep]])
    lon, lat, iso = lon[:n], lat[:n], iso[:n]
    iso2 = pd.Series(iso).map({s: registry.states[s].iso2 for s in states}).to_numpy()
    days = rng.integers(0, 365 * 10, n)
    dates = (np.datetime64("2016-01-01") + days.astype("timedelta64[D]")).astype(str)
    return pd.DataFrame({
        "occurrenceID": [f"SYN-{slug}-{i}" for i in range(n)],
        "scientificName": registry.species[slug].scientific_name,
        "decimalLatitude": np.round(lat, 5),
        "decimalLongitude": np.round(lon, 5),
        "eventDate": dates,
        "countryCode": iso2,
        "coordinateUncertaintyInMeters": rng.choice([30, 100, 500, 1000], n),
        "individualCount": rng.integers(1, 40, n),
        "basisOfRecord": "HumanObservation",
        "occurrenceStatus": np.where(rng.random(n) < 0.03, "absent", "present"),
        "dataGeneralizations": "SYNTHETIC benchmark record",
    })


THREATS_PER_RECORDS = 2000
"""One synthetic threat feature per this many occurrence records of a species (at least 6)."""


def synth_threats(slug: str, n_records: int, boundaries, registry: Registry, rng: np.random.Generator):
    """Synthetic threat features for one species, inside its Range States: roads and railways
    (IUCN 4.1, lines with a barrier class), hunting points (5.1.1) and mining polygons (3.2)."""
    import geopandas as gpd

    states = [s for s in registry.species[slug].range_states if s in boundaries.index]
    geoms = [g for g in (boundaries.loc[s].geometry.intersection(CAMI_REGION) for s in states) if not g.is_empty]
    if not geoms:
        return None
    n = max(6, n_records // THREATS_PER_RECORDS)
    rows, shapes = [], []
    name = registry.species[slug].scientific_name
    for i in range(n):
        g = geoms[i % len(geoms)]
        (x, y), = _points_in(g, 1, rng)
        kind = ("line", "point", "polygon")[i % 3]
        day = np.datetime64("2016-01-01") + int(rng.integers(0, 365 * 10))
        base = {"threat_id": f"SYN-T-{slug}-{i}", "date": str(day), "species": name,
                "severity": ("low", "medium", "high")[int(rng.integers(0, 3))], "notes": "SYNTHETIC benchmark feature"}
        if kind == "line":
            steps = rng.normal(0, 0.25, (12, 2)).cumsum(axis=0) + rng.uniform(-0.1, 0.1, 2) * np.arange(12)[:, None]
            shapes.append(shapely.LineString(np.array([x, y]) + steps))
            rail = i % 2 == 0
            rows.append({**base, "iucn_code": "4.1", "threat_type": "railway" if rail else "road",
                         "barrier_class": "complete barrier" if rail else "partial barrier",
                         "name": f"Synthetic {'railway' if rail else 'road'} {i}"})
        elif kind == "point":
            shapes.append(shapely.Point(x + rng.normal(0, 0.05), y + rng.normal(0, 0.05)))
            rows.append({**base, "iucn_code": "5.1.1", "threat_type": "poaching", "barrier_class": None,
                         "name": f"Synthetic poaching report {i}"})
        else:
            shapes.append(shapely.box(x, y, x + 0.05, y + 0.04))
            rows.append({**base, "iucn_code": "3.2", "threat_type": "mining", "barrier_class": None,
                         "name": f"Synthetic mining licence {i}"})
    return gpd.GeoDataFrame(rows, geometry=shapes, crs="EPSG:4326")


def _population_rows(slug: str, registry: Registry) -> list[dict[str, str]]:
    with resources.files("cami_geo.data").joinpath("population_estimates.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    out = []
    for r in rows:
        if registry.resolve_species(r["species"]) == slug and r["year"]:
            out.append({"species": r["species"], "countryCode": r["iso3"], "year": r["year"],
                        "estimate_min": r["estimate_min"], "estimate_best": r["estimate_best"],
                        "estimate_max": r["estimate_max"], "unit": "individuals", "method": r["method"],
                        "source": r["source"], "scope": r["scope"], "trend": "", "notes": r["notes"]})
    return out


def write_synthetic_tree(out_dir: str | Path, records: int, *, seed: int = 20261126,
                         boundaries_path: str | Path | None = None,
                         registry: Registry | None = None) -> dict[str, int]:
    """Write a submission tree with ``records`` occurrence rows in total; return rows per species."""
    registry = registry or default_registry()
    if boundaries_path is None:
        boundaries_path = Path(__file__).resolve().parents[1] / "data" / "raw" / "boundaries" / "countries.gpkg"
    boundaries = load_boundaries(boundaries_path, layer="countries")
    rng = np.random.default_rng(seed)
    threat_rng = np.random.default_rng(seed + 1)
    slugs = sorted(registry.species)
    weights = rng.uniform(0.5, 1.5, len(slugs))
    counts = np.floor(weights / weights.sum() * records).astype(int)
    counts[0] += records - counts.sum()
    root = Path(out_dir) / "data" / "raw" / "submissions"
    result = {}
    for slug, n in zip(slugs, counts):
        folder = root / f"synth_{slug}"
        folder.mkdir(parents=True, exist_ok=True)
        sp = registry.species[slug]
        manifest = {"species": sp.scientific_name, "range_states": list(sp.range_states),
                    "contributor": "cami-geo synth (SYNTHETIC benchmark data)", "submitted": "2026-06-01",
                    "cycle": 2026, "licence": "CC0-1.0", "synthetic": True}
        (folder / "submission.yaml").write_text(
            "# SYNTHETIC data written by `cami-geo synth` for benchmarks; population figures are the\n"
            "# published estimates shipped with cami-geo.\n" + yaml.safe_dump(manifest, sort_keys=False),
            encoding="utf-8")
        occ = synth_occurrences(slug, int(n), boundaries, registry, rng)
        occ.to_csv(folder / "occurrences.csv", index=False)
        threats = synth_threats(slug, int(n), boundaries, registry, threat_rng)
        if threats is not None:
            threats.to_file(folder / "threats.geojson", driver="GeoJSON")
        pop = _population_rows(slug, registry)
        if pop:
            pd.DataFrame(pop).to_csv(folder / "population.csv", index=False)
        result[slug] = int(n)
    return result
