# Ingest and validate each submission, then combine them into the clean data (a restricted
# precise copy and the generalised public copy), rejected.csv and per-species partitions.


rule intake:
    message:
        "Reading and checking submission {wildcards.submission}"
    input:
        files=lambda wc: PLAN.submission_files(wc.submission),
        boundaries=PLAN.boundaries,
    output:
        occurrences=f"{P}/submissions/{{submission}}/occurrences.parquet",
        threats=f"{P}/submissions/{{submission}}/threats.parquet",
        range=f"{P}/submissions/{{submission}}/range.parquet",
        population=f"{P}/submissions/{{submission}}/population.csv",
        problems=f"{P}/submissions/{{submission}}/problems.csv",
        rasters=f"{P}/submissions/{{submission}}/rasters.csv",
        summary=f"{P}/submissions/{{submission}}/validation.json",
        report=f"{P}/submissions/{{submission}}/validation.html",
    params:
        version=VERSION,
        submission_dir=lambda wc: PLAN.submission_dir(wc.submission),
        settings=config,
    log:
        "logs/intake/{submission}.log",
    benchmark:
        "logs/benchmarks/intake/{submission}.tsv"
    conda:
        "../../environment.yml"
    script:
        "../scripts/stage.py"


rule combine:
    message:
        "Combining submissions into the clean data and its public copy"
    input:
        occurrences=expand(f"{P}/submissions/{{s}}/occurrences.parquet", s=PLAN.submissions),
        threats=expand(f"{P}/submissions/{{s}}/threats.parquet", s=PLAN.submissions),
        range=expand(f"{P}/submissions/{{s}}/range.parquet", s=PLAN.submissions),
        population=expand(f"{P}/submissions/{{s}}/population.csv", s=PLAN.submissions),
        problems=expand(f"{P}/submissions/{{s}}/problems.csv", s=PLAN.submissions),
        rasters=expand(f"{P}/submissions/{{s}}/rasters.csv", s=PLAN.submissions),
        summaries=expand(f"{P}/submissions/{{s}}/validation.json", s=PLAN.submissions),
    output:
        restricted=f"{P}/restricted/clean.gpkg",
        restricted_species=expand(f"{P}/restricted/species/{{sp}}.gpkg", sp=PLAN.species),
        public=f"{P}/public/clean.gpkg",
        public_species=expand(f"{P}/public/species/{{sp}}.gpkg", sp=PLAN.species),
        population=f"{P}/population.csv",
        rejected=f"{P}/rejected.csv",
        problems=f"{P}/problems.csv",
        rasters=f"{P}/rasters/index.csv",
        submissions=f"{P}/submissions.csv",
    params:
        version=VERSION,
        species=PLAN.species,
        settings=config,
    log:
        "logs/combine.log",
    benchmark:
        "logs/benchmarks/combine.tsv"
    conda:
        "../../environment.yml"
    script:
        "../scripts/stage.py"
