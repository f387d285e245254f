"""cami-geo: geospatial status and mapping pipeline of the CMS Central Asian Mammals Initiative."""

__version__ = "0.1.0"
