"""Where the backend may send a request for an image, and for how long.

An image URL comes from a task, so from whoever can write tasks or call ``/predict``: without a
guard it reaches internal services (and tells an open port from a closed one). The rules:

- A URL is fetched only when its host is the Label Studio host or matches ``allowed_hosts``
  (exact names, ``*.suffix`` patterns, IP addresses or CIDR networks; e.g. the storage hosts of
  presigned URLs). Only http and https.
- The address actually connected to is checked after the connection is made (so a name that
  resolves differently the second time cannot slip through): loopback, private, link-local,
  unspecified, multicast and reserved addresses are refused unless the host is the Label Studio
  host, matched by an exact name, or the address lies in an allowed network.
- Every redirect hop is checked the same way; at most `MAX_REDIRECTS`.
- One deadline covers the whole fetch, connect to last byte over all hops: when it passes, the
  sockets are shut down, so slow headers or a slow chain of redirects cannot hold a thread.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlparse

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

MAX_REDIRECTS = 3
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class EgressRefused(requests.ConnectionError):
    """A URL or address the policy does not allow."""


def _is_internal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not address.is_global or address.is_multicast


@dataclass(frozen=True)
class EgressPolicy:
    label_studio_host: str | None = None
    label_studio_port: int | None = None  # Label Studio is allowed on its own port, not on every port of its host
    host_patterns: tuple[str, ...] = ()
    networks: tuple[Network, ...] = ()

    @classmethod
    def build(cls, label_studio_url: str | None, allowed: Iterable[str] = ()) -> EgressPolicy:
        patterns, networks = [], []
        for entry in allowed:
            entry = str(entry).strip().lower()
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                patterns.append(entry)
        parsed = urlparse(label_studio_url) if label_studio_url else None
        host = parsed.hostname.lower() if parsed and parsed.hostname else None
        return cls(host, _port(parsed) if parsed else None, tuple(patterns), tuple(networks))

    def host_allowed(self, host: str, port: int | None = None) -> bool:
        host = host.lower().strip("[]")
        is_label_studio = host == self.label_studio_host and (port is None or port == self.label_studio_port)
        if is_label_studio or any(fnmatch.fnmatchcase(host, p) for p in self.host_patterns):
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in net for net in self.networks)

    def address_allowed(self, host: str, ip: str) -> bool:
        """May ``host`` (already allowed by name) be reached at the connected address ``ip``?"""
        address = ipaddress.ip_address(ip.split("%")[0])
        if not _is_internal(address):
            return True
        host = host.lower().strip("[]")
        exact = host == self.label_studio_host or host in self.host_patterns  # no wildcard reaches inside
        return exact or any(address in net for net in self.networks)


def _port(parsed: Any) -> int:
    return parsed.port or (443 if parsed.scheme == "https" else 80)


@dataclass
class _Guard:
    """One fetch: its policy, its deadline, and the sockets to shut when the deadline passes."""

    policy: EgressPolicy
    deadline: float
    sockets: list[socket.socket] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def track(self, sock: socket.socket) -> None:
        with self.lock:
            self.sockets.append(sock)

    def expire(self) -> None:
        with self.lock:
            for sock in self.sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def _connection_classes(guard: _Guard) -> tuple[type[HTTPConnection], type[HTTPSConnection]]:
    def new_conn(self: Any, base: type) -> socket.socket:
        if guard.remaining() <= 0:
            raise EgressRefused("deadline passed")
        sock = base._new_conn(self)
        peer = sock.getpeername()[0]
        if not guard.policy.address_allowed(self.host, peer):
            sock.close()
            raise EgressRefused(f"{self.host} resolved to an internal address")
        sock.settimeout(max(0.01, min(guard.remaining(), sock.gettimeout() or guard.remaining())))
        guard.track(sock)
        return sock

    http = type("GuardedHTTPConnection", (HTTPConnection,), {"_new_conn": lambda s: new_conn(s, HTTPConnection)})
    https = type("GuardedHTTPSConnection", (HTTPSConnection,), {"_new_conn": lambda s: new_conn(s, HTTPSConnection)})
    return http, https


class _GuardedAdapter(HTTPAdapter):
    def __init__(self, guard: _Guard) -> None:
        self.guard = guard
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        http, https = _connection_classes(self.guard)
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("GuardedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http}),
            "https": type("GuardedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https}),
        }


class GuardedSession(requests.Session):
    """A session for one fetch under ``policy`` with a total ``timeout`` and a body limit of ``max_bytes``."""

    def __init__(self, policy: EgressPolicy, timeout: float, max_bytes: int) -> None:
        super().__init__()
        self.trust_env = False  # no proxy from the environment: the connected address is what is checked
        self.policy, self.timeout, self.max_bytes = policy, float(timeout), int(max_bytes)
        self.guard = _Guard(policy, time.monotonic() + self.timeout)
        adapter = _GuardedAdapter(self.guard)
        self.mount("http://", adapter)
        self.mount("https://", adapter)
        self._timer = threading.Timer(self.timeout, self.guard.expire)
        self._timer.daemon = True
        self._timer.start()

    def close(self) -> None:
        self._timer.cancel()
        super().close()

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        for fixed in ("allow_redirects", "stream", "timeout"):  # this session decides these
            kwargs.pop(fixed, None)
        headers = dict(kwargs.pop("headers", None) or {})
        for _hop in range(MAX_REDIRECTS + 1):
            self._check_url(url)
            remaining = self.guard.remaining()
            if remaining <= 0:
                raise requests.Timeout(f"the fetch took longer than {self.timeout:g} s")
            response = super().request(
                method,
                url,
                headers=headers,
                allow_redirects=False,
                stream=True,
                timeout=(min(3.0, remaining), remaining),
                **kwargs,
            )
            if not response.is_redirect:
                return self._read(response, url)
            target = urljoin(url, response.headers["Location"])
            response.close()
            if urlparse(target).hostname != urlparse(url).hostname:
                headers.pop("Authorization", None)  # a credential never follows a redirect to another host
            url = target
        raise EgressRefused(f"more than {MAX_REDIRECTS} redirects")

    def _check_url(self, url: str) -> None:
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise EgressRefused(f"not an http(s) URL: {parsed.scheme}")
        if not self.policy.host_allowed(parsed.hostname, _port(parsed)):
            raise EgressRefused(f"host {parsed.hostname} is not allowed")

    def _read(self, response: requests.Response, url: str) -> requests.Response:
        from core.images import ImageLoadError

        length = response.headers.get("Content-Length")
        if length and length.isdigit() and int(length) > self.max_bytes:
            response.close()
            raise ImageLoadError(url, f"image too large: {int(length)} bytes > limit {self.max_bytes}")
        body = bytearray()
        try:
            while chunk := response.raw.read1(1 << 16, decode_content=True):  # returns what has arrived
                body += chunk
                if len(body) > self.max_bytes:
                    raise ImageLoadError(url, f"image too large: more than {self.max_bytes} bytes")
        except ImageLoadError:
            raise
        except (OSError, urllib3.exceptions.HTTPError):  # the deadline shut the socket, or the peer broke off
            raise requests.Timeout(f"the fetch did not finish within {self.timeout:g} s") from None
        finally:
            response.close()
        if self.guard.remaining() <= 0:
            raise requests.Timeout(f"the fetch took longer than {self.timeout:g} s")
        response._content = bytes(body)  # what response.content returns from now on
        response._content_consumed = True
        return response
