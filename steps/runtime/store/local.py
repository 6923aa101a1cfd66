"""The embedded default: a directory. Same keys and semantics as the S3 backend.

Atomicity: every write goes to a temp file in the store's own scratch dir, is fsynced when
its bytes must outlive a power cut (`_durable`), and is moved into place with `os.replace`,
so a reader sees the old object or the new one, never a half-written file. Create-only writes publish with a hard link,
which fails when the key exists; If-Match writes hold an exclusive `flock` on the object's
own file while they compare and replace.

ETags: each write keeps its object's ETag (hex MD5, as S3's single-part one) in a small file of
its own under `.etags/`, stamped with the object file's inode, size and mtime and the boot, so
a listing reports ETags without reading any object, and only when asked; a missing or stale
stamp (a file changed outside the store, a copied store, a reboot, a store written before
stamps) is recomputed from the bytes once.
"""

from __future__ import annotations

import builtins
import contextlib
import fcntl
import hashlib
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator
from functools import partial
from pathlib import Path

from steps.runtime import layout
from steps.runtime.errors import ObjectNotFound, PreconditionFailed, StoreError
from steps.runtime.store.base import ObjectInfo, Store, check_key, check_prefix, prefix_end

_SCRATCH = ".tmp"
_LOCKS = ".locks"  # per-key lock files of stores written before locks moved onto the objects
_UNKEPT = (layout.EVENTS, layout.LOGS)  # conveniences: written once, never compared
# Not fsynced: the conveniences, and what tells its reader when it lost its bytes: a
# manifest record's name carries its bytes' MD5 (D22), and the plan's cache is JSON that a
# torn write leaves unreadable.
_UNSYNCED = (*_UNKEPT, layout.MANIFESTS, layout.CACHE)
_ETAGS = ".etags"
_HIDDEN = {_SCRATCH, _LOCKS, _ETAGS}


def _durable(key: str, data: bytes) -> bool:
    """Whether a put fsyncs its bytes before their name appears, so a power cut cannot leave
    the name with lost bytes. Every object is published atomically either way; not fsynced
    are those a power cut may cost without harm: events and log copies (conveniences; the
    manifest is the record, D18); manifest records, whose loss their readers see (the step
    runs again), made durable by `persist` once a pointer names one; the plan's cache; and
    an empty object (no bytes to lose)."""
    return bool(data) and not key.startswith(_UNSYNCED)


class _KeyExists(Exception):
    """A create-only write found the key taken."""


def _etag(data: bytes) -> str:
    # Same shape as S3's single-part ETag (hex MD5), so callers treat both alike.
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _boot() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


_BOOT = _boot()


def _stamp(st: os.stat_result) -> str:
    """Which version of a file a kept ETag describes: a put replaces the inode, and an edit in
    place moves the mtime, so either makes the kept ETag stale. So does a reboot: a write that
    was not fsynced (a log copy) may have lost its bytes but kept its name and size."""
    return f"{st.st_ino}.{st.st_size}.{st.st_mtime_ns}.{_BOOT}"


class LocalStore(Store):
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        self.url = f"file://{self.root}"
        try:
            (self.root / _SCRATCH).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot use directory store at {self.root}: {exc}") from exc

    def _path(self, key: str) -> Path:
        check_key(key)
        if key.split("/", 1)[0] in _HIDDEN:
            raise StoreError(f"key {key!r} is inside the store's private area")
        return self.root / key

    def _temp(self, data: bytes, *, sync: bool) -> tuple[str, os.stat_result]:
        """A complete copy of `data` in the scratch dir, not yet visible under any key."""
        fd, tmp = tempfile.mkstemp(dir=self.root / _SCRATCH, prefix="w-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                if sync:
                    os.fsync(handle.fileno())
                return tmp, os.fstat(handle.fileno())
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def _write_atomic(
        self, path: Path, data: bytes, *, sync: bool = True, exclusive: bool = False
    ) -> os.stat_result:
        """Publish `data` at `path` in one step: `os.replace`, or with `exclusive` a hard link,
        which the kernel refuses (EEXIST) when the key exists, so create-only needs no lock."""
        tmp, written = self._temp(data, sync=sync)
        try:
            try:
                self._publish(tmp, path, exclusive=exclusive)
            except FileNotFoundError:  # a new prefix: make its directories (once, not per put)
                path.parent.mkdir(parents=True, exist_ok=True)
                self._publish(tmp, path, exclusive=exclusive)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return written

    @staticmethod
    def _publish(tmp: str, path: Path, *, exclusive: bool) -> None:
        if not exclusive:
            os.replace(tmp, path)
            return
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise _KeyExists from None

    def persist(self, keys: Iterable[str]) -> None:
        for key in keys:
            try:
                fd = os.open(self._path(key), os.O_RDONLY)
            except FileNotFoundError:
                raise ObjectNotFound(self.describe(key)) from None
            except OSError as exc:
                raise StoreError(f"cannot make {self.describe(key)} durable: {exc}") from exc
            try:
                os.fsync(fd)  # any descriptor of a file flushes the file's own bytes
            finally:
                os.close(fd)

    def _put(self, key: str, data: bytes, *, exclusive: bool = False) -> str:
        etag = _etag(data)
        written = self._write_atomic(self._path(key), data, sync=_durable(key, data), exclusive=exclusive)
        # Events and log copies are written once and never compared, so their ETags are not
        # kept: a listing that asks for one computes it then (`_known_etag`).
        if not key.startswith(_UNKEPT):
            self._keep_etag(key, etag, written)
        return etag

    def _keep_etag(self, key: str, etag: str, st: os.stat_result) -> None:
        # Best effort, and no fsync: a lost or torn record only costs one hash later.
        side = self.root / _ETAGS / key
        try:
            side.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.root / _SCRATCH, prefix="e-")
        except OSError:
            return
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(f"{etag} {_stamp(st)}")
            os.replace(tmp, side)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)

    def _known_etag(self, key: str, path: Path, st: os.stat_result) -> str:
        """The ETag kept for this very version of the file, else computed from its bytes."""
        try:
            etag, _, stamp = (self.root / _ETAGS / key).read_text().partition(" ")
        except (OSError, UnicodeDecodeError):
            etag, stamp = "", ""
        if etag and stamp == _stamp(st):
            return etag
        with open(path, "rb") as handle:
            now = os.fstat(handle.fileno())
            data = handle.read()
        etag = _etag(data)
        self._keep_etag(key, etag, now)
        return etag

    def put_bytes(self, key: str, data: bytes) -> str:
        return self._put(key, data)

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
    def _locked(self, path: Path) -> Iterator[bytes | None]:
        """The object's current bytes (None when absent), read under an exclusive `flock` on
        the object's own file, held until the block ends. A put replaces the file, so a lock
        taken on a version that was replaced meanwhile is dropped and taken on the new one."""
        while True:
            try:
                handle = open(path, "rb")  # noqa: SIM115 (closed below; closing releases the lock)
            except (FileNotFoundError, NotADirectoryError):
                yield None
                return
            with handle:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
                try:
                    same = os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
                except FileNotFoundError:
                    same = False  # deleted while we waited: look again
                if same:
                    yield handle.read()
                    return

    def put_if(
        self, key: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False
    ) -> str:
        if (if_match is None) == (not if_none_match):
            raise ValueError("give exactly one of if_match or if_none_match")
        path = self._path(key)
        # Every unmet condition is PreconditionFailed, a missing key under If-Match too
        # (S3 answers that one with 404 NoSuchKey; the S3 backend maps it the same way).
        if if_none_match:
            try:
                return self._put(key, data, exclusive=True)
            except _KeyExists:
                raise PreconditionFailed(f"{self.describe(key)} already exists (If-None-Match *)") from None
        with self._locked(path) as current:
            if current is None:
                raise PreconditionFailed(f"{self.describe(key)} does not exist (If-Match {if_match})")
            if _etag(current) != if_match:
                raise PreconditionFailed(
                    f"{self.describe(key)} changed since it was read (If-Match {if_match})"
                )
            return self._put(key, data)

    def stat(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        try:
            st = path.stat()
            if not stat.S_ISREG(st.st_mode):
                return None
            return ObjectInfo(key=key, size=st.st_size, etag=self._known_etag(key, path, st))
        except (FileNotFoundError, NotADirectoryError):
            return None

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        check_prefix(prefix)
        yield from self._listing(prefix, "", None)

    def list_after(self, prefix: str, start_after: str, stop: str) -> Iterator[ObjectInfo]:
        check_prefix(prefix)
        yield from self._listing(prefix, start_after, stop)

    def _listing(self, prefix: str, start_after: str, stop: str | None) -> Iterator[ObjectInfo]:
        found = []
        for key, path in self._walk(prefix, start_after, stop):
            try:
                found.append((key, path, os.stat(path)))
            except FileNotFoundError:
                continue  # deleted while we walked
        for key, path, st in sorted(found, key=lambda f: f[0]):
            yield ObjectInfo(key, st.st_size, etag_of=partial(self._etag_listed, key, Path(path), st))

    def _etag_listed(self, key: str, path: Path, st: os.stat_result) -> str:
        try:
            return self._known_etag(key, path, st)
        except FileNotFoundError:
            return ""  # deleted since it was listed: no version to name

    def _walk(self, prefix: str, start_after: str, stop: str | None) -> Iterator[tuple[str, str]]:
        """(key, path) of every file under `prefix` within the bounds; only the directories
        that can hold such keys are entered."""
        base_dir, _, _ = prefix.rpartition("/")
        start = self.root / base_dir if base_dir else self.root
        if not start.is_dir():
            return

        def may_hold(folder: str) -> bool:
            return (
                (folder.startswith(prefix) or prefix.startswith(folder))
                and prefix_end(folder) > start_after
                and (stop is None or folder < stop)
            )

        for dirpath, dirnames, filenames in os.walk(start):
            rel_dir = os.path.relpath(dirpath, self.root)
            rel_dir = "" if rel_dir == "." else f"{rel_dir}/"
            dirnames[:] = [
                d for d in dirnames if not (not rel_dir and d in _HIDDEN) and may_hold(f"{rel_dir}{d}/")
            ]
            for name in filenames:
                key = f"{rel_dir}{name}"
                if key.startswith(prefix) and key > start_after and (stop is None or key < stop):
                    yield key, os.path.join(dirpath, name)

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
        with contextlib.suppress(OSError):
            (self.root / _ETAGS / key).unlink()
