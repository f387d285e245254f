# Technical documents: species status reports, Range State profiles, the pre-filled status
# form and the annual article draft, as HTML, DOCX and PDF.
#
# Each rule declares the digest of the public partition its map was drawn from, which it does
# not read: so that the job is a direct dependent of the `public` checkpoint. When a
# checkpoint ends, Snakemake re-evaluates its direct dependents only, and a document marked to
# run while its map was still pending (because `status_tables` ended first) would otherwise
# run anyway (tests/test_pipeline.py).


rule report_species:
    message:
        "Writing the documents of {wildcards.species}"
    input:
        by_country=f"{P}/slices/species/{{species}}/by_country.csv",
        by_species=f"{P}/slices/species/{{species}}/by_species.csv",
        threats=f"{P}/slices/species/{{species}}/threats.csv",
        actions=f"{P}/slices/species/{{species}}/actions.csv",
        population=f"{P}/slices/species/{{species}}/population.csv",
        submissions=f"{P}/slices/species/{{species}}/submissions.csv",
        map_png="maps/species/{species}.png",
        map_html="maps/species/{species}.html",
        # not read (see the top of this file)
        public_digest=f"{P}/public/species/{{species}}.gpkg.sha256",
    output:
        html=report(
            "reports/species/{species}.html",
            caption="../report/report_species.rst",
            category="Reports",
            subcategory="Species",
        ),
        docx="reports/species/{species}.docx",
        pdf="reports/species/{species}.pdf",
        form="reports/forms/{species}_status_form.docx",
        article_html="reports/articles/{species}.html",
        article_md="reports/articles/{species}.md",
    params:
        version=VERSION,
        settings=cw.stage_settings(config, "report_species"),
    priority: larger_first(f"{P}/public/species/{{species}}.gpkg")
    log:
        "logs/reports/species_{species}.log",
    conda:
        "../../environment.yml"
    run:
        shell(job_command(rule, input, output, params, log, threads, conda_env))


rule report_country:
    message:
        "Writing the profile of Range State {wildcards.iso3}"
    input:
        by_country=f"{P}/slices/country/{{iso3}}/by_country.csv",
        by_species=f"{P}/slices/country/{{iso3}}/by_species.csv",
        threats=f"{P}/slices/country/{{iso3}}/threats.csv",
        actions=f"{P}/slices/country/{{iso3}}/actions.csv",
        population=f"{P}/slices/country/{{iso3}}/population.csv",
        submissions=f"{P}/slices/country/{{iso3}}/submissions.csv",
        map_png="maps/country/{iso3}.png",
        map_html="maps/country/{iso3}.html",
        # not read (see the top of this file)
        public_digest=f"{P}/public/country/{{iso3}}.gpkg.sha256",
    output:
        html=report(
            "reports/country/{iso3}.html",
            caption="../report/report_country.rst",
            category="Reports",
            subcategory="Range States",
        ),
        docx="reports/country/{iso3}.docx",
        pdf="reports/country/{iso3}.pdf",
    params:
        version=VERSION,
        settings=cw.stage_settings(config, "report_country"),
    priority: larger_first(f"{P}/public/country/{{iso3}}.gpkg")
    log:
        "logs/reports/country_{iso3}.log",
    conda:
        "../../environment.yml"
    run:
        shell(job_command(rule, input, output, params, log, threads, conda_env))
