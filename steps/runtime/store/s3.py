"""The production backend: an S3 bucket on MinIO, through the `minio` client.

URL form: `s3://<bucket>[/<prefix>]`. The endpoint and credentials come from the environment
(`PIPELINE_S3_ENDPOINT`, `PIPELINE_S3_ACCESS_KEY`, `PIPELINE_S3_SECRET_KEY`; the AWS_* names
are accepted too) or from URL query parameters `endpoint=`; secrets never go in the URL, so
they never land in a manifest or a command line.
"""

from __future__ import annotations

import builtins
import io
import mimetypes
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any, NoReturn
from urllib.parse import unquote_plus, urlsplit

import urllib3
from minio import Minio
from minio.error import MinioException, S3Error
from minio.helpers import DictType

from steps.runtime.errors import ObjectNotFound, PreconditionFailed, StoreError, StoreUnavailable
from steps.runtime.store.base import ObjectInfo, Store, check_key, check_prefix

_NOT_FOUND = {"NoSuchKey", "NoSuchObject", "ResourceNotFound"}
_TRANSIENT = {"ServiceUnavailable", "SlowDown", "XMinioServerNotInitialized", "InternalError"}


def _env(*names: str) -> str | None:
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


def _http_client() -> urllib3.PoolManager:
    # Short connect timeout and few retries: an unreachable endpoint is reported in seconds,
    # and step-level retries (with backoff) ride out a MinIO restart.
    retries = int(os.environ.get("PIPELINE_S3_RETRIES", "3"))
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=3.0, read=60.0),
        maxsize=16,
        retries=urllib3.Retry(total=retries, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
    )


def _local(tag: str) -> str:
    """An XML element's name without its namespace (`{http://s3...}Key` is `Key`)."""
    return tag[tag.rfind("}") + 1 :]


class S3Store(Store):
    def __init__(self, url: str, *, create_bucket: bool = False) -> None:
        parts = urlsplit(url)
        if parts.username or parts.password:
            raise StoreError(
                "put S3 credentials in PIPELINE_S3_ACCESS_KEY / PIPELINE_S3_SECRET_KEY, "
                "not in the store URL (it is recorded in manifests)"
            )
        self.bucket = parts.netloc
        if not self.bucket:
            raise StoreError(f"store URL {url!r} names no bucket (expected s3://<bucket>[/prefix])")
        self.prefix = parts.path.strip("/")
        if self.prefix:
            check_prefix(self.prefix)
        query = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)
        endpoint = query.get("endpoint") or _env("PIPELINE_S3_ENDPOINT", "AWS_ENDPOINT_URL")
        if not endpoint:
            raise StoreError(
                "no S3 endpoint: set PIPELINE_S3_ENDPOINT (e.g. http://127.0.0.1:9000) "
                "or add ?endpoint=... to the store URL"
            )
        ep = urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
        access = _env("PIPELINE_S3_ACCESS_KEY", "AWS_ACCESS_KEY_ID")
        secret = _env("PIPELINE_S3_SECRET_KEY", "AWS_SECRET_ACCESS_KEY")
        if not access or not secret:
            raise StoreError("no S3 credentials: set PIPELINE_S3_ACCESS_KEY and PIPELINE_S3_SECRET_KEY")
        self.endpoint = f"{ep.scheme}://{ep.netloc}"
        self.url = f"s3://{self.bucket}" + (f"/{self.prefix}" if self.prefix else "")
        self.client = Minio(
            ep.netloc,
            access_key=access,
            secret_key=secret,
            secure=ep.scheme == "https",
            region=_env("PIPELINE_S3_REGION") or "us-east-1",
            http_client=_http_client(),
        )
        try:
            if not self.client.bucket_exists(self.bucket):
                if not create_bucket:
                    raise StoreError(
                        f"bucket {self.bucket!r} does not exist at {self.endpoint}; "
                        "create it (e.g. `pipeline seed-history` creates it) or fix the URL"
                    )
                self.client.make_bucket(self.bucket)
        except StoreError:
            raise
        except S3Error as exc:
            if exc.code == "BucketAlreadyOwnedByYou":
                return
            raise StoreError(f"S3 error opening {self.url} at {self.endpoint}: {exc}") from exc
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise StoreUnavailable(f"cannot reach S3 endpoint {self.endpoint}: {exc}") from exc

    def _k(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _unprefix(self, name: str) -> str:
        return name[len(self.prefix) + 1 :] if self.prefix else name

    def _fail(self, key: str, exc: Exception) -> NoReturn:
        if isinstance(exc, S3Error):
            if exc.code in _NOT_FOUND:
                raise ObjectNotFound(f"no object at {self.describe(key)}") from None
            if exc.code == "PreconditionFailed":
                raise PreconditionFailed(f"{self.describe(key)}: precondition failed") from None
            if exc.code in _TRANSIENT:
                raise StoreUnavailable(f"S3 endpoint {self.endpoint} is not ready: {exc.code}") from None
            raise StoreError(f"S3 error on {self.describe(key)}: {exc.code}: {exc.message}")
        raise StoreUnavailable(f"cannot reach S3 endpoint {self.endpoint}: {exc}") from exc

    def _call(self, key: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
            self._fail(key, exc)

    def put_bytes(self, key: str, data: bytes) -> str:
        result = self._call(
            key,
            self.client.put_object,
            self.bucket,
            self._k(key),
            io.BytesIO(data),
            len(data),
            # So MinIO's console previews a report or a summary instead of downloading it.
            content_type=mimetypes.guess_type(key)[0] or "application/octet-stream",
        )
        return str(result.etag)

    def get_with_etag(self, key: str) -> tuple[bytes, str]:
        def fetch() -> tuple[bytes, str]:
            response = self.client.get_object(self.bucket, self._k(key))
            try:
                return response.read(), response.headers.get("ETag", "").strip('"')
            finally:
                response.close()
                response.release_conn()

        return self._call(key, fetch)  # type: ignore[no-any-return]

    def get_bytes(self, key: str) -> bytes:
        return self.get_with_etag(key)[0]

    def put_if(
        self, key: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False
    ) -> str:
        if (if_match is None) == (not if_none_match):
            raise ValueError("give exactly one of if_match or if_none_match")
        headers: DictType = {"If-None-Match": "*"} if if_none_match else {"If-Match": f'"{if_match}"'}
        # The public put_object cannot send conditional headers; the client's signed single
        # PUT can, and MinIO enforces If-Match / If-None-Match on PutObject.
        try:
            result = self.client._put_object(self.bucket, self._k(key), data, headers=headers)
        except S3Error as exc:
            # Every unmet condition is PreconditionFailed, as on the directory backend: S3 and
            # MinIO answer If-Match on a missing key with 404 NoSuchKey, an existing key under
            # If-None-Match or a stale ETag with 412 PreconditionFailed, and a conditional
            # write that raced another one on the same key with 409 ConditionalRequestConflict.
            if exc.code in _NOT_FOUND and if_match is not None:
                raise PreconditionFailed(
                    f"{self.describe(key)} does not exist (If-Match {if_match})"
                ) from None
            if exc.code == "PreconditionFailed":
                raise PreconditionFailed(
                    f"{self.describe(key)} already exists (If-None-Match *)"
                    if if_none_match
                    else f"{self.describe(key)} changed since it was read (If-Match {if_match})"
                ) from None
            if exc.code == "ConditionalRequestConflict":
                raise PreconditionFailed(
                    f"{self.describe(key)} was written concurrently by another conditional PUT"
                ) from None
            self._fail(key, exc)
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
            self._fail(key, exc)
        return str(result.etag)

    def stat(self, key: str) -> ObjectInfo | None:
        try:
            info = self.client.stat_object(self.bucket, self._k(key))
        except S3Error as exc:
            if exc.code in _NOT_FOUND:
                return None
            self._fail(key, exc)
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
            self._fail(key, exc)
        return ObjectInfo(key=key, size=int(info.size or 0), etag=str(info.etag or "").strip('"'))

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        check_prefix(prefix)
        yield from self._listing(prefix, "")

    def list_after(self, prefix: str, start_after: str, stop: str) -> Iterator[ObjectInfo]:
        check_prefix(prefix)
        for info in self._listing(prefix, start_after):
            if info.key >= stop:
                return  # lazy: no page after the range is fetched
            yield info

    def _listing(self, prefix: str, start_after: str) -> Iterator[ObjectInfo]:
        """List-v2, page by page (1,000 keys each), from `start_after` on. The client's own
        listing builds a full object per key (dates parsed and all), which costs several times
        what the request does on a large listing; only the key, size and ETag are read here."""
        query: dict[str, str | list[str] | tuple[str]] = {
            "list-type": "2",
            "prefix": f"{self.prefix}/{prefix}" if self.prefix else prefix,
            "delimiter": "",
            "max-keys": "1000",
            "encoding-type": "url",
        }
        if start_after:
            query["start-after"] = f"{self.prefix}/{start_after}" if self.prefix else start_after
        while True:
            try:
                page = ET.fromstring(self.client._execute("GET", self.bucket, query_params=query).data)
            except (MinioException, urllib3.exceptions.HTTPError, OSError, ET.ParseError) as exc:
                self._fail(prefix, exc)
            for item in page:
                if _local(item.tag) != "Contents":
                    continue
                # The children by hand: ElementPath's `findtext` costs more than the parse.
                fields = {_local(child.tag): child.text or "" for child in item}
                yield ObjectInfo(
                    key=self._unprefix(unquote_plus(fields.get("Key", ""))),
                    size=int(fields.get("Size") or 0),
                    etag=fields.get("ETag", "").strip('"'),
                )
            token = page.findtext("{*}NextContinuationToken")
            if (page.findtext("{*}IsTruncated") or "").lower() != "true" or not token:
                return
            query["continuation-token"] = token

    def list_dirs(self, prefix: str) -> builtins.list[str]:
        check_prefix(prefix)
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        full = f"{self.prefix}/{prefix}" if self.prefix else prefix
        try:
            return [
                self._unprefix(obj.object_name)
                for obj in self.client.list_objects(self.bucket, prefix=full, recursive=False)
                if obj.is_dir and obj.object_name
            ]
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
            self._fail(prefix, exc)

    def delete(self, key: str) -> None:
        self._call(key, self.client.remove_object, self.bucket, self._k(key))
