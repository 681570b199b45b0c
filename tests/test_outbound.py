"""The outbound-request policy (msa_url, webhooks): what the server refuses to fetch or call.

Unit tests resolve names with a stub and never connect except to 127.0.0.1 servers started
here; the end-to-end tests drive a real ``foldserve serve`` with a loopback mirror allowed by
prefix.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from foldserve import remote
from foldserve.errors import InputError, MsaError, TooLarge
from foldserve.jobs import payload
from foldserve.jobs.input import FoldJobInput
from foldserve.outbound import MAX_REDIRECTS, OutboundPolicy, parse_ipv4
from tests.conftest import data
from tests.serving import SMALL_MSA, Server, running_server

PUBLIC_V4 = "93.184.216.34"
PUBLIC_V6 = "2606:4700::1111"
SECRET = "webhook-secret-for-tests"


@dataclass
class StubResolver:
    """Answers from a table and records every lookup; unknown names do not resolve."""

    table: dict[str, list[str]] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)

    def __call__(self, host: str, port: int) -> Sequence[str]:
        self.asked.append(host)
        if host not in self.table:
            raise socket.gaierror("Name or service not known")
        return self.table[host]


class RecordingTransport(httpx.HTTPTransport):
    """httpx's own transport, recording the address of every request it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.hosts: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.hosts.append(request.url.host)
        return super().handle_request(request)


def policy(**options: object) -> tuple[OutboundPolicy, StubResolver]:
    resolver = StubResolver(
        {
            "example.org": [PUBLIC_V4],
            "v6.example.org": [PUBLIC_V6],
            "localhost": ["127.0.0.1", "::1"],
            "metadata.google.internal": ["169.254.169.254"],
            "rebind.example": [PUBLIC_V4, "127.0.0.1"],
            "mirror.internal": ["10.1.2.3"],
        }
    )
    return OutboundPolicy(resolver=resolver, **options), resolver  # type: ignore[arg-type]


# -- the address check -------------------------------------------------------------------------

LITERALS = [
    ("127.0.0.1", "loopback"),
    ("2130706433", "loopback"),
    ("0x7f.1", "loopback"),
    ("0x7f000001", "loopback"),
    ("017700000001", "loopback"),
    ("127.1", "loopback"),
    ("127.0.0.1.", "loopback"),
    ("0.0.0.0", "unspecified"),
    ("0", "unspecified"),
    ("10.0.0.1", "private"),
    ("172.16.5.4", "private"),
    ("192.168.1.1", "private"),
    ("100.64.0.1", "not a public address"),
    ("169.254.169.254", "cloud metadata"),
    ("169.254.1.1", "link-local"),
    ("100.100.100.200", "cloud metadata"),
    ("224.0.0.1", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("[::1]", "loopback"),
    ("[::]", "unspecified"),
    ("[::ffff:127.0.0.1]", "embeds 127.0.0.1"),
    ("[::ffff:7f00:1]", "embeds 127.0.0.1"),
    ("[::ffff:169.254.169.254]", "cloud metadata"),
    ("[::127.0.0.1]", "embeds 127.0.0.1"),
    ("[2002:7f00:1::]", "embeds 127.0.0.1"),
    ("[2002:a00:1::1]", "embeds 10.0.0.1"),
    ("[64:ff9b::7f00:1]", "embeds 127.0.0.1"),
    ("[64:ff9b::a9fe:a9fe]", "cloud metadata"),
    ("[fe80::1]", "link-local"),
    ("[fe80::1%25eth0]", "link-local"),
    ("[fc00::1]", "private"),
    ("[fd12:3456::1]", "private"),
    ("[fd00:ec2::254]", "cloud metadata"),
    ("[ff02::1]", "multicast"),
    ("[2001:db8::1]", "private"),
]


@pytest.mark.timeout(10)
@pytest.mark.parametrize(("host", "reason"), LITERALS)
def test_addresses_in_any_notation_are_refused_without_a_lookup(host: str, reason: str) -> None:
    checker, resolver = policy()
    with pytest.raises(InputError) as caught:
        checker.check(f"https://{host}/msa.a3m", where="input.msa_url")
    assert caught.value.where == "input.msa_url"
    assert reason in caught.value.problem and "refused" in caught.value.problem
    assert caught.value.fix and "--allow-url-prefix" in caught.value.fix
    assert resolver.asked == []


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("localhost", "loopback"),
        ("LOCALHOST.", "loopback"),
        ("metadata.google.internal", "cloud metadata"),
        ("rebind.example", "loopback"),  # one refused address among public ones is enough
        ("mirror.internal", "private"),
    ],
)
def test_names_resolving_to_refused_addresses_are_refused(host: str, reason: str) -> None:
    checker, resolver = policy()
    resolver.table["localhost."] = resolver.table["localhost"]
    with pytest.raises(InputError, match=reason) as caught:
        checker.check(f"https://{host}:8443/x", where="webhook")
    assert caught.value.where == "webhook"
    assert resolver.asked == [host.lower()]


@pytest.mark.timeout(10)
def test_inet_aton_notations() -> None:
    assert str(parse_ipv4("1.2.3")) == "1.2.0.3"
    assert str(parse_ipv4("0xc0.0250.1")) == "192.168.0.1"
    assert parse_ipv4("256.1") is None and parse_ipv4("08") is None
    assert parse_ipv4("example.org") is None and parse_ipv4("1.2.3.4.5") is None


@pytest.mark.timeout(10)
def test_public_addresses_pass_and_the_connection_goes_to_the_checked_one() -> None:
    checker, _ = policy()
    target = checker.check("https://example.org/msas/q.a3m?v=1", where="input.msa_url")
    assert str(target.connect_url) == f"https://{PUBLIC_V4}/msas/q.a3m?v=1"
    assert target.headers == {"Host": "example.org"}
    assert target.extensions == {"sni_hostname": "example.org"}
    target = checker.check("https://v6.example.org:8443/x", where="input.msa_url")
    assert str(target.connect_url) == f"https://[{PUBLIC_V6}]:8443/x"
    assert target.headers == {"Host": "v6.example.org:8443"}
    # Literal public addresses, NAT64 of a public one included.
    for host in ("8.8.8.8", "[2606:4700::1111]", "[64:ff9b::808:808]"):
        checker.check(f"https://{host}/x", where="input.msa_url")


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://example.org/x", "http:// is not allowed"),
        ("file:///etc/passwd", "cannot fetch a file://"),
        ("/etc/passwd", "cannot fetch a local://"),
        ("ftp://example.org/x", "cannot fetch a ftp://"),
        ("gopher://127.0.0.1:6379/_INFO", "cannot fetch a gopher://"),
        ("s3://bucket/key", "bucket 'bucket' is not allowed"),
        ("https://user:pw@example.org/x", "credentials"),
        ("https://nowhere.invalid/x", "does not resolve"),
        ("https://[::1/x", "not a valid URL"),
        ("https://0177.0.0.1/x", "not a valid URL"),  # httpx refuses this notation itself
    ],
)
def test_schemes_credentials_and_unknown_hosts_are_refused(url: str, words: str) -> None:
    checker, _ = policy()
    with pytest.raises(InputError, match=words):
        checker.check(url, where="input.msa_url", allow_s3=True)


@pytest.mark.timeout(10)
def test_operator_settings_open_http_buckets_and_prefixes() -> None:
    checker, _ = policy(
        allow_http=True,
        s3_buckets=("msas",),
        allow_prefixes=("http://mirror.internal:8080/msa", "https://127.0.0.1/"),
    )
    checker.check("http://example.org/x", where="input.msa_url")
    assert checker.check("s3://msas/q.a3m", where="input.msa_url", allow_s3=True).address is None
    with pytest.raises(InputError, match="bucket"):
        checker.check("s3://other/q.a3m", where="input.msa_url", allow_s3=True)
    with pytest.raises(InputError, match="cannot fetch a s3://"):
        checker.check("s3://msas/q.a3m", where="webhook")
    target = checker.check("http://mirror.internal:8080/msa/q.a3m", where="input.msa_url")
    assert str(target.address) == "10.1.2.3"
    checker.check("https://127.0.0.1/anything", where="input.msa_url")
    for outside in (
        "http://mirror.internal:8080/msa-private/q.a3m",
        "http://mirror.internal:8081/msa/q.a3m",
        "https://mirror.internal:8080/msa/q.a3m",
        "http://127.0.0.1/anything",
    ):
        with pytest.raises(InputError, match="refused"):
            checker.check(outside, where="input.msa_url")
    strict, _ = policy(allow_prefixes=("http://mirror.internal:8080/msa",))
    with pytest.raises(InputError, match="--allow-http"):
        strict.check("http://mirror.internal:8080/msa/q.a3m", where="input.msa_url")


# -- fetching from loopback servers allowed by prefix ------------------------------------------


def serve(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, str]:
    """``handler`` on a free loopback port, in a thread; the server and its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture(scope="module")
def origin() -> Iterator[str]:
    """A loopback HTTP server with the routes the tests below use; its base URL."""
    routes: dict[str, tuple[int, dict[str, str], bytes]] = {
        "/msa.a3m": (200, {}, data(SMALL_MSA).read_bytes()),
        "/to-metadata": (302, {"Location": "http://169.254.169.254/latest/meta-data/"}, b""),
        "/to-localhost": (301, {"Location": "https://localhost/x"}, b""),
        "/hop": (307, {"Location": "/msa.a3m"}, b""),
        "/loop": (302, {"Location": "/loop"}, b""),
        "/secret": (500, {}, b"root:x:0:0:root:/root:/bin/bash\n"),
        "/passwd": (200, {}, b"root:x:0:0:root:/root:/bin/bash\n"),
        "/big": (200, {}, b">q\n" + b"A" * 5000 + b"\n"),
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            code, headers, body = routes.get(self.path, (404, {}, b""))
            # A hostile reason phrase: it must not reach an error message either.
            self.send_response(code, "root:x:0:0:root:/root:/bin/bash" if code == 500 else None)
            for name, value in {"Content-Length": str(len(body)), **headers}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server, base = serve(Handler)
    yield base
    server.shutdown()
    server.server_close()


def mirror_policy(base: str) -> tuple[OutboundPolicy, StubResolver, RecordingTransport]:
    transport = RecordingTransport()
    checker, resolver = policy(allow_http=True, allow_prefixes=(f"{base}/",), transport=transport)
    return checker, resolver, transport


def fetch(checker: OutboundPolicy, url: str) -> bytes:
    with checker.open(url, where="input.msa_url") as (chunks, _):
        return b"".join(chunks)


@pytest.mark.timeout(20)
def test_redirects_pass_the_same_check_before_any_connection(origin: str) -> None:
    checker, resolver, transport = mirror_policy(origin)
    with pytest.raises(InputError, match=r"redirected, and refused: 169\.254\.169\.254") as caught:
        fetch(checker, f"{origin}/to-metadata")
    assert caught.value.where == "input.msa_url"
    assert transport.hosts == ["127.0.0.1"] and resolver.asked == []
    with pytest.raises(InputError, match="redirected, and refused: localhost"):
        fetch(checker, f"{origin}/to-localhost")
    assert transport.hosts == ["127.0.0.1"] * 2 and resolver.asked == ["localhost"]
    # A redirect that stays under the allowed prefix is followed...
    assert fetch(checker, f"{origin}/hop") == data(SMALL_MSA).read_bytes()
    # ...but only so often.
    with pytest.raises(remote.SourceFailed, match=f"more than {MAX_REDIRECTS} redirects$"):
        fetch(checker, f"{origin}/loop")


@pytest.mark.timeout(20)
def test_what_came_back_never_appears_in_an_error(origin: str) -> None:
    checker, _, _ = mirror_policy(origin)
    job = FoldJobInput.model_validate({"msa_url": f"{origin}/secret"})
    with pytest.raises(InputError) as caught:
        payload.unpack_msa(job, outbound=checker)
    assert "HTTP 500 Internal Server Error" in str(caught.value)
    assert "root" not in str(caught.value)
    # Served, but not an MSA: the reader's message would quote the first line.
    job = FoldJobInput.model_validate({"msa_url": f"{origin}/passwd"})
    with pytest.raises(MsaError) as parsed:
        payload.unpack_msa(job, outbound=checker)
    assert parsed.value.source == "input.msa_url" and "root" not in str(parsed.value)
    # Something that is not HTTP at all (a Redis, an SSH server) is described, not quoted.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        def answer() -> None:
            connection, _ = listener.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(b"root:x:0:0:root:/root:/bin/bash\r\n\r\n")

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        raw, _ = policy(allow_http=True, allow_prefixes=(f"http://127.0.0.1:{port}/",))
        job = FoldJobInput.model_validate({"msa_url": f"http://127.0.0.1:{port}/x"})
        with pytest.raises(InputError) as caught:
            payload.unpack_msa(job, outbound=raw)
        thread.join(timeout=5)
    assert "not valid HTTP" in str(caught.value) and "root" not in str(caught.value)


@pytest.mark.timeout(20)
def test_size_and_time_caps_apply_while_streaming(
    origin: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    checker, _, _ = mirror_policy(origin)
    monkeypatch.setattr(payload, "MAX_MSA_BYTES", 1000)
    job = FoldJobInput.model_validate({"msa_url": f"{origin}/big"})
    with pytest.raises(TooLarge, match=r"input\.msa_url"):
        payload.unpack_msa(job, outbound=checker)
    stop = threading.Event()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        def trickle() -> None:
            connection, _ = listener.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
                while not stop.wait(0.05):
                    connection.sendall(b"A")

        thread = threading.Thread(target=trickle, daemon=True)
        thread.start()
        slow, _ = policy(
            allow_http=True, allow_prefixes=(f"http://127.0.0.1:{port}/",), total_timeout=0.5
        )
        try:
            with pytest.raises(remote.SourceFailed, match=r"took longer than 0\.5 s"):
                fetch(slow, f"http://127.0.0.1:{port}/x")
        finally:
            stop.set()
            thread.join(timeout=5)


# -- a real server -----------------------------------------------------------------------------


@dataclass
class Received:
    """What the webhook receiver got: (headers, raw body) per POST."""

    posts: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)
    base: str = ""


@pytest.fixture(scope="module")
def receiver() -> Iterator[Received]:
    received = Received()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.posts.append((dict(self.headers), body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            received.arrived.set()

        def log_message(self, *args: object) -> None:
            pass

    server, received.base = serve(Handler)
    yield received
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    test_params: Path,
    origin: str,
    receiver: Received,
) -> Iterator[Server]:
    """A server that allows http, the loopback mirror and receiver by prefix, and signs."""
    data_dir = tmp_path_factory.mktemp("outbound") / "data"
    with running_server(
        data_dir,
        test_params,
        "--allow-http",
        "--allow-url-prefix",
        f"{origin}/msa.a3m",
        "--allow-url-prefix",
        f"{receiver.base}/hooks/",
        env={"FOLDSERVE_WEBHOOK_SECRET": SECRET},
    ) as running:
        yield running


def _refused_urls(server: Server) -> list[tuple[str, str]]:
    port = server.root.rsplit(":", 1)[1]
    return [
        (f"http://127.0.0.1:{port}/v2/local/health", "loopback"),
        (f"http://localhost:{port}/x", "loopback"),
        ("http://2130706433/x", "loopback"),
        ("http://[::ffff:127.0.0.1]/x", "127.0.0.1"),
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("file:///etc/passwd", "cannot fetch a file://"),
        ("s3://bucket/key", "not allowed"),
    ]


@pytest.mark.timeout(120)
def test_refused_urls_get_400_at_submission_and_queue_nothing(server: Server) -> None:
    before = server.store.counts()
    for url, words in _refused_urls(server):
        response = server.request("POST", "/run", json={"input": {"msa_url": url}})
        assert response.status_code == 400, (url, response.text)
        body = response.json()
        assert body["field"] == "input.msa_url" and words in body["error"], (url, body)
        assert "Fix:" in body["error"]
    msa = data(SMALL_MSA).read_text()
    hook = f"http://127.0.0.1:{server.root.rsplit(':', 1)[1]}/v2/local/purge-queue"
    response = server.request("POST", "/run", json={"input": {"msa": msa}, "webhook": hook})
    assert response.status_code == 400 and response.json()["field"] == "webhook"
    assert server.store.counts() == before


@pytest.mark.timeout(240)
def test_an_allowed_mirror_works_and_the_webhook_arrives_signed(
    server: Server, origin: str, receiver: Received
) -> None:
    job_id = server.submit(
        {"msa_url": f"{origin}/msa.a3m", "models": [1], "num_recycles": 1},
        webhook=f"{receiver.base}/hooks/done",
    )
    body = server.wait_finished(job_id)
    assert body["status"] == "COMPLETED", body
    assert body["output"]["query"]["length"] == 62
    assert receiver.arrived.wait(60)
    headers, raw = receiver.posts[0]
    assert json.loads(raw)["id"] == job_id
    timestamp = headers["X-Foldserve-Timestamp"]
    expected = hmac.new(SECRET.encode(), timestamp.encode() + b"." + raw, hashlib.sha256)
    assert headers["X-Foldserve-Signature"] == f"sha256={expected.hexdigest()}"
