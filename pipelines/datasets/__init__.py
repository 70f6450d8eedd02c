"""Dataset import: one reader per format (registered in `formats`) feeding one canonical pool manifest."""

from .errors import DatasetError, ImportLog
from .formats import formats, register_format
from .labelmap import LabelMap
from .manifest import Manifest
from .sources import import_dataset

__all__ = ["DatasetError", "ImportLog", "LabelMap", "Manifest", "formats", "import_dataset", "register_format"]
