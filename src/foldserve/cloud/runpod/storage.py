"""Result files too large to return inline: uploaded to an S3-compatible bucket.

The job's output then carries a presigned GET URL per file, valid for ``BUCKET_URL_EXPIRY``
seconds, which the client downloads without any key. AWS S3, Cloudflare R2, MinIO, Backblaze
B2 and RunPod's own S3-compatible API all speak this protocol.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from foldserve.cloud.runpod.settings import BucketSettings
from foldserve.errors import StorageError
from foldserve.jobs.output import UrlFor
from foldserve.remote import first_line

_CONTENT_TYPES = {".json": "application/json", ".pdb": "text/plain", ".cif": "text/plain"}


class Bucket:
    """Uploads files under ``foldserve/{job id}/`` and signs URLs to fetch them."""

    def __init__(self, settings: BucketSettings) -> None:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError

        self.settings = settings
        config = Config(
            signature_version="s3v4",
            connect_timeout=10,
            read_timeout=60,
            retries={"max_attempts": 3, "mode": "standard"},
        )
        try:
            self._client: Any = boto3.client(
                "s3",
                endpoint_url=settings.endpoint_url,
                region_name=settings.region,
                aws_access_key_id=settings.access_key_id,
                aws_secret_access_key=settings.secret_access_key,
                config=config,
            )
        except BotoCoreError as exc:
            raise StorageError(f"cannot use bucket {settings.name} ({first_line(exc)})") from exc

    def url_for(self, job_id: str) -> UrlFor:
        """The ``url_for`` of one job: upload the file, answer its presigned URL."""
        prefix = "foldserve/" + re.sub(r"[^A-Za-z0-9._-]", "_", job_id)

        def upload(name: str, path: Path) -> str:
            return self.upload(path, f"{prefix}/{name}")

        return upload

    def upload(self, path: Path, key: str) -> str:
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError

        bucket = self.settings.name
        content_type = _CONTENT_TYPES.get(path.suffix, "application/octet-stream")
        try:
            self._client.upload_file(
                str(path), bucket, key, ExtraArgs={"ContentType": content_type}
            )
            url: str = self._client.generate_presigned_url(
                "get_object",
                Params={"Bucket": bucket, "Key": key},
                ExpiresIn=self.settings.url_expiry,
            )
        except (Boto3Error, BotoCoreError, ClientError) as exc:
            raise StorageError(
                f"could not upload {path.name} to bucket {bucket} ({first_line(exc)}); check "
                "the endpoint's BUCKET_* settings"
            ) from exc
        return url
