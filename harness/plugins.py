"""The plugin manager and the registries built from it.

Every detector, perturbation and layout, built-in or third-party, arrives through the
``exifbench`` entry-point group. A registry has one job: map a name to its spec, refuse a
duplicate, and suggest the closest name for a typo.
"""
from __future__ import annotations

import difflib
from functools import lru_cache
from typing import Generic, Iterable, Iterator, TypeVar

import pluggy

from harness import hookspecs
from harness.api import (DetectorSpec, ExifbenchError, LayoutSpec, PerturbationSpec, SuiteSpec, TrainerSpec,
                         UnknownNameError)

__all__ = ["Registry", "plugin_manager", "detectors", "perturbations", "suites", "layouts", "trainers", "reset"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> spec, refusing duplicates and suggesting the closest name."""

    def __init__(self, kind: str, items: Iterable[tuple[str, T]] = ()):
        self.kind = kind
        self._items: dict[str, T] = {}
        self._owner: dict[str, str] = {}
        for owner, item in items:
            self.add(item, owner=owner)

    def add(self, item: T, owner: str = "?") -> None:
        name = getattr(item, "name")
        if name in self._items:
            raise ExifbenchError(
                f"duplicate {self.kind} {name!r}: registered by plugin {self._owner[name]!r} "
                f"and again by {owner!r}; rename one of them"
            )
        self._items[name] = item
        self._owner[name] = owner

    def __getitem__(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(self._unknown_message(name)) from None

    def _unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, list(self._items), n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"unknown {self.kind} {name!r}{hint} (known: {', '.join(sorted(self._items))})"

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def items(self) -> list[tuple[str, T]]:
        return sorted(self._items.items())

    def owner(self, name: str) -> str:
        return self._owner[name]


@lru_cache(maxsize=1)
def plugin_manager() -> pluggy.PluginManager:
    """A plugin manager with the hook specs and every plugin of the entry-point group.

    A plugin function marked ``@hookimpl`` under a name that is no hook (a typo such as
    ``exifbench_detector``) is refused here, naming the plugin, instead of being ignored.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.load_setuptools_entrypoints(hookspecs.PROJECT)
    if not pm.get_plugins():
        raise ExifbenchError(
            "no exifbench plugins found: the package is not installed; run `pip install -e .`"
        )
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise ExifbenchError(
            f"plugin {pm.get_name(exc.plugin)!r} implements a hook that exifbench does not define ({exc}); "
            f"the hooks are {sorted(n for n in dir(hookspecs) if n.startswith('exifbench_'))}"
        ) from exc
    return pm


def _collect(hook_name: str, kind: str) -> Registry:
    """Call the hook through pluggy and register every item; a duplicate names both plugins."""
    hook = getattr(plugin_manager().hook, hook_name)
    results = hook()
    # pluggy calls the implementations last-registered first and drops None results; when
    # none was dropped, results and implementations pair up, which names each item's plugin.
    impls = hook.get_hookimpls()
    owners = [impl.plugin_name for impl in reversed(impls)] if len(results) == len(impls) else ["?"] * len(results)
    registry: Registry = Registry(kind)
    for owner, items in reversed(list(zip(owners, results))):  # registration order
        for item in items or []:
            registry.add(item, owner=owner)
    return registry


@lru_cache(maxsize=1)
def detectors() -> Registry[DetectorSpec]:
    return _collect("exifbench_detectors", "detector")


@lru_cache(maxsize=1)
def perturbations() -> Registry[PerturbationSpec]:
    return _collect("exifbench_perturbations", "perturbation")


@lru_cache(maxsize=1)
def suites() -> Registry[SuiteSpec]:
    return _collect("exifbench_perturbation_suites", "perturbation suite")


@lru_cache(maxsize=1)
def layouts() -> Registry[LayoutSpec]:
    return _collect("exifbench_dataset_layouts", "layout")


@lru_cache(maxsize=1)
def trainers() -> Registry[TrainerSpec]:
    """Training jobs: the registered trainers plus every trainable detector."""
    registry = _collect("exifbench_trainers", "trainer")
    for name, spec in detectors().items():
        if spec.trainable:
            registry.add(TrainerSpec(name, spec.summary, spec.factory, spec.defaults, spec.path_params), owner=detectors().owner(name))
    return registry


def reset() -> None:
    """Forget the loaded plugins (tests that register extra plugins call this)."""
    for fn in (plugin_manager, detectors, perturbations, suites, layouts, trainers):
        fn.cache_clear()
