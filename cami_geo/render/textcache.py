"""What matplotlib computes for the text of a static map, kept from one map job to the next.

Every map's PNG and SVG carry much the same text: the UN disclaimer, source and attribution
lines, legend entries, scale bar, country names. matplotlib measures each string (FreeType
loads and hints every glyph), lays it out again to draw it, and renders every glyph at its
position within a pixel; for a small map that was a fifth of its job. Map jobs run in forked
processes, so a cache in memory dies with each job: this one is also kept in a file of the
map cache folder (:func:`cami_geo.render.maps._map_cache_dir`), read when a map is drawn (or
by the stage worker's warm-up, before it forks the jobs) and written back, merged, when a
job has added to it.

What is kept is exactly what matplotlib computes, keyed by everything it is computed from:

- ``metrics``: ``(w, h, d)`` of a string, per renderer kind (Agg: hinted, at the figure's dpi;
  SVG: unhinted, at text-to-path scale), font files, size, dpi, load flags;
- ``layouts``: the glyphs (index, x, y) of a string as Agg's ``draw_text`` lays it out, when
  all of them come from the first font file (else it is not kept);
- ``glyphs``: a glyph's rendered image (:data:`cami_geo.render.static._GLYPH_IMAGES`) by font
  file, size, dpi, glyph, transformation, position within the pixel and load flags.

The file is named by a hash of the matplotlib and FreeType versions and this module's code,
and records the size and modification time of the font files used: a changed font drops it.
Same inputs give the same images with or without the cache; any trouble with the file means
working without it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
from pathlib import Path

import numpy as np

log = logging.getLogger("cami_geo.render.textcache")

MAX_ENTRIES = 100_000
"""Most entries of each kind kept in the file (beyond it a job keeps its new ones to itself)."""

metrics: dict = {}
layouts: dict = {}
glyphs: dict = {}
"""The three caches of this process (see the module's docstring)."""

_stored: dict = {}
"""Glyph images read from the file and not used yet: key -> (blob, offset, rows, columns, left, top)."""

_state = {"file": None, "new": 0}


def _cache_file() -> Path | None:
    import matplotlib
    from matplotlib import ft2font

    from cami_geo.render.maps import _map_cache_dir

    folder = _map_cache_dir()
    if folder is None:
        return None
    h = hashlib.sha256(Path(__file__).read_bytes())
    h.update(repr((matplotlib.__version__, ft2font.__freetype_version__)).encode())
    return folder / f"text-{h.hexdigest()}.pickle"


def _font_files(text_keys, glyph_keys) -> dict:
    """{font file: (size, mtime_ns)} of the fonts named in metric and layout keys (their third
    item: the font files) and in glyph keys (their first: the font file)."""
    files = {key[0] for key in glyph_keys}
    for key in text_keys:
        files.update(path for path, _ in key[2])
    out = {}
    for path in files:
        st = os.stat(path)
        out[path] = (st.st_size, st.st_mtime_ns)
    return out


def glyph(key):
    """The kept image of a glyph (``(buffer, left, top)``), or None."""
    image = glyphs.get(key)
    if image is None and key in _stored:
        blob, at, rows, cols, left, top = _stored.pop(key)
        image = glyphs[key] = (np.frombuffer(blob, dtype=np.uint8, count=rows * cols, offset=at).reshape(rows, cols),
                               left, top)
    return image


def added() -> None:
    """Note that a job computed something new (to be written back by :func:`write`)."""
    _state["new"] += 1


def _stat(path: Path):
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def read() -> None:
    """Merge the cache file into this process's caches, if it changed since it was last read."""
    try:
        path = _cache_file()
        if path is None:
            return
        stat = _stat(path)
        if stat is None or stat == _state["file"]:
            return
        with open(path, "rb") as f:
            data = pickle.load(f)
        fonts = data["fonts"]
        for font, st in fonts.items():
            if _stat(Path(font)) != st:
                return
        for key, value in data["metrics"].items():
            metrics.setdefault(key, value)
        for key, value in data["layouts"].items():
            layouts.setdefault(key, value)
        blob, keys, shapes, offsets, places = data["glyphs"]
        blob = bytearray(blob)  # Agg draws from writeable arrays only
        for key, (rows, cols), at, (left, top) in zip(keys, shapes.tolist(), offsets.tolist(), places.tolist()):
            if key not in glyphs:
                _stored[key] = (blob, at, rows, cols, left, top)
        _state["file"] = stat
    except Exception as exc:  # noqa: BLE001 - a damaged or foreign file: drawn as without it
        log.warning("text cache not read: %s", exc)


def write() -> None:
    """Write this process's caches (merged with the file as it is now) when the job added to them."""
    if not _state["new"]:
        return
    try:
        path = _cache_file()
        if path is None:
            return
        read()  # what other jobs wrote meanwhile
        from cami_geo.cachedir import store

        keep_metrics = dict(list(metrics.items())[:MAX_ENTRIES])
        keep_layouts = dict(list(layouts.items())[:MAX_ENTRIES])
        for key in list(_stored)[:MAX_ENTRIES]:
            glyph(key)
        kept = list(glyphs.items())[:MAX_ENTRIES]
        images = [np.ascontiguousarray(image[0], dtype=np.uint8) for _, image in kept]
        shapes = np.array([im.shape for im in images], dtype=np.int64).reshape(-1, 2)
        sizes = shapes[:, 0] * shapes[:, 1]
        offsets = np.r_[0, np.cumsum(sizes)[:-1]].astype(np.int64) if len(sizes) else np.zeros(0, dtype=np.int64)
        places = np.array([(image[1], image[2]) for _, image in kept], dtype=np.int64).reshape(-1, 2)
        blob = b"".join(im.tobytes() for im in images)
        data = {"fonts": _font_files(list(keep_metrics) + list(keep_layouts), [k for k, _ in kept]),
                "metrics": keep_metrics, "layouts": keep_layouts,
                "glyphs": (blob, [k for k, _ in kept], shapes, offsets, places)}
        store(path, pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL))
        _state["file"] = _stat(path)
        _state["new"] = 0
    except Exception as exc:  # noqa: BLE001
        log.warning("text cache not written: %s", exc)
