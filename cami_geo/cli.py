"""The ``cami-geo`` command: validate, assess, template (and synth for benchmarks).

Every user-facing error is one sentence on stderr; no traceback reaches a user.
Exit codes for ``validate``: 0 every row accepted, 1 rows rejected, 2 input unreadable.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__
from .errors import CamiGeoError, InputError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cami-geo", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"cami-geo {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    v = sub.add_parser("validate", help="check a submission folder or a file, row by row")
    v.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    v.add_argument("--report", type=Path, metavar="FILE.json", help="write the result as JSON")
    v.add_argument("--kind", choices=["occurrences", "threats", "population", "range"],
                   help="the kind of a single file when its name does not say it")
    v.add_argument("--species", help="species of a single file without a species column")
    v.add_argument("--boundaries", type=Path, help="boundary layer (default: the shipped one)")
    v.add_argument("--quiet", action="store_true", help="print only the summary line")

    a = sub.add_parser("assess", help="criterion-B measures for every taxon in an occurrence table")
    a.add_argument("file", type=Path)
    a.add_argument("--method", choices=["iucn", "conr"], default="iucn")
    a.add_argument("--out", type=Path, required=True, metavar="FILE.csv")

    t = sub.add_parser("template", help="write the submission workbook SFPs fill in")
    t.add_argument("file", type=Path, metavar="FILE.xlsx")

    s = sub.add_parser("synth", help="write a SYNTHETIC submission tree of any size (benchmarks)")
    s.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    s.add_argument("--records", type=int, required=True, help="occurrence rows in total")
    s.add_argument("--seed", type=int, default=20261126)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the command in ``argv`` (default: the program's arguments); returns the exit code.

    Run as the program (``argv`` None: the ``cami-geo`` script, ``python -m cami_geo``),
    ``validate`` runs without the cyclic garbage collector and ends the process itself once
    its output is written and flushed: the interpreter's teardown of pandas, pyarrow and
    GEOS adds a tenth of a second or more to every run and is of no use to a finished command.
    """
    args = _parser().parse_args(argv)
    program = argv is None and args.command == "validate"
    if program:
        # a short run that frees its data by reference counting: the cycle collector would
        # only walk the objects of the libraries being imported, again and again
        import gc

        gc.disable()
    code = _run(args)
    if program:
        _leave(code)
    return code


def _leave(code: int) -> None:
    """Flush the output and end the process with ``code``, skipping the interpreter's teardown."""
    import os

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed or broken pipe: nothing more can be written
            pass
    os._exit(code)


def _run(args) -> int:
    try:
        if args.command == "validate":
            from .io.csvfast import prefetch

            prefetch(args.paths)   # large tables are read and parsed while the libraries load
            from .intake import cli_validate

            return cli_validate(args)
        if args.command == "assess":
            from .status.criterion_b import cli_assess

            return cli_assess(args)
        if args.command == "template":
            from .io.template import write_template

            write_template(args.file)
            print(f"wrote {args.file}")
            return 0
        if args.command == "synth":
            from .synth import write_synthetic_tree

            counts = write_synthetic_tree(args.out_dir, args.records, seed=args.seed)
            print(f"wrote {sum(counts.values())} synthetic records for {len(counts)} species "
                  f"under {args.out_dir / 'data' / 'raw' / 'submissions'}")
            return 0
    except InputError as exc:
        print(f"cami-geo: {exc}", file=sys.stderr)
        return 2
    except CamiGeoError as exc:
        print(f"cami-geo: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
