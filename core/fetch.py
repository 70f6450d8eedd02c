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
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes, urlparse

import numpy as np
import requests

from core.images import ImageLoadError, load_image

# label-studio-sdk logs every download at INFO and warns about "localhost" on every call; our
# per-task errors carry the reasons instead.
logging.getLogger("label_studio_sdk._extensions.label_studio_tools.core.utils.io").setLevel(logging.ERROR)

_LS_PREFIXES = ("/data/", "/tasks/", "/storage-data/", "/api/", "data/upload", "upload/", "/upload/")
_CLOUD = ("s3://", "gs://", "azure-blob://", "s3:", "gs:", "azure-blob:")


class _LimitedSession(requests.Session):
    """A session whose requests always have a timeout, a total deadline and a body size limit."""

    def __init__(self, timeout: float, max_bytes: int) -> None:
        super().__init__()
        self.timeout, self.max_bytes = timeout, max_bytes

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", (min(3.0, self.timeout), self.timeout))
        kwargs["stream"] = True
        deadline = time.monotonic() + self.timeout
        response = super().request(method, url, **kwargs)
        length = response.headers.get("Content-Length")
        if length and length.isdigit() and int(length) > self.max_bytes:
            response.close()
            raise ImageLoadError(url, f"image too large: {int(length)} bytes > limit {self.max_bytes}")
        body = bytearray()
        while chunk := response.raw.read1(1 << 16, decode_content=True):  # returns what has arrived
            body += chunk
            if len(body) > self.max_bytes:
                response.close()
                raise ImageLoadError(url, f"image too large: more than {self.max_bytes} bytes")
            if time.monotonic() > deadline:
                response.close()
                raise ImageLoadError(url, f"download took longer than {self.timeout:g} s")
        response._content = bytes(body)  # what response.content returns from now on
        response._content_consumed = True
        return response


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
    ) -> None:
        self.label_studio_url = label_studio_url.rstrip("/") if label_studio_url else None
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
        )

    def load(self, ref: object, task_id: int | None = None) -> np.ndarray:
        if not isinstance(ref, str) or not ref.strip():
            raise ImageLoadError(repr(ref)[:80], "the image field is empty or not a string")
        ref = ref.strip()
        local = self._local_storage_path(ref)
        if local is not None:  # read in place: no copy
            return self._decode(local, ref)
        with tempfile.TemporaryDirectory(prefix="alod-img-") as tmp:
            if ref[:5].lower() == "data:":
                path = self._from_data_url(ref, Path(tmp))
            else:
                path = self._download(ref, Path(tmp), task_id)
            return self._decode(path, ref)

    def _decode(self, path: Path, ref: str) -> np.ndarray:
        self._check_size(path, ref)
        try:
            return load_image(path)
        except ImageLoadError as exc:
            raise ImageLoadError(_short(ref), exc.reason) from None

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
        """A Local Storage URL read from disk when the document root is known here."""
        if self.document_root is None or not (ref.startswith("/data/local-files") and "d=" in ref):
            return None
        from label_studio_sdk._extensions.label_studio_tools.core.utils.io import (
            local_files_resolver,
            resolve_local_storage_file,
            safe_build_path,
        )

        root = str(self.document_root)

        def resolver(relative: str) -> str | None:
            try:
                return safe_build_path(root, relative.lstrip("/"))
            except ValueError:
                return None

        try:
            with local_files_resolver(resolver):
                path = resolve_local_storage_file(ref)
        except FileNotFoundError as exc:  # the path leaves the document root
            raise ImageLoadError(_short(ref), str(exc)) from None
        return Path(path) if path and Path(path).is_file() else None

    def _download(self, ref: str, tmp: Path, task_id: int | None) -> Path:
        from label_studio_sdk._extensions.label_studio_tools.core.utils.io import get_local_path, http_session

        lowered = ref.lower()
        if lowered.startswith(("http://", "https://")):
            url = ref
        elif ref.startswith(_LS_PREFIXES) or lowered.startswith(_CLOUD):
            if not self.label_studio_url or not self.api_key:
                raise ImageLoadError(
                    _short(ref), "a Label Studio file: set LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY for the backend"
                )
            if lowered.startswith(_CLOUD) and task_id is None:
                raise ImageLoadError(_short(ref), "a cloud storage URI needs the task id to be presigned")
            sdk_paths = ref.startswith(("/data/", "data/upload", "upload/", "/upload/")) or lowered.startswith(_CLOUD)
            url = ref if sdk_paths else self.label_studio_url + "/" + ref.lstrip("/")
        else:
            raise ImageLoadError(_short(ref), "unsupported image reference (expected a URL or a Label Studio path)")
        session = _LimitedSession(self.timeout, self.max_bytes)
        try:
            with http_session(session):
                path = get_local_path(
                    url,
                    cache_dir=str(tmp),
                    hostname=self.label_studio_url or "",
                    access_token=self.api_key or "",
                    task_id=task_id,
                    image_dir=str(tmp / "no-local-uploads"),  # never look into ~/.local/share/label-studio
                    download_resources=True,
                )
        except ImageLoadError as exc:
            raise ImageLoadError(_short(ref), exc.reason) from None
        except requests.HTTPError as exc:
            code = exc.response.status_code if exc.response is not None else "?"
            raise ImageLoadError(_short(ref), f"download failed: HTTP {code}") from None
        except requests.Timeout:
            raise ImageLoadError(_short(ref), f"download timed out after {self.timeout:g} s") from None
        except requests.ConnectionError as exc:
            raise ImageLoadError(_short(ref), f"cannot connect: {_reason(exc)}") from None
        except (requests.RequestException, OSError, ValueError) as exc:
            raise ImageLoadError(_short(ref), f"download failed: {type(exc).__name__}: {_reason(exc)}") from None
        finally:
            session.close()
        return Path(path)

    def _check_size(self, path: Path, ref: str) -> None:
        if not path.is_file():
            raise ImageLoadError(_short(ref), "image not found")
        size = path.stat().st_size
        if size > self.max_bytes:
            raise ImageLoadError(_short(ref), f"image too large: {size} bytes > limit {self.max_bytes}")
        from PIL import Image

        try:
            with Image.open(path) as im:  # reads the header only
                width, height = im.size
        except Image.DecompressionBombError as exc:  # PIL's own, higher limit
            raise ImageLoadError(_short(ref), f"image too large: {exc}") from None
        except Exception:  # noqa: BLE001 - not an image PIL knows: the decoder decides below
            return
        if width * height > self.max_pixels:
            raise ImageLoadError(
                _short(ref), f"image too large: {width}x{height} pixels > limit {self.max_pixels}"
            )


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
