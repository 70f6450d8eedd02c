"""Dataset import: readers for five formats feeding one canonical pool manifest."""

from .errors import DatasetError, ImportLog
from .labelmap import LabelMap
from .manifest import Manifest
from .sources import FORMATS, import_dataset

__all__ = ["FORMATS", "DatasetError", "ImportLog", "LabelMap", "Manifest", "import_dataset"]
