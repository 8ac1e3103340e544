"""One registry for every lookup by name: laws, fitters, datasets, presets, hardware profiles, executors, latency
backends, downstream tasks, tts tasks, strategies, score aggregations, generators and rewards.

An entry is an object, a lazy ``"package.module:attr"`` string imported on first use, or a `Lazy` loader called once.
Registering a name twice is an error; an unknown name is an `InputError` listing the known ones.

Third parties add entries through one entry-point group, ``infscale.plugins``: each entry point names a callable
(``"mypkg.infscale_plugin:register"``) that is called once, before the first lookup of any registry, and registers what
it brings (``from infscale.laws.forms import LAWS; LAWS.register("mylaw", MyLaw)``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from infscale.errors import InputError
from infscale.renames import current_name

__all__ = ["Registry", "Lazy", "ENTRY_POINT_GROUP", "load_plugins"]

T = TypeVar("T")
ENTRY_POINT_GROUP = "infscale.plugins"
_plugins_loaded = False


@dataclass(frozen=True, slots=True)
class Lazy:
    """An entry built on first lookup (e.g. a profile read from a shipped file)."""

    load: Callable[[], Any]


def load_plugins() -> list[str]:
    """Call every ``infscale.plugins`` entry point once; returns their names. A plugin that fails is an error naming
    it (a half-registered plugin would make lookups depend on import order)."""
    global _plugins_loaded
    if _plugins_loaded:
        return []
    _plugins_loaded = True

    names = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()()
        except Exception as exc:
            raise InputError(f"plugin {ep.name!r} ({ep.value}): {type(exc).__name__}: {exc}") from None
        names.append(ep.name)
    return names


class Registry(Generic[T]):
    """Name -> entry, for one kind of thing (``kind`` names it in messages)."""

    def __init__(self, kind: str, *, normalize: Callable[[str], str] | None = None) -> None:
        self.kind = kind
        self._normalize = normalize or (lambda s: s)
        self._entries: dict[str, T | str | Lazy] = {}

    def register(self, name: str, entry: T | str | Lazy | None = None) -> Any:
        """``reg.register("x", obj)``, ``reg.register("x", "mod:attr")`` or ``@reg.register("x")``."""
        if entry is None:
            def deco(obj: T) -> T:
                self._add(name, obj)
                return obj
            return deco
        self._add(name, entry)
        return entry

    def _add(self, name: str, entry: T | str | Lazy) -> None:
        key = self._normalize(name)
        if key in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[key] = entry

    def unregister(self, name: str) -> None:
        """Remove ``name`` (a test's or a plugin's own entry); unknown names are an `InputError`."""
        self.get(name)
        del self._entries[self._normalize(name)]

    def get(self, name: str) -> T:
        """The entry for ``name``; an unknown name is an `InputError` listing the known ones."""
        load_plugins()
        key = self._key(name)
        if key not in self._entries:
            raise InputError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}")
        entry = self._entries[key]
        if isinstance(entry, Lazy):
            entry = entry.load()
            self._entries[key] = entry
        elif isinstance(entry, str):
            module, _, attr = entry.partition(":")
            entry = getattr(importlib.import_module(module), attr)
            self._entries[key] = entry
        return entry  # type: ignore[return-value]

    __getitem__ = get

    def names(self) -> list[str]:
        load_plugins()
        return sorted(self._entries)

    def items(self) -> Iterator[tuple[str, T]]:
        for name in self.names():
            yield name, self.get(name)

    def values(self) -> Iterator[T]:
        for _, entry in self.items():
            yield entry

    def __contains__(self, name: object) -> bool:
        load_plugins()
        return isinstance(name, str) and self._key(name) in self._entries

    def _key(self, name: Any) -> Any:
        """The entry key of ``name``: normalised, and an old name (`infscale.renames`) that is not an entry itself
        under its new name, said once on stderr."""
        if not isinstance(name, str):
            return name
        key = self._normalize(name)
        return key if key in self._entries else self._normalize(current_name(key))

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())
