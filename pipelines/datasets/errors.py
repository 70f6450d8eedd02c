"""Errors and warnings of an import, each naming the file (and line) it comes from."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("alod.import")


class DatasetError(ValueError):
    """Bad input, with where it is: ``path:line: message``."""

    def __init__(self, path: str | Path, message: str, line: int | None = None) -> None:
        self.path, self.line, self.message = str(path), line, message
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")


@dataclass
class ImportLog:
    """What an import skipped or fixed. Nothing is dropped without an entry here.

    ``strict``: bad annotations raise DatasetError (the default). Lenient mode skips
    the frame instead and records why. Unreadable images found while listing a folder
    are always skipped with a warning.
    """

    strict: bool = True
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    boxes_read: int = 0
    orphan_boxes: int = 0  # in label files whose image is missing

    def fail(self, error: DatasetError, kind: str) -> None:
        """Raise in strict mode, else record the frame as skipped."""
        if self.strict:
            raise error
        self.skip(str(error), kind)

    def skip(self, reason: str, kind: str) -> None:
        self.skipped.append(reason)
        self.counts[kind] += 1
        log.warning("skipped: %s", reason)

    def warn(self, message: str, kind: str) -> None:
        self.warnings.append(message)
        self.counts[kind] += 1
        log.warning("%s", message)

    def summary(self) -> str:
        read = f"{self.boxes_read} boxes read" + (
            f" (+{self.orphan_boxes} without an image)" if self.orphan_boxes else ""
        )
        if not self.counts:
            return f"{read}; no frames skipped, no warnings"
        parts = ", ".join(f"{kind}: {n}" for kind, n in sorted(self.counts.items()))
        return f"{read}; {len(self.skipped)} frames skipped, {len(self.warnings)} warnings ({parts})"
