"""The configuration is validated at start; errors are one sentence."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cami_geo.config import load
from cami_geo.errors import ConfigError


def test_shipped_config_is_valid(repo, tmp_path):
    cfg = load(repo, tmp_path, {})
    assert cfg["cycle"] >= 2026


@pytest.mark.parametrize("override, message", [
    ({"bogus": 1}, "Unknown configuration key 'bogus'"),
    ({"checks": {"border_tolerance": 5}}, "Unknown configuration key 'checks.border_tolerance'"),
    ({"cycle": "twenty"}, "Invalid configuration value at cycle"),
    ({"checks": {"severity": {"country_mismatch": "fatal"}}}, "checks.severity.country_mismatch"),
    ({"registry": {"species": [{"scientific_name": "Capra sibirica", "default_sensitivity": "2deg"}]}},
     "registry.species.0.default_sensitivity"),
])
def test_bad_config_is_one_sentence(repo, tmp_path, override, message):
    with pytest.raises(ConfigError) as exc:
        load(repo, tmp_path, override)
    text = str(exc.value)
    assert message in text
    assert "\n" not in text


def test_workdir_config_overrides_defaults(repo, tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text("cycle: 2029\nspecies: [Saiga tatarica]\n")
    cfg = load(repo, tmp_path, {})
    assert cfg["cycle"] == 2029 and cfg["species"] == ["Saiga tatarica"]
    assert cfg["checks"]["capital_km"] == 10  # defaults kept


def test_snakemake_stops_with_one_sentence_on_unknown_key(repo, tmp_path):
    snakemake = [sys.executable, "-m", "snakemake"]
    proc = subprocess.run([*snakemake, "-s", str(repo / "Snakefile"), "-d", str(tmp_path), "-n",
                           "--config", "bogus_key=1"], capture_output=True, text=True)
    assert proc.returncode != 0
    err = proc.stderr + proc.stdout
    assert "Unknown configuration key 'bogus_key'" in err
    assert "Traceback" not in err


def test_schema_rejects_unknown_species_name(repo, tmp_path):
    from cami_geo.workflow import load_config, plan

    cfg = load_config(repo, tmp_path, {"species": ["Saiga tatrica"]})
    with pytest.raises(ConfigError, match="did you mean Saiga tatarica"):
        plan(cfg, repo, tmp_path)


def test_a_stage_gets_only_its_sections_and_cannot_read_others(repo, tmp_path):
    """A rule's ``settings`` param (workflow.stage_settings): its sections as a plain dict for
    Snakemake's params comparison, the same after pickling (jobs reach the stage worker
    pickled), and reading a section the rule does not pass is an error naming both."""
    import pickle

    from cami_geo.config import UndeclaredSetting
    from cami_geo.workflow import STAGE_SETTINGS, stage_settings

    cfg = load(repo, tmp_path, {})
    maps = stage_settings(cfg, "map_species")
    assert set(maps) == set(STAGE_SETTINGS["map_species"]) & set(cfg)
    assert maps["maps"] == cfg["maps"] and maps.get("cycle") == cfg["cycle"]
    assert repr(maps) == repr(dict(maps))
    again = pickle.loads(pickle.dumps(maps))
    assert again == maps and again.sections == maps.sections
    for reader in (lambda s: s["status"], lambda s: s.get("status"), lambda s: "status" in s):
        with pytest.raises(UndeclaredSetting, match="'map_species'.*'status'"):
            reader(again)
    # every rule's stage is listed
    from cami_geo.workflow import STAGES
    assert set(STAGE_SETTINGS) == set(STAGES)
