"""ColabFold's MMseqs2 server (``--server URL``), spoken as ``colabfold_batch`` speaks it.

The protocol (ColabFold's ``colabfold.colabfold.run_mmseqs2``; the server is soedinglab's
MMseqs2-App):

* ``POST {url}/ticket/msa``, a form with ``q`` (a FASTA of every query, headers ``>101``,
  ``>102``, ...) and ``mode`` (``env``, ``all``, ``env-nofilter``, ``nofilter``); for the
  paired MSA of a complex ``POST {url}/ticket/pair`` with ``mode`` ``pairgreedy`` or
  ``paircomplete``. The answer is a ticket, ``{"id", "status"}``.
* ``GET {url}/ticket/{id}`` until the status is ``COMPLETE``, every 5-10 s.
* ``GET {url}/result/download/{id}``: a tar.gz holding ``uniref.a3m`` and, with ``env``,
  ``bfd.mgnify30.metaeuk30.smag30.a3m`` (pairing: ``pair.a3m``). In each file the queries'
  alignments follow one another, separated by NUL bytes, each starting with its query
  (``>101``, ...).

Statuses: ``PENDING`` and ``RUNNING`` are waited on; ``UNKNOWN`` (a ticket the server lost),
``RATELIMIT`` and ``MAINTENANCE`` are waited out and the query submitted again; ``ERROR``
ends the search. The server names a ticket by a hash of its query, so submitting the same
query again finds the same job rather than starting another.

Fair use: one ticket for all the queries, one ticket at a time, and a user agent naming
foldserve (and the user's email when given, as ColabFold asks). Unlike ``colabfold_batch``,
every retry is bounded: a request that fails in transit is tried again a few times with
backoff (not immediately and forever after a timeout), resubmissions are counted across the
whole search (the count is not reset inside a loop), and every wait, the requests included,
ends by ``settings.timeout_s`` with a message saying what the server last said.
"""

from __future__ import annotations

import io
import random
import re
import tarfile
import time
import zlib
from collections.abc import Callable, Sequence
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from typing import NoReturn

import httpx
import tenacity
from pydantic import BaseModel, ConfigDict, ValidationError

from foldserve._version import __version__
from foldserve.errors import InputError, Refused, RemoteError, Unavailable, WaitTimedOut
from foldserve.msa.search.cache import CacheKey, HitRows, SearchCache
from foldserve.msa.search.results import DatabaseHits, Query, SearchResult
from foldserve.msa.search.settings import (
    DEFAULT_SERVER,
    OnSearchProgress,
    SearchProgress,
    SearchSettings,
)
from foldserve.outbound import OutboundPolicy
from foldserve.remote import describe, status_reason
from foldserve.retry import RetryPolicy

TOOL = "colabfold-server"
UNIREF = "uniref"
ENVIRONMENTAL = "bfd.mgnify30.metaeuk30.smag30"
PAIRED = "pair"
#: The modes whose answer adds the environmental databases' file.
ENV_MODES = frozenset({"env", "env-nofilter"})
#: The header of the first query in a ticket's FASTA, as ColabFold numbers them.
FIRST_ID = 101
#: Seconds between polls of a ticket, drawn at random in this range (ColabFold: 5 + 0..5).
POLL_S = (5.0, 10.0)
#: Retries of one request that failed in transit (no answer, a dropped connection, a 5xx).
TRANSPORT_RETRIES = 5
#: Submissions after the first, in one search, for UNKNOWN, RATELIMIT and MAINTENANCE.
RESUBMISSIONS = 8
#: The template hits in a ticket's result (``use_templates``): MMseqs2 m8 rows against pdb70.
TEMPLATE_HITS = "pdb70.m8"
#: Templates asked of ``/template/{ids}`` per query: the first 20 hits, as ColabFold asks.
SERVER_TEMPLATES = 20
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 60.0

_TEMPLATE_NAME = re.compile(r"^[A-Za-z0-9]{4}_[A-Za-z0-9.]+$")
_TEMPLATE_MEMBER = re.compile(r"^(?:[A-Za-z0-9]{4}\.cif|pdb70_a3m\.ff(?:data|index))$")
_TICKET_ID = re.compile(r"^[A-Za-z0-9_=-]{1,128}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
#: How much of an answer that is not the protocol a message quotes.
_QUOTED = 120
_FIX_PROTOCOL = (
    f"check that --server is a ColabFold MMseqs2 server (the public one is {DEFAULT_SERVER})"
)
_FIX_AGAIN = "try again later; if it persists, tell the server's operators"


def search_server(
    queries: Sequence[Query],
    settings: SearchSettings,
    *,
    progress: OnSearchProgress | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    jitter: Callable[[float, float], float] = random.uniform,
) -> list[SearchResult]:
    """Search every query on ColabFold's MMseqs2 server: one :class:`SearchResult` each, in
    order, with one :class:`DatabaseHits` per result file (uniref first).

    Answers are cached per sequence (:mod:`.cache`): only the queries not cached are sent,
    and nothing at all when every one is. ``settings.use_cache=False`` asks again and
    refreshes the cache. With ``settings.pair`` the chains are paired with one another, so
    they are sent, and cached, together. ``sleep``, ``clock`` and ``jitter`` (a number drawn
    between two bounds) are the real ones unless a test passes its own.

    Raises :class:`InputError` for a bad URL or email, :class:`Unavailable` when the server
    cannot be reached or keeps asking to wait, :class:`WaitTimedOut` after
    ``settings.timeout_s``, :class:`Refused` or :class:`RemoteError` for an answer that is
    an error or not the protocol.
    """
    server = (settings.server or DEFAULT_SERVER).rstrip("/")
    mode = settings.pair or settings.mode
    sequences = list(dict.fromkeys(query.sequence for query in queries))
    if settings.pair is not None and len(sequences) < 2:
        raise InputError(
            f"pairing needs at least two different chains, got {len(sequences)}",
            where="--pair",
            fix="give the FASTA of every chain of the complex",
        )
    complex_ = tuple(sequences) if settings.pair is not None else ()
    keys = {sequence: CacheKey(sequence, mode, server, complex_) for sequence in sequences}
    cache = SearchCache()
    found = {
        sequence: hits
        for sequence in (sequences if settings.use_cache else [])
        if (hits := cache.get(keys[sequence])) is not None
    }
    missing = [sequence for sequence in sequences if sequence not in found]
    if missing and settings.pair is not None:
        missing = sequences  # the pairing needs every chain in the ticket
    if missing:
        session = _Session(server, mode, settings, progress, sleep, clock, jitter)
        for sequence, hits in session.search(missing).items():
            cache.put(keys[sequence], hits)
            found[sequence] = hits
    source = f"{server} (mode {mode})"
    return [
        SearchResult(
            query=query,
            tool=TOOL,
            source=source,
            hits=tuple(rows.for_query(query) for rows in found[query.sequence]),
        )
        for query in queries
    ]


def user_agent(email: str | None) -> str:
    """``foldserve/VERSION``, then the email when given: the ``toolname/version
    contact@email`` ColabFold asks its users to send."""
    return f"foldserve/{__version__}" if email is None else f"foldserve/{__version__} {email}"


def result_files(mode: str) -> tuple[str, ...]:
    """The databases whose A3M a ticket of ``mode`` answers with, in merge order."""
    if mode.startswith("pair"):
        return (PAIRED,)
    return (UNIREF, ENVIRONMENTAL) if mode in ENV_MODES else (UNIREF,)


def server_template_hits(
    sequences: Sequence[str],
    settings: SearchSettings,
    *,
    progress: OnSearchProgress | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    jitter: Callable[[float, float], float] = random.uniform,
) -> str:
    """The template hits (``pdb70.m8``) of an MSA search of ``sequences``, the distinct
    chains in order (queries ``>101``, ``>102`` ...): what ``run_mmseqs2(...,
    use_templates=True)`` reads from the result of its ``/ticket/msa`` ticket. The server
    names a ticket by its query, so after :func:`search_server` of the same sequences and mode
    this finds the finished job again instead of starting another. Raises as
    :func:`search_server` does."""
    if settings.pair is not None:
        raise InputError(
            "template hits come with the MSA search, not with the pairing",
            where="--pair",
            fix="ask for templates with the unpaired search",
        )
    server = (settings.server or DEFAULT_SERVER).rstrip("/")
    session = _Session(server, settings.mode, settings, progress, sleep, clock, jitter)
    return session.template_hits(list(dict.fromkeys(sequences)))


def parse_template_hits(m8_text: str) -> dict[int, tuple[str, ...]]:
    """The template names (``1bjp_A``) of each query id in a ``pdb70.m8``, in file order
    (MMseqs2's, best first). Raises :class:`RemoteError` for a row that is not m8."""
    hits: dict[int, list[str]] = {}
    for number, line in enumerate(m8_text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) < 12 or not fields[0].isdigit() or not _TEMPLATE_NAME.match(fields[1]):
            raise RemoteError(
                f"{TEMPLATE_HITS} line {number} is not an m8 row of a query id and a template "
                f"like 1abc_A: {_printable(line)!r}",
                fix=_FIX_PROTOCOL,
            )
        hits.setdefault(int(fields[0]), []).append(fields[1])
    return {query_id: tuple(names) for query_id, names in hits.items()}


def fetch_server_templates(
    settings: SearchSettings,
    m8_text: str,
    into_dir: Path,
    *,
    progress: OnSearchProgress | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    jitter: Callable[[float, float], float] = random.uniform,
) -> dict[int, Path]:
    """Each query's templates from the server's ``/template/{ids}`` route (its first
    :data:`SERVER_TEMPLATES` hits in ``m8_text``), as ``colabfold_batch`` fetches them: one
    folder per query, ``into_dir/templates_{id}``, holding the mmCIF files and the
    ``pdb70_a3m`` database of the server's tarball, plus the ``pdb70_cs219`` files ColabFold
    adds (an index copied from ``pdb70_a3m.ffindex``, empty data). Keyed by chain index
    (query id - 101); a query without hits has no folder.
    """
    server = (settings.server or DEFAULT_SERVER).rstrip("/")
    session = _Session(server, settings.mode, settings, progress, sleep, clock, jitter)
    folders: dict[int, Path] = {}
    with session.client:
        for query_id, names in sorted(parse_template_hits(m8_text).items()):
            folder = into_dir / f"templates_{query_id}"
            folder.mkdir(parents=True, exist_ok=True)
            asked = ",".join(names[:SERVER_TEMPLATES])
            session._say(f"downloading templates of query {query_id}: {asked}")
            answer = session._request("GET", f"template/{asked}")
            if answer.status_code != 200:
                session._not_protocol(answer)
            _extract_templates(answer.content, folder, f"the templates of query {query_id}")
            folders[query_id - FIRST_ID] = folder
    return folders


def _extract_templates(archive: bytes, folder: Path, where: str) -> None:
    """The mmCIF files and ``pdb70_a3m`` files of a template tarball into ``folder`` (no
    other member, no path but a plain name), then ColabFold's ``pdb70_cs219`` stubs."""
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            for member in tar.getmembers():
                name = PurePosixPath(member.name).name
                handle = tar.extractfile(member) if member.isfile() else None
                if handle is not None and _TEMPLATE_MEMBER.match(name):
                    (folder / name).write_bytes(handle.read())
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise RemoteError(
            f"{where} is not a readable tar.gz ({type(exc).__name__})", fix=_FIX_AGAIN
        ) from None
    index = folder / "pdb70_a3m.ffindex"
    if not index.is_file() or not (folder / "pdb70_a3m.ffdata").is_file():
        raise RemoteError(
            f"{where} has no pdb70_a3m.ffindex and .ffdata (it holds "
            f"{sorted(p.name for p in folder.iterdir()) or 'nothing'})",
            fix=_FIX_PROTOCOL,
        )
    (folder / "pdb70_cs219.ffindex").write_bytes(index.read_bytes())
    (folder / "pdb70_cs219.ffdata").write_text("")


class _Ticket(BaseModel):
    """The server's answer to a submission or a poll."""

    model_config = ConfigDict(frozen=True)

    status: str
    id: str | None = None
    #: Sent with RATELIMIT.
    reason: str | None = None

    def said(self, *notes: str) -> str:
        """``PENDING (ticket abc, 40 s)``, ``RATELIMIT: why``."""
        notes = (f"ticket {self.id}", *notes) if self.id else notes
        said = f"{self.status} ({', '.join(notes)})" if notes else self.status
        return f"{said}: {_printable(self.reason)}" if self.reason else said


class _Transient(Exception):
    """One request that failed in transit; worth sending again."""


class _Again(Exception):
    """A status that asks for the query to be submitted again after a while."""

    def __init__(self, ticket: _Ticket) -> None:
        super().__init__(ticket.said())
        self.ticket = ticket


class _Session:
    """One search on one server: submit, poll, download, read; every wait under one deadline."""

    def __init__(
        self,
        server: str,
        mode: str,
        settings: SearchSettings,
        progress: OnSearchProgress | None,
        sleep: Callable[[float], None],
        clock: Callable[[], float],
        jitter: Callable[[float, float], float],
    ) -> None:
        if settings.email is not None and not _EMAIL.match(settings.email):
            raise InputError(
                f"{settings.email[:_QUOTED]!r} is not an email address",
                where="--email",
                fix="give an address like name@example.org, or leave --email out",
            )
        # The user's own choice of server, which may well sit on their lab's network: any
        # address is allowed (an allow-listed prefix), scheme and credentials are checked.
        try:
            OutboundPolicy(allow_http=True, allow_prefixes=(server,)).check(
                server, where="--server"
            )
        except InputError as exc:
            raise InputError(
                exc.problem,
                where="--server",
                fix=f"give the http(s):// URL of a ColabFold MMseqs2 server (the public one is "
                f"{DEFAULT_SERVER}); if its host does not resolve, check your network",
            ) from None
        self.server = server
        self.mode = mode
        self.route = "ticket/pair" if settings.pair is not None else "ticket/msa"
        self.email = settings.email
        self.progress = progress
        self.sleep = sleep
        self.clock = clock
        self.jitter = jitter
        self.timeout_s = settings.timeout_s
        self.deadline = clock() + settings.timeout_s
        self.last_said = "nothing yet"
        self.ticket_id: str | None = None
        self.requests = RetryPolicy(
            max_retries=TRANSPORT_RETRIES,
            first_s=5.0,
            max_s=60.0,
            sleep=self.wait,
            clock=clock,
            jitter=jitter,
        )
        self.resubmissions = RetryPolicy(
            max_retries=RESUBMISSIONS,
            first_s=10.0,
            max_s=300.0,
            sleep=self.wait,
            clock=clock,
            jitter=jitter,
        )
        self.client = httpx.Client(
            headers={"User-Agent": user_agent(self.email)},
            timeout=httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
            follow_redirects=False,
        )

    def search(self, sequences: list[str]) -> dict[str, tuple[HitRows, ...]]:
        """Each sequence's hits, per result file; one ticket for all of them."""
        queries = "1 query" if len(sequences) == 1 else f"{len(sequences)} queries"
        self._say(f"submitting {queries} to {self.server} (mode {self.mode})")
        ticket_id, archive = self._result(sequences)
        return _read_archive(archive, ticket_id, sequences, result_files(self.mode))

    def _result(self, sequences: list[str]) -> tuple[str, bytes]:
        """The ticket of ``sequences`` (submitted, or found again) and its result archive."""
        fasta = "".join(f">{FIRST_ID + i}\n{sequence}\n" for i, sequence in enumerate(sequences))
        with self.client:
            retrying = self.resubmissions.retrying(_Again).copy(
                before_sleep=self._notice("submitting again")
            )
            try:
                ticket_id: str = retrying(self._ticket, fasta)
            except _Again as again:
                raise Unavailable(
                    f"{self.server}: {RESUBMISSIONS + 1} submissions, and the last answer was "
                    f"still {again.ticket.said()}",
                    fix=_fix_for(again.ticket.status),
                ) from None
            self._say(f"downloading the result (ticket {ticket_id})")
            archive = self._request("GET", f"result/download/{ticket_id}")
        if archive.status_code != 200:
            self._not_protocol(archive)
        return ticket_id, archive.content

    def template_hits(self, sequences: list[str]) -> str:
        """The ``pdb70.m8`` of the MSA ticket of ``sequences``."""
        self._say(f"asking {self.server} for template hits (mode {self.mode})")
        ticket_id, content = self._result(sequences)
        where = f"the result of ticket {ticket_id}"
        try:
            with tarfile.open(fileobj=io.BytesIO(content), mode="r:gz") as tar:
                members = {PurePosixPath(m.name).name: m for m in tar.getmembers() if m.isfile()}
                member = members.get(TEMPLATE_HITS)
                handle = tar.extractfile(member) if member is not None else None
                if handle is None:
                    raise RemoteError(
                        f"{where} has no {TEMPLATE_HITS} (it holds {sorted(members)})",
                        fix=_FIX_PROTOCOL,
                    )
                return handle.read().decode()
        except (tarfile.TarError, OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
            raise RemoteError(
                f"{where} is not a readable tar.gz ({type(exc).__name__})", fix=_FIX_AGAIN
            ) from None

    def _ticket(self, fasta: str) -> str:
        """Submit ``fasta`` and poll its ticket until COMPLETE; the ticket's id.

        Raises :class:`_Again` for a status that asks for a new submission.
        """
        form = {"q": fasta, "mode": self.mode}
        if self.email is not None:
            form["email"] = self.email
        ticket = self._answer(self._request("POST", self.route, form))
        submitted = self.clock()
        while True:
            self._say(ticket.said(f"{self.clock() - submitted:.0f} s"))
            match ticket.status:
                case "COMPLETE":
                    return self._checked_id(ticket)
                case "PENDING" | "RUNNING":
                    ticket_id = self._checked_id(ticket)
                    self.wait(self.jitter(*POLL_S))
                    ticket = self._answer(self._request("GET", f"ticket/{ticket_id}"))
                case "UNKNOWN" | "RATELIMIT" | "MAINTENANCE":
                    raise _Again(ticket)
                case "ERROR":
                    raise RemoteError(
                        f"{self.server} answered {ticket.said()}",
                        fix="check that every query is a protein sequence; if it is, try "
                        "again in an hour (that is what ColabFold advises)",
                    )
                case _:
                    raise RemoteError(
                        f"{self.server} answered a status the protocol does not have: "
                        f"{ticket.said()}",
                        fix=_FIX_PROTOCOL,
                    )

    def _checked_id(self, ticket: _Ticket) -> str:
        """The ticket's id, which goes into the next URL: only the characters ids have."""
        if ticket.id is None or not _TICKET_ID.match(ticket.id):
            raise RemoteError(
                f"{self.server} answered {ticket.status} without a valid ticket id "
                f"({_printable(ticket.id or '')!r})",
                fix=_FIX_PROTOCOL,
            )
        self.ticket_id = ticket.id
        return ticket.id

    def _request(
        self, method: str, route: str, form: dict[str, str] | None = None
    ) -> httpx.Response:
        """One request, sent again (bounded, with backoff) while it fails in transit."""

        def once() -> httpx.Response:
            timeout = httpx.Timeout(
                max(1.0, min(READ_TIMEOUT_S, self.deadline - self.clock())),
                connect=CONNECT_TIMEOUT_S,
            )
            try:
                response = self.client.request(
                    method, f"{self.server}/{route}", data=form, timeout=timeout
                )
            except httpx.TransportError as exc:
                self.last_said = f"nothing ({describe(exc)})"
                raise _Transient(self.last_said) from None
            if response.is_server_error and _json_status(response) is None:
                self.last_said = _what_it_is(response)
                raise _Transient(self.last_said)
            return response

        try:
            retrying = self.requests.retrying(_Transient).copy(
                before_sleep=self._notice("asking again")
            )
            answer: httpx.Response = retrying(once)
        except _Transient:
            raise Unavailable(
                f"{self.server} gave no usable answer to {method} /{route} in "
                f"{TRANSPORT_RETRIES + 1} attempts; it last said {self.last_said}",
                fix="check your network and the --server URL, or try again later",
            ) from None
        return answer

    def _answer(self, response: httpx.Response) -> _Ticket:
        """The ticket in ``response``; an error for anything else."""
        ticket = _json_status(response)
        if ticket is None:
            self._not_protocol(response)
        self.last_said = ticket.said()
        return ticket

    def _not_protocol(self, response: httpx.Response) -> NoReturn:
        """Raise the error for an answer that is not the protocol's, saying what it is."""
        code = response.status_code
        if response.is_redirect:
            target = _printable(response.headers.get("Location", ""))
            raise RemoteError(
                f"{self.server} redirects ({status_reason(code)}) to {target}",
                fix="give the address it redirects to as --server",
            )
        problem = f"the server {self.server} answered {_what_it_is(response)}"
        if code == 403:
            raise Refused(
                problem,
                status_code=code,
                fix="the server refuses this machine (blocked, or over its fair-use limits): "
                "wait before trying again and send one search at a time, or search locally "
                "(--db) or on your own server",
            )
        if response.is_client_error:
            raise Refused(
                problem,
                status_code=code,
                fix=f"check the sequences and --mode, and {_FIX_PROTOCOL}",
            )
        raise RemoteError(problem, fix=_FIX_PROTOCOL)

    def wait(self, seconds: float) -> None:
        """Sleep ``seconds``, unless that would pass the deadline: then give up, saying so."""
        if self.clock() + seconds > self.deadline:
            running = (
                "; the search may still finish there, and running it again later picks it up"
                if self.ticket_id is not None
                else ""
            )
            raise WaitTimedOut(
                f"{self.server}: gave up after {self.timeout_s:g} s; the server last said "
                f"{self.last_said}{running}",
                fix="try again later, or allow more time (--timeout)",
            )
        self.sleep(seconds)

    def _say(self, message: str) -> None:
        if self.progress is not None:
            self.progress(SearchProgress(stage="server", message=message))

    def _notice(self, then: str) -> Callable[[tenacity.RetryCallState], None]:
        """Tells the user, before a retry's wait, what the server said and what comes next."""

        def notice(state: tenacity.RetryCallState) -> None:
            failure = state.outcome.exception() if state.outcome is not None else None
            wait = state.next_action.sleep if state.next_action is not None else 0.0
            self._say(f"{failure}: {then} in {wait:.0f} s")

        return notice


def _fix_for(status: str) -> str:
    if status == "RATELIMIT":
        return (
            "the server limits how much one user asks of it: wait an hour, send fewer "
            "queries at a time, or search locally (--db)"
        )
    if status == "MAINTENANCE":
        return "the server is under maintenance: try again in a few minutes"
    return _FIX_AGAIN


def _json_status(response: httpx.Response) -> _Ticket | None:
    """The ticket a response holds (any HTTP status: RATELIMIT comes as 429), or None."""
    try:
        return _Ticket.model_validate_json(response.content)
    except ValidationError:
        return None


def _read_archive(
    archive: bytes, ticket_id: str, sequences: list[str], databases: tuple[str, ...]
) -> dict[str, tuple[HitRows, ...]]:
    """Each sequence's hits in a result tarball, per database, in ``databases`` order."""
    where = f"the result of ticket {ticket_id}"
    files: dict[str, str] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            members = {PurePosixPath(m.name).name: m for m in tar.getmembers() if m.isfile()}
            for database in databases:
                member = members.get(f"{database}.a3m")
                handle = tar.extractfile(member) if member is not None else None
                if handle is None:
                    raise RemoteError(
                        f"{where} has no {database}.a3m (it holds {sorted(members) or 'nothing'})",
                        fix=_FIX_PROTOCOL,
                    )
                files[database] = handle.read().decode()
    except (tarfile.TarError, OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise RemoteError(
            f"{where} is not a readable tar.gz of A3M files ({type(exc).__name__})",
            fix=_FIX_AGAIN,
        ) from None
    blocks = {
        database: _blocks(text, f"{where}, {database}.a3m") for database, text in files.items()
    }
    return {
        sequence: tuple(
            HitRows(
                database=database,
                rows=_rows(blocks[database], FIRST_ID + i, sequence, f"{where}, {database}.a3m"),
            )
            for database in databases
        )
        for i, sequence in enumerate(sequences)
    }


def _blocks(text: str, where: str) -> dict[int, str]:
    """A result file's alignments by query id: NUL-separated, each opening with ``>ID``."""
    blocks: dict[int, str] = {}
    for chunk in text.split("\0"):
        chunk = chunk.lstrip()
        if not chunk:
            continue
        first = chunk.split("\n", 1)[0].strip()
        if not re.fullmatch(r">\d+", first):
            raise RemoteError(
                f"{where}: an alignment opens with {_printable(first)!r}, not a query id like >101",
                fix=_FIX_PROTOCOL,
            )
        # ColabFold joins the pieces of one id, should the server ever split them.
        query_id = int(first[1:])
        blocks[query_id] = blocks.get(query_id, "") + chunk
    return blocks


def _rows(blocks: dict[int, str], query_id: int, sequence: str, where: str) -> str:
    """The hit records of query ``query_id``, each named by the first word of its header."""
    block = blocks.get(query_id)
    if block is None:
        raise RemoteError(f"{where} has no alignment for query >{query_id}", fix=_FIX_AGAIN)
    query_row = "".join(
        line.strip() for line in block.split("\n>", 1)[0].splitlines()[1:] if line.strip()
    )
    if query_row.upper() != sequence:
        raise RemoteError(
            f"{where}: the alignment for >{query_id} is for another sequence "
            f"({_printable(query_row[:30])}...)",
            fix=_FIX_AGAIN,
        )
    return "".join(
        f">{next(iter(header.split()), '')}\n{row}\n"
        for header, row in DatabaseHits("", block).records()
    )


def _what_it_is(response: httpx.Response) -> str:
    """``an HTML page (HTTP 403 Forbidden): 403 Forbidden``: the kind of answer, and a few
    words of it."""
    reason = status_reason(response.status_code)
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    text = response.content[:4096].decode("utf-8", "replace")
    if content_type == "text/html" or text.lstrip().lower().startswith(("<!doctype", "<html")):
        title = _html_title(text)
        return f"an HTML page ({reason})" + (f": {title}" if title else "")
    if not text.strip():
        return f"{reason}, with nothing in it"
    kind = content_type or "no content type"
    return f"{reason} ({kind}): {_printable(text.strip().splitlines()[0])}"


class _Title(HTMLParser):
    """The text of a page's ``<title>``, else of its first ``<h1>``."""

    def __init__(self) -> None:
        super().__init__()
        self.inside: str | None = None
        self.found: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag in ("title", "h1") and tag not in self.found:
            self.inside = tag

    def handle_endtag(self, tag: str) -> None:
        if tag == self.inside:
            self.inside = None

    def handle_data(self, data: str) -> None:
        if self.inside is not None:
            self.found[self.inside] = self.found.get(self.inside, "") + data


def _html_title(text: str) -> str:
    parser = _Title()
    parser.feed(text)
    return _printable(parser.found.get("title") or parser.found.get("h1") or "")


def _printable(text: str) -> str:
    """``text`` on one line, control characters dropped, at most :data:`_QUOTED` long."""
    cleaned = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return cleaned if len(cleaned) <= _QUOTED else f"{cleaned[: _QUOTED - 3]}..."
