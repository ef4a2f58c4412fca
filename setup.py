"""Only what pyproject.toml cannot say: the wheel carries a copy of resources/ inside the package.

In a source checkout (and an editable install) workbench/resources.py finds ../resources next
to the package; a wheel has no such folder, so the build copies it to workbench/resources/
(the second place resources.py looks). The source tree itself is never changed.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

RESOURCES = Path(__file__).resolve().parent / "resources"
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")


class BuildWithResources(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False) or not RESOURCES.is_dir():
            return  # an editable install reads ../resources in place
        target = Path(self.build_lib) / "workbench" / "resources"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(RESOURCES, target, ignore=SKIP)


setup(cmdclass={"build_py": BuildWithResources})
