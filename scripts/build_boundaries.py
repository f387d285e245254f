"""Rebuild data/raw/boundaries/countries.gpkg from the npm package world-atlas 2.0.2.

Run `npm ci` first (it installs the package into node_modules/, integrity-checked
against package-lock.json), then: python scripts/build_boundaries.py
"""

from pathlib import Path

from cami_geo.boundaries import build_from_world_atlas
from cami_geo.registry import default_registry

ROOT = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    src = ROOT / "node_modules" / "world-atlas" / "countries-10m.json"
    out = ROOT / "data" / "raw" / "boundaries" / "countries.gpkg"
    gdf = build_from_world_atlas(src, out, default_registry())
    print(f"wrote {out.relative_to(ROOT)}: {len(gdf)} countries, {int(gdf.range_state.sum())} Range States, "
          f"{out.stat().st_size / 1e6:.1f} MB")
