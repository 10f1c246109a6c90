"""The registries of suite kinds, scorers and loaders (Inspect AI's ``@scorer`` registry is the model).

A component module builds its :class:`SuiteKind`, :class:`ScorerEntry` or :class:`Loader` and registers it with
:func:`register_kind`, :func:`register_scorer` or :func:`register_loader` at import. The built-in modules are
listed in :mod:`eval_assets.kinds._builtin` (one line each) and imported on the first lookup, never at import
of this module; modules of installed packages are found through the ``evalgate.components`` entry-point group
(``[project.entry-points."evalgate.components"] mine = "my_pkg.my_kind"``) and imported then too.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterator
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from eval_assets.kinds._types import Loader, ScorerEntry, SuiteKind

ENTRY_POINT_GROUP = "evalgate.components"

C = TypeVar("C")


class UnknownComponentError(KeyError):
    """A name that is not registered; the message lists the registered choices."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class Registry(Generic[C]):
    """Components of one sort by name. Registering a second, different component under a taken name is an
    error (a plugin cannot silently replace a built-in)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._items: dict[str, C] = {}

    def add(self, name: str, component: C) -> C:
        existing = self._items.get(name)
        if existing is not None and existing is not component:
            raise ValueError(f"{self.what} {name!r} is registered twice")
        self._items[name] = component
        return component

    def get(self, name: str) -> C:
        _load_components()
        try:
            return self._items[name]
        except KeyError:
            raise UnknownComponentError(
                f"unknown {self.what} {name!r}; registered: {', '.join(self.names())}"
            ) from None

    def names(self) -> list[str]:
        _load_components()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        _load_components()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


KINDS: Registry[SuiteKind] = Registry("suite kind")
SCORERS: Registry[ScorerEntry[Any]] = Registry("metric (scorer)")
LOADERS: Registry[Loader[Any]] = Registry("loader")


def register_kind(kind: SuiteKind) -> SuiteKind:
    return KINDS.add(kind.name, kind)


def register_scorer(entry: ScorerEntry[Any]) -> ScorerEntry[Any]:
    return SCORERS.add(entry.name, entry)


def register_loader(loader: Loader[Any]) -> Loader[Any]:
    return LOADERS.add(loader.name, loader)


def get_kind(name: str) -> SuiteKind:
    return KINDS.get(name)


def get_scorer(name: str) -> ScorerEntry[Any]:
    return SCORERS.get(name)


def get_loader(name: str) -> Loader[Any]:
    return LOADERS.get(name)


def scorers_for(kind: str) -> list[str]:
    """The metrics that read the outputs of ``kind``."""
    return [name for name in SCORERS.names() if kind in SCORERS.get(name).kinds]


def loaders_for(kind: str) -> list[str]:
    """The loaders that can feed ``kind``."""
    return [name for name in LOADERS.names() if LOADERS.get(name).feeds(kind)]


_lock = threading.RLock()
_loaded = False
_loading = False


def _load_components() -> None:
    """Import the built-in component modules, then the entry-point ones, once (thread-safe, re-entrant: a
    component module may look things up while it registers)."""
    global _loaded, _loading
    if _loaded:
        return
    with _lock:  # another thread waits here until loading is done; this thread's nested lookups pass through
        if _loaded or _loading:
            return
        _loading = True
        try:
            from eval_assets.kinds._builtin import BUILTIN_MODULES

            for module in BUILTIN_MODULES:
                importlib.import_module(module)
            for entry in entry_points(group=ENTRY_POINT_GROUP):
                try:
                    entry.load()
                except Exception as exc:
                    raise ImportError(
                        f"evalgate component {entry.name!r} ({entry.value}, entry point group "
                        f"{ENTRY_POINT_GROUP!r}) failed to import: {exc}"
                    ) from exc
            _loaded = True
        finally:
            _loading = False
