"""Fixtures shared by the unit-test modules."""

import pytest
import torch

from obliviate.data.people import people_task
from obliviate.models import tiny_model


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run ~100x faster on one thread than on two contended ones (use with `usefixtures`)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def task():
    """The smallest people task (a module that needs another one defines its own `task`)."""
    return people_task("test")


@pytest.fixture(scope="module")
def lm():
    """A fresh tiny model per module (modules that need another model define their own `lm`)."""
    return tiny_model()
