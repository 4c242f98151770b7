"""environment.yml and pyproject.toml list the same runtime dependencies, and the wheel ships the notebooks."""

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

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


NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The wheel pip builds from a copy of the project (build/ and *.egg-info stay out of the tree)."""
    import shutil

    tree = tmp_path_factory.mktemp("project")
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
        shutil.copy2(ROOT / name, tree / name)
    for folder in ("stemlab", "notebooks"):
        shutil.copytree(ROOT / folder, tree / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tree / "dist"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(tree)],
                           capture_output=True, text=True, timeout=300)
    if built.returncode and "Could not find a version that satisfies" in built.stderr:
        pytest.skip("pip cannot reach the package index to build in isolation")
    assert built.returncode == 0, built.stderr
    (found,) = out.glob("stemlab-*.whl")
    return found


@pytest.mark.slow
def test_the_wheel_ships_the_notebooks(wheel):
    import zipfile

    assert len(NOTEBOOKS) == 4
    with zipfile.ZipFile(wheel) as zf:
        shipped = sorted(n.removeprefix("stemlab/notebooks/") for n in zf.namelist() if n.endswith(".ipynb"))
        assert shipped == NOTEBOOKS
        for name in NOTEBOOKS:
            assert zf.read(f"stemlab/notebooks/{name}") == (ROOT / "notebooks" / name).read_bytes()


@pytest.mark.slow
def test_stemlab_notebooks_copies_them_out_of_an_installed_wheel(wheel, tmp_path):
    """Unpacked as pip would install it (no checkout beside it to fall back on)."""
    import zipfile

    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = subprocess.run([sys.executable, "-c", "import stemlab; print(stemlab.__file__)"], capture_output=True,
                           text=True, env=env, cwd=tmp_path, timeout=60)
    assert where.stdout.strip() == str(site / "stemlab" / "__init__.py"), where.stderr
    done = subprocess.run([sys.executable, "-m", "stemlab", "notebooks", "out"], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == NOTEBOOKS
