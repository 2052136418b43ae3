"""Perturbation specs: the grammar, grid expansion, canonical names and seeding.

``jpeg(quality=75)`` is one perturbation; ``jpeg(quality=75)+resize(scale=0.5)`` a chain
applied left to right; ``jpeg(quality=[95,75])`` a grid that expands to one spec per value
(several lists expand to their Cartesian product). Canonical strings list the parameters
in the order the plugin declares them; an optional parameter (one with a default) is
written only when it differs from its default, so two spellings of one perturbation share
cache entries and a parameter added to a plugin later leaves the existing names (and
cached scores) as they were. A :class:`~harness.api.PerturbationSpec` may carry a
``check(params)`` that refuses a combination of parameters when the spec is parsed.

Named suites reproduce the grids of published evaluations. Plugins register them through
the ``exifbench_perturbation_suites`` hook (the built-in ones are ``perturbations/suites.toml``,
read with :func:`read_suites`); :func:`suite_entries` gives a suite's spec strings (a sweep
config names one with ``[perturbations] suite = "..."``).
"""
from __future__ import annotations

import ast
import hashlib
import itertools
import re
import tomllib
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np
from PIL import Image

from harness.api import ConfigError, PerturbationSpec, SuiteSpec, UnknownNameError

__all__ = ["Step", "Chain", "parse", "expand", "expand_grid", "perturb", "derive_seed", "apply_chain",
           "read_suites", "suite_entries"]

_TERM = re.compile(r"^\s*([A-Za-z_][\w-]*)\s*(?:\((.*)\))?\s*$", re.S)


@dataclass(frozen=True)
class Step:
    name: str
    params: tuple[tuple[str, Any], ...] = ()

    def canonical(self) -> str:
        if not self.params:
            return self.name
        return f"{self.name}({','.join(f'{k}={_fmt(v)}' for k, v in self.params)})"


@dataclass(frozen=True)
class Chain:
    """A sequence of perturbation steps; the empty chain is ``none``."""

    steps: tuple[Step, ...] = ()

    @property
    def spec(self) -> str:
        return "+".join(s.canonical() for s in self.steps) or "none"

    @property
    def names(self) -> str:
        """The perturbations of the chain without parameters, e.g. ``jpeg+resize``."""
        return "+".join(s.name for s in self.steps) or "none"

    def version(self, registry=None) -> str:
        reg = registry or _registry()
        return "+".join(f"{s.name}@{reg[s.name].version}" for s in self.steps) or "none"

    def __str__(self) -> str:
        return self.spec


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return repr(float(v))
    return str(v)


def _split_top(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside brackets and parentheses."""
    parts, depth, cur = [], 0, []
    for ch in text:
        depth += ch in "([" 
        depth -= ch in ")]"
        if ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def _value(text: str) -> Any:
    text = text.strip()
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        if re.fullmatch(r"[A-Za-z_][\w-]*", text):
            return text  # bare word, e.g. where=center
        raise ConfigError(f"cannot read perturbation value {text!r}") from None


def _registry():
    from harness.plugins import perturbations

    return perturbations()


def _parse_term(term: str, registry) -> list[Step]:
    m = _TERM.match(term)
    if not m:
        raise ConfigError(f"malformed perturbation {term!r}; write e.g. jpeg(quality=75)")
    name, args = m.group(1), (m.group(2) or "").strip()
    if name == "none" and not args:
        return []
    spec: PerturbationSpec = registry[name]
    given: dict[str, Any] = {}
    for arg in filter(str.strip, _split_top(args, ",")):
        key, eq, val = arg.partition("=")
        if not eq:
            raise ConfigError(f"perturbation {term!r}: argument {arg!r} needs the form name=value")
        given[key.strip()] = _value(val)
    return _steps(spec, given)


def _steps(spec: PerturbationSpec, given: dict[str, Any]) -> list[Step]:
    known = {p.name: p for p in spec.params}
    unknown = set(given) - set(known)
    if unknown:
        raise ConfigError(f"perturbation {spec.name!r} has no parameter {sorted(unknown)}; it takes {list(known)}")
    axes = []
    for p in spec.params:
        if p.name not in given and p.default is None:
            raise ConfigError(f"perturbation {spec.name!r} needs {p.name}=...")
        raw = given.get(p.name, p.default)
        values = raw if isinstance(raw, (list, tuple)) else [raw]
        if not values:
            raise ConfigError(f"perturbation {spec.name!r}: empty list for {p.name}")
        try:
            axes.append([(p.name, p.coerce(v)) for v in values])
        except (TypeError, ValueError, OverflowError) as exc:
            raise ConfigError(f"perturbation {spec.name!r}: {p.name}={raw!r} is not a valid value ({exc})") from None
    return [_step(spec, combo) for combo in itertools.product(*axes)]


def _step(spec: PerturbationSpec, combo: tuple[tuple[str, Any], ...]) -> Step:
    if spec.check is not None:
        spec.check(dict(combo))
    defaults = {p.name: p.coerce(p.default) for p in spec.params if p.default is not None}
    return Step(spec.name, tuple((k, v) for k, v in combo if k not in defaults or defaults[k] != v))


def expand(text: str, registry=None) -> list[Chain]:
    """Expand one spec string (possibly a grid, possibly a chain) into chains."""
    reg = registry or _registry()
    per_term = [_parse_term(t, reg) or [None] for t in _split_top(text, "+")]
    chains = []
    for combo in itertools.product(*per_term):
        chains.append(Chain(tuple(s for s in combo if s is not None)))
    return chains


def parse(text: str, registry=None) -> Chain:
    """Parse a spec that names exactly one perturbation (chain)."""
    chains = expand(text, registry)
    if len(chains) != 1:
        raise ConfigError(f"{text!r} is a grid of {len(chains)} perturbations; give a single one")
    return chains[0]


def expand_grid(entries: Iterable[str], registry=None) -> list[Chain]:
    """Expand a list of spec strings, keeping first occurrences in order."""
    seen: dict[str, Chain] = {}
    for entry in entries:
        for chain in expand(entry, registry):
            seen.setdefault(chain.spec, chain)
    return list(seen.values())


def derive_seed(run_seed: int, sample_id: str, spec: str) -> int:
    """The seed of one (sample, perturbation): independent of worker count and order."""
    digest = hashlib.sha256(f"{run_seed}|{sample_id}|{spec}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def apply_chain(chain: Chain, image: Image.Image, seed: int, registry=None) -> Image.Image:
    reg = registry or _registry()
    rng = np.random.default_rng(seed)
    out = image
    for step in chain.steps:
        spec = reg[step.name]
        params = {p.name: p.coerce(p.default) for p in spec.params if p.default is not None}
        out = spec.apply(out, rng, **{**params, **dict(step.params)})
        if out.mode != "RGB":
            out = out.convert("RGB")
    return pixels_only(out)


def pixels_only(image: Image.Image) -> Image.Image:
    """The image without the metadata Pillow carries along (EXIF, ICC, ...): a perturbed
    image is pixels only, as every perturbation's ``metadata`` says; Pillow's crop, resize
    and convert would otherwise pass the input file's EXIF and ICC profile through."""
    if not image.info and not image.getexif():
        return image
    out = Image.frombuffer(image.mode, image.size, image.tobytes())
    return out


def perturb(spec: str | Chain, image: Image.Image, seed: int = 0) -> Image.Image:
    """Apply one perturbation spec to an RGB image (public helper ``harness.perturb``).

    ``seed`` seeds the stochastic steps; the sweep engine derives it per sample with
    :func:`derive_seed`.
    """
    chain = spec if isinstance(spec, Chain) else parse(spec)
    return apply_chain(chain, image.convert("RGB") if image.mode != "RGB" else image, seed)


def read_suites(text: str, where: str = "suites") -> list[SuiteSpec]:
    """The suites of a TOML text of ``[suites.NAME]`` tables (title, source, grid)."""
    try:
        tables = tomllib.loads(text).get("suites", {})
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"cannot read the perturbation suites {where}: {exc}") from exc
    out = []
    for name, t in tables.items():
        missing = {"title", "source", "grid"} - set(t)
        if missing:
            raise ConfigError(f"{where}: suite {name!r} lacks {sorted(missing)}")
        out.append(SuiteSpec(name, t["title"], t["source"], tuple(t["grid"])))
    return out


def suite_entries(name: str) -> list[str]:
    """The spec strings of a registered suite; an unknown name suggests the closest one."""
    from harness.plugins import suites

    try:
        return list(suites()[name].entries)
    except UnknownNameError as exc:
        raise ConfigError(str(exc)) from None
