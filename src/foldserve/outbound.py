"""The one policy for every request the server makes on a user's behalf (``msa_url``, webhooks).

A user-given URL must not turn the server into a proxy to its own network (request forgery).
So: https only (http when the operator allows it), no credentials in the URL, and the host is
resolved and *every* address checked before connecting: loopback, private, link-local (cloud
metadata), shared, multicast, reserved and unspecified addresses are refused, whatever the
notation (``2130706433``, ``0x7f.1``, ``::ffff:127.0.0.1``, 6to4 and NAT64 embeddings). The
connection then goes to the checked address itself, with the name in ``Host`` and TLS SNI (the
certificate is verified against the name), so a second lookup cannot answer differently.
Redirects pass the same check, at most :data:`MAX_REDIRECTS`. URLs under an operator's
allow-listed prefix (an internal mirror) skip the address check; ``s3://`` reads only the
buckets the operator names.

Refusals are :class:`~foldserve.errors.InputError` naming the JSON field; failures to fetch
are :class:`~foldserve.remote.SourceFailed` with a reason that never quotes what came back.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated
from urllib.parse import unquote

import httpx
from pydantic import BaseModel, Field

from foldserve import remote
from foldserve.errors import InputError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: An operator's allow-listed URL prefix (settings of the server and of the RunPod worker).
UrlPrefix = Annotated[str, Field(pattern=r"^https?://[^/?#@\s]+(/[^?#\s]*)?$")]
#: An S3 bucket name jobs may read their MSA from.
BucketName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")]
#: ``(host, port)`` to the addresses it resolves to, as strings.
Resolver = Callable[[str, int], Sequence[str]]

MAX_REDIRECTS = 3
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0
#: A download that takes longer than this in all is abandoned, however steadily it trickles.
TOTAL_TIMEOUT = 300.0

#: Cloud metadata services, named in refusals (most are also in a refused range).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "192.0.0.192")
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_FIX = (
    "give an https:// URL of a public host, or ask the server's operator to allow it "
    "(foldserve serve --allow-url-prefix)"
)


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, as the operating system answers."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def parse_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """``host`` as an IPv4 address in any notation ``inet_aton`` accepts (``2130706433``,
    ``0x7f.1``, ``017700000001``, ``127.1``), or None when it is not one."""
    parts = host.removesuffix(".").split(".")
    if not 1 <= len(parts) <= 4:
        return None
    numbers: list[int] = []
    for part in parts:
        lowered = part.lower()
        try:
            if lowered.startswith("0x"):
                numbers.append(int(lowered[2:] or "0", 16))
            elif len(lowered) > 1 and lowered.startswith("0"):
                numbers.append(int(lowered[1:], 8))
            else:
                numbers.append(int(lowered, 10) if lowered.isdigit() else -1)
        except ValueError:
            return None
    *head, last = numbers
    if any(not 0 <= n <= 255 for n in head) or not 0 <= last < 256 ** (5 - len(numbers)):
        return None
    value = last
    for position, number in enumerate(head):
        value += number << (8 * (3 - position))
    return ipaddress.IPv4Address(value)


def refusal(address: IPAddress) -> str | None:
    """Why connecting to ``address`` is refused, or None for a public address."""
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            reason = refusal(embedded)
            return f"embeds {embedded}, {reason}" if reason else None
    for reason, flag in (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
    ):
        if flag:
            return f"a {reason} address"
    return None if address.is_global else "not a public address"


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, NAT64, compatible), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


@dataclass(frozen=True)
class Target:
    """A URL that passed the policy, and the address checked for it (None for ``s3://``)."""

    url: httpx.URL
    address: IPAddress | None

    @property
    def connect_url(self) -> httpx.URL:
        """The URL with the checked address for its host: no second lookup."""
        return self.url.copy_with(host=str(self.address))

    @property
    def headers(self) -> dict[str, str]:
        host = self.url.raw_host.decode("ascii")
        return {"Host": host if self.url.port is None else f"{host}:{self.url.port}"}

    @property
    def extensions(self) -> dict[str, str]:
        """TLS SNI, and so certificate verification, for the name rather than the address."""
        return (
            {"sni_hostname": self.url.raw_host.decode("ascii")}
            if self.url.scheme == "https"
            else {}
        )


@dataclass(frozen=True)
class OutboundPolicy:
    """What the server may fetch or call for a user; see the module's docstring."""

    allow_http: bool = False
    allow_prefixes: tuple[str, ...] = ()
    s3_buckets: tuple[str, ...] = ()
    resolver: Resolver = field(default=system_resolver, repr=False, compare=False)
    #: Tests pass a recording transport; None: httpx's own.
    transport: httpx.BaseTransport | None = field(default=None, repr=False, compare=False)
    connect_timeout: float = CONNECT_TIMEOUT
    read_timeout: float = READ_TIMEOUT
    total_timeout: float = TOTAL_TIMEOUT

    def check(self, url: str, *, where: str, allow_s3: bool = False) -> Target:
        """``url`` and the address to connect to; :class:`InputError` naming ``where`` if refused.

        Needs no connection, only name resolution, so the server decides at submission.
        """
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError, UnicodeError):
            raise InputError("not a valid URL", where=where, fix=_FIX) from None
        if parsed.scheme == "s3" and allow_s3:
            return self._check_s3(parsed, where)
        if parsed.scheme not in ("http", "https") or not parsed.raw_host:
            raise InputError(
                f"cannot fetch a {parsed.scheme or 'local'}:// URL", where=where, fix=_FIX
            )
        if parsed.scheme == "http" and not self.allow_http:
            raise InputError(
                "http:// is not allowed here",
                where=where,
                fix="use https://, or run the server with --allow-http",
            )
        if parsed.userinfo:
            raise InputError("credentials in the URL are not accepted", where=where, fix=_FIX)
        host = parsed.raw_host.decode("ascii")
        allowed = any(_under(parsed, prefix) for prefix in self.allow_prefixes)
        addresses = self._addresses(
            host, parsed.port or (443 if parsed.scheme == "https" else 80), where
        )
        if not allowed:
            for address in addresses:
                reason = refusal(address)
                if reason is not None:
                    shown = host if str(address) == host else f"{host} ({address})"
                    raise InputError(f"refused: {shown} is {reason}", where=where, fix=_FIX)
        return Target(parsed, addresses[0])

    def _check_s3(self, parsed: httpx.URL, where: str) -> Target:
        bucket = parsed.raw_host.decode("ascii")
        if bucket not in self.s3_buckets:
            raise InputError(
                f"s3 bucket {bucket[:64]!r} is not allowed here",
                where=where,
                fix="give an https:// URL, or ask the operator to allow the bucket (--s3-bucket)",
            )
        return Target(parsed, None)

    def _addresses(self, host: str, port: int, where: str) -> list[IPAddress]:
        literal = _literal(host)
        if literal is not None:
            return [literal]
        try:
            found = [ipaddress.ip_address(a.split("%")[0]) for a in self.resolver(host, port)]
        except (OSError, UnicodeError, ValueError):
            found = []
        if not found:
            raise InputError(
                f"host {host!r} does not resolve", where=where, fix="check the host name"
            )
        return found

    @contextlib.contextmanager
    def open(self, url: str, *, where: str) -> Iterator[remote.Opened]:
        """Stream ``url`` (GET; ``s3://`` from an allowed bucket) under the policy.

        Yields the chunks and the declared size; a refused URL, redirect included, raises
        :class:`InputError`, any other failure :class:`~foldserve.remote.SourceFailed`.
        """
        target = self.check(url, where=where, allow_s3=True)
        if target.address is None:
            with remote.open_source(
                url, connect_timeout=self.connect_timeout, read_timeout=self.read_timeout
            ) as opened:
                yield opened
            return
        deadline = time.monotonic() + self.total_timeout
        try:
            with self._client(self.read_timeout) as client:
                for _ in range(MAX_REDIRECTS + 1):
                    request = client.build_request(
                        "GET",
                        target.connect_url,
                        headers={**target.headers, "Accept-Encoding": "identity"},
                        extensions=target.extensions,
                    )
                    response = client.send(request, stream=True)
                    try:
                        if response.is_redirect:
                            target = self._redirect(target, response, where)
                            continue
                        _raise_for_status(response)
                        length = response.headers.get("Content-Length")
                        size = int(length) if length and length.isdigit() else None
                        yield _until(response.iter_bytes(), deadline, self.total_timeout), size
                        return
                    finally:
                        response.close()
        except httpx.HTTPError as exc:
            raise remote.SourceFailed(remote.describe(exc)) from None
        raise remote.SourceFailed(f"more than {MAX_REDIRECTS} redirects")

    def post(
        self, url: str, content: bytes, headers: Mapping[str, str], *, where: str, timeout: float
    ) -> None:
        """POST ``content`` to ``url`` under the policy, redirects not followed; the answer
        must be 2xx. Raises like :meth:`open`."""
        target = self.check(url, where=where)
        try:
            with (
                self._client(timeout) as client,
                client.stream(
                    "POST",
                    target.connect_url,
                    content=content,
                    headers={**headers, **target.headers},
                    extensions=target.extensions,
                ) as response,
            ):
                if not response.is_success:
                    raise remote.SourceFailed(remote.status_reason(response.status_code))
        except httpx.HTTPError as exc:
            raise remote.SourceFailed(remote.describe(exc)) from None

    def _redirect(self, target: Target, response: httpx.Response, where: str) -> Target:
        location = target.url.join(response.headers.get("Location", ""))
        try:
            return self.check(str(location), where=where)
        except InputError as exc:
            raise InputError(f"redirected, and {exc.problem}", where=where, fix=exc.fix) from None

    def _client(self, read_timeout: float) -> httpx.Client:
        # No proxies from the environment: the connection must go to the checked address.
        return httpx.Client(
            timeout=httpx.Timeout(read_timeout, connect=self.connect_timeout),
            follow_redirects=False,
            trust_env=False,
            transport=self.transport,
        )


def _literal(host: str) -> IPAddress | None:
    """``host`` as an IP address when it is written as one (IPv6 with an optional zone)."""
    if ":" in host:
        try:
            return ipaddress.IPv6Address(unquote(host).split("%")[0])
        except ValueError:
            return None
    return parse_ipv4(host)


def _under(url: httpx.URL, prefix: str) -> bool:
    """Whether ``url`` is under the allow-listed ``prefix``: same scheme, host and port, and a
    path at or below the prefix's (``/msa`` covers ``/msa/x`` but not ``/msa-private``)."""
    allowed = httpx.URL(prefix)
    if (url.scheme, url.raw_host.lower(), url.port) != (
        allowed.scheme,
        allowed.raw_host.lower(),
        allowed.port,
    ):
        return False
    path = allowed.path
    return url.path == path or url.path.startswith(path if path.endswith("/") else f"{path}/")


def _raise_for_status(response: httpx.Response) -> None:
    if not response.is_success:
        raise remote.SourceFailed(remote.status_reason(response.status_code))


def _until(chunks: Iterator[bytes], deadline: float, total: float) -> Iterator[bytes]:
    for chunk in chunks:
        if time.monotonic() > deadline:
            raise remote.SourceFailed(f"took longer than {total:g} s")
        yield chunk


#: https to public addresses only, no s3: for callers the operator has not configured.
STRICT = OutboundPolicy()


class OutboundSettings(BaseModel):
    """The operator's settings of the policy, shared by ``foldserve serve`` and the RunPod
    worker (each reads them as ``FOLDSERVE_ALLOW_HTTP``, ``FOLDSERVE_ALLOW_URL_PREFIXES``,
    ``FOLDSERVE_S3_BUCKETS``)."""

    allow_http: bool = False
    allow_url_prefixes: tuple[UrlPrefix, ...] = ()
    s3_buckets: tuple[BucketName, ...] = ()

    @property
    def outbound(self) -> OutboundPolicy:
        """What may be fetched or called for a user (``msa_url``, webhooks)."""
        return OutboundPolicy(
            allow_http=self.allow_http,
            allow_prefixes=self.allow_url_prefixes,
            s3_buckets=self.s3_buckets,
        )
