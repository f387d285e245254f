"""Pinned front-end assets, inlined into every interactive map so that it works offline.

The assets come from the npm packages pinned in ``package.json`` / ``package-lock.json``
and installed (integrity-checked) by ``npm ci`` (``make setup``); nothing third-party is
committed. They are found in the folder named by the environment variable
``CAMI_GEO_NODE_MODULES`` or else in ``node_modules/`` beside the ``cami_geo`` package.

Leaflet's CSS refers to a few images (layer-control icon, default marker): they become
``data:`` URIs, so the page makes no request at all.
"""

from __future__ import annotations

import base64
import os
import re
from functools import lru_cache
from pathlib import Path

import cami_geo
from cami_geo.errors import CamiGeoError

LEAFLET_VERSION = "1.9.3"
"""The Leaflet version folium 0.20 is written for (and the one pinned in package.json)."""


class AssetError(CamiGeoError):
    """A pinned front-end asset is missing."""


def node_modules_dir() -> Path:
    """The folder holding the pinned npm packages (``CAMI_GEO_NODE_MODULES`` or the repository's)."""
    env = os.environ.get("CAMI_GEO_NODE_MODULES")
    return Path(env) if env else Path(cami_geo.__file__).resolve().parents[1] / "node_modules"


def _read(relative: str) -> bytes:
    path = node_modules_dir() / relative
    if not path.is_file():
        raise AssetError(f"The map asset {path} is missing; run `make setup` (npm ci) to install the pinned npm packages.")
    return path.read_bytes()


def _check_version(package: str, expected: str) -> None:
    import json

    meta = json.loads(_read(f"{package}/package.json"))
    if meta.get("version") != expected:
        raise AssetError(f"node_modules/{package} is version {meta.get('version')}, not the pinned {expected}; "
                         "run `make setup` (npm ci).")


def _data_uri(relative: str, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(_read(relative)).decode("ascii")


def leaflet_css() -> str:
    """Leaflet's CSS with its images inlined as data URIs."""
    css = _read("leaflet/dist/leaflet.css").decode("utf-8")

    def repl(match: re.Match) -> str:
        name = match.group(1)
        return f"url({_data_uri('leaflet/dist/images/' + name, 'image/png')})"

    css = re.sub(r"url\(\s*['\"]?images/([A-Za-z0-9_.-]+\.png)['\"]?\s*\)", repl, css)
    if re.search(r"url\(\s*['\"]?(?!data:|#)", css):
        raise AssetError("leaflet.css refers to a file that is not inlined; run `make setup` (npm ci) again.")
    return css


def _script_safe(text: str) -> str:
    """A script or style body that cannot close its element early."""
    return re.sub(r"</(script|style)", r"<\\/\1", text, flags=re.IGNORECASE)


@lru_cache(maxsize=None)
def _head_for(root: str) -> str:
    _check_version("leaflet", LEAFLET_VERSION)
    js = _read("leaflet/dist/leaflet.js").decode("utf-8")
    # The source-map comment would make developer tools ask for a file; drop it.
    js = re.sub(r"//# sourceMappingURL=\S+\s*$", "", js.rstrip())
    return (f"<style>/* leaflet@{LEAFLET_VERSION} leaflet.css (inlined, images as data URIs) */\n"
            f"{_script_safe(leaflet_css())}\n</style>\n"
            f"<script>/* leaflet@{LEAFLET_VERSION} leaflet.js (inlined) */\n{_script_safe(js)}\n</script>\n")


def inline_head() -> str:
    """The ``<style>`` and ``<script>`` elements that replace folium's CDN links."""
    return _head_for(str(node_modules_dir()))
