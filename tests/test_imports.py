"""Every module of the package imports (catches syntax errors in code no other test reaches)."""

import importlib
import pkgutil

import pytest

import lossbench

MODULES = [m.name for m in pkgutil.walk_packages(lossbench.__path__, "lossbench.")]


@pytest.mark.parametrize("name", MODULES)
def test_module_imports(name):
    importlib.import_module(name)
