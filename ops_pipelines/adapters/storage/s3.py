"""Backups in an S3 bucket (AWS or any S3-compatible server: MinIO, Ceph, moto), through boto3.

Uploads stream in parts of `part_bytes` (memory stays at one part whatever the object's size),
complete only when every part arrived, and are aborted otherwise, so a failed copy leaves no
object. The sha256 of the content is stored in the object's metadata (`x-amz-meta-sha256`).
Credentials come from boto3's usual chain (environment, ~/.aws, instance role), never from config.
"""

import contextlib
import io
import mimetypes
from collections.abc import Iterator
from typing import BinaryIO

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from ops_pipelines.adapters.storage.base import BackupStorage, StorageError, StoredObject, Writer
from ops_pipelines.config import S3Store

PART_BYTES = 16 * 1024 * 1024  # S3 requires at least 5 MiB per part except the last


class S3Storage(BackupStorage):
    trusted = False  # see BackupStorage.trusted

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        part_bytes: int = PART_BYTES,
        page_size: int = 1000,
        timeout: float = 20.0,
    ) -> None:
        self.bucket = bucket
        self.page_size = page_size
        self.prefix = prefix
        self.part_bytes = part_bytes
        self.description = f"s3://{bucket}/{prefix}"
        # named in every error: a DBA reading "cannot read …" must know which server did not answer
        self.endpoint = endpoint_url or f"AWS S3{f' ({region})' if region else ''}"
        self.client = boto3.Session().client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            config=BotoConfig(
                retries={"max_attempts": 3, "mode": "standard"},  # 3 attempts in all, backing off between them
                signature_version="s3v4",  # presigned links too (SigV2 is refused by most AWS regions)
                connect_timeout=5,
                read_timeout=timeout,
            ),
        )

    @classmethod
    def from_config(cls, store: S3Store) -> "S3Storage":
        return cls(store.bucket, store.prefix, store.endpoint_url, store.region, timeout=store.timeout.seconds)

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{key}"

    def list_objects(self, prefix: str) -> list[StoredObject]:
        found = []
        with self._errors(f"cannot list {self.uri(prefix)}"):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix + prefix, PaginationConfig={"PageSize": self.page_size}
            )
            for page in pages:
                for item in page.get("Contents", []):
                    key = item["Key"][len(self.prefix) :]
                    found.append(StoredObject(key, item["Size"], item["LastModified"]))
        return sorted(found, key=lambda o: o.key)

    def stat(self, key: str) -> StoredObject | None:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.prefix + key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise StorageError(f"cannot look up {self.uri(key)} at {self.endpoint}: {_cause(exc)}") from None
        except BotoCoreError as exc:
            raise StorageError(f"cannot look up {self.uri(key)} at {self.endpoint}: {_cause(exc)}") from None
        return StoredObject(key, head["ContentLength"], head["LastModified"], head.get("Metadata", {}).get("sha256"))

    @contextlib.contextmanager
    def open_read(self, key: str) -> Iterator[BinaryIO]:
        with self._errors(f"cannot read {self.uri(key)}"):
            body = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"]
            try:
                yield body
            finally:
                body.close()

    @contextlib.contextmanager
    def open_write(self, key: str, sha256: str | None = None) -> Iterator[Writer]:
        writer = _MultipartWriter(self, self.prefix + key, {"sha256": sha256} if sha256 else {})
        with self._errors(f"cannot write {self.uri(key)}"):
            try:
                yield writer
                writer.finish()
            except BaseException:
                writer.abort()
                raise

    def delete(self, key: str) -> None:
        with self._errors(f"cannot delete {self.uri(key)}"):
            self.client.delete_object(Bucket=self.bucket, Key=self.prefix + key)

    def browser_link(self, key: str, seconds: int) -> str | None:
        """A presigned GET URL (signed locally with the process's credentials; no request is made)."""
        with self._errors(f"cannot sign a link to {self.uri(key)}"):
            return self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": self.prefix + key}, ExpiresIn=seconds
            )

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"{what} at {self.endpoint}: {_cause(exc)}") from None


class _MultipartWriter:
    """Buffers one part at a time; a small object becomes a single PUT."""

    def __init__(self, storage: S3Storage, full_key: str, metadata: dict[str, str]) -> None:
        self.storage = storage
        self.key = full_key
        self.metadata = metadata
        # A report opened through a presigned link must render, not download: its type by its name.
        self.content_type = mimetypes.guess_type(full_key)[0] or "application/octet-stream"
        self.buffer = io.BytesIO()
        self.upload_id: str | None = None
        self.parts: list[dict] = []

    def write(self, data: bytes) -> int:
        self.buffer.write(data)
        if self.buffer.tell() >= self.storage.part_bytes:
            self._send_part()
        return len(data)

    def _send_part(self) -> None:
        client, bucket = self.storage.client, self.storage.bucket
        if self.upload_id is None:
            created = client.create_multipart_upload(
                Bucket=bucket, Key=self.key, Metadata=self.metadata, ContentType=self.content_type
            )
            self.upload_id = created["UploadId"]
        number = len(self.parts) + 1
        sent = client.upload_part(
            Bucket=bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=self.buffer.getvalue()
        )
        self.parts.append({"PartNumber": number, "ETag": sent["ETag"]})
        self.buffer = io.BytesIO()

    def finish(self) -> None:
        client, bucket = self.storage.client, self.storage.bucket
        if self.upload_id is None:
            client.put_object(
                Bucket=bucket,
                Key=self.key,
                Body=self.buffer.getvalue(),
                Metadata=self.metadata,
                ContentType=self.content_type,
            )
            return
        if self.buffer.tell():
            self._send_part()
        client.complete_multipart_upload(
            Bucket=bucket, Key=self.key, UploadId=self.upload_id, MultipartUpload={"Parts": self.parts}
        )

    def abort(self) -> None:
        if self.upload_id is None:
            return
        with contextlib.suppress(BotoCoreError, ClientError):
            self.storage.client.abort_multipart_upload(
                Bucket=self.storage.bucket, Key=self.key, UploadId=self.upload_id
            )


def _cause(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '')}".strip(": ")
    # botocore names the endpoint "None" when the request had not got one yet: leave that out
    return str(exc).splitlines()[0].replace(' on endpoint URL: "None"', "")
