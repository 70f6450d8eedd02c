"""Strategies by name: `select("uncertainty", pool, budget, state, seed=0, measure="margin")`.

Two kinds of strategy register here:

- a *scorer* ``fn(pool, state, rng, **params) -> (N,) frame scores`` (higher = more informative,
  NaN = never pick). The registry applies temporal smoothing, ranks (ties broken by the seed),
  fills the budget in rank order and builds the `Selection`.
- a *selector* ``fn(ctx, **params) -> (N,) rest scores`` for sequential methods (k-center,
  box-level): it proposes frames to ``ctx.picker`` (which enforces the budget and dt1) and
  returns scores that order the frames it did not pick.

Parameters are the function's keyword-only arguments; their defaults and type hints
(bool, int, float, str, dict, Literal[...], X | None) are the validation. Every strategy also
accepts ``temporal={smoothing: {window, sigma}, dt1, dt2}`` (see `strategies.temporal`).
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import numpy as np

from strategies.budget import Picker
from strategies.pool import Budget, CycleState, ScoredPool, Selection
from strategies.temporal import TemporalIndex, TemporalRules, blocked_ids

TEMPORAL_DEFAULTS: dict[str, Any] = {"smoothing": None, "dt1": 0, "dt2": 0}
DETECTOR_NEEDS = frozenset({"flip", "divergence"})  # extra detector outputs a strategy may declare


@dataclass(frozen=True)
class Strategy:
    name: str
    fn: Callable[..., np.ndarray]
    kind: Literal["scores", "select"]
    params: dict[str, inspect.Parameter]
    hints: dict[str, Any]
    smoothing: bool  # whether temporal smoothing of frame scores makes sense for it
    box_level: bool
    needs: frozenset[str] = frozenset()  # what the detector must compute for it: "flip", "divergence"

    @property
    def defaults(self) -> dict[str, Any]:
        return {k: p.default for k, p in self.params.items()}

    def describe(self) -> str:
        parts = []
        for k, p in self.params.items():
            hint = self.hints.get(k)
            choices = f" (one of {list(get_args(hint))})" if get_origin(hint) is Literal else ""
            parts.append(f"{k}={p.default!r}{choices}")
        return f"{self.name}({', '.join(parts)})"


@dataclass
class Context:
    """What a selector sees: the inputs, a seeded generator and the budget-keeping picker."""

    pool: ScoredPool
    budget: Budget
    state: CycleState
    rng: np.random.Generator
    picker: Picker
    rules: TemporalRules
    temporal: TemporalIndex | None

    def smooth(self, scores: np.ndarray) -> np.ndarray:
        """Temporal smoothing of frame scores when configured, else the scores unchanged."""
        if not self.rules.smoothing or self.temporal is None:
            return np.asarray(scores, np.float64)
        return self.temporal.smooth(scores, self.rules.window, self.rules.sigma)


_REGISTRY: dict[str, Strategy] = {}


def register(
    name: str,
    *,
    kind: Literal["scores", "select"] = "scores",
    smoothing: bool | None = None,
    box_level: bool = False,
    needs: frozenset[str] | set[str] = frozenset(),
    replace: bool = False,
) -> Callable[[Callable[..., np.ndarray]], Callable[..., np.ndarray]]:
    """Decorator adding a strategy under ``name``; its keyword-only arguments are its parameters."""
    if kind not in ("scores", "select"):
        raise ValueError(f"kind must be 'scores' or 'select', got {kind!r}")
    if unknown := set(needs) - DETECTOR_NEEDS:
        raise ValueError(f"needs must be among {sorted(DETECTOR_NEEDS)}, got {sorted(unknown)}")

    def wrap(fn: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
        if name in _REGISTRY and not replace:
            raise ValueError(f"strategy {name!r} is already registered (pass replace=True to override)")
        sig = inspect.signature(fn)
        params = {k: p for k, p in sig.parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
        missing = [k for k, p in params.items() if p.default is inspect.Parameter.empty]
        if missing:
            raise ValueError(f"strategy {name!r}: parameters {missing} need defaults")
        if "temporal" in params:
            raise ValueError("'temporal' is reserved for the temporal rules")
        hints = get_type_hints(fn)
        _REGISTRY[name] = Strategy(
            name=name,
            fn=fn,
            kind=kind,
            params=params,
            hints={k: hints[k] for k in params if k in hints},
            smoothing=(kind == "scores") if smoothing is None else smoothing,
            box_level=box_level,
            needs=frozenset(needs),
        )
        return fn

    return wrap


def available() -> dict[str, dict[str, Any]]:
    """Registered strategy names and their parameters with defaults (plus `temporal`, taken by all)."""
    return {name: _REGISTRY[name].defaults for name in sorted(_REGISTRY)}


def get(name: str) -> Strategy:
    if name not in _REGISTRY:
        listing = "; ".join(_REGISTRY[n].describe() for n in sorted(_REGISTRY))
        raise ValueError(f"unknown strategy {name!r}; available: {listing}")
    return _REGISTRY[name]


def _conforms(value: Any, hint: Any) -> bool:
    origin = get_origin(hint)
    if origin is Literal:
        return any(value == a and type(value) is type(a) for a in get_args(hint))
    if origin in (Union, types.UnionType):
        return any(_conforms(value, a) for a in get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool | np.bool_)
    if hint is int:
        return isinstance(value, int | np.integer) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if hint is dict or origin is dict:
        return isinstance(value, dict)
    return True  # an annotation this checker does not know: the strategy validates it


def _hint_name(hint: Any) -> str:
    origin = get_origin(hint)
    if origin is Literal:
        return f"one of {list(get_args(hint))}"
    if origin in (Union, types.UnionType):
        return " or ".join(_hint_name(a) for a in get_args(hint))
    if hint is type(None):
        return "null"
    return getattr(origin or hint, "__name__", str(hint))


def validate(strategy: Strategy, params: dict[str, Any]) -> dict[str, Any]:
    """Defaults filled in; an unknown parameter or a value of the wrong type raises ValueError."""
    unknown = sorted(set(params) - set(strategy.params))
    if unknown:
        raise ValueError(f"unknown parameters {unknown}; valid: {strategy.describe()} (and temporal=...)")
    out = strategy.defaults
    for k, v in params.items():
        hint = strategy.hints.get(k)
        if hint is not None and not _conforms(v, hint):
            raise ValueError(
                f"{strategy.name}.{k} must be {_hint_name(hint)}, got {v!r}; parameters: {strategy.describe()}"
            )
        out[k] = v
    return out


def rank(scores: np.ndarray, eligible: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Eligible positions by descending score, ties in a seeded random order."""
    idx = np.flatnonzero(eligible)
    tiebreak = rng.permutation(len(idx))
    return idx[np.lexsort((tiebreak, -scores[idx]))]


def frame_scores(name: str, pool: ScoredPool, state: CycleState, rng: np.random.Generator, **params: Any) -> np.ndarray:
    """Run a registered scorer by name (for combinations such as hybrid)."""
    strategy = get(name)
    if strategy.kind != "scores":
        scorers = sorted(n for n, s in _REGISTRY.items() if s.kind == "scores")
        raise ValueError(f"{name!r} is not a frame scorer; scorers: {scorers}")
    scores = np.asarray(strategy.fn(pool, state, rng, **validate(strategy, params)), np.float64)
    if scores.shape != (pool.num_images,):
        raise ValueError(f"strategy {name!r} returned scores of shape {scores.shape}, expected ({pool.num_images},)")
    return scores


def select(
    name: str, pool: ScoredPool, budget: Budget, state: CycleState, *, seed: int = 0, **params: Any
) -> Selection:
    """Pick frames (or boxes) for the next labeling round with the strategy registered as ``name``."""
    strategy = get(name)
    params = dict(params)
    rules = TemporalRules.from_params(params.pop("temporal", None))
    kwargs = validate(strategy, params)
    if rules.smoothing and not strategy.smoothing:
        smoothable = sorted(n for n, s in _REGISTRY.items() if s.smoothing)
        raise ValueError(f"temporal smoothing does not apply to {name!r}; it applies to {smoothable}")
    rng = np.random.default_rng(seed)
    selectable = state.selectable_mask(pool)
    index = TemporalIndex(pool) if rules.active else None
    picker = Picker(pool, budget, selectable, index, rules.dt1)
    ctx = Context(pool, budget, state, rng, picker, rules, index)
    if strategy.kind == "scores":
        scores = ctx.smooth(frame_scores(name, pool, state, rng, **kwargs))
        order = rank(scores, selectable & ~np.isnan(scores), rng)
        picker.take_in_order(order, scores[order])
        rest = scores
    else:
        rest = np.asarray(strategy.fn(ctx, **kwargs), np.float64)
        if rest.shape != (pool.num_images,):
            raise ValueError(f"strategy {name!r} returned rest scores of shape {rest.shape}")
    blocked = blocked_ids(pool, index, np.array(picker.picked, np.int64), rules.dt2)
    return _finish(name, pool, picker, selectable, rest, strategy.box_level, blocked)


def _finish(
    name: str,
    pool: ScoredPool,
    picker: Picker,
    selectable: np.ndarray,
    rest: np.ndarray,
    box_level: bool,
    blocked: frozenset[str],
) -> Selection:
    picked = np.array(picker.picked, np.int64)
    # Priority in (0, 1]: the picks in rank order, then the other selectable frames by their
    # rest score (ties by position); 0 for labeled or blocked frames.
    others = selectable.copy()
    others[picked] = False
    idx = np.flatnonzero(others)
    rest_key = np.nan_to_num(rest[idx], nan=-np.inf)
    full = np.concatenate([picked, idx[np.lexsort((idx, -rest_key))]])
    priority = np.zeros(pool.num_images)
    priority[full] = 1.0 - np.arange(len(full)) / max(len(full), 1)
    return Selection(
        strategy=name,
        indices=picked,
        values=np.array(picker.values, np.float64),
        priority=priority,
        box_indices=np.array(picker.boxes, np.int64) if box_level else None,
        blocked=blocked,
    )
