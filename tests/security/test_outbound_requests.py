"""Image URLs in tasks cannot reach inside: only allowed hosts, checked at every hop, one answer for all failures."""

from __future__ import annotations

import numpy as np
import pytest

from core.fetch import UNREADABLE_URL, ImageFetcher
from core.images import ImageLoadError


def jpeg(shared) -> bytes:
    return (shared / "data/coco128/images/train2017/000000000036.jpg").read_bytes()


@pytest.mark.parametrize(
    "spelling",
    [
        "http://127.0.0.1:{port}/",
        "http://localhost:{port}/",
        "http://2130706433:{port}/",
        "http://0x7f.0.0.1:{port}/",
        "http://0177.0.0.1:{port}/",
        "http://127.1:{port}/",
        "http://[::ffff:127.0.0.1]:{port}/",
        "http://[::1]:{port}/",
        "http://0.0.0.0:{port}/",
    ],
)
def test_an_internal_service_is_not_reached_however_its_address_is_written(targets, spelling):
    internal = targets("127.0.0.1")
    with pytest.raises(ImageLoadError) as refused:
        ImageFetcher().load(spelling.format(port=internal.port) + "image.jpg")
    assert refused.value.reason == UNREADABLE_URL
    assert internal.seen == []


def test_an_allowed_host_is_read_and_a_redirect_into_the_network_is_refused(targets, shared):
    internal = targets("127.0.0.1")
    public = targets("127.0.0.2", body=jpeg(shared))
    bouncer = targets("127.0.0.2", redirect_to=f"{internal.url}/image.jpg")
    fetcher = ImageFetcher(allowed_hosts=("127.0.0.2",))  # the deployment's storage host
    assert isinstance(fetcher.load(f"{public.url}/image.jpg"), np.ndarray)  # the positive control
    with pytest.raises(ImageLoadError, match="cannot read the image at this URL"):
        fetcher.load(f"{bouncer.url}/image.jpg")
    assert len(bouncer.seen) == 1 and internal.seen == []


def test_a_wildcard_name_never_reaches_an_internal_address(targets):
    internal = targets("127.0.0.1")
    with pytest.raises(ImageLoadError, match="cannot read the image at this URL"):
        ImageFetcher(allowed_hosts=("*host",)).load(f"http://localhost:{internal.port}/image.jpg")
    assert internal.seen == []


def test_an_open_port_a_closed_port_and_a_refused_host_give_one_and_the_same_answer(targets):
    internal = targets("127.0.0.1")  # open, but not allowed
    closed = targets("127.0.0.2")
    closed_port = closed.port
    closed.port = 0  # nothing listens on 127.0.0.2:1
    fetcher = ImageFetcher(allowed_hosts=("127.0.0.2",), timeout=3)
    reasons = set()
    for url in (f"{internal.url}/x.jpg", "http://127.0.0.2:1/x.jpg", f"http://internal.example:{closed_port}/x.jpg"):
        with pytest.raises(ImageLoadError) as failed:
            fetcher.load(url)
        reasons.add(failed.value.reason)
    assert reasons == {UNREADABLE_URL}
    assert internal.seen == []


def test_label_studio_is_allowed_on_its_own_port_only():
    from core.egress import EgressPolicy

    policy = EgressPolicy.build("http://127.0.0.1:8080", ["*.s3.amazonaws.com", "10.0.0.0/8"])
    assert policy.host_allowed("127.0.0.1", 8080) and not policy.host_allowed("127.0.0.1", 6379)
    assert policy.host_allowed("bucket.s3.amazonaws.com", 443) and not policy.host_allowed("evil.example", 443)
    assert policy.host_allowed("10.1.2.3", 80) and policy.address_allowed("10.1.2.3", "10.1.2.3")
    assert policy.address_allowed("bucket.s3.amazonaws.com", "10.1.2.3")  # inside an allowed network
    assert not policy.address_allowed("bucket.s3.amazonaws.com", "192.168.1.1")  # wildcard name, internal address
    assert not policy.address_allowed("bucket.s3.amazonaws.com", "::ffff:127.0.0.1")


def test_a_symlink_inside_the_local_files_root_cannot_lead_out_of_it(tmp_path, shared):
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.jpg").write_bytes(jpeg(shared))
    (root / "inside.jpg").write_bytes(jpeg(shared))
    (root / "link.jpg").symlink_to(outside / "secret.jpg")
    fetcher = ImageFetcher(document_root=root)
    assert isinstance(fetcher.load("/data/local-files/?d=inside.jpg"), np.ndarray)
    for ref in ("/data/local-files/?d=link.jpg", "/data/local-files/?d=../outside/secret.jpg"):
        with pytest.raises(ImageLoadError, match="outside the document root"):
            fetcher.load(ref)
