"""Active-learning strategies: pure functions over a `ScoredPool`, picked by name from a registry.

    from strategies import Budget, CycleState, select
    sel = select("uncertainty", pool, Budget(frames=20), CycleState(), seed=0, measure="margin")
    state = state.advance(pool, sel)

`available()` lists the strategies and their parameters; `register` adds your own.
"""

import importlib
import pkgutil

from strategies.pool import Budget, CycleState, ScoredPool, Selection
from strategies.registry import TEMPORAL_DEFAULTS, available, register, select

# every module of this package is imported, so a strategy in a new module registers itself
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

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
