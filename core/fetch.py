"""Reading the image a Label Studio task points at, whatever kind of reference it is.

- ``data:image/...;base64,...`` URLs: decoded in memory;
- Label Studio uploads (``/data/upload/...``) and Local Storage (``/data/local-files/?d=...``),
  other Label Studio paths (``/tasks/<id>/presign/?fileuri=...``) and cloud URIs (``s3://``,
  ``gs://``, ``azure-blob://``, resolved by Label Studio's presign endpoint): fetched from
  LABEL_STUDIO_URL with the API key through label-studio-sdk's ``get_local_path``; Local Storage
  files are read from disk instead when LOCAL_FILES_DOCUMENT_ROOT is set;
- ``http(s)://`` URLs, presigned cloud URLs included (query string kept, no Label Studio token
  sent to other hosts): downloaded directly.

Every download has a time limit and a size limit, and an image is checked against the pixel
limit before it is decoded (a small PNG can decode to gigabytes). A failure raises
`core.images.ImageLoadError` with a short reason; the caller turns it into a per-task error.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import tempfile
from pathlib import Path
from urllib.parse import parse_qs, unquote_to_bytes, urlparse

import numpy as np
import requests

from core.egress import EgressPolicy, GuardedSession
from core.images import ImageLoadError, PixelBudget, load_image, pixels_of

log = logging.getLogger(__name__)

# label-studio-sdk logs every download at INFO and warns about "localhost" on every call; our
# per-task errors carry the reasons instead.
logging.getLogger("label_studio_sdk._extensions.label_studio_tools.core.utils.io").setLevel(logging.ERROR)

# Label Studio media: the only paths fetched with the API key (uploads, local files, storage, presign)
_LS_PREFIXES = ("/data/upload/", "/data/local-files", "/storage-data/", "/tasks/", "data/upload", "upload/", "/upload/")
_MEDIA_PATH = re.compile(r"^/(data/upload/|data/local-files/?|storage-data/|tasks/\d+/(presign|resolve)/)")
FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "MPO", "GIF")  # decoded only after PIL read their size
UNREADABLE_URL = "cannot read the image at this URL (refused, unreachable or failing)"
_CLOUD = ("s3://", "gs://", "azure-blob://", "s3:", "gs:", "azure-blob:")


class ImageFetcher:
    """Loads task images as (H, W, 3) uint8 BGR arrays (the same decoding as the `score` stage)."""

    def __init__(
        self,
        label_studio_url: str | None = None,
        api_key: str | None = None,
        document_root: str | os.PathLike[str] | None = None,
        timeout: float = 10.0,
        max_bytes: int = 50 << 20,
        max_pixels: int = 50_000_000,
        allowed_hosts: tuple[str, ...] = (),
    ) -> None:
        self.label_studio_url = label_studio_url.rstrip("/") if label_studio_url else None
        self.allowed_hosts = tuple(allowed_hosts)
        self.policy = EgressPolicy.build(self.label_studio_url, self.allowed_hosts)
        self.api_key = api_key
        self.document_root = Path(document_root).resolve() if document_root else None
        self.timeout, self.max_bytes, self.max_pixels = float(timeout), int(max_bytes), int(max_pixels)

    def with_credentials(self, label_studio_url: str | None, api_key: str | None) -> ImageFetcher:
        """A copy using this URL and key together, unless this fetcher has its own pair: a key is only
        ever sent to the Label Studio it came with."""
        if self.label_studio_url and self.api_key:
            return self
        return ImageFetcher(
            label_studio_url,
            api_key if label_studio_url else None,
            self.document_root,
            self.timeout,
            self.max_bytes,
            self.max_pixels,
            self.allowed_hosts,
        )

    def load(self, ref: object, task_id: int | None = None, budget: PixelBudget | None = None) -> np.ndarray:
        """The image ``ref`` points at; with a ``budget``, its pixels are taken from it before decoding
        (the caller gives them back, `core.images.pixels_of` the returned image)."""
        if not isinstance(ref, str) or not ref.strip():
            raise ImageLoadError(repr(ref)[:80], "the image field is empty or not a string")
        ref = ref.strip()
        local = self._local_storage_path(ref)
        if local is not None:  # read in place: no copy
            return self._decode(local, ref, budget)
        with tempfile.TemporaryDirectory(prefix="alod-img-") as tmp:
            if ref[:5].lower() == "data:":
                path = self._from_data_url(ref, Path(tmp))
            else:
                path = self._download(ref, Path(tmp), task_id)
            return self._decode(path, ref, budget)

    def _decode(self, path: Path, ref: str, budget: PixelBudget | None = None) -> np.ndarray:
        pixels = self._check_size(path, ref)
        if budget is not None:
            budget.take(pixels)
        try:
            image = load_image(path)
        except BaseException as exc:
            if budget is not None:
                budget.give_back(pixels)
            if isinstance(exc, ImageLoadError):
                raise ImageLoadError(_short(ref), exc.reason) from None
            raise
        if budget is not None and pixels_of(image) != pixels:
            budget.correct(pixels, pixels_of(image))
        return image

    def _from_data_url(self, ref: str, tmp: Path) -> Path:
        header, sep, payload = ref.partition(",")
        if not sep:
            raise ImageLoadError(_short(ref), "malformed data: URL (no comma)")
        if len(payload) * 3 // 4 > self.max_bytes:
            raise ImageLoadError(_short(ref), f"image too large: data: URL over {self.max_bytes} bytes")
        try:
            is_base64 = header.lower().endswith(";base64")
            data = base64.b64decode(payload, validate=False) if is_base64 else unquote_to_bytes(payload)
        except (binascii.Error, ValueError) as exc:
            raise ImageLoadError(_short(ref), f"malformed data: URL ({exc})") from None
        path = tmp / "data-url"
        path.write_bytes(data)
        return path

    def _local_storage_path(self, ref: str) -> Path | None:
        """A Local Storage URL (``/data/local-files/?d=relative/path``) read from disk when the document
        root is known here; a path that leaves the root (``..``, an absolute path, a symlink) is refused."""
        if self.document_root is None or not (ref.startswith("/data/local-files") and "d=" in ref):
            return None
        relative = parse_qs(urlparse(ref).query).get("d", [""])[0]
        path = (self.document_root / relative.lstrip("/")).resolve()  # resolve() follows symlinks
        if not relative or not path.is_relative_to(self.document_root):
            raise ImageLoadError(_short(ref), "Local Storage file is not available: it lies outside the document root")
        return path if path.is_file() else None

    def _download(self, ref: str, tmp: Path, task_id: int | None) -> Path:
        from label_studio_sdk._extensions.label_studio_tools.core.utils.io import get_local_path, http_session

        lowered = ref.lower()
        if lowered.startswith(("http://", "https://")):
            url = ref
            same_host = self.label_studio_url and urlparse(ref).netloc == urlparse(self.label_studio_url).netloc
            with_key = bool(same_host and _MEDIA_PATH.match(urlparse(ref).path))  # never the key for /api/...
        elif ref.startswith(_LS_PREFIXES) or lowered.startswith(_CLOUD):
            if not self.label_studio_url or not self.api_key:
                raise ImageLoadError(
                    _short(ref), "a Label Studio file: set LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY for the backend"
                )
            if lowered.startswith(_CLOUD) and task_id is None:
                raise ImageLoadError(_short(ref), "a cloud storage URI needs the task id to be presigned")
            sdk_paths = ref.startswith(("/data/", "data/upload", "upload/", "/upload/")) or lowered.startswith(_CLOUD)
            url = ref if sdk_paths else self.label_studio_url + "/" + ref.lstrip("/")
            with_key = True
        else:
            raise ImageLoadError(_short(ref), "unsupported image reference (expected a URL or a Label Studio path)")
        session = GuardedSession(self.policy, self.timeout, self.max_bytes)
        try:
            with http_session(session):
                path = get_local_path(
                    url,
                    cache_dir=str(tmp),
                    hostname=self.label_studio_url or "",
                    access_token=(self.api_key or "") if with_key else "",
                    task_id=task_id,
                    image_dir=str(tmp / "no-local-uploads"),  # never look into ~/.local/share/label-studio
                    download_resources=True,
                )
        except ImageLoadError as exc:
            raise ImageLoadError(_short(ref), exc.reason) from None
        except (requests.RequestException, OSError, ValueError) as exc:
            # one message for refused, unreachable and failing URLs: the answer must not map the network
            log.info("image %s: %s: %s", _short(ref), type(exc).__name__, _reason(exc))
            raise ImageLoadError(_short(ref), UNREADABLE_URL) from None
        finally:
            session.close()
        return Path(path)

    def _check_size(self, path: Path, ref: str) -> int:
        """The image's pixel count, read from its header, once its size and format are allowed."""
        if not path.is_file():
            raise ImageLoadError(_short(ref), "image not found")
        size = path.stat().st_size
        if size > self.max_bytes:
            raise ImageLoadError(_short(ref), f"image too large: {size} bytes > limit {self.max_bytes}")
        from PIL import Image

        try:
            with Image.open(path) as im:  # reads the header only
                width, height, kind = im.width, im.height, im.format
        except Image.DecompressionBombError as exc:  # PIL's own, higher limit
            raise ImageLoadError(_short(ref), f"image too large: {exc}") from None
        except Exception:  # noqa: BLE001 - nothing is decoded whose size is not known first
            raise ImageLoadError(_short(ref), f"not an image format the backend reads ({', '.join(FORMATS)})") from None
        if kind not in FORMATS:
            raise ImageLoadError(_short(ref), f"image format {kind} is not read ({', '.join(FORMATS)})")
        if width * height > self.max_pixels:
            raise ImageLoadError(_short(ref), f"image too large: {width}x{height} pixels > limit {self.max_pixels}")
        return width * height


def _reason(exc: BaseException) -> str:
    text = str(exc)
    errno = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)  # urllib3 nests the OS error in its message
    if errno:
        return errno.group(1).strip()
    return text if len(text) <= 160 else text[:157] + "..."


def _short(ref: str) -> str:
    """The reference for messages and logs: data: URLs cut short, no query string (it may hold a signature)."""
    if ref[:5].lower() == "data:":
        return ref[: min(len(ref), 40)] + ("..." if len(ref) > 40 else "")
    parsed = urlparse(ref)
    if parsed.query and parsed.scheme in ("http", "https"):
        return parsed._replace(query="...").geturl()
    return ref if len(ref) <= 300 else ref[:297] + "..."
