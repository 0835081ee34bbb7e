"""Forget-card metrics. Importing this package registers every metric file in it."""

import importlib
import pkgutil

from obliviate.metrics.base import METRICS, EvalConfig, EvalContext, Metric

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base" and not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["METRICS", "EvalConfig", "EvalContext", "Metric"]
