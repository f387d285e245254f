"""environment.yml (conda users) and pyproject.toml (pip) must list the same dependencies."""

from __future__ import annotations

import re
import tomllib

import yaml

# conda-forge names that differ from PyPI names
CONDA_NAMES = {}
NOT_PYTHON = {"python", "nodejs"}


def _split(req: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", req)
    return m.group(1).lower().replace("_", "-"), m.group(2).replace(" ", "")


def test_environment_yml_matches_pyproject(repo):
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    pip_reqs = dict(_split(r) for r in project["dependencies"] + project["optional-dependencies"]["test"])
    env = yaml.safe_load((repo / "environment.yml").read_text())
    conda_reqs = dict(_split(d) for d in env["dependencies"] if isinstance(d, str))
    conda_reqs = {CONDA_NAMES.get(k, k): v for k, v in conda_reqs.items() if k not in NOT_PYTHON}
    assert set(conda_reqs) == set(pip_reqs), (
        f"only in environment.yml: {sorted(set(conda_reqs) - set(pip_reqs))}; "
        f"only in pyproject.toml: {sorted(set(pip_reqs) - set(conda_reqs))}")
    differing = {k: (pip_reqs[k], conda_reqs[k]) for k in pip_reqs if pip_reqs[k] != conda_reqs[k]}
    assert not differing, f"version constraints differ (pyproject, environment.yml): {differing}"


def test_lock_pins_every_dependency(repo):
    """requirements.lock pins (==) every direct dependency of pyproject.toml."""
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    wanted = {_split(r)[0] for r in project["dependencies"] + project["optional-dependencies"]["test"]}
    text = (repo / "requirements.lock").read_text()
    pinned = {m.group(1).lower().replace("_", "-"): m.group(2)
              for m in re.finditer(r"^([A-Za-z0-9_.\-]+)==(\S+)", text, re.M)}
    missing = sorted(wanted - set(pinned))
    assert not missing, f"not pinned in requirements.lock: {missing}"
    # every pin carries at least one sha256 hash (pip --require-hashes)
    blocks = re.split(r"^(?=[A-Za-z0-9_.\-]+==)", text, flags=re.M)[1:]
    assert len(blocks) == len(pinned)
    assert all("--hash=sha256:" in b for b in blocks)
