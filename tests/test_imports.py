"""Every package imports on its own in a fresh interpreter: the registries import each other's modules, so an
import cycle only shows up when a user's first import is one particular module."""

import subprocess
import sys

import pytest

ENTRY_MODULES = ["obliviate.editing.metrics", "obliviate.metrics", "obliviate.methods", "obliviate.attacks",
                 "obliviate.train", "obliviate.cli", "obliviate.audit", "obliviate.pipeline", "obliviate.redteam",
                 "obliviate.bench", "obliviate.known"]


@pytest.mark.parametrize("module", ENTRY_MODULES)
def test_module_imports_first(module):
    done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
