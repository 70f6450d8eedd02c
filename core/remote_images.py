"""Images of the pool from local paths or URLs: http(s) and the object stores pyarrow reads (s3://, gs://).

A remote image is downloaded into a temporary file with its own suffix and decoded by
`core.images.load_image`, so the pixels are those a local copy of the file would give.
http(s) goes through the backend's guarded session (`core.egress`): only hosts listed in
``backend.image_hosts_allow`` (pool URLs may come from exported tasks, so the backend's rule holds
here too), every redirect hop checked again, one deadline from connect to last byte.
Object-store credentials come from the usual environment of pyarrow's filesystems
(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_DEFAULT_REGION, AWS_ENDPOINT_URL for MinIO and
other S3-compatible stores, GOOGLE_APPLICATION_CREDENTIALS for GCS).
"""

from __future__ import annotations

import functools
import logging
import os
import tempfile
from pathlib import PurePosixPath
from urllib.parse import urlparse

import numpy as np
import requests

from core.egress import EgressPolicy, EgressRefused, GuardedSession
from core.images import ImageLoadError, load_image

log = logging.getLogger(__name__)

MAX_BYTES = 100 << 20  # larger downloads are refused: an image this big is a mistake
TIMEOUT_S = 60.0


def load_location(location: str) -> np.ndarray:
    """The image at a local path or URL as an (H, W, 3) uint8 BGR array; ImageLoadError on failure."""
    scheme = urlparse(location).scheme.lower() if "://" in location else ""
    if not scheme:
        return load_image(location)
    if scheme in ("http", "https"):
        data = _read_http(location)
    elif scheme in ("s3", "gs", "gcs", "hdfs", "viewfs"):
        data = _read_object_store(location)
    else:
        raise ImageLoadError(location, f"unsupported URL scheme {scheme!r} (http, https, s3, gs)")
    suffix = PurePosixPath(urlparse(location).path).suffix or ".jpg"
    fd, tmp = tempfile.mkstemp(prefix="alod-img-", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        try:
            return load_image(tmp)
        except ImageLoadError as exc:
            raise ImageLoadError(location, exc.reason) from None
    finally:
        os.unlink(tmp)


@functools.lru_cache(maxsize=1)
def pipeline_policy() -> EgressPolicy:
    """Where pool images may be fetched from: the hosts of ``backend.image_hosts_allow`` (params.yaml,
    ``ALOD__BACKEND__IMAGE_HOSTS_ALLOW`` overriding it)."""
    from core.settings import load_params

    hosts = (load_params().get("backend") or {}).get("image_hosts_allow") or []
    return EgressPolicy.build(None, [str(h) for h in hosts])


def _read_http(url: str, policy: EgressPolicy | None = None) -> bytes:
    session = GuardedSession(policy or pipeline_policy(), TIMEOUT_S, MAX_BYTES + 1)
    try:
        response = session.get(url)
    except ImageLoadError as exc:  # over the size limit
        raise ImageLoadError(url, exc.reason) from None
    except EgressRefused as exc:  # the operator's own pool: the reason is theirs to see
        raise ImageLoadError(url, f"download refused: {exc} (backend.image_hosts_allow)") from None
    except requests.RequestException as exc:
        raise ImageLoadError(url, f"download failed: {type(exc).__name__}: {str(exc)[:160]}") from None
    finally:
        session.close()
    if response.status_code == 404:
        raise ImageLoadError(url, "image not found")
    if not response.ok:
        raise ImageLoadError(url, f"download failed: HTTP {response.status_code} {response.reason}")
    return _checked(url, response.content)


@functools.lru_cache(maxsize=64)
def _filesystem(scheme: str, bucket: str):  # noqa: ANN202 - a pyarrow.fs.FileSystem
    from pyarrow import fs

    filesystem, _ = fs.FileSystem.from_uri(f"{scheme}://{bucket}/")
    return filesystem


def _read_object_store(url: str) -> bytes:
    parsed = urlparse(url)
    try:
        filesystem = _filesystem(parsed.scheme.lower(), parsed.netloc)
        with filesystem.open_input_stream(f"{parsed.netloc}{parsed.path}") as stream:
            data = stream.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise ImageLoadError(url, "image not found") from None
    except (OSError, ValueError) as exc:  # pyarrow raises OSError subclasses for network and permission errors
        raise ImageLoadError(url, f"object store read failed: {str(exc).splitlines()[0][:200]}") from None
    return _checked(url, data)


def _checked(location: str, data: bytes) -> bytes:
    if len(data) > MAX_BYTES:
        raise ImageLoadError(location, f"image larger than {MAX_BYTES >> 20} MiB")
    if not data:
        raise ImageLoadError(location, "empty image file")
    return data
