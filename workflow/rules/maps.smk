# Interactive (folium, offline, embeddable) and static (matplotlib) maps, built only from
# the public copy of the data. A map job depends on its partition's digest (written by
# combine) and reads the partition named in params.read, as combine does with the intakes'
# outputs (docs/architecture.md, "Incremental runs").


rule map_species:
    message:
        "Drawing the maps of {wildcards.species}"
    input:
        public_digest=f"{P}/public/species/{{species}}.gpkg.sha256",
        by_country=f"{P}/slices/species/{{species}}/by_country.csv",
        by_species=f"{P}/slices/species/{{species}}/by_species.csv",
        boundaries=PLAN.boundaries,
    output:
        html=report(
            "maps/species/{species}.html",
            caption="../report/map_species.rst",
            category="Maps",
            subcategory="Species",
        ),
        png="maps/species/{species}.png",
        svg="maps/species/{species}.svg",
        embed="maps/embed/species_{species}.html",
    params:
        version=VERSION,
        settings=cw.stage_settings(config, "map_species"),
        read=lambda wc: {"public": f"{P}/public/species/{wc.species}.gpkg"},
    priority: larger_first(f"{P}/public/species/{{species}}.gpkg")
    log:
        "logs/maps/species_{species}.log",
    conda:
        "../../environment.yml"
    run:
        shell(job_command(rule, input, output, params, log, threads, conda_env))


rule map_country:
    message:
        "Drawing the maps of Range State {wildcards.iso3}"
    input:
        public_digest=f"{P}/public/country/{{iso3}}.gpkg.sha256",
        by_country=f"{P}/slices/country/{{iso3}}/by_country.csv",
        boundaries=PLAN.boundaries,
    output:
        html=report(
            "maps/country/{iso3}.html",
            caption="../report/map_country.rst",
            category="Maps",
            subcategory="Range States",
        ),
        png="maps/country/{iso3}.png",
        svg="maps/country/{iso3}.svg",
        embed="maps/embed/country_{iso3}.html",
    params:
        version=VERSION,
        settings=cw.stage_settings(config, "map_country"),
        read=lambda wc: {"public": f"{P}/public/country/{wc.iso3}.gpkg"},
    priority: larger_first(f"{P}/public/country/{{iso3}}.gpkg")
    log:
        "logs/maps/country_{iso3}.log",
    conda:
        "../../environment.yml"
    run:
        shell(job_command(rule, input, output, params, log, threads, conda_env))


rule map_overview:
    message:
        "Drawing the overview map"
    input:
        by_country=f"{P}/status_by_country.csv",
        by_species=f"{P}/status_by_species.csv",
        boundaries=PLAN.boundaries,
    output:
        html=report("maps/overview.html", caption="../report/map_overview.rst", category="Maps"),
        png="maps/overview.png",
        embed="maps/embed/overview.html",
    params:
        version=VERSION,
        settings=cw.stage_settings(config, "map_overview"),
    log:
        "logs/maps/overview.log",
    conda:
        "../../environment.yml"
    run:
        shell(job_command(rule, input, output, params, log, threads, conda_env))
