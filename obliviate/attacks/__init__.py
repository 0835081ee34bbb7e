"""Attacks that try to bring forgotten knowledge back. Importing this package registers every attack file."""

import importlib
import pkgutil

from obliviate.attacks.base import ATTACKS, Attack, AttackContext, AttackResult, Budget, Outcome, find_targets

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base" and not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["ATTACKS", "Attack", "AttackContext", "AttackResult", "Budget", "Outcome", "find_targets"]
