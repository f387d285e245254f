"""Compare the outputs of two pipeline runs (e.g. local and SLURM, or repo and -d WORKDIR).

Text outputs (CSV, HTML, Markdown, SVG, JSON) must be byte-identical; GeoPackages must hold
the same layers with equal contents; DOCX and PDF must have the same extracted text.
Prints one line per difference and exits 1 if any.

    python scripts/compare_outputs.py DIR_A DIR_B
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

FOLDERS = ["data/processed", "maps", "reports"]
TEXT = {".csv", ".html", ".md", ".svg", ".json"}


def _docx_text(path: Path) -> bytes:
    with zipfile.ZipFile(path) as z:
        return z.read("word/document.xml")


def _pdf_text(path: Path) -> bytes:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True).stdout


def _gpkg(path: Path):
    import pyogrio

    out = {}
    for layer, _ in pyogrio.list_layers(path):
        df = pyogrio.read_dataframe(path, layer=layer)
        out[layer] = df.to_wkt() if hasattr(df, "to_wkt") else df
    return out


def same(a: Path, b: Path) -> bool:
    ext = a.suffix.lower()
    if ext in TEXT or ext == ".parquet":
        return a.read_bytes() == b.read_bytes() if ext in TEXT else _parquet_equal(a, b)
    if ext == ".docx":
        return _docx_text(a) == _docx_text(b)
    if ext == ".pdf":
        return _pdf_text(a) == _pdf_text(b)
    if ext == ".gpkg":
        la, lb = _gpkg(a), _gpkg(b)
        return la.keys() == lb.keys() and all(la[k].equals(lb[k]) for k in la)
    return True  # images and rasters: presence only


def _parquet_equal(a: Path, b: Path) -> bool:
    import pandas as pd

    return pd.read_parquet(a).equals(pd.read_parquet(b))


def main(dir_a: str, dir_b: str) -> int:
    a_root, b_root = Path(dir_a), Path(dir_b)
    problems = []
    n = 0
    for folder in FOLDERS:
        files_a = {p.relative_to(a_root) for p in (a_root / folder).rglob("*") if p.is_file()}
        files_b = {p.relative_to(b_root) for p in (b_root / folder).rglob("*") if p.is_file()}
        for rel in sorted(files_a ^ files_b):
            problems.append(f"only in {'A' if rel in files_a else 'B'}: {rel}")
        for rel in sorted(files_a & files_b):
            n += 1
            if not same(a_root / rel, b_root / rel):
                problems.append(f"differs: {rel}")
    for p in problems:
        print(p)
    print(f"compared {n} files: {len(problems)} differences")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
