"""What a replica streams back for one job, in order: started, progress…, then the end.

Plain frozen dataclasses, pickled by Ray between the replica and the API process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from foldserve.jobs.schema import JobOutput, JobProgress


@dataclass(frozen=True)
class Started:
    """The replica has the job (and its device): the job is now IN_PROGRESS."""

    replica: str
    node: str
    pid: int


@dataclass(frozen=True)
class Progressed:
    progress: JobProgress


@dataclass(frozen=True)
class Finished:
    output: JobOutput
    #: The files the output links to rather than inlines, by name: the replica's node may not
    #: share a disk with the API, which serves them from its results folder.
    files: dict[str, bytes] = field(repr=False)


#: ``input``: the user's to fix; ``crash``: foldserve's (the replica is replaced);
#: ``no_room``: the replica's disk is full (the job goes back to the queue, its try unspent).
FailureCause = Literal["input", "crash", "no_room"]


@dataclass(frozen=True)
class Failed:
    error: str
    cause: FailureCause


ReplicaEvent = Started | Progressed | Finished | Failed
