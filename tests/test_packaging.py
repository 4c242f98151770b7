"""environment.yml and pyproject.toml list the same runtime dependencies."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# conda-forge names that differ from PyPI's
CONDA_TO_PYPI = {"pysoundfile": "soundfile"}


def _name_and_spec(requirement: str) -> tuple[str, str]:
    match = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", requirement)
    name, spec = match.group(1).lower().replace("_", "-"), match.group(2).replace(" ", "")
    return CONDA_TO_PYPI.get(name, name), spec


def _environment_dependencies() -> dict[str, str]:
    """Every ``- name spec`` item of environment.yml (conda and pip sections), minus python, pip, -e."""
    deps = {}
    text = (ROOT / "environment.yml").read_text()
    for line in text[text.index("dependencies:"):].splitlines():
        item = re.match(r"^\s*-\s+([^:#]+?)\s*$", line)
        if not item or item.group(1) == "pip" or item.group(1).startswith(("-e", "python")):
            continue
        name, spec = _name_and_spec(item.group(1))
        deps[name] = spec
    return deps


def test_environment_yml_matches_pyproject():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    expected = dict(_name_and_spec(r) for r in pyproject["project"]["dependencies"])
    assert _environment_dependencies() == expected


def test_python_floor_is_the_same():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    conda = re.search(r"^\s*-\s+python\s*(\S+)\s*$", (ROOT / "environment.yml").read_text(), re.M)
    assert conda is not None, "environment.yml names no python"
    assert conda.group(1) == pyproject["project"]["requires-python"]
