"""Active-learning strategies: pure functions over a `ScoredPool`, picked by name from a registry.

    from strategies import Budget, CycleState, select
    sel = select("uncertainty", pool, Budget(frames=20), CycleState(), seed=0, measure="margin")
    state = state.advance(pool, sel)

`available()` lists the strategies and their parameters; `register` adds your own.
"""

from strategies import baselines, box_level, diversity, hybrid, localization, uncertainty  # noqa: F401
from strategies.pool import Budget, CycleState, ScoredPool, Selection
from strategies.registry import TEMPORAL_DEFAULTS, available, register, select

__all__ = [
    "TEMPORAL_DEFAULTS",
    "Budget",
    "CycleState",
    "ScoredPool",
    "Selection",
    "available",
    "register",
    "select",
]
