"""Settings of the spatial-divergence map, shared by `/predict` and `alod score` (no torch import).

``detector.divergence_radius`` / ``divergence_region`` / ``divergence_units`` of params.yaml;
`core.features` documents what they mean and computes the map.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Divergence:
    """Settings of the spatial-divergence map (see the module docstring)."""

    radius: float = 9.0  # pixels of the original frame (pixels) or cells of each level (grid)
    region: int = 30  # pixels of the original frame: side of the regions whose maxima are stored (pixels only)
    units: str = "pixels"  # pixels (the paper) | grid (the earlier rule)

    def __post_init__(self) -> None:
        if self.units not in ("pixels", "grid"):
            raise ValueError(f"divergence units must be pixels or grid, got {self.units!r}")
        if self.radius < 0 or self.region < 1:
            raise ValueError(f"divergence radius must be >= 0 and region >= 1, got {self.radius}, {self.region}")

    @classmethod
    def parse(cls, value: Any) -> Divergence | None:
        """None -> None; an int -> the earlier grid rule with that radius; a dict / Divergence as given."""
        if value is None or isinstance(value, Divergence):
            return value
        if isinstance(value, dict):
            return cls(**value)
        return cls(radius=int(value), units="grid")


DEFAULT_DIVERGENCE = Divergence()  # what a key missing from params.yaml, or a library caller that passes nothing, gets


def divergence_setting(detector: dict[str, Any] | None) -> dict[str, Any]:
    """The divergence settings of params.yaml's ``detector`` section, as a JSON-able dict."""
    det = detector or {}
    settings = Divergence(
        radius=float(det.get("divergence_radius", DEFAULT_DIVERGENCE.radius)),
        region=int(det.get("divergence_region", DEFAULT_DIVERGENCE.region)),
        units=str(det.get("divergence_units", DEFAULT_DIVERGENCE.units)),
    )
    return asdict(settings)


def as_setting(value: Any) -> Any:
    """A divergence argument in its JSON-able form (a `Divergence` as its dict; None, an int, a dict as given)."""
    return asdict(value) if isinstance(value, Divergence) else value
