"""Property-based fuzzing of the job-input contract: whatever JSON a client sends, ``/run``'s
parsing (:func:`parse_run_request`, then :func:`unpack_msa` for an inline MSA) either accepts
it or raises :class:`InputError`, never anything else (which the server would answer with 500).

The search is derandomised (the "ci" profile in conftest.py): the same examples every run.
"""

from __future__ import annotations

import base64
import gzip
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from foldserve.errors import InputError
from foldserve.jobs.payload import unpack_msa
from foldserve.jobs.schema import parse_run_request
from tests.conftest import data
from tests.serving import SMALL_MSA

MSA_TEXT = data(SMALL_MSA).read_text()

#: Any code point, surrogates too, and the ones that broke things before drawn often.
characters = st.characters(exclude_categories=()) | st.sampled_from(
    "\ud800\udfff\u202e\u2603\x00\n>#"
)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**31, max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(characters, max_size=40)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=20,
)

FIELDS = (
    "msa", "msa_gz_b64", "msa_url", "msa_format", "query", "models", "num_recycles",
    "recycle_early_stop_tolerance", "seed", "num_seeds", "rank_by", "outputs",
)  # fmt: skip


def valid_input() -> dict[str, Any]:
    return {"msa": MSA_TEXT, "models": [1], "num_recycles": 1}


def accepted_or_input_error(body: Any) -> None:
    """The property: accepted (and, inline, its MSA unpacked) or an InputError."""
    try:
        run = parse_run_request(body)
        if run.input.msa_url is None:
            unpack_msa(run.input)
    except InputError:
        pass


@pytest.mark.timeout(120)
@settings(max_examples=300)
@given(json_values)
def test_any_json_body(body: Any) -> None:
    accepted_or_input_error(body)


@pytest.mark.timeout(120)
@settings(max_examples=300)
@given(json_values)
def test_any_json_input(job_input: Any) -> None:
    accepted_or_input_error({"input": job_input})


@pytest.mark.timeout(120)
@settings(max_examples=400)
@given(
    replaced=st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=3),
    dropped=st.sets(st.sampled_from(FIELDS), max_size=2),
    policy=st.none()
    | st.dictionaries(st.sampled_from(("executionTimeout", "ttl", "x")), json_scalars),
    webhook=st.none() | json_scalars,
)
def test_mutated_valid_input(
    replaced: dict[str, Any], dropped: set[str], policy: Any, webhook: Any
) -> None:
    job_input = {k: v for k, v in {**valid_input(), **replaced}.items() if k not in dropped}
    body: dict[str, Any] = {"input": job_input}
    if policy is not None:
        body["policy"] = policy
    if webhook is not None:
        body["webhook"] = webhook
    accepted_or_input_error(body)


@pytest.mark.timeout(120)
@settings(max_examples=300)
@given(text=st.text(characters, max_size=400), gzip_it=st.booleans(), raw=st.binary(max_size=200))
def test_any_msa_text_inline_and_gzipped(text: str, gzip_it: bool, raw: bytes) -> None:
    """Any string as ``msa`` (lone surrogates included), and any bytes, gzipped or not, as
    ``msa_gz_b64``."""
    accepted_or_input_error({"input": {"msa": MSA_TEXT.splitlines()[0] + "\n" + text}})
    payload = gzip.compress(raw) if gzip_it else raw
    encoded = base64.b64encode(payload).decode()
    accepted_or_input_error({"input": {"msa_gz_b64": encoded}})
