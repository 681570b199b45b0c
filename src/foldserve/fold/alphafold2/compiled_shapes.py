"""What the persistent compilation cache holds, and what each entry cost to make.

JAX keys its cache by a hash of the traced program, known only after tracing the network (most
of a second to seconds). To choose a shape before that, a worker that compiles a shape records
it beside the cache: what the function was compiled for (network, depth, precision, device,
JAX version), the shape, the compile's seconds and one forward pass's. A fresh worker reads
these records to know which shapes load cheaply and what compiling and running cost on this
device before it has measured anything itself.

One file per record, written atomically, so workers sharing a volume never rewrite each
other's; a record that cannot be read is skipped (it is a hint, never a reason to fail). The
records sit inside the cache's folder, so deleting the cache deletes them too.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import pydantic

from foldserve.files import write_text
from foldserve.fold.alphafold2.features import InputShape
from foldserve.fold.alphafold2.network import NetworkKey

SHAPES_DIRNAME = "foldserve-shapes"


@dataclass(frozen=True)
class CompileTarget:
    """What one compiled function is specialised to, besides its input shape."""

    network: NetworkKey
    evoformer_blocks: int
    precision: str
    device: str
    jax_version: str


@dataclass(frozen=True)
class ShapeRecord:
    """One shape compiled into the persistent cache, with what it cost."""

    target: CompileTarget
    shape: InputShape
    compile_seconds: float
    #: One forward pass (a recycle) at ``shape``.
    pass_seconds: float

    def file_name(self) -> str:
        identity = json.dumps([asdict(self.target), asdict(self.shape)], sort_keys=True)
        return hashlib.sha256(identity.encode()).hexdigest()[:24] + ".json"


_RECORD = pydantic.TypeAdapter(ShapeRecord)


class ShapeRecords:
    """The records in one compilation cache's folder."""

    def __init__(self, cache_dir: Path) -> None:
        self.directory = cache_dir / SHAPES_DIRNAME

    def read(self, target: CompileTarget) -> tuple[ShapeRecord, ...]:
        """The records of functions compiled for ``target``, in file-name order."""
        records = []
        for path in sorted(self.directory.glob("*.json")):
            try:
                record = _RECORD.validate_json(path.read_bytes())
            except (OSError, pydantic.ValidationError):
                continue
            if record.target == target:
                records.append(record)
        return tuple(records)

    def add(self, record: ShapeRecord) -> None:
        write_text(self.directory / record.file_name(), json.dumps(asdict(record), indent=1))
