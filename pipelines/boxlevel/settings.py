"""Box-level settings: `params.yaml`'s ``box_level`` section (the benchmark lets a strategy override it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.sections import BoxLevelSection, section


@dataclass(frozen=True)
class BoxSettings(BoxLevelSection):
    """The typed ``box_level`` section (each key's meaning is commented in params.yaml)."""

    @classmethod
    def resolve(cls, params: dict[str, Any], spec: dict[str, Any]) -> BoxSettings:
        """params.yaml's ``box_level``, overridden by a benchmark strategy spec's ``box``; an unknown
        key or a wrong type is an error naming the valid keys."""
        return section(cls, {**params["box_level"], **(spec.get("box") or {})}, "box_level")
