"""Configuration: defaults from the repository's config/config.yaml, overridden by a
working directory's own config/config.yaml and by ``--config``/``--configfile``; the result
is checked against ``workflow/schemas/config.schema.yaml``.

An invalid configuration raises :class:`ConfigError` with one sentence naming the key and
what was expected.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .errors import ConfigError

SCHEMA_RELPATH = Path("workflow") / "schemas" / "config.schema.yaml"
CONFIG_RELPATH = Path("config") / "config.yaml"


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Return ``base`` updated recursively by ``over`` (neither is modified)."""
    out = copy.deepcopy(base)
    for key, value in (over or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}".replace("\n", " ")) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of keys to values, not {type(data).__name__}.")
    return data


def validate(config: dict[str, Any], schema_path: Path) -> None:
    """Check ``config`` against the JSON Schema; raise ConfigError with one clear sentence."""
    schema = read_yaml(schema_path)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if not errors:
        return
    err = errors[0]
    where = ".".join(str(p) for p in err.absolute_path) or "the top level"
    if err.validator == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        extra = sorted(set(err.instance) - set(allowed))
        raise ConfigError(
            f"Unknown configuration key {'.'.join([*map(str, err.absolute_path), extra[0]])!r}"
            f"; allowed keys at {where} are: {', '.join(allowed)}.")
    raise ConfigError(f"Invalid configuration value at {where}: {err.message}.")


def load(repo_dir: Path, workdir: Path, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Defaults from ``repo_dir``, then ``workdir``'s own config file, then ``overrides``."""
    repo_dir, workdir = Path(repo_dir), Path(workdir)
    config = read_yaml(repo_dir / CONFIG_RELPATH)
    local = workdir / CONFIG_RELPATH
    if local.exists() and local.resolve() != (repo_dir / CONFIG_RELPATH).resolve():
        config = deep_merge(config, read_yaml(local))
    config = deep_merge(config, overrides or {})
    validate(config, repo_dir / SCHEMA_RELPATH)
    return config


class UndeclaredSetting(LookupError):
    """A stage read a configuration section that its rule does not pass to it."""


class StageSettings(dict):
    """The sections of the configuration that one stage reads (``cami_geo.workflow.STAGE_SETTINGS``),
    given to its rule as the ``settings`` param.

    Snakemake re-runs a job when its params change, so a rule that passed the whole
    configuration would re-run from intake on after any edit (a map disclaimer, even
    ``stage_worker``). A stage reading a section it was not given gets
    :class:`UndeclaredSetting` naming the stage and the section, never a silent default.
    It compares and prints as the plain dict of its sections (Snakemake keeps params by their
    ``repr``).
    """

    def __init__(self, stage: str, sections: Iterable[str], config: dict[str, Any]):
        self.stage = stage
        self.sections = tuple(sections)
        super().__init__({k: config[k] for k in self.sections if k in config})

    def _check(self, key: Any) -> None:
        if key not in self.sections:
            raise UndeclaredSetting(
                f"stage {self.stage!r} reads the configuration section {key!r}, which its rule does "
                f"not pass (add it to cami_geo.workflow.STAGE_SETTINGS[{self.stage!r}])")

    def __getitem__(self, key: Any) -> Any:
        self._check(key)
        return super().__getitem__(key)

    def get(self, key: Any, default: Any = None) -> Any:
        self._check(key)
        return super().get(key, default)

    def __contains__(self, key: Any) -> bool:
        self._check(key)
        return super().__contains__(key)

    def __reduce__(self):
        return (StageSettings, (self.stage, self.sections, dict(self)))
