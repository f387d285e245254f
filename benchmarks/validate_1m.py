"""Benchmark: ``cami-geo validate`` on a 1,000,000-row occurrence CSV, against the time
pyarrow takes only to read the same file, with the validator's peak memory.

Target (issue #3): within 10x pyarrow's read time, under 2 GB peak memory.

Usage::

    .venv/bin/python benchmarks/validate_1m.py [--rows 1000000] [--keep FILE.csv] [--repeat 5]

The CSV is SYNTHETIC: saiga and snow leopard points drawn uniformly inside the KAZ, UZB,
MNG and KGZ polygons of the shipped boundary layer, with 1% deliberately bad rows
(swapped, missing, duplicated, future dates).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import shapely

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cami_geo.boundaries import load_boundaries  # noqa: E402


def points_in(geom, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x0, y0, x1, y1 = geom.bounds
    shapely.prepare(geom)
    xs, ys = [], []
    got = 0
    while got < n:
        x = rng.uniform(x0, x1, n * 2)
        y = rng.uniform(y0, y1, n * 2)
        ok = shapely.contains_xy(geom, x, y)
        xs.append(x[ok])
        ys.append(y[ok])
        got += int(ok.sum())
    return np.concatenate(xs)[:n], np.concatenate(ys)[:n]


def write_csv(path: Path, rows: int, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    b = load_boundaries(REPO / "data/raw/boundaries/countries.gpkg", layer="countries")
    plan = [("Saiga tatarica", "KZ", "KAZ", 0.45), ("Saiga tatarica", "UZ", "UZB", 0.1),
            ("Panthera uncia", "MN", "MNG", 0.25), ("Panthera uncia", "KG", "KGZ", 0.2)]
    sp, cc, lat, lon = [], [], [], []
    for name, iso2, iso3, share in plan:
        k = int(rows * share)
        x, y = points_in(b.loc[iso3, "geometry"], k, rng)
        sp += [name] * k
        cc += [iso2] * k
        lon.append(x)
        lat.append(y)
    lon, lat = np.concatenate(lon), np.concatenate(lat)
    n = len(lon)
    if n < rows:
        extra = rows - n
        lon, lat = np.concatenate([lon, lon[:extra]]), np.concatenate([lat, lat[:extra]])
        sp += sp[:extra]
        cc += cc[:extra]
    order = rng.permutation(rows)
    lon, lat = lon[order], lat[order]
    sp = np.array(sp, dtype=object)[order]
    cc = np.array(cc, dtype=object)[order]
    days = rng.integers(0, 365 * 10, rows)
    dates = (np.datetime64("2015-01-01") + days.astype("timedelta64[D]")).astype(str).astype(object)
    lat_s = np.char.mod("%.5f", lat).astype(object)
    lon_s = np.char.mod("%.5f", lon).astype(object)
    bad = rng.choice(rows, rows // 100, replace=False)
    q = len(bad) // 4
    lat_s[bad[:q]], lon_s[bad[:q]] = lon_s[bad[:q]], lat_s[bad[:q]]          # swapped
    lat_s[bad[q:2 * q]] = ""                                                  # missing
    dates[bad[2 * q:3 * q]] = "2099-01-01"                                    # future
    src = bad[3 * q:] - 1
    src[src < 0] = 1
    lat_s[bad[3 * q:]], lon_s[bad[3 * q:]], dates[bad[3 * q:]] = lat_s[src], lon_s[src], dates[src]
    sp[bad[3 * q:]], cc[bad[3 * q:]] = sp[src], cc[src]                        # duplicates
    table = pa.table({"scientificName": sp.astype(str), "decimalLatitude": lat_s.astype(str),
                      "decimalLongitude": lon_s.astype(str), "eventDate": dates.astype(str),
                      "countryCode": cc.astype(str), "individualCount": rng.integers(1, 30, rows),
                      "basisOfRecord": ["HumanObservation"] * rows})
    pacsv.write_csv(table, path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--keep", type=Path, help="keep the generated CSV here")
    ap.add_argument("--repeat", type=int, default=5, help="runs of each (medians are compared)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        csv = args.keep or Path(tmp) / "occurrences_bench.csv"
        t = time.perf_counter()
        write_csv(csv, args.rows)
        print(f"wrote {args.rows:,} rows ({csv.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - t:.1f} s")
        report = Path(tmp) / "report.json"
        t_arrow, t_val, procs = [], [], []
        for _ in range(args.repeat):   # interleaved, so both see the same machine load
            t = time.perf_counter()
            pacsv.read_csv(csv)
            t_arrow.append(time.perf_counter() - t)
            t = time.perf_counter()
            procs.append(subprocess.run([sys.executable, "-m", "cami_geo", "validate", str(csv), "--quiet", "--report",
                                         str(report)], capture_output=True, text=True, cwd=REPO))
            t_val.append(time.perf_counter() - t)
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        a, v = statistics.median(t_arrow), statistics.median(t_val)
        print(f"pyarrow.csv.read_csv: median {a:.3f} s over {args.repeat} runs ({min(t_arrow):.3f}-{max(t_arrow):.3f})")
        print(f"cami-geo validate:    median {v:.2f} s ({min(t_val):.2f}-{max(t_val):.2f}), exit {procs[-1].returncode}, "
              f"peak RSS {peak_mb:.0f} MB")
        print(procs[-1].stdout.strip() or procs[-1].stderr.strip())
        print(f"ratio of medians: {v / a:.1f}x (per run: {', '.join(f'{y / x:.1f}' for x, y in zip(t_arrow, t_val))}); "
              "target <= 10x; peak memory target < 2048 MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
