"""The one data model a record keeps from reader to report.

Readers normalise every input into frames with these columns; checks only add flags or
move rows to the problems list; status only computes from the clean frames; renderers only
render. Coordinates are WGS84 (EPSG:4326) longitude/latitude in decimal degrees.

Every record carries its provenance: ``submission`` (folder name), ``source_file`` (path
relative to the submission folder), ``source_row`` (as a person sees it: the header is row
1 of a table, the first data row row 2; the feature's position from 1 in a vector file),
``cycle`` (reporting cycle year), ``sensitivity`` and ``synthetic`` (demo data).
"""

from __future__ import annotations

CRS_WGS84 = "EPSG:4326"

PROVENANCE = ["record_id", "submission", "source_file", "source_row", "cycle", "contributor",
              "licence", "synthetic", "flags"]

OCCURRENCE_COLUMNS = PROVENANCE + [
    "species", "species_slug", "verbatim_species", "iso3",
    "decimal_latitude", "decimal_longitude", "coordinate_uncertainty_m",
    "event_date", "year", "individual_count", "basis_of_record", "occurrence_id",
    "occurrence_status", "establishment_means", "locality", "recorded_by",
    "sensitivity", "data_generalizations", "information_withheld",
]
"""Occurrence records (points). ``occurrence_status`` is 'present' or 'absent';
``coordinate_uncertainty_m`` in metres; ``event_date`` ISO 8601 text; ``flags`` the
';'-joined warning codes the checks raised."""

THREAT_COLUMNS = PROVENANCE + [
    "species", "species_slug", "iso3", "iucn_code", "iucn_name", "threat_type", "name",
    "event_date", "year", "severity", "barrier_class", "attributes",
]
"""Threat features (points, lines, polygons). ``iucn_code`` from the IUCN Threats
Classification Scheme 3.3; ``barrier_class`` one of BARRIER_CLASSES or empty;
``attributes`` a JSON object of infrastructure attributes as submitted."""

POPULATION_COLUMNS = PROVENANCE + [
    "species", "species_slug", "iso3", "year", "estimate_min", "estimate_best",
    "estimate_max", "unit", "method", "source", "scope", "trend", "notes",
]
"""Population estimates. ``scope`` is 'national', 'subnational:<area>' or
'subpopulation:<name>'; ``unit`` 'individuals' or 'mature individuals'."""

RANGE_COLUMNS = PROVENANCE + [
    "species", "species_slug", "iso3", "presence", "origin", "seasonal", "name",
]
"""Range polygons with IUCN mapping codes: presence 1-6, origin 1-6, seasonal 1-5."""

PROBLEM_COLUMNS = ["submission", "file", "row", "field", "reason", "severity", "value"]
"""One problem found in an input: ``severity`` 'error' (the row is rejected) or
'warning' (kept, flagged). ``row`` follows the numbering of PROVENANCE."""

KINDS = ("occurrences", "threats", "population", "range", "raster")

COLUMNS = {
    "occurrences": OCCURRENCE_COLUMNS,
    "threats": THREAT_COLUMNS,
    "population": POPULATION_COLUMNS,
    "range": RANGE_COLUMNS,
}

BARRIER_CLASSES = ("not a barrier", "partial barrier", "complete barrier", "unknown")
PRESENCE_CODES = {1: "extant", 2: "probably extant", 3: "possibly extant", 4: "possibly extinct",
                  5: "extinct", 6: "presence uncertain"}
ORIGIN_CODES = {1: "native", 2: "reintroduced", 3: "introduced", 4: "vagrant",
                5: "origin uncertain", 6: "assisted colonisation"}
SEASONAL_CODES = {1: "resident", 2: "breeding season", 3: "non-breeding season", 4: "passage",
                  5: "seasonal occurrence uncertain"}


LAYERS = ("occurrences", "threats", "range")
"""Layers of the clean data (GeoPackage layers, GeoParquet files), in the order they are written."""
