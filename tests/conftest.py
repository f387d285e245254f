"""Shared fixtures: the repository root and a registry."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def registry():
    from cami_geo.registry import default_registry

    return default_registry()


@pytest.fixture(scope="session")
def boundaries_path() -> Path:
    return REPO / "data" / "raw" / "boundaries" / "countries.gpkg"
