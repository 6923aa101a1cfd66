"""One suite, both backends: the directory store and a real MinIO server."""

from __future__ import annotations

import pandas as pd
import pytest

from steps.runtime.errors import ObjectNotFound, PreconditionFailed, StoreError
from steps.runtime.store import Store, content_hash, open_store


def test_bytes_round_trip_and_overwrite(store: Store) -> None:
    etag1 = store.put_bytes("a/b/c.bin", b"one")
    assert store.get_bytes("a/b/c.bin") == b"one"
    etag2 = store.put_bytes("a/b/c.bin", b"two")
    assert etag1 != etag2
    data, etag = store.get_with_etag("a/b/c.bin")
    assert (data, etag) == (b"two", etag2)
    info = store.stat("a/b/c.bin")
    assert info is not None and info.size == 3 and info.etag == etag2


@pytest.mark.parametrize(
    "key",
    ["events/20250115/e1.json", "logs/sim.run/game_date=2025-01-15/attempt-1.stdout.txt", "runs/a/x.bin"],
)
def test_a_listing_gives_the_etag_a_put_returned_for_every_kind_of_key(store: Store, key: str) -> None:
    """The directory store keeps no ETag record for events and logs (written once, never
    compared): a listing computes theirs, and it is the one the put returned."""
    first = store.put_bytes(key, b"one")
    [listed] = list(store.list(key))
    assert listed.etag == first
    second = store.put_bytes(key, b"two")  # replaced: a record kept for the old bytes must not answer
    [listed] = list(store.list(key))
    assert listed.etag == second != first


def test_missing_object(store: Store) -> None:
    with pytest.raises(ObjectNotFound, match="no object at"):
        store.get_bytes("nope/x.json")
    assert store.stat("nope/x.json") is None
    assert not store.exists("nope/x.json")


def test_json_and_parquet_identical_across_backends(store: Store, tmp_path) -> None:
    frame = pd.DataFrame({"player_id": ["a", "b"], "fp": [1.5, 2.5], "n": [1, 2]})
    digest, _ = store.put_parquet("runs/x/data.parquet", frame)
    pd.testing.assert_frame_equal(store.get_parquet("runs/x/data.parquet"), frame)
    other = open_store(f"file://{tmp_path / 'other'}", create=True)
    assert other.put_parquet("k.parquet", frame)[0] == digest
    assert content_hash(store.get_bytes("runs/x/data.parquet")) == digest
    store.put_json("m/x.json", {"b": 1, "a": [1, 2]})
    assert store.get_json("m/x.json") == {"a": [1, 2], "b": 1}


def test_listing_is_ordered_prefix_scoped_and_paginated(store: Store) -> None:
    keys = [f"many/{i:05d}.txt" for i in range(1105)]  # more than one S3 list page (1000)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: store.put_bytes(k, b"x"), keys))
    store.put_bytes("many-other/x.txt", b"x")
    listed = [i.key for i in store.list("many/")]
    assert listed == keys
    assert [i.key for i in store.list("many/0000")] == keys[:10]
    store.put_bytes("d/one/x", b"1")
    store.put_bytes("d/two/y/z", b"2")
    assert store.list_dirs("d/") == ["d/one/", "d/two/"]
    assert list(store.list("absent/")) == []


def test_conditional_put(store: Store) -> None:
    etag = store.put_if("p/ptr.json", b"v1", if_none_match=True)
    with pytest.raises(PreconditionFailed):
        store.put_if("p/ptr.json", b"v1-again", if_none_match=True)
    etag2 = store.put_if("p/ptr.json", b"v2", if_match=etag)
    with pytest.raises(PreconditionFailed, match="changed since it was read"):
        store.put_if("p/ptr.json", b"v3", if_match=etag)  # stale ETag
    with pytest.raises(PreconditionFailed, match="already exists"):
        store.put_if("p/ptr.json", b"v3", if_none_match=True)
    assert store.get_with_etag("p/ptr.json") == (b"v2", etag2)


def test_conditional_put_on_a_missing_key(store: Store) -> None:
    # Every unmet condition is PreconditionFailed on both backends (MinIO itself answers
    # If-Match on a missing key with 404 NoSuchKey), so a CAS loop needs one except clause.
    with pytest.raises(PreconditionFailed, match="does not exist"):
        store.put_if("p/missing.json", b"v1", if_match="0123456789abcdef0123456789abcdef")
    assert store.stat("p/missing.json") is None  # nothing was written
    etag = store.put_if("p/missing.json", b"v1", if_none_match=True)  # create-only on a missing key
    assert store.get_with_etag("p/missing.json") == (b"v1", etag)
    store.delete("p/missing.json")
    with pytest.raises(PreconditionFailed, match="does not exist"):
        store.put_if("p/missing.json", b"v2", if_match=etag)  # the ETag read before the delete
    assert store.stat("p/missing.json") is None
    assert store.put_if("p/missing.json", b"v3", if_none_match=True)  # free again after a delete
    assert store.get_bytes("p/missing.json") == b"v3"


def test_conditional_put_needs_exactly_one_condition(store: Store) -> None:
    etag = store.put_bytes("p/both.json", b"v1")
    for key in ("p/both.json", "p/absent.json"):
        with pytest.raises(ValueError, match="exactly one"):
            store.put_if(key, b"v2", if_match=etag, if_none_match=True)
        with pytest.raises(ValueError, match="exactly one"):
            store.put_if(key, b"v2")
    assert store.get_bytes("p/both.json") == b"v1"
    assert store.stat("p/absent.json") is None


@pytest.mark.parametrize("key", ["", "/abs", "a//b", "a/../b", "a/./b", "a\\b", "..", "a/"])
def test_invalid_keys_are_refused(store: Store, key: str) -> None:
    with pytest.raises(StoreError, match="invalid store key"):
        store.put_bytes(key, b"x")


def test_unknown_scheme_and_missing_dir(tmp_path) -> None:
    with pytest.raises(StoreError, match="unknown store scheme"):
        open_store("gs://bucket")
    with pytest.raises(StoreError, match="does not exist"):
        open_store(f"file://{tmp_path / 'missing'}")
    with pytest.raises(StoreError, match="no store URL"):
        open_store("")


def test_unreachable_minio_is_a_clear_error(monkeypatch) -> None:
    from tests.servers import free_port

    monkeypatch.setenv("PIPELINE_S3_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("PIPELINE_S3_ACCESS_KEY", "x")
    monkeypatch.setenv("PIPELINE_S3_SECRET_KEY", "y")
    monkeypatch.setenv("PIPELINE_S3_RETRIES", "0")
    with pytest.raises(StoreError, match="cannot reach S3 endpoint"):
        open_store("s3://bucket")


def test_s3_config_errors(monkeypatch) -> None:
    monkeypatch.delenv("PIPELINE_S3_ENDPOINT", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with pytest.raises(StoreError, match="no S3 endpoint"):
        open_store("s3://bucket")
    with pytest.raises(StoreError, match="not in the store URL"):
        open_store("s3://key:secret@bucket")


def test_missing_bucket_is_refused_unless_created(minio_env) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        open_store("s3://never-made")
    assert open_store("s3://made-on-demand", create=True).list_dirs("") == []


def test_s3_prefix_isolates(minio_env) -> None:
    a = open_store("s3://shared-bucket/team-a", create=True)
    b = open_store("s3://shared-bucket/team-b", create=True)
    a.put_bytes("x/1", b"a")
    b.put_bytes("x/1", b"b")
    assert [i.key for i in a.list("x/")] == ["x/1"]
    assert a.get_bytes("x/1") == b"a" and b.get_bytes("x/1") == b"b"
