"""Dataset formats by name: each reader module registers how it reads a ``datasets.<name>`` block.

    @register_format("voc")
    def read_voc_source(source: Source) -> None:
        read_voc(source.path("root"), source.builder, source.name)

`pipelines.datasets.sources` imports every module of `pipelines.datasets.readers`, so a new format
is one new module there; nothing else changes.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .manifest import ManifestBuilder


@dataclass(frozen=True)
class Source:
    """One dataset block of the settings, as a reader sees it."""

    name: str
    config: Mapping[str, Any]
    base: Path  # relative paths in the block are relative to this folder (the settings file's)
    builder: ManifestBuilder

    def path(self, key: str) -> Path:
        value = self.config.get(key)
        if value is None:
            raise ValueError(f"dataset {self.name!r} ({self.config.get('format')}) needs {key!r}")
        p = Path(str(value)).expanduser()
        return p if p.is_absolute() else (self.base / p).resolve()

    def optional_path(self, key: str) -> Path | None:
        return self.path(key) if self.config.get(key) else None

    @property
    def split(self) -> str:
        return str(self.config.get("split", "train"))


_FORMATS: dict[str, Callable[[Source], None]] = {}


def register_format(name: str) -> Callable[[Callable[[Source], None]], Callable[[Source], None]]:
    def wrap(fn: Callable[[Source], None]) -> Callable[[Source], None]:
        if name in _FORMATS:
            raise ValueError(f"dataset format {name!r} is already registered")
        _FORMATS[name] = fn
        return fn

    return wrap


def formats() -> dict[str, Callable[[Source], None]]:
    """Every registered format (importing the reader modules first)."""
    from . import readers

    for module in pkgutil.iter_modules(readers.__path__):
        importlib.import_module(f"{readers.__name__}.{module.name}")
    return dict(_FORMATS)
