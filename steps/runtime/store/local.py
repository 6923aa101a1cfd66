"""The embedded default: a directory. Same keys and semantics as the S3 backend.

Atomicity: every write goes to a temp file in the store's own scratch dir, is fsynced, and
is moved into place with `os.replace`, so a reader sees the old object or the new one, never
a half-written file. Conditional writes hold an exclusive `flock` per key while they compare.
"""

from __future__ import annotations

import builtins
import contextlib
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from steps.runtime.errors import ObjectNotFound, PreconditionFailed, StoreError
from steps.runtime.store.base import ObjectInfo, Store, check_key, check_prefix

_SCRATCH = ".tmp"
_LOCKS = ".locks"
_HIDDEN = {_SCRATCH, _LOCKS}


def _etag(data: bytes) -> str:
    # Same shape as S3's single-part ETag (hex MD5), so callers treat both alike.
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


class LocalStore(Store):
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        self.url = f"file://{self.root}"
        try:
            (self.root / _SCRATCH).mkdir(parents=True, exist_ok=True)
            (self.root / _LOCKS).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot use directory store at {self.root}: {exc}") from exc

    def _path(self, key: str) -> Path:
        check_key(key)
        if key.split("/", 1)[0] in _HIDDEN:
            raise StoreError(f"key {key!r} is inside the store's private area")
        return self.root / key

    def _write_atomic(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root / _SCRATCH, prefix="w-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def put_bytes(self, key: str, data: bytes) -> str:
        self._write_atomic(self._path(key), data)
        return _etag(data)

    def get_bytes(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFound(f"no object at {self.describe(key)}") from None

    def get_with_etag(self, key: str) -> tuple[bytes, str]:
        data = self.get_bytes(key)
        return data, _etag(data)

    @contextlib.contextmanager
    def _key_lock(self, key: str) -> Iterator[None]:
        name = hashlib.sha256(key.encode()).hexdigest()
        with open(self.root / _LOCKS / name, "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def put_if(
        self, key: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False
    ) -> str:
        if (if_match is None) == (not if_none_match):
            raise ValueError("give exactly one of if_match or if_none_match")
        path = self._path(key)
        with self._key_lock(key):
            try:
                current = _etag(path.read_bytes())
            except FileNotFoundError:
                current = None
            # Every unmet condition is PreconditionFailed, a missing key under If-Match too
            # (S3 answers that one with 404 NoSuchKey; the S3 backend maps it the same way).
            if if_none_match and current is not None:
                raise PreconditionFailed(f"{self.describe(key)} already exists (If-None-Match *)")
            if if_match is not None and current is None:
                raise PreconditionFailed(f"{self.describe(key)} does not exist (If-Match {if_match})")
            if if_match is not None and current != if_match:
                raise PreconditionFailed(
                    f"{self.describe(key)} changed since it was read (If-Match {if_match})"
                )
            self._write_atomic(path, data)
        return _etag(data)

    def stat(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        try:
            data = path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None
        return ObjectInfo(key=key, size=len(data), etag=_etag(data))

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        check_prefix(prefix)
        # Walk only the directory the prefix names, then filter by the partial last segment.
        base_dir, _, _ = prefix.rpartition("/")
        start = self.root / base_dir if base_dir else self.root
        if not start.is_dir():
            return
        found: list[tuple[str, int]] = []
        for dirpath, dirnames, filenames in os.walk(start):
            rel_dir = os.path.relpath(dirpath, self.root)
            if rel_dir == ".":
                dirnames[:] = [d for d in dirnames if d not in _HIDDEN]
                rel_dir = ""
            for name in filenames:
                key = f"{rel_dir}/{name}" if rel_dir else name
                if key.startswith(prefix):
                    found.append((key, os.path.getsize(os.path.join(dirpath, name))))
        for key, size in sorted(found):
            # The ETag needs the bytes; listings carry an empty one (as with S3's list-v2 for
            # our purposes) and callers that need it use stat/get_with_etag.
            yield ObjectInfo(key=key, size=size, etag="")

    def list_dirs(self, prefix: str) -> builtins.list[str]:
        check_prefix(prefix)
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        path = self.root / prefix if prefix else self.root
        if not path.is_dir():
            return []
        names = sorted(
            entry.name
            for entry in path.iterdir()
            if entry.is_dir() and not (not prefix and entry.name in _HIDDEN)
        )
        return [f"{prefix}{name}/" for name in names]

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()
