"""The public names of ``stemlab`` mean the same thing whatever a user touches first."""

import importlib
import pkgutil
import subprocess
import sys

import stemlab

# For each public name: a fresh `import stemlab` (its modules dropped from sys.modules), that name
# touched first, then every other name in order and in reverse, then each compared with the object
# its defining module holds. The reported bug: open_set (or compare on folders) first turned
# `stemlab.fetch` into the module stemlab/fetch.py.
_EVERY_ORDER = r"""
import importlib, sys
def fresh():
    for name in [m for m in sys.modules if m == "stemlab" or m.startswith("stemlab.")]:
        del sys.modules[name]
    return importlib.import_module("stemlab")
names = sorted(fresh()._EXPORTS)
wrong = []
for first in names:
    stemlab = fresh()
    getattr(stemlab, first)
    for name in names + names[::-1]:
        getattr(stemlab, name)
    importlib.import_module("stemlab.fetching"); importlib.import_module("stemlab.analysis.compare")
    for name in names:
        expected = getattr(importlib.import_module(stemlab._EXPORTS[name]), name)
        if getattr(stemlab, name) is not expected:
            wrong.append(f"{first} first: stemlab.{name} is {getattr(stemlab, name)!r}")
print("\n".join(wrong) or "ok")
"""


def test_every_public_name_keeps_its_meaning_whatever_is_touched_first():
    done = subprocess.run([sys.executable, "-c", _EVERY_ORDER], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok", done.stdout


def test_fetch_stays_a_function_after_open_set_and_compare_are_used(tmp_path):
    code = ("import stemlab; stemlab.open_set; stemlab.compare; import stemlab.fetching, stemlab.analysis.compare; "
            "print(callable(stemlab.fetch) and stemlab.fetch.__module__)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "stemlab.fetching", done.stderr


def test_no_submodule_is_named_like_a_public_name():
    """Importing ``stemlab.<x>`` sets the attribute ``x`` on the package: it must not be an export."""
    submodules = {info.name for info in pkgutil.iter_modules(stemlab.__path__)}
    assert submodules & set(stemlab._EXPORTS) == set()


def test_errors_and_metrics_are_top_level():
    from stemlab import errors
    from stemlab.analysis import metrics

    for name in errors.__all__:
        assert getattr(stemlab, name) is getattr(errors, name)
    assert issubclass(stemlab.SubmitUncertainError, stemlab.StemlabError)
    for name in ("si_sdr", "sdr", "sdr_improvement", "evaluate", "bss_eval"):
        assert getattr(stemlab, name) is getattr(metrics, name)
    assert "verify_webhook_signature" not in stemlab.__all__  # it belongs with Apiframe
    assert callable(importlib.import_module("stemlab.providers.apiframe").verify_webhook_signature)
