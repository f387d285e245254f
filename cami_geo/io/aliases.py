"""Column names: Darwin Core terms and the common aliases SFPs write, in English and Russian.

:func:`canonical_columns` maps a table's headers to the canonical names the readers use.
Headers compare after folding case and dropping spaces, underscores, dots and hyphens, so
``decimalLatitude``, ``Decimal latitude`` and ``decimal_latitude`` are one name.
"""

from __future__ import annotations

import re
import unicodedata

ALIASES: dict[str, tuple[str, ...]] = {
    # occurrences (and the shared ones)
    "species": ("scientificname", "species", "speciesname", "taxon", "taxonname", "acceptedscientificname",
                "verbatimscientificname", "latinname", "scientific", "name_species", "вид", "видживотного",
                "латинскоеназвание", "научноеназвание", "таксон"),
    "decimal_latitude": ("decimallatitude", "latitude", "lat", "latdd", "latitudedd", "latdec", "ycoord_wgs84",
                         "широта", "шир", "широтаdd"),
    "decimal_longitude": ("decimallongitude", "longitude", "lon", "long", "lng", "londd", "longitudedd", "londec",
                          "xcoord_wgs84", "долгота", "долг", "долготаdd"),
    "x": ("x", "easting", "xcoord", "coordx", "восток", "координатаx"),
    "y": ("y", "northing", "ycoord", "coordy", "север", "координатаy"),
    "crs": ("crs", "epsg", "srs", "geodeticdatum", "verbatimsrs", "verbatimcoordinatesystem", "системакоординат"),
    "event_date": ("eventdate", "date", "observationdate", "obsdate", "surveydate", "datetime",
                   "waypointdate", "дата", "датанаблюдения", "датаучета"),
    "year": ("year", "год"),
    "month": ("month", "месяц"),
    "day": ("day", "день"),
    "iso3": ("countrycode", "country", "iso3", "iso", "iso2", "countryiso", "страна", "кодстраны", "rangestate"),
    "coordinate_uncertainty_m": ("coordinateuncertaintyinmeters", "coordinateuncertainty", "uncertainty",
                                 "uncertaintym", "accuracy", "accuracym", "точность", "точностьм", "погрешность"),
    "individual_count": ("individualcount", "count", "number", "n", "individuals", "numberofindividuals",
                         "количество", "числоособей", "колво", "особей"),
    "basis_of_record": ("basisofrecord", "recordtype", "типзаписи"),
    "occurrence_id": ("occurrenceid", "recordid", "id", "gbifid", "key", "catalognumber"),
    "occurrence_status": ("occurrencestatus", "status", "presence_absence", "presenceabsence", "статус"),
    "establishment_means": ("establishmentmeans",),
    "locality": ("locality", "place", "site", "location", "местность", "место", "урочище"),
    "recorded_by": ("recordedby", "observer", "observers", "collector", "наблюдатель", "учетчик"),
    "data_generalizations": ("datageneralizations",),
    "information_withheld": ("informationwithheld",),
    # threats
    "iucn_code": ("iucncode", "threatcode", "iucnthreat", "iucn", "code", "threat", "threattype_iucn", "кодугрозы",
                  "угроза"),
    "threat_type": ("threattype", "type", "infrastructuretype", "category", "типугрозы"),
    "name": ("name", "featurename", "label", "название"),
    "severity": ("severity", "intensity", "impact", "серьезность"),
    "barrier_class": ("barrierclass", "barrier", "barriereffect", "барьер"),
    # population
    "estimate_best": ("estimatebest", "estimate", "best", "bestestimate", "population", "numberbest", "оценка",
                      "численность"),
    "estimate_min": ("estimatemin", "min", "minimum", "lower", "lowerestimate", "минимум"),
    "estimate_max": ("estimatemax", "max", "maximum", "upper", "upperestimate", "максимум"),
    "unit": ("unit", "units", "единица", "единицы"),
    "method": ("method", "methods", "метод"),
    "source": ("source", "reference", "citation", "источник"),
    "scope": ("scope", "level", "охват"),
    "trend": ("trend", "populationtrend", "тренд", "динамика"),
    "notes": ("notes", "note", "remarks", "comment", "comments", "occurrenceremarks", "примечание", "примечания"),
    # range
    "presence": ("presence", "presencecode"),
    "origin": ("origin", "origincode"),
    "seasonal": ("seasonal", "seasonality", "seasonalcode"),
    "sensitivity": ("sensitivity",),
    "coordinates": ("verbatimcoordinates", "coordinates", "coords", "latlon", "latlong", "координаты", "gps"),
    "wkt": ("wkt", "geometry", "geom", "thegeom", "shape", "footprintwkt"),
}

KIND_FIELDS = {
    "occurrences": ("species", "decimal_latitude", "decimal_longitude", "x", "y", "crs", "coordinates", "event_date", "year",
                    "month", "day", "iso3", "coordinate_uncertainty_m", "individual_count", "basis_of_record",
                    "occurrence_id", "occurrence_status", "establishment_means", "locality", "recorded_by",
                    "data_generalizations", "information_withheld", "notes"),
    "threats": ("species", "iucn_code", "threat_type", "name", "event_date", "year", "severity", "barrier_class",
                "iso3", "decimal_latitude", "decimal_longitude", "x", "y", "crs", "notes", "wkt"),
    "population": ("species", "iso3", "year", "estimate_min", "estimate_best", "estimate_max", "unit", "method",
                   "source", "scope", "trend", "notes"),
    "range": ("species", "iso3", "presence", "origin", "seasonal", "name", "notes", "wkt"),
}


def fold(header: str) -> str:
    """Header folded for comparison: NFKC, case-folded, without spaces, '_', '.', '-', '(', ')'."""
    text = unicodedata.normalize("NFKC", str(header)).casefold().replace("ё", "е")
    return re.sub(r"[\s_.\-()/°\[\]]+", "", text)


_INDEX = {}
for _canon, _names in ALIASES.items():
    for _rank, _n in enumerate(_names):
        _INDEX.setdefault(fold(_n), []).append((_canon, _rank))


def canonical_columns(columns, kind: str) -> dict[str, str]:
    """Map canonical field name -> the table's column holding it (best alias wins).

    Parameters
    ----------
    columns : the table's column names as written
    kind : 'occurrences', 'threats', 'population' or 'range'
    """
    wanted = set(KIND_FIELDS[kind])
    best: dict[str, tuple[int, str]] = {}
    for col in columns:
        for canon, rank in _INDEX.get(fold(col), []):
            if canon in wanted and (canon not in best or rank < best[canon][0]):
                best[canon] = (rank, col)
    return {canon: col for canon, (rank, col) in best.items()}
