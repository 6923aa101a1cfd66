"""Open a store by URL: `file://<dir>` (embedded default) or `s3://<bucket>[/prefix]` (MinIO)."""

from __future__ import annotations

from pathlib import Path

from steps.runtime.errors import StoreError
from steps.runtime.store.base import (
    ObjectInfo,
    Store,
    content_hash,
    dumps_json,
    frame_to_parquet,
    parquet_to_frame,
)

__all__ = [
    "ObjectInfo",
    "Store",
    "content_hash",
    "dumps_json",
    "frame_to_parquet",
    "open_store",
    "parquet_to_frame",
]


def open_store(url: str, *, create: bool = False) -> Store:
    """The store a URL names. `create` makes the bucket or directory when missing."""
    if not url or not isinstance(url, str):
        raise StoreError("no store URL given (e.g. file://./demo-store or s3://bucket)")
    if url.startswith("file://"):
        from steps.runtime.store.local import LocalStore

        path = url[len("file://") :]
        if not path:
            raise StoreError(f"store URL {url!r} names no directory")
        if not create and not Path(path).is_dir():
            raise StoreError(f"directory store {path!r} does not exist (seed it first)")
        return LocalStore(path)
    if url.startswith("s3://"):
        from steps.runtime.store.s3 import S3Store

        return S3Store(url, create_bucket=create)
    scheme = url.split("://", 1)[0] if "://" in url else url
    raise StoreError(f"unknown store scheme in {url!r} ({scheme!r}); use file://<dir> or s3://<bucket>")
