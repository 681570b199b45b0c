"""``predict --templates PATH…|server`` and ``--max-template-date`` through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_runner import Ran, foldserve
from tests.colabfold_standin import ENVIRONMENTAL, UNIREF, Alignment, ColabfoldStandin
from tests.conftest import data

pytestmark = pytest.mark.timeout(600)

HBA = "msa/a3m/biotite_1a00_A_uniref90_openproteinset.a3m"  # hemoglobin alpha, 141 residues
HHB = "structures/pdb/proteincontactmap_2hhb.pdb"  # its structure, with the beta chains
UBI = "MQIFVKTLTGKTITLEVEPSDTIENVKAKIQDKEGIPPDQQRLIFAGKQLEDGRTLSDYNIQKESTLHLVLRLRGG"
FAST = ("--models", "1", "--num-recycles", "0", "--max-msa", "32:64", "--no-plots")


def predict(params: Path, *args: str) -> Ran:
    return foldserve("predict", *args, "--params-dir", str(params))


def one_line_error(ran: Ran, *words: str) -> None:
    assert ran.exit_code == 2, ran.stderr
    (line,) = ran.stderr.strip().splitlines()
    for word in words:
        assert word in line


def test_template_files_are_used_and_recorded(test_params: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    ran = predict(test_params, str(data(HBA)), str(out), *FAST, "--templates", str(data(HHB)))
    assert ran.exit_code == 0, ran.stderr
    config = json.loads((out / "config.json").read_text())
    templates = config["templates"]
    assert templates["used"] == {"A": ["2hhb_A", "2hhb_C", "2hhb_B", "2hhb_D"]}
    assert templates["files"] == [str(data(HHB))]
    assert config["settings"]["templates"] is True


@pytest.mark.parametrize(
    ("flags", "where", "says"),
    [
        (("--templates", "MSA"), "colabfold_Q60262", "not a PDB or mmCIF structure"),
        (("--templates", "nowhere.cif"), "nowhere.cif", "no such template"),
        (("--templates", "server"), "--templates", "--server"),
        (("--templates", "HHB", "--max-template-date", "2021-13-01"), "--max-template-date", ""),
        (("--max-template-date", "2021-01-01"), "--max-template-date", "no templates"),
    ],
)
def test_bad_template_flags_are_refused_before_the_weights_load(
    flags: tuple[str, ...], where: str, says: str, tmp_path: Path
) -> None:
    given = {
        "MSA": str(data("msa/a3m/colabfold_Q60262_uniref_env_small.a3m")),
        "HHB": str(data(HHB)),
    }
    args = [given.get(flag, flag) for flag in flags]
    # No weights at all: anything that got as far as loading them would say so instead.
    ran = foldserve(
        "predict", str(data(HBA)), str(tmp_path / "out"), *args,
        "--params-dir", str(tmp_path / "no-weights"),
    )  # fmt: skip
    one_line_error(ran, where, says)
    assert not (tmp_path / "out").exists()


def test_server_templates_are_fetched_after_the_search(test_params: Path, tmp_path: Path) -> None:
    query = tmp_path / "ubi.fasta"
    query.write_text(f">ubiquitin\n{UBI}\n")
    out = tmp_path / "run"
    with ColabfoldStandin() as standin:
        standin.alignments[UBI] = Alignment(UBI, {UNIREF: f"{UBI}\n", ENVIRONMENTAL: f"{UBI}\n"})
        standin.template_hits[UBI] = "1ubi_A\t1.000\t76\t0\t0\t1\t76\t1\t76\t1.0E-30\t150\t76M\n"
        ran = predict(
            test_params, "--sequence", str(query), "--server", standin.url, "--no-cache",
            str(out), *FAST, "--templates", "server",
        )  # fmt: skip
        assert ran.exit_code == 0, ran.stderr
        assert [seen.path for seen in standin.seen("GET", "/template/")] == ["/template/1ubi_A"]
    config = json.loads((out / "config.json").read_text())
    assert config["templates"]["used"] == {"A": ["1ubi_A"]}
    # the server's templates are kept with the run, as colabfold_batch keeps them
    assert (out / "templates" / "templates_101" / "1ubi.cif").is_file()
