"""One generic registry, with one instance per kind of plug-in (methods, metrics, attacks, tasks).

>>> methods = Registry("method")
>>> @methods.register("ga")
... def ga(): ...
>>> methods.get("ga") is ga
True
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from obliviate.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names (and aliases) to objects; unknown names raise with a 'did you mean' hint."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._frozen = False

    def register(self, name: str, *aliases: str) -> Callable[[T], T]:
        """Decorator registering an object under `name` and any aliases; a reused name raises."""

        def decorate(obj: T) -> T:
            for key in (name, *aliases):
                if self._frozen:
                    raise RuntimeError(f"{self.kind} registry is frozen; cannot add {key!r}")
                if key in self._items and self._items[key] is not obj:
                    raise ValueError(f"{self.kind} name {key!r} is already registered to {self._items[key]!r}")
                self._items[key] = obj
            return obj

        return decorate

    def get(self, name: str) -> T:
        if name in self._items:
            return self._items[name]
        close = difflib.get_close_matches(name, self._items, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UnknownNameError(f"unknown {self.kind} {name!r}.{hint} Available: {', '.join(self.names())}")

    def name_of(self, obj: T) -> str:
        """The primary (first registered) name of a registered object."""
        for key, value in self._items.items():
            if value is obj:
                return key
        raise UnknownNameError(f"{obj!r} is not a registered {self.kind}")

    def names(self) -> list[str]:
        """Primary names and aliases, sorted."""
        return sorted(self._items)

    def items(self) -> Iterator[tuple[str, T]]:
        """(name, object) pairs without duplicates from aliases, in sorted order."""
        seen: set[int] = set()
        for key in self.names():
            obj = self._items[key]
            if id(obj) not in seen:
                seen.add(id(obj))
                yield key, obj

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def freeze(self) -> None:
        self._frozen = True

    def _clear(self) -> None:
        """Tests only."""
        self._items.clear()
        self._frozen = False
