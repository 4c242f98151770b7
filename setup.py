"""Ship the top-level ``notebooks/`` inside the package, as ``stemlab/notebooks/`` in the wheel.

Everything else is in pyproject.toml. The notebooks stay at the top of the repository, where
people look for them; ``stemlab notebooks DIR`` copies them out of an installed wheel (or, in an
editable install, out of the checkout).
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

NOTEBOOKS = Path(__file__).resolve().parent / "notebooks"


class build_py_with_notebooks(build_py):
    """``build_py``, then ``notebooks/*.ipynb`` copied into the built package."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):  # an editable install reads the checkout's notebooks
            return
        target = Path(self.build_lib, "stemlab", "notebooks")
        self.mkpath(str(target))
        for notebook in sorted(NOTEBOOKS.glob("*.ipynb")):
            self.copy_file(str(notebook), str(target / notebook.name))


setup(cmdclass={"build_py": build_py_with_notebooks})
