"""Searching on ColabFold's MMseqs2 server, against a stand-in on 127.0.0.1 that speaks its
protocol with real ColabFold answers (tests/colabfold_standin.py).

The client sleeps on a :class:`FakeTime` that moves its clock by each sleep: a search that
waits an hour on a stuck ticket runs in milliseconds, and the tests check the waits asked for.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from foldserve._version import __version__
from foldserve.errors import InputError, Refused, RemoteError, Unavailable, WaitTimedOut
from foldserve.msa.search.cache import CacheKey, SearchCache, cache_dir
from foldserve.msa.search.colabfold_server import (
    ENVIRONMENTAL,
    PAIRED,
    RESUBMISSIONS,
    TRANSPORT_RETRIES,
    UNIREF,
    search_server,
)
from foldserve.msa.search.results import Query, SearchResult
from foldserve.msa.search.settings import SearchProgress, SearchSettings
from tests.cli_runner import foldserve
from tests.colabfold_standin import (
    Alignment,
    ColabfoldStandin,
    Ticket,
    drop,
    html_page,
    ratelimit,
    raw,
    status,
    tarball,
)
from tests.fake_time import FakeTime

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def own_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Each test starts with an empty cache of its own."""
    monkeypatch.setenv("FOLDSERVE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def standin() -> Iterator[ColabfoldStandin]:
    with ColabfoldStandin() as server:
        yield server


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


def four_ot(standin: ColabfoldStandin) -> Alignment:
    return next(a for a in standin.alignments.values() if a.sequence.startswith("PIAQIHIL"))


def q60262(standin: ColabfoldStandin) -> Alignment:
    return next(a for a in standin.alignments.values() if a.sequence.startswith("MEIIALL"))


def search(
    standin: ColabfoldStandin,
    fake_time: FakeTime,
    queries: list[Query],
    progress: list[SearchProgress] | None = None,
    **settings: object,
) -> list[SearchResult]:
    chosen = SearchSettings(tool="colabfold-server", server=standin.url, **settings)  # type: ignore[arg-type]
    return search_server(
        queries,
        chosen,
        progress=None if progress is None else progress.append,
        sleep=fake_time.sleep,
        clock=fake_time.clock,
    )


def submissions(standin: ColabfoldStandin) -> list[str]:
    """The FASTA of each ticket submitted."""
    return [seen.form["q"] for seen in standin.seen("POST")]


def test_pending_running_complete(standin: ColabfoldStandin, fake_time: FakeTime) -> None:
    target = four_ot(standin)
    standin.then("poll", "PENDING", "RUNNING", "RUNNING")
    progress: list[SearchProgress] = []

    [result] = search(standin, fake_time, [Query("tautomerase", target.sequence)], progress)

    assert result.tool == "colabfold-server"
    assert result.source == f"{standin.url} (mode env)"
    assert [hits.database for hits in result.hits] == [UNIREF, ENVIRONMENTAL]
    assert {hits.database: hits.count for hits in result.hits} == target.hit_count
    for hits in result.hits:
        assert hits.a3m.startswith(f">tautomerase\n{target.sequence}\n")
    [post] = standin.seen("POST")
    assert post.path == "/ticket/msa"
    assert post.form == {"q": f">101\n{target.sequence}\n", "mode": "env"}
    assert post.user_agent == f"foldserve/{__version__}"
    assert len(standin.seen("GET", "/ticket/")) == 4
    assert len(standin.seen("GET", "/result/download/")) == 1
    # One poll every 5-10 s, never sooner, never a burst.
    assert len(fake_time.sleeps) == 4
    assert all(5 <= wait <= 10 for wait in fake_time.sleeps)
    said = [event.message for event in progress]
    statuses = [message.split(" ")[0] for message in said if message.split(" ")[0].isupper()]
    assert statuses == ["PENDING", "PENDING", "RUNNING", "RUNNING", "COMPLETE"]
    assert all(event.stage == "server" for event in progress)
    ticket = standin.seen("GET", "/ticket/")[0].path.rsplit("/", 1)[1]
    assert f"PENDING (ticket {ticket}, 0 s)" in said


def test_two_queries_one_ticket_map_back(standin: ColabfoldStandin, fake_time: FakeTime) -> None:
    big, small = four_ot(standin), q60262(standin)
    queries = [Query("small", small.sequence), Query("big", big.sequence)]

    results = search(standin, fake_time, queries)

    assert submissions(standin) == [f">101\n{small.sequence}\n>102\n{big.sequence}\n"]
    assert [result.query for result in results] == queries
    for result, expected in zip(results, (small, big), strict=True):
        assert {hits.database: hits.count for hits in result.hits} == expected.hit_count
        uniref = result.hits[0]
        assert uniref.a3m.startswith(f">{result.query.name}\n{expected.sequence}\n")
        # Rows are named by the first word of their header; the query's own row is the user's.
        first_hit = expected.bodies[UNIREF].split("\n>", 2)[1].split("\n")[0]
        assert next(uniref.records())[0] == first_hit.split("\t")[0]
        assert all("\t" not in header and " " not in header for header, _ in uniref.records())
        assert result.msa().query_length == len(expected.sequence)


def test_a_repeated_sequence_is_sent_once(standin: ColabfoldStandin, fake_time: FakeTime) -> None:
    small = q60262(standin)
    queries = [Query("a", small.sequence), Query("b", small.sequence)]

    first, second = search(standin, fake_time, queries)

    assert submissions(standin) == [f">101\n{small.sequence}\n"]
    assert first.hits[0].a3m.replace(">a\n", ">b\n", 1) == second.hits[0].a3m


def test_env_mode_merges_uniref_first(standin: ColabfoldStandin, fake_time: FakeTime) -> None:
    target = q60262(standin)

    [result] = search(standin, fake_time, [Query("q", target.sequence)])

    uniref, env = (hits.records() for hits in result.hits)
    merged = result.a3m().split("\n")
    assert merged[:2] == [">q", target.sequence]
    # The query once, then uniref's rows, then env's rows not seen before.
    expected_rows = [target.sequence]
    for _, row in [*uniref, *env]:
        if row not in expected_rows:
            expected_rows.append(row)
    assert merged[1::2][: len(expected_rows)] == expected_rows
    summary = result.summary()
    assert list(summary.hits) == [UNIREF, ENVIRONMENTAL]
    assert summary.rows == len(expected_rows)


def test_mode_all_has_uniref_only(standin: ColabfoldStandin, fake_time: FakeTime) -> None:
    target = q60262(standin)

    [result] = search(standin, fake_time, [Query("q", target.sequence)], mode="all")

    assert [hits.database for hits in result.hits] == [UNIREF]
    assert standin.seen("POST")[0].form["mode"] == "all"
    assert result.source.endswith("(mode all)")


def test_pairing_asks_for_the_paired_msa(standin: ColabfoldStandin, fake_time: FakeTime) -> None:
    big, small = four_ot(standin), q60262(standin)
    queries = [Query("A", big.sequence), Query("B", small.sequence)]

    results = search(standin, fake_time, queries, pair="pairgreedy")

    [post] = standin.seen("POST")
    assert (post.path, post.form["mode"]) == ("/ticket/pair", "pairgreedy")
    assert post.form["q"] == f">101\n{big.sequence}\n>102\n{small.sequence}\n"
    for result in results:
        [paired] = result.hits
        assert paired.database == PAIRED
        assert paired.a3m.startswith(f">{result.query.name}\n{result.query.sequence}\n")
        assert result.source.endswith("(mode pairgreedy)")
    # Paired rows come as many for every chain.
    assert results[0].hits[0].count == results[1].hits[0].count > 0


def test_pairing_needs_two_chains(standin: ColabfoldStandin, fake_time: FakeTime) -> None:
    small = q60262(standin)

    with pytest.raises(InputError, match="--pair"):
        search(standin, fake_time, [Query("A", small.sequence)] * 2, pair="pairgreedy")
    assert standin.seen() == []


def test_ratelimit_backs_off_then_resubmits(standin: ColabfoldStandin, fake_time: FakeTime) -> None:
    target = q60262(standin)
    standin.then("submit", ratelimit())
    progress: list[SearchProgress] = []

    [result] = search(standin, fake_time, [Query("q", target.sequence)], progress)

    assert result.hits[0].count == target.hit_count[UNIREF]
    assert len(standin.seen("POST")) == 2
    # The first resubmission waits 5-10 s (RetryPolicy: 10 s, jittered down to half).
    assert 5 <= fake_time.sleeps[0] <= 10
    notices = [event.message for event in progress if "submitting again" in event.message]
    assert len(notices) == 1
    assert notices[0].startswith("RATELIMIT: too many requests from this address")


def test_unknown_ticket_is_resubmitted(standin: ColabfoldStandin, fake_time: FakeTime) -> None:
    target = q60262(standin)
    standin.then("poll", "UNKNOWN")

    [result] = search(standin, fake_time, [Query("q", target.sequence)])

    assert result.hits[0].count == target.hit_count[UNIREF]
    assert submissions(standin) == [f">101\n{target.sequence}\n"] * 2


def test_error_status_ends_the_search(standin: ColabfoldStandin, fake_time: FakeTime) -> None:
    standin.then("poll", "RUNNING", "ERROR")

    with pytest.raises(RemoteError) as raised:
        search(standin, fake_time, [Query("q", q60262(standin).sequence)])

    message = str(raised.value)
    assert "answered ERROR (ticket " in message and "protein sequence" in message
    assert "\n" not in message
    assert len(standin.seen("POST")) == 1
    assert standin.seen("GET", "/result/") == []


def test_an_unsearchable_sequence_gets_error(
    standin: ColabfoldStandin, fake_time: FakeTime
) -> None:
    with pytest.raises(RemoteError, match="answered ERROR"):
        search(standin, fake_time, [Query("q", "MKTAYIAKQR")])


def test_maintenance_is_waited_out_a_bounded_number_of_times(
    standin: ColabfoldStandin, fake_time: FakeTime
) -> None:
    standin.then("submit", *[status("MAINTENANCE", 503)] * (RESUBMISSIONS + 5))

    with pytest.raises(Unavailable) as raised:
        search(standin, fake_time, [Query("q", q60262(standin).sequence)])

    assert len(standin.seen("POST")) == RESUBMISSIONS + 1
    assert "the last answer was still MAINTENANCE" in str(raised.value)
    assert "try again in a few minutes" in str(raised.value)
    # Backing off: each wait at least as long as half the one before, none immediate.
    assert all(wait >= 5 for wait in fake_time.sleeps)
    assert fake_time.sleeps[-1] > fake_time.sleeps[0]


def test_a_stuck_ticket_times_out(standin: ColabfoldStandin, fake_time: FakeTime) -> None:
    standin.idle_poll = status("PENDING")
    start = fake_time.now

    with pytest.raises(WaitTimedOut) as raised:
        search(standin, fake_time, [Query("q", q60262(standin).sequence)], timeout_s=300)

    message = str(raised.value)
    assert "gave up after 300 s; the server last said PENDING (ticket " in message
    assert "--timeout" in message
    assert fake_time.now - start <= 300
    polls = len(standin.seen("GET", "/ticket/"))
    assert 300 / 10 - 1 <= polls <= 300 / 5


def test_an_html_403_page_is_reported_as_such(
    standin: ColabfoldStandin, fake_time: FakeTime
) -> None:
    standin.then("submit", html_page(403))

    with pytest.raises(Refused) as raised:
        search(standin, fake_time, [Query("q", q60262(standin).sequence)])

    assert raised.value.status_code == 403
    message = str(raised.value)
    assert (
        f"the server {standin.url} answered an HTML page (HTTP 403 Forbidden): 403 Forbidden"
        in (message)
    )
    assert "fair-use" in message and "\n" not in message
    assert len(standin.seen("POST")) == 1  # a refusal is not retried


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (raw(200, b"hello"), "answered HTTP 200 OK (text/plain): hello"),
        (raw(200, b'{"no": "status"}', "application/json"), "HTTP 200 OK (application/json)"),
        (raw(400, b"selected databases are not valid\n"), "not valid"),
        (status("DONE"), "a status the protocol does not have: DONE"),
    ],
)
def test_an_answer_outside_the_protocol_is_an_error(
    standin: ColabfoldStandin, fake_time: FakeTime, answer: object, expected: str
) -> None:
    standin.then("submit", answer)  # type: ignore[arg-type]

    with pytest.raises(RemoteError, match="ColabFold MMseqs2 server") as raised:
        search(standin, fake_time, [Query("q", q60262(standin).sequence)])

    assert expected in str(raised.value)


def test_a_dropped_connection_is_retried(standin: ColabfoldStandin, fake_time: FakeTime) -> None:
    target = q60262(standin)
    standin.then("poll", drop())
    standin.then("download", drop(), raw(502, b"<html><title>502 Bad Gateway</title></html>"))
    progress: list[SearchProgress] = []

    [result] = search(standin, fake_time, [Query("q", target.sequence)], progress)

    assert result.hits[0].count == target.hit_count[UNIREF]
    assert len(standin.seen("GET", "/ticket/")) == 2
    assert len(standin.seen("GET", "/result/download/")) == 3
    notices = [event.message for event in progress if "asking again" in event.message]
    assert notices[0].startswith("nothing (the answer was not valid HTTP): asking again in ")
    assert notices[-1].startswith(
        "an HTML page (HTTP 502 Bad Gateway): 502 Bad Gateway: asking again in "
    )


def test_a_server_that_keeps_dropping_is_unavailable(
    standin: ColabfoldStandin, fake_time: FakeTime
) -> None:
    standin.then("poll", *[drop()] * (TRANSPORT_RETRIES + 5))

    with pytest.raises(Unavailable) as raised:
        search(standin, fake_time, [Query("q", q60262(standin).sequence)])

    assert len(standin.seen("GET", "/ticket/")) == TRANSPORT_RETRIES + 1
    assert "no usable answer to GET /ticket/" in str(raised.value)
    assert "the answer was not valid HTTP" in str(raised.value)


def test_an_unreachable_server_is_unavailable(fake_time: FakeTime) -> None:
    with ColabfoldStandin() as closed:
        url = closed.url
    settings = SearchSettings(tool="colabfold-server", server=url)

    with pytest.raises(Unavailable, match="could not connect"):
        search_server(
            [Query("q", "MKTAYIAKQR")], settings, sleep=fake_time.sleep, clock=fake_time.clock
        )
    assert len(fake_time.sleeps) == TRANSPORT_RETRIES


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (raw(200, b"not a tarball", "application/gzip"), "is not a readable tar.gz"),
        (raw(200, b"", "application/gzip"), "is not a readable tar.gz"),
    ],
)
def test_a_malformed_tarball_is_an_error(
    standin: ColabfoldStandin, fake_time: FakeTime, answer: object, expected: str
) -> None:
    standin.then("download", answer)  # type: ignore[arg-type]

    with pytest.raises(RemoteError, match=expected):
        search(standin, fake_time, [Query("q", q60262(standin).sequence)])


def test_a_tarball_without_the_env_file_is_an_error(
    standin: ColabfoldStandin, fake_time: FakeTime
) -> None:
    target = q60262(standin)
    # The answer of an "all" ticket, to an "env" one.
    uniref_only = tarball(Ticket("t", "msa", "all", {101: target.sequence}), standin.alignments)
    standin.then("download", raw(200, uniref_only, "application/gzip"))

    with pytest.raises(RemoteError, match=f"has no {ENVIRONMENTAL}.a3m"):
        search(standin, fake_time, [Query("q", target.sequence)])


def test_the_cache_makes_a_rerun_send_nothing(
    standin: ColabfoldStandin, fake_time: FakeTime, own_cache: Path
) -> None:
    target = q60262(standin)
    [first] = search(standin, fake_time, [Query("first", target.sequence)])
    asked = len(standin.seen())

    [again] = search(standin, fake_time, [Query("again", target.sequence)])

    assert len(standin.seen()) == asked
    assert [h.a3m.replace(">again\n", ">first\n", 1) for h in again.hits] == [
        h.a3m for h in first.hits
    ]
    assert cache_dir() == own_cache
    assert list((own_cache / "msa-search").rglob("*.json"))


def test_only_queries_not_cached_are_sent(standin: ColabfoldStandin, fake_time: FakeTime) -> None:
    big, small = four_ot(standin), q60262(standin)
    search(standin, fake_time, [Query("small", small.sequence)])

    results = search(
        standin, fake_time, [Query("small", small.sequence), Query("big", big.sequence)]
    )

    assert submissions(standin) == [f">101\n{small.sequence}\n", f">101\n{big.sequence}\n"]
    assert [result.hits[0].count for result in results] == [
        small.hit_count[UNIREF],
        big.hit_count[UNIREF],
    ]


def test_no_cache_asks_again_and_refreshes(standin: ColabfoldStandin, fake_time: FakeTime) -> None:
    target = q60262(standin)
    search(standin, fake_time, [Query("q", target.sequence)])
    key = CacheKey(target.sequence, "env", standin.url, ())
    cache = SearchCache()
    cache.path(key).write_text("damaged")

    search(standin, fake_time, [Query("q", target.sequence)], use_cache=False)

    assert len(standin.seen("POST")) == 2
    cached = cache.get(key)
    assert cached is not None and [rows.database for rows in cached] == [UNIREF, ENVIRONMENTAL]


def test_another_mode_is_another_cache_entry(
    standin: ColabfoldStandin, fake_time: FakeTime
) -> None:
    target = q60262(standin)
    search(standin, fake_time, [Query("q", target.sequence)])
    search(standin, fake_time, [Query("q", target.sequence)], mode="all")

    assert [seen.form["mode"] for seen in standin.seen("POST")] == ["env", "all"]


def test_a_damaged_cache_entry_is_a_miss(standin: ColabfoldStandin, fake_time: FakeTime) -> None:
    target = q60262(standin)
    key = CacheKey(target.sequence, "env", standin.url, ())
    SearchCache().path(key).parent.mkdir(parents=True)
    SearchCache().path(key).write_text('{"half": ')

    search(standin, fake_time, [Query("q", target.sequence)])

    assert len(standin.seen("POST")) == 1
    assert SearchCache().get(key) is not None


def test_the_email_goes_with_the_user_agent(standin: ColabfoldStandin, fake_time: FakeTime) -> None:
    search(standin, fake_time, [Query("q", q60262(standin).sequence)], email="me@example.org")

    for seen in standin.seen():
        assert seen.user_agent == f"foldserve/{__version__} me@example.org"
    assert standin.seen("POST")[0].form["email"] == "me@example.org"


@pytest.mark.parametrize(
    ("settings", "where"),
    [
        ({"server": "ftp://example.org"}, "--server"),
        ({"server": "http://user:secret@127.0.0.1:9"}, "--server"),
        ({"server": "not a url"}, "--server"),
        ({"email": "me@example.org\r\nX-Evil: 1"}, "--email"),
    ],
)
def test_bad_settings_are_input_errors(
    standin: ColabfoldStandin, fake_time: FakeTime, settings: dict[str, str], where: str
) -> None:
    chosen = SearchSettings(tool="colabfold-server", **{"server": standin.url, **settings})  # type: ignore[arg-type]

    with pytest.raises(InputError, match=where) as raised:
        search_server(
            [Query("q", q60262(standin).sequence)],
            chosen,
            sleep=fake_time.sleep,
            clock=fake_time.clock,
        )
    assert "\n" not in str(raised.value)
    if where == "--server":
        assert "Fix: give the http(s):// URL of a ColabFold MMseqs2 server" in str(raised.value)
    assert standin.seen() == []


def test_the_config_file_names_the_server_when_no_flag_does(
    standin: ColabfoldStandin, tmp_path: Path
) -> None:
    """``[search] server`` (and ``email``) in the config file: `msa search` with neither --db
    nor --server asks that server, through the real command line."""
    target = four_ot(standin)
    config = tmp_path / "config.toml"
    config.write_text(f'[search]\nserver = "{standin.url}"\nemail = "me@lab.org"\n')
    query = tmp_path / "q.fasta"
    query.write_text(f">tautomerase\n{target.sequence}\n")
    out = tmp_path / "q.a3m"
    ran = foldserve(
        "msa", "search", "--sequence", str(query), "--output", str(out),
        env={"FOLDSERVE_CONFIG": str(config)},
    )  # fmt: skip
    assert ran.exit_code == 0, ran.stderr
    assert out.read_text().startswith(f">tautomerase\n{target.sequence}\n")
    [post] = standin.seen("POST")
    assert post.form["q"] == f">101\n{target.sequence}\n"
    assert post.user_agent == f"foldserve/{__version__} me@lab.org"
