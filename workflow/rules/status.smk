# Status per species (criterion-B measures, population, threats, rasters, gaps), then the
# tables across species.


# One job per species: its status files, then its GIS layers (restricted: they show
# locations to 2 km), in one process that reads the species' clean data once.
rule status_species:
    message:
        "Computing the status of {wildcards.species}"
    input:
        clean_digests=expand(f"{P}/restricted/species/{{{{species}}}}/{{layer}}.parquet.sha256", layer=LAYERS),
        population=f"{P}/population.csv",
        rasters=f"{P}/rasters/index.csv",
        boundaries=PLAN.boundaries,
    output:
        by_country=f"{P}/status/{{species}}/by_country.csv",
        species=f"{P}/status/{{species}}/species.csv",
        threats=f"{P}/status/{{species}}/threats.csv",
        gpkg=f"{P}/restricted/layers/{{species}}.gpkg",
        aoo_grid=f"{P}/restricted/layers/{{species}}_aoo.tif",
        threat_density=f"{P}/restricted/layers/{{species}}_threat_density.tif",
    params:
        version=VERSION,
        settings=cw.stage_settings(config, "status_species"),
        read=lambda wc: {"clean": [f"{P}/restricted/species/{wc.species}/{layer}.parquet" for layer in LAYERS]},
    priority: larger_first(f"{P}/restricted/species/{{species}}/occurrences.parquet")
    log:
        "logs/status/{species}.log",
    conda:
        "../../environment.yml"
    run:
        shell(job_command(rule, input, output, params, log, threads, conda_env))


# A checkpoint, like combine: a species' or Range State's maps and documents read its own
# slice of the tables, and re-run only when that slice's content changed.
checkpoint status_tables:
    message:
        "Writing the status tables and their per-species and per-Range State slices"
    input:
        by_country=expand(f"{P}/status/{{sp}}/by_country.csv", sp=PLAN.species),
        species=expand(f"{P}/status/{{sp}}/species.csv", sp=PLAN.species),
        threats=expand(f"{P}/status/{{sp}}/threats.csv", sp=PLAN.species),
        previous=PLAN.previous_status,
        population=f"{P}/population.csv",
        submissions=f"{P}/submissions.csv",
    output:
        by_country=report(
            f"{P}/status_by_country.csv",
            caption="../report/status_by_country.rst",
            category="Status tables",
        ),
        by_species=report(
            f"{P}/status_by_species.csv",
            caption="../report/status_by_species.rst",
            category="Status tables",
        ),
        threats=f"{P}/threats_summary.csv",
        actions=f"{P}/action_needs.csv",
        slices=slice_paths(P, PLAN.species, PLAN.countries),
    params:
        version=VERSION,
        settings=cw.stage_settings(config, "status_tables"),
    log:
        "logs/status_tables.log",
    conda:
        "../../environment.yml"
    run:
        shell(job_command(rule, input, output, params, log, threads, conda_env))
