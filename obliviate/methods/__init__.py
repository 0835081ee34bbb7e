"""Unlearning methods. Importing this package registers every method file in it."""

import importlib
import pkgutil

from obliviate.methods.base import METHODS, Method, MethodConfig

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base" and not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["METHODS", "Method", "MethodConfig"]
