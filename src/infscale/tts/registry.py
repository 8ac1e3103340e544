"""A small registry: names -> objects, or lazy ``"module:attr"`` strings imported on first use.

Generators, rewards, strategies, tasks and score aggregations are looked up by name (no if-chains). Registering a name
twice is an error; an unknown name raises `InputError` listing the known ones.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

from infscale.errors import InputError

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> entry. Entries given as ``"package.module:attr"`` strings are imported lazily."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T | str] = {}

    def register(self, name: str, entry: T | str | None = None) -> Any:
        """``reg.register("x", obj)``, ``reg.register("x", "mod:attr")`` or ``@reg.register("x")``."""
        if entry is None:
            def deco(obj: T) -> T:
                self._add(name, obj)
                return obj
            return deco
        self._add(name, entry)
        return entry

    def _add(self, name: str, entry: T | str) -> None:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = entry

    def get(self, name: str) -> T:
        if name not in self._entries:
            raise InputError(f"unknown {self.kind} {name!r}; known: {', '.join(sorted(self._entries))}")
        entry = self._entries[name]
        if isinstance(entry, str):
            module, _, attr = entry.partition(":")
            entry = getattr(importlib.import_module(module), attr)
            self._entries[name] = entry
        return entry  # type: ignore[return-value]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
