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
        digest=f"{P}/submissions/{{submission}}/outputs.sha256",
    params:
        version=VERSION,
        submission_dir=lambda wc: PLAN.submission_dir(wc.submission),
        settings=cw.stage_settings(config, "intake"),
    log:
        "logs/intake/{submission}.log",
    conda:
        "../../environment.yml"
    run:
        shell(job_command(rule, input, output, params, log, threads, conda_env))


# A checkpoint: once it has run, Snakemake looks at the DAG again, and a species' jobs re-run
# only if their partition's content changed (checksum; see docs/architecture.md,
# "Incremental runs"). It writes the restricted (precise) copy; `public` makes the public
# copy from it while the status jobs, which read only the restricted copy, run.
checkpoint combine:
    message:
        "Combining submissions into the clean data"
    # The intake outputs combine reads are named in `params.read`; its declared inputs are the
    # intakes' digests (sha256 of each of those files), which change exactly when they do.
    # Declaring the files themselves would make Snakemake hash all of them again for each of
    # combine's ~70 outputs when the job ends (docs/architecture.md, "Incremental runs").
    input:
        digests=expand(f"{P}/submissions/{{s}}/outputs.sha256", s=PLAN.submissions),
    output:
        restricted_occurrences=f"{P}/restricted/occurrences.parquet",
        restricted_threats=f"{P}/restricted/threats.parquet",
        restricted_range=f"{P}/restricted/range.parquet",
        restricted_species=expand(f"{P}/restricted/species/{{sp}}/{{layer}}.parquet", sp=PLAN.species,
                                  layer=LAYERS),
        # each file's digest (sha256sum format), on which the jobs that read it depend
        partition_digests=expand(f"{P}/restricted/{{layer}}.parquet.sha256", layer=LAYERS)
        + expand(f"{P}/restricted/species/{{sp}}/{{layer}}.parquet.sha256", sp=PLAN.species, layer=LAYERS),
        population=f"{P}/population.csv",
        rejected=f"{P}/rejected.csv",
        problems=f"{P}/problems.csv",
        rasters=f"{P}/rasters/index.csv",
        submissions=f"{P}/submissions.csv",
    params:
        version=VERSION,
        species=PLAN.species,
        settings=cw.stage_settings(config, "combine"),
        read={
            key: expand(f"{P}/submissions/{{s}}/{name}", s=PLAN.submissions)
            for key, name in (
                ("occurrences", "occurrences.parquet"),
                ("threats", "threats.parquet"),
                ("range", "range.parquet"),
                ("population", "population.csv"),
                ("problems", "problems.csv"),
                ("rasters", "rasters.csv"),
                ("summaries", "validation.json"),
            )
        },
    log:
        "logs/combine.log",
    threads: 4  # partition files written in parallel; Snakemake caps it at --cores
    conda:
        "../../environment.yml"
    run:
        shell(job_command(rule, input, output, params, log, threads, conda_env))


# The public copy (generalised): from the restricted copy and each submission's sensitivity
# level (validation.json, named in params.read; the intakes' digests stand for them). A
# checkpoint like combine: a species' or Range State's maps re-run only if its partition
# changed. One thread: the status jobs run on the other cores meanwhile.
checkpoint public:
    message:
        "Generalising the clean data into its public copy"
    input:
        restricted_digests=expand(f"{P}/restricted/{{layer}}.parquet.sha256", layer=LAYERS),
        intake_digests=expand(f"{P}/submissions/{{s}}/outputs.sha256", s=PLAN.submissions),
        boundaries=PLAN.boundaries,
    output:
        public_occurrences=f"{P}/public/occurrences.parquet",
        public_threats=f"{P}/public/threats.parquet",
        public_range=f"{P}/public/range.parquet",
        public_species=expand(f"{P}/public/species/{{sp}}.gpkg", sp=PLAN.species),
        public_country=expand(f"{P}/public/country/{{iso3}}.gpkg", iso3=PLAN.countries),
        partition_digests=expand(f"{P}/public/{{layer}}.parquet.sha256", layer=LAYERS)
        + expand(f"{P}/public/species/{{sp}}.gpkg.sha256", sp=PLAN.species)
        + expand(f"{P}/public/country/{{iso3}}.gpkg.sha256", iso3=PLAN.countries),
    params:
        version=VERSION,
        settings=cw.stage_settings(config, "public"),
        read={
            **{f"restricted_{layer}": f"{P}/restricted/{layer}.parquet" for layer in LAYERS},
            "summaries": expand(f"{P}/submissions/{{s}}/validation.json", s=PLAN.submissions),
        },
    # Before any status job (their priorities are partition sizes in MB): it is the longest
    # job and runs on one core beside them; started last, it would run alone at the end.
    priority: 1000
    log:
        "logs/public.log",
    conda:
        "../../environment.yml"
    run:
        shell(job_command(rule, input, output, params, log, threads, conda_env))
