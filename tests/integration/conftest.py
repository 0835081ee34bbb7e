"""Shared fixtures for the real-model tests: SmolLM2, the people task and its taught / reference models.

Everything is built once per session and cached on disk (~/.cache/obliviate), so only the first CI run on a
machine pays for teaching. Tests must deep-copy a model (`copy_model`) before changing it.
"""

from pathlib import Path

import pytest

from obliviate.models import load_model
from obliviate.pipeline import load_task
from obliviate.teach import taught_model

PEOPLE = "builtin:people:small:forget10"


HERE = Path(__file__).parent


def pytest_collection_modifyitems(items):
    for item in items:  # the hook sees every test of the session: mark only this folder's, which use the real model
        if HERE in Path(item.fspath).parents:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def base():
    return load_model("default")


@pytest.fixture(scope="session")
def people(base):
    return load_task(PEOPLE, base)


@pytest.fixture(scope="session")
def taught(people):
    return taught_model(people, progress=False)


@pytest.fixture(scope="session")
def reference(people):
    return taught_model(people, exclude_forget=True, progress=False)
