"""One store interface; two backends (a directory, and S3/MinIO) with the same semantics.

Backends implement a handful of byte-level primitives; JSON and parquet sit on top here so
both backends serialise identically (and content hashes match across them).
"""

from __future__ import annotations

import builtins
import hashlib
import io
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from steps.runtime.errors import CorruptObject, StoreError


class ObjectInfo:
    """A stored object as a listing or stat sees it. A backend whose ETag costs a lookup may
    pass `etag_of` instead of `etag`: it is called once, when a caller first asks, since most
    listings (landing sources, history) never do."""

    __slots__ = ("_etag", "_etag_of", "key", "size")

    def __init__(
        self, key: str, size: int, etag: str | None = None, *, etag_of: Callable[[], str] | None = None
    ) -> None:
        if (etag is None) == (etag_of is None):
            raise ValueError("an ObjectInfo takes its etag or a way to look it up, not both or neither")
        self.key = key
        self.size = size
        self._etag = etag
        self._etag_of = etag_of

    @property
    def etag(self) -> str:
        if self._etag is None:
            assert self._etag_of is not None  # the constructor's rule
            self._etag = self._etag_of()
        return self._etag

    def _identity(self) -> tuple[str, int, str]:
        return (self.key, self.size, self.etag)

    def __eq__(self, other: object) -> bool:
        return self._identity() == other._identity() if isinstance(other, ObjectInfo) else NotImplemented

    def __hash__(self) -> int:
        return hash(self._identity())

    def __repr__(self) -> str:
        return f"ObjectInfo(key={self.key!r}, size={self.size}, etag={self.etag!r})"


def check_key(key: str) -> str:
    """Keys are relative, `/`-separated, with no empty, `.` or `..` segments."""
    if not key or key.startswith("/") or "\\" in key or "\x00" in key:
        raise StoreError(f"invalid store key {key!r}")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise StoreError(f"invalid store key {key!r}: bad segment {segment!r}")
    return key


def check_prefix(prefix: str) -> str:
    if prefix == "":
        return prefix
    check_key(prefix.rstrip("/"))
    return prefix


def prefix_end(prefix: str) -> str:
    """The least string above every key that starts with `prefix` (a listing's exclusive end)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def content_hash(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def dumps_json(value: Any) -> bytes:
    """Canonical JSON: sorted keys, fixed separators, so equal values give equal bytes."""
    return (json.dumps(value, sort_keys=True, indent=2, default=str) + "\n").encode()


def frame_to_parquet(frame: pd.DataFrame) -> bytes:
    """Deterministic parquet bytes for a frame (no index, fixed writer options)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd", write_statistics=True, store_schema=True)
    return sink.getvalue()


def parquet_to_frame(data: bytes) -> pd.DataFrame:
    return pq.read_table(io.BytesIO(data)).to_pandas()


class Store(ABC):
    """Byte-level object store. Writes are atomic: a reader sees the old object or the new."""

    url: str

    @abstractmethod
    def put_bytes(self, key: str, data: bytes) -> str:
        """Write an object; returns its ETag."""

    @abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """Read an object; raises ObjectNotFound."""

    @abstractmethod
    def get_with_etag(self, key: str) -> tuple[bytes, str]:
        """Read an object and the ETag to use in a later conditional put."""

    @abstractmethod
    def put_if(
        self, key: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False
    ) -> str:
        """Conditional write: `if_match` an ETag, or `if_none_match` (create only); exactly one.

        Raises PreconditionFailed whenever the condition does not hold, on every backend:
        `if_match` on a missing key (S3 says 404 NoSuchKey) or a changed one, and
        `if_none_match` on an existing key. Giving both or neither is a ValueError.
        """

    @abstractmethod
    def stat(self, key: str) -> ObjectInfo | None:
        """Size and ETag, or None when absent."""

    @abstractmethod
    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object under `prefix`, in key order (paginated, never a request per object)."""

    def list_after(self, prefix: str, start_after: str, stop: str) -> Iterator[ObjectInfo]:
        """The objects under `prefix` whose keys sort after `start_after` and before `stop`, in
        key order. Backends start the listing at `start_after` and end it at `stop`, so a range
        of a large prefix costs its own pages only; this default filters `list`."""
        for info in self.list(prefix):
            if info.key >= stop:
                return
            if info.key > start_after:
                yield info

    @abstractmethod
    def list_dirs(self, prefix: str) -> builtins.list[str]:
        """The immediate sub-prefixes of `prefix` (with a trailing `/`), in key order."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove an object (used only for scratch and tests; run outputs are immutable)."""

    def exists(self, key: str) -> bool:
        return self.stat(key) is not None

    def persist(self, keys: Iterable[str]) -> None:  # noqa: B027 -- S3 has nothing to do
        """Make written objects outlive a power cut, for a backend that published them without
        (the directory store's manifest records): before a pointer names one. S3 acknowledges
        a PUT once it is durable, so by default there is nothing to do."""

    def put_json(self, key: str, value: Any) -> str:
        return self.put_bytes(key, dumps_json(value))

    def get_json(self, key: str) -> Any:
        return json.loads(self.get_bytes(key))

    def put_parquet(self, key: str, frame: pd.DataFrame) -> tuple[str, bytes]:
        data = frame_to_parquet(frame)
        self.put_bytes(key, data)
        return content_hash(data), data

    def get_parquet(self, key: str) -> pd.DataFrame:
        data = self.get_bytes(key)
        try:
            return parquet_to_frame(data)
        except (pa.ArrowException, OSError) as exc:
            raise CorruptObject(
                f"{self.describe(key)} is not readable parquet ({len(data)} bytes): {exc}"
            ) from None

    def describe(self, key: str) -> str:
        """A human-readable location for messages and manifests."""
        return f"{self.url.rstrip('/')}/{key}"
