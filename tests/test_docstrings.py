"""Every example in stemlab's docstrings runs and prints what it shows."""

import doctest
import importlib
import pkgutil

import pytest

import stemlab

MODULES = sorted(name for _, name, _ in pkgutil.walk_packages(stemlab.__path__, "stemlab.")
                 if not name.endswith("__main__"))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0
