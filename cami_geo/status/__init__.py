"""Status engine: criterion-B measures, population, range, threats, rasters and action needs.

- :mod:`.criterion_b` EOO, AOO, locations, subpopulations, preliminary category (``iucn``
  and ``conr`` methods), ``assess_table`` and the ``cami-geo assess`` command;
- :mod:`.population` national figures, sums of subpopulations, conflicts, trends;
- :mod:`.ranges` range geometry and geodesic areas per Range State;
- :mod:`.threats` threats within the range by IUCN code, barriers, buffer shares, locations
  from threat features;
- :mod:`.rasters` raster summaries over the range;
- :mod:`.actions` rule-based action needs;
- :mod:`.layers` GIS layers per species: GeoPackage (range, AOO cells, summary by country),
  AOO occupancy and threat density Cloud-Optimized GeoTIFFs (restricted outputs);
- :mod:`.pipeline` the ``status_species`` and ``status_tables`` stages.

Every output column is described in ``docs/data-dictionary.md``.
"""
