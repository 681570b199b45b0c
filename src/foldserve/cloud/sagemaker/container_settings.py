"""The SageMaker container's settings: the shared worker settings
(:class:`~foldserve.cloud.settings.WorkerSettings`, from the model's ``Environment``), where it
listens, and SageMaker's defaults for both.

SageMaker unpacks the model data (``ModelDataUrl``, a tar.gz of ``params/`` and, for
OpenFold3, ``openfold3/``) into ``/opt/ml/model``, so that is ``PARAM_DIR`` unless a mounted
path is named. Output files go inline up to 1 GB: SageMaker's asynchronous inference writes
the response body to S3 itself (the issue's "notification limit" is SNS's, which carries only
the output's location), and the container has nowhere else to put a file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar

from pydantic import Field

from foldserve.cloud.settings import WorkerSettings

#: Where SageMaker unpacks the model data.
MODEL_DIR = Path("/opt/ml/model")
#: SageMaker's port, unless an inference pipeline names another in SAGEMAKER_BIND_TO_PORT.
DEFAULT_PORT = 8080
DEFAULT_INLINE_LIMIT_MB = 1024.0


class ContainerSettings(WorkerSettings):
    """``foldserve serve --sagemaker``: its flags beat the environment, which beats these
    defaults."""

    documented_in: ClassVar[str] = "the container's variables in the README (Amazon SageMaker)"

    param_dir: Path = Field(default=MODEL_DIR, alias="PARAM_DIR")
    inline_limit_mb: float = Field(
        default=DEFAULT_INLINE_LIMIT_MB, alias="FOLDSERVE_INLINE_LIMIT_MB"
    )
    #: Every interface: SageMaker's front end connects from outside the container.
    host: str = "0.0.0.0"
    port: Annotated[int, Field(ge=1, le=65535)] = Field(
        default=DEFAULT_PORT, alias="SAGEMAKER_BIND_TO_PORT"
    )
