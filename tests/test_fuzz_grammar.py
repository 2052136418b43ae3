"""The perturbation grammar and the config parser over generated input (hypothesis).

Whatever the text, ``harness.chains.expand`` gives chains or raises ``ConfigError`` (or,
for an unknown perturbation, ``UnknownNameError`` with the closest name), and
``load_sweep``/``load_train`` give a config or raise ``ConfigError`` naming the file; never
another exception (a traceback for the user).
"""
from __future__ import annotations

import tomli_w
from hypothesis import example, given, strategies as st

from harness.api import ConfigError, UnknownNameError
from harness.chains import expand
from harness.config import load_sweep, load_train
from harness.plugins import perturbations

NAMES = sorted(perturbations()) + ["none", "jpg", ""]
_VALUE = st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=True), st.booleans(),
                   st.sampled_from(["1e999", "-0", "'x'", "[1,2]", "[]", "()", "None", "nan", "center", "(1,", "{}"]),
                   st.text(max_size=8))


@st.composite
def spec_strings(draw) -> str:
    terms = []
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from(NAMES))
        args = [f"{draw(st.sampled_from(['quality', 'sigma', 'scale', 'size', 'where', 'x', 'q=']))}="
                f"{draw(_VALUE)}" for _ in range(draw(st.integers(0, 3)))]
        terms.append(name + (f"({','.join(args)})" if args or draw(st.booleans()) else ""))
    return "+".join(terms)


def _expand_or_config_error(text: str) -> None:
    try:
        chains = expand(text)
    except (ConfigError, UnknownNameError) as exc:  # an unknown name suggests the closest one
        assert str(exc)
        return
    assert chains and all(isinstance(c.spec, str) for c in chains)


@given(text=spec_strings())
@example(text="jpeg(quality=1e999)")  # found by the long fuzz: OverflowError from the parameter's coercion
def test_a_spec_string_expands_or_raises_config_error(text):
    _expand_or_config_error(text)


@given(text=st.text(max_size=40))
def test_any_text_as_a_spec_expands_or_raises_config_error(text):
    _expand_or_config_error(text)


_SCALAR = st.one_of(st.integers(-2**63, 2**63 - 1), st.floats(allow_nan=True), st.booleans(), st.text(max_size=12))
_TOML_VALUE = st.recursive(_SCALAR, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=6)
_KEYS = ["run", "datasets", "detectors", "perturbations", "metrics", "params", "seed", "batch_size", "cpu_actors",
         "name", "layout", "root", "grid", "suite", "bootstrap", "ci", "alias", "label", "checkpoint"]


@st.composite
def configs(draw) -> dict:
    def table(depth: int) -> dict:
        keys = draw(st.lists(st.sampled_from(_KEYS) | st.text(max_size=6), max_size=5, unique=True))
        out = {}
        for k in keys:
            choice = draw(st.integers(0, 3)) if depth < 2 else 0
            out[k] = (draw(_TOML_VALUE) if choice == 0 else table(depth + 1) if choice == 1
                      else [table(depth + 1) for _ in range(draw(st.integers(0, 2)))])
        return out
    return table(0)


@given(config=configs())
@example(config={"run": 0})
@example(config={"params": 0})  # found by the second long run  # found by the long fuzz: TypeError on a key that is not a table
@example(config={"datasets": [1], "detectors": [2]})
def test_a_sweep_or_train_config_parses_or_raises_config_error_naming_the_file(tmp_path_factory, config):
    path = tmp_path_factory.getbasetemp() / "fuzz.toml"
    path.write_text(tomli_w.dumps(config))
    for load in (load_sweep, load_train):
        try:
            load(path)
        except ConfigError as exc:
            assert str(path) in str(exc), exc


@given(text=st.text(max_size=200))
def test_any_text_as_a_config_parses_or_raises_config_error(tmp_path_factory, text):
    path = tmp_path_factory.getbasetemp() / "fuzz.toml"
    path.write_text(text, errors="surrogatepass")
    try:
        load_sweep(path)
    except ConfigError as exc:
        assert str(path) in str(exc), exc
