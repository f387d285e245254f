#!/usr/bin/env bash
# Prove the pipeline on a real scheduler: start a single-node SLURM cluster on localhost,
# run the pipeline with --executor slurm on a copy of the demo tree, run it locally on
# another copy, and check that the outputs are the same. Needs root (apt, daemons).
#   scripts/slurm_check.sh [SPECIES...]    (default: saiga_tatarica panthera_uncia)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
make setup >/dev/null
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-cluster.lock
scripts/slurm_cluster.sh start >/dev/null
trap 'scripts/slurm_cluster.sh stop' EXIT

SPECIES=${*:-saiga_tatarica panthera_uncia}
WORK=$(mktemp -d /tmp/cami-slurm-check.XXXXXX)
for run in local slurm; do
  mkdir -p "$WORK/$run/data/raw" "$WORK/$run/config"
  cp -r data/raw/submissions "$WORK/$run/data/raw/"
  [ -d data/raw/previous_cycle ] && cp -r data/raw/previous_cycle "$WORK/$run/data/raw/"
  echo "species: [$(echo $SPECIES | sed 's/ /, /g')]" > "$WORK/$run/config/config.yaml"
done

start=$(date +%s)
.venv/bin/snakemake -s "$REPO/Snakefile" -d "$WORK/local" --cores 2 --quiet
t_local=$(( $(date +%s) - start ))

start=$(date +%s)
.venv/bin/snakemake -s "$REPO/Snakefile" -d "$WORK/slurm" --workflow-profile "$REPO/workflow/profiles/slurm" \
  --jobs 4 --quiet
t_slurm=$(( $(date +%s) - start ))

echo "local run: ${t_local}s; SLURM run: ${t_slurm}s; jobs in sacct: $(sacct -n -X | wc -l)"
.venv/bin/python scripts/compare_outputs.py "$WORK/local" "$WORK/slurm"
rm -rf "$WORK"
