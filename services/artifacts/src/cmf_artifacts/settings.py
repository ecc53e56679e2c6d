from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, SecretStr

from cmf_common.settings import ServiceSettings

MiB = 1024 * 1024


class ArtifactSettings(ServiceSettings):
    service_name: ClassVar[str] = "artifacts"

    # Where the bytes live: a local folder (the embedded default), or an S3 bucket (``minio``
    # is the same adapter: MinIO, SeaweedFS and AWS all speak S3).
    artifact_storage_type: Literal["s3", "minio", "local"] = "local"
    # The local store's folder (``cmf-server up``: ``<data-dir>/artifacts``).
    artifacts_dir: Path = Field(default=Path("/var/lib/cmf-server/artifacts"))
    s3_endpoint_url: str | None = None
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_region: str = "us-east-1"
    s3_bucket: str = "cmf-artifacts"
    # Keys are ``<prefix>files/md5/<2>/<30>``: the DVC remote's layout under this prefix, so a
    # bucket that ``cmf artifact push`` wrote is read as it is (``s3://bucket/prefix``).
    s3_prefix: str = ""
    # The largest blob one upload may carry (413 beyond).
    max_blob_bytes: int = Field(default=1024 * 1024 * MiB, ge=1)
    # The largest part of a resumable upload sent through this service (S3 needs a part's
    # length first, so it is gathered; larger parts go to S3 through a presigned part URL).
    max_part_bytes: int = Field(default=64 * MiB, ge=5 * MiB)
    # The size of the parts a streamed upload is sent to S3 in (S3's minimum is 5 MiB), and how
    # many of them are sent at once while the next arrives. Measured (bench/artifacts.py), a
    # streamed upload grows the process by about ``(s3_parts_in_flight + 3.5) * s3_part_bytes``:
    # the defaults keep that under 64 MiB with room to spare (8 MiB x 2 reached 59-67 MiB).
    s3_part_bytes: int = Field(default=6 * MiB, ge=5 * MiB)
    s3_parts_in_flight: int = Field(default=2, ge=1, le=32)
    # A ``PUT`` of a digest the catalogue does not know asks the store whether it holds it (a
    # blob another writer put there) only for a body larger than this, or one the client holds
    # back until ``100 Continue``: for a smaller one, writing it again costs less.
    store_lookup_bytes: int = Field(default=1024 * 1024, ge=0)
    # An upload nobody finished (a crash, a client gone) is aborted when it is this old; a
    # resumable session when it has been idle this long.
    stale_upload_age: timedelta = Field(default=timedelta(hours=1))
    upload_session_ttl: timedelta = Field(default=timedelta(days=1))
    # How often stale uploads are looked for (also once at start).
    stale_sweep_every_s: float = Field(default=3600.0, gt=0)
    # How long a presigned URL is good for.
    presign_expiry_s: int = Field(default=3600, ge=1, le=7 * 24 * 3600)
    # The metadata service, asked which artifact a pipeline's name is (distributed; the
    # embedded server hands in its in-process metadata app).
    metadata_url: str | None = None
    # Outbox rows handed on are kept this long, as the metadata service's.
    outbox_retention: timedelta = Field(default=timedelta(days=7))

    @property
    def uses_s3(self) -> bool:
        return self.artifact_storage_type in ("s3", "minio")
