"""Per-measure timings of the criterion-B measures at 10^6 occurrence records.

    .venv/bin/python benchmarks/status_1m.py [--n 1000000] [--species 17] [--seed 0] [--stage WORKDIR]

Builds 10^6 synthetic present records of 17 species in the CAMI region (each species a
few clustered subpopulations around random centres, Gaussian spread of 0.3-1.5 degrees,
coordinates rounded to 5 decimals, about 1 m) and times, per method, EOO, AOO (with the
grid-origin search), locations and subpopulations over all species, plus
``assess_table`` end to end. Prints one line per measure and method.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd

from cami_geo.status import criterion_b as cb


def synth(n: int, n_species: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    per = np.full(n_species, n // n_species)
    per[: n - per.sum()] += 1
    frames = []
    for i, k in enumerate(per):
        n_sub = rng.integers(2, 8)
        centres = np.column_stack([rng.uniform(50, 110, n_sub), rng.uniform(30, 52, n_sub)])
        which = rng.integers(0, n_sub, k)
        spread = rng.uniform(0.3, 1.5, n_sub)[which]
        lon = centres[which, 0] + rng.normal(0, 1, k) * spread
        lat = np.clip(centres[which, 1] + rng.normal(0, 1, k) * spread * 0.6, -89, 89)
        frames.append(pd.DataFrame({"taxon": f"species_{i:02d}", "lon": lon.round(5), "lat": lat.round(5),
                                    "present": True}))
    return pd.concat(frames, ignore_index=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--species", type=int, default=17)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stage", metavar="WORKDIR", help="also time the status_species stage, writing "
                    "its inputs and outputs under WORKDIR")
    a = ap.parse_args()
    df = synth(a.n, a.species, a.seed)
    groups = [(g["lon"].to_numpy(), g["lat"].to_numpy()) for _, g in df.groupby("taxon")]
    print(f"{len(df):,} records, {len(groups)} species")
    for method in cb.METHODS:
        timings = {}
        for name, fn in (("eoo_km2", lambda x, y: cb.eoo_km2(x, y, method)),
                         ("aoo", lambda x, y: cb.aoo(x, y, method)),
                         ("locations", lambda x, y: cb.locations(x, y, method)),
                         ("subpopulations", lambda x, y: cb.subpopulations(x, y, method))):
            t, c = time.perf_counter(), time.process_time()
            for x, y in groups:
                fn(x, y)
            timings[name] = (time.perf_counter() - t, time.process_time() - c)
        t, c = time.perf_counter(), time.process_time()
        cb.assess_table(df, method)
        timings["assess_table (all measures + category)"] = (time.perf_counter() - t, time.process_time() - c)
        for name, (sec, cpu) in timings.items():
            print(f"{method:5s} {name:42s} {sec:7.2f} s wall {cpu:7.2f} s cpu")
    if a.stage:
        for method in cb.METHODS:
            stage(a.n, a.seed, method, a.stage)



def stage(n: int, seed: int, method: str, workdir: str) -> None:
    """Time ``run_status_species_stage`` for the 17 registered species on ``n`` records
    (written to one GeoPackage per species first; writing is not timed)."""
    from pathlib import Path

    import geopandas as gpd
    import shapely

    from cami_geo import config as cfg
    from cami_geo.boundaries import load_boundaries
    from cami_geo.registry import default_registry
    from cami_geo.status.pipeline import run_status_species_stage

    repo = Path(__file__).resolve().parents[1]
    bpath = repo / "data/raw/boundaries/countries.gpkg"
    countries = load_boundaries(bpath)
    reg = default_registry()
    rng = np.random.default_rng(seed)
    wd = Path(workdir)
    wd.mkdir(parents=True, exist_ok=True)
    slugs = sorted(reg.species)
    per = n // len(slugs)
    settings = cfg.load(repo, wd)
    settings["status"]["method"] = method  # not a config key: the benchmark sets it directly
    pd.DataFrame(columns=["species", "species_slug", "iso3", "year", "estimate_best"]).to_csv(wd / "pop.csv", index=False)
    paths = {}
    for slug in slugs:
        states = [s for s in reg.species[slug].range_states if s in countries.index]
        geom = shapely.union_all(countries.loc[states].geometry.values)
        x0, y0, x1, y1 = geom.bounds
        lon = rng.uniform(x0, x1, per * 3)
        lat = rng.uniform(y0, y1, per * 3)
        inside = shapely.contains_xy(geom, lon, lat)
        lon, lat = lon[inside][: per // 2], lat[inside][: per // 2]
        centres = np.column_stack([lon[:5], lat[:5]])
        k = per - lon.size
        which = rng.integers(0, len(centres), k)
        lon = np.concatenate([lon, centres[which, 0] + rng.normal(0, 0.5, k)]).round(5)
        lat = np.concatenate([lat, centres[which, 1] + rng.normal(0, 0.3, k)]).round(5)
        gdf = gpd.GeoDataFrame({"species_slug": slug, "iso3": "", "occurrence_status": "present",
                                "year": 2024, "cycle": 2026, "synthetic": True,
                                "decimal_longitude": lon, "decimal_latitude": lat,
                                "coordinate_uncertainty_m": 100.0},
                               geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")
        paths[slug] = wd / f"{slug}.gpkg"
        gdf.to_file(paths[slug], layer="occurrences", driver="GPKG")
    total = cpu = 0.0
    for slug in slugs:
        outs = {k: str(wd / "status" / slug / f"{k}.csv") for k in ("by_country", "species", "threats")}
        t, c = time.perf_counter(), time.process_time()
        run_status_species_stage({"clean": str(paths[slug]), "population": str(wd / "pop.csv"), "rasters": "",
                                  "boundaries": str(bpath)}, outs, {"settings": settings})
        dt, dc = time.perf_counter() - t, time.process_time() - c
        total += dt
        cpu += dc
        print(f"{method:5s} status_species {slug:32s} {dt:6.2f} s wall {dc:6.2f} s cpu")
    print(f"{method:5s} status_species total for {per * len(slugs):,} records: {total:.2f} s wall, "
          f"{cpu:.2f} s cpu (load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
