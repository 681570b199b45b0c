"""The shape policy: which shape a job runs at, from injected device costs (no timing here)."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import pytest

from foldserve.fold.alphafold2.compiled_shapes import (
    SHAPES_DIRNAME,
    CompileTarget,
    ShapeRecord,
    ShapeRecords,
)
from foldserve.fold.alphafold2.features import InputShape
from foldserve.fold.alphafold2.network import MONOMER, NetworkKey
from foldserve.fold.alphafold2.predictor import Predictor
from foldserve.fold.alphafold2.shape_policy import (
    COARSE_LADDER,
    LOAD_SHARE,
    CostLog,
    DeviceCosts,
    ShapeRequest,
    choose_shape,
    device_costs,
)
from foldserve.fold.alphafold2.shapes import (
    ALPHAFOLD_CHUNK,
    WHOLE_LAYERS_BYTES,
    bucket_shape,
    chunk_for,
    chunked_intermediate_bytes,
    estimate_bytes,
    forward_work,
    ladder_shapes,
    length_bucket,
)
from foldserve.fold.outputs import write_prediction
from foldserve.fold.results import PredictOptions
from foldserve.msa.reading import read
from tests.conftest import TEST_WEIGHT_BLOCKS, data

#: Two CPU cores, 48 blocks, bfloat16 (bench/RESULTS.md): a 7 s compile, a 64-residue forward
#: pass of about 3.6 s.
CPU = DeviceCosts(compile_seconds=7.0, load_seconds=2.0, seconds_per_gwork=0.0136, source="cpu")
#: A GPU: a 40 s compile, forward passes a hundred times faster than the CPU's.
GPU = DeviceCosts(compile_seconds=40.0, load_seconds=4.0, seconds_per_gwork=0.0001, source="gpu")


def shape(length: int, clusters: int = 32, extra: int = 1) -> InputShape:
    return InputShape(length=length, clusters=clusters, extra=extra)


def request(
    length: int, *, compiled: tuple[int, ...] = (), cached: tuple[int, ...] = ()
) -> ShapeRequest:
    """One model, 3 recycles, 48 blocks, 32 cluster rows, no extra rows."""
    return ShapeRequest(
        exact=shape(length),
        passes=4,
        evoformer_blocks=48,
        compiled=frozenset(shape(n) for n in compiled),
        cached=frozenset(shape(n) for n in cached),
    )


def test_the_ladders_pad_by_32_16_and_8_residues_below_256() -> None:
    assert ladder_shapes(shape(70)) == (shape(96), shape(80), shape(72))
    assert ladder_shapes(shape(104)) == (shape(128), shape(112), shape(104))
    assert ladder_shapes(shape(300)) == (shape(320), shape(304))  # 64, 32 and 16 above 256
    assert ladder_shapes(shape(62))[0].length == length_bucket(62) == 64
    # MSA rows round by the same granules, never past the coarse rung; one extra row stays one.
    assert [s.clusters for s in ladder_shapes(shape(70, clusters=6))] == [32, 16, 8]
    assert [s.extra for s in ladder_shapes(shape(70, extra=1500))] == [2048, 1536, 1504]
    assert bucket_shape(70, (6, 1)) == shape(96, 32, 1)  # the coarse ladder as before


def test_forward_work_grows_with_length_squared_and_rows_times_length() -> None:
    pair_only = forward_work(shape(200, clusters=0), 48) / forward_work(shape(100, clusters=0), 48)
    assert 4.0 < pair_only < 5.0  # L**2, plus the triangle updates' third residue
    rows = forward_work(shape(100, clusters=256), 48) - forward_work(shape(100, clusters=128), 48)
    longer = forward_work(shape(200, clusters=256), 48) - forward_work(shape(200, clusters=128), 48)
    assert 2.0 < longer / rows < 3.0  # rows x length, plus row attention's length squared


def test_on_a_cpu_a_one_off_length_compiles_a_close_shape_rather_than_pad_far() -> None:
    choice = choose_shape(request(70, compiled=(62, 96)), CPU)
    assert (choice.action, choice.shape) == ("compile", shape(72))
    assert "reusing 96 residues" in choice.reason and "half a compile (3.5 s)" in choice.reason


def test_on_a_gpu_buckets_win() -> None:
    assert choose_shape(request(73, compiled=(62, 96)), GPU).shape == shape(96)  # reused
    fresh = choose_shape(request(70, compiled=(62,)), GPU)
    assert (fresh.action, fresh.shape) == ("compile", shape(96))  # the coarse ladder's


def test_a_compiled_shape_close_enough_is_reused() -> None:
    choice = choose_shape(request(70, compiled=(72, 96)), CPU)
    assert (choice.action, choice.shape) == ("reuse", shape(72))  # the cheaper of the two


def test_a_cached_shape_loads_when_that_is_cheaper_than_compiling() -> None:
    assert choose_shape(request(70, cached=(70,)), CPU).action == "load"
    # A load that costs more than a compile is no reason to pad.
    dear = DeviceCosts(compile_seconds=7.0, load_seconds=9.0, seconds_per_gwork=0.0136, source="")
    assert choose_shape(request(70, cached=(72,)), dear).action == "compile"


def test_without_costs_the_exact_shape_runs() -> None:
    assert choose_shape(request(70, compiled=(96,)), None).shape == shape(70)
    cached = choose_shape(request(70, cached=(70,)), None)
    assert (cached.shape, cached.action) == (shape(70), "load")
    assert "no compile or forward pass measured" in cached.reason


def test_the_coarse_ladder_costs_pin_the_old_buckets() -> None:
    assert choose_shape(request(70), COARSE_LADDER).shape == shape(96)
    assert choose_shape(request(141), COARSE_LADDER).shape == shape(160)
    assert choose_shape(request(70, compiled=(128,)), COARSE_LADDER).shape == shape(128)
    assert choose_shape(request(70, cached=(70,)), COARSE_LADDER).action == "load"


def test_a_padded_shape_that_would_not_fit_in_memory_is_passed_over() -> None:
    exact = request(70)
    limit = estimate_bytes(shape(80), 0) - 1  # 72 fits, 80 and 96 do not
    tight = ShapeRequest(
        exact.exact, exact.passes, exact.evoformer_blocks, memory_limit_bytes=limit
    )
    assert choose_shape(tight, GPU).shape == shape(72)
    with_compiled = ShapeRequest(
        exact.exact, 4, 48, compiled=frozenset({shape(96)}), memory_limit_bytes=limit
    )
    assert choose_shape(with_compiled, GPU).shape == shape(72)


def test_short_jobs_run_whole_on_a_cpu_and_chunked_elsewhere() -> None:
    # The bench's jobs: 62 to 73 residues ran faster whole on two cores, 104 and up chunked.
    for length in (62, 73):
        assert chunked_intermediate_bytes(shape(length)) <= WHOLE_LAYERS_BYTES
        assert chunk_for(shape(length), on_cpu=True) is None
    for length in (104, 141, 1000):
        assert chunk_for(shape(length), on_cpu=True) == ALPHAFOLD_CHUNK
    # Deep MSAs make the row attention the largest: chunked even at 62 residues.
    assert chunk_for(shape(62, clusters=512, extra=1024), on_cpu=True) == ALPHAFOLD_CHUNK
    assert chunk_for(shape(62), on_cpu=False) == ALPHAFOLD_CHUNK  # GPUs: AlphaFold's chunking


def test_the_choice_is_deterministic_and_says_why() -> None:
    first = choose_shape(request(141, compiled=(62, 72, 104)), CPU)
    assert first == choose_shape(request(141, compiled=(104, 72, 62)), CPU)
    recorded = first.as_json()
    assert recorded["length"] == 141 and recorded["padded_to"] == first.shape.length
    assert recorded["action"] == "compile"
    assert "compile 7.0 s" in str(recorded["reason"]) and "cpu" in str(recorded["reason"])
    json.dumps(recorded)


def test_costs_measured_here_come_before_those_recorded_earlier() -> None:
    here = CostLog(compiles=[6.0, 8.0, 30.0], passes=[(2e9, 1.0), (6e9, 3.0)])
    recorded = CostLog(compiles=[50.0], passes=[(1e9, 9.0)])
    costs = device_costs(here, recorded)
    assert costs is not None
    assert costs.compile_seconds == 8.0  # the median: one slow compile does not set it
    assert costs.seconds_per_gwork == pytest.approx(0.5)
    assert costs.load_seconds == LOAD_SHARE * 8.0  # no load measured yet
    assert costs.source == "measured in this process"
    fresh = device_costs(CostLog(loads=[1.5]), recorded)
    assert fresh is not None and fresh.compile_seconds == 50.0 and fresh.load_seconds == 1.5
    assert fresh.seconds_per_gwork == pytest.approx(9.0) and "earlier" in fresh.source
    assert device_costs(CostLog(compiles=[6.0]), CostLog()) is None  # no forward pass known


def test_costs_refuse_negative_or_nan_figures() -> None:
    with pytest.raises(ValueError, match="compile_seconds"):
        DeviceCosts(compile_seconds=math.nan, load_seconds=0, seconds_per_gwork=1, source="")
    with pytest.raises(ValueError, match="seconds_per_gwork"):
        DeviceCosts(compile_seconds=1, load_seconds=0, seconds_per_gwork=-1, source="")


def target(precision: str = "float32") -> CompileTarget:
    return CompileTarget(NetworkKey(MONOMER), TEST_WEIGHT_BLOCKS, precision, "CPU", jax.__version__)


def test_shape_records_are_read_back_for_their_own_target_only(tmp_path: Path) -> None:
    records = ShapeRecords(tmp_path)
    ours = ShapeRecord(target(), shape(72), compile_seconds=5.0, pass_seconds=0.5)
    records.add(ours)
    records.add(ShapeRecord(target("bfloat16"), shape(80), 6.0, 0.6))
    (tmp_path / SHAPES_DIRNAME / "half-written.json").write_text('{"target": ')
    assert records.read(target()) == (ours,)
    assert ShapeRecords(tmp_path / "empty").read(target()) == ()


WORKER = """
import json, sys
from pathlib import Path
from foldserve import Predictor, PredictOptions
from foldserve.msa import read
predictor = Predictor(Path(sys.argv[1]))
msa, options = read(sys.argv[2]), PredictOptions(models=(1,), num_recycles=0)
before = predictor.shape_choice(msa, options)
if sys.argv[3] == "predict":
    predictor.predict(msa, options)
after = predictor.shape_choice(msa, options)
print(json.dumps([before.as_json(), after.as_json()]))
"""


def worker(param_dir: Path, msa: Path, mode: str) -> list[dict[str, object]]:
    done = subprocess.run(
        [sys.executable, "-c", WORKER, str(param_dir), str(msa), mode],
        capture_output=True,
        check=True,
    )
    choices: list[dict[str, object]] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return choices


def test_a_worker_records_its_compiles_and_the_next_loads_them(
    test_params: Path, tmp_path: Path
) -> None:
    param_dir = tmp_path / "volume"  # a private copy: the cache starts empty
    shutil.copytree(test_params / "params", param_dir / "params")
    msa = data("msa/a3m/openfold_2q2k_A_bfd_uniclust_hits.a3m")  # 70 residues
    before, after = worker(param_dir, msa, "predict")
    assert (before["padded_to"], before["action"]) == (70, "compile")  # nothing measured yet
    assert (after["padded_to"], after["action"]) == (70, "reuse")
    (record,) = ShapeRecords(param_dir / "jax-cache").read(target())
    assert record.shape.length == 70 and record.compile_seconds > 0 and record.pass_seconds > 0
    fresh, _ = worker(param_dir, msa, "choose")
    assert (fresh["padded_to"], fresh["action"]) == (70, "load")


def test_timings_json_records_the_shape_and_why(predictor: Predictor, tmp_path: Path) -> None:
    msa = read(data("msa/a3m/colabfold_Q60262_uniref_env_small.a3m"))
    prediction = predictor.predict(msa, PredictOptions(models=(1,), num_recycles=0))
    write_prediction(prediction, tmp_path / "run")
    recorded = json.loads((tmp_path / "run" / "timings.json").read_text())["shape"]
    assert recorded["length"] == 62 and recorded["padded_to"] == prediction.shape.length
    assert recorded["action"] in ("reuse", "load", "compile") and recorded["reason"]
    assert recorded["chunk"] is None  # a short job on a CPU: AlphaFold's chunked layers whole
