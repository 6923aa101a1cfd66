from datetime import UTC, date, datetime

import pytest

from steps.runtime.errors import InvalidPartition
from steps.runtime.partition import Partition, PartitionKey

GOOD = {
    "game_date": "2025-01-15",
    "run_as_of_ts": "2025-01-15T22:00:00Z",
    "run_id": "20250115T220000Z-base-w1000",
}


def test_valid_partition_normalises_to_utc() -> None:
    p = Partition.build(**{**GOOD, "run_as_of_ts": "2025-01-15T17:00:00-05:00"})
    assert p.run_as_of_ts == datetime(2025, 1, 15, 22, tzinfo=UTC)
    assert p.game_date == date(2025, 1, 15)
    assert p.as_of_iso() == "2025-01-15T22:00:00Z"


def test_segments_round_trip() -> None:
    p = Partition.build(**GOOD)
    text = p.segments()
    assert text == "game_date=2025-01-15/run=20250115T220000Z-base-w1000"
    assert PartitionKey.from_segments(text) == p.key
    assert PartitionKey.from_segments(text).segments() == text


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"game_date": "2025/01/15"}, "not an ISO date"),
        ({"game_date": "15-01-2025"}, "not an ISO date"),
        ({"game_date": "2025-02-30"}, "not a real date"),
        ({"game_date": ""}, "not an ISO date"),
        ({"game_date": " 2025-01-15"}, "game_date"),
        ({"run_as_of_ts": "2025-01-15T22:00:00"}, "naive"),
        ({"run_as_of_ts": "yesterday"}, "not an ISO-8601"),
        ({"run_as_of_ts": ""}, "empty"),
        ({"run_id": ""}, "empty"),
        ({"run_id": "   "}, "empty"),
        ({"run_id": "a b"}, "whitespace"),
        ({"run_id": "../../etc"}, "path separator"),
        ({"run_id": ".."}, "'..'"),
        ({"run_id": "a..b"}, "'..'"),
        ({"run_id": "run\\x"}, "path separator"),
        ({"run_id": "run=x"}, "may use only"),
        ({"run_id": "-leading"}, "may use only"),
        ({"run_id": "x" * 200}, "at most 128"),
        ({"draft_group_id": "dg/1"}, "path separator"),
        ({"profile": "base\n"}, "whitespace"),
        ({"worlds": 0}, "greater than 0"),
        ({"worlds": -5}, "greater than 0"),
        ({"month": "2025-13"}, "not YYYY-MM"),
        ({"unknown": "x"}, "Extra inputs"),
    ],
)
def test_bad_partitions_are_refused_clearly(override: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidPartition) as err:
        Partition.build(**{**GOOD, **override})
    assert message in str(err.value)


@pytest.mark.parametrize(
    "text",
    [
        "run=x",
        "month=2025-01/game_date=2025-01-15/run=x",
        "game_date=2025-01-15/draft_group=g",
        "run=x/game_date=2025-01-15",
        "game_date=2025-01-15/run=../x",
        "game_date=bad/run=x",
    ],
)
def test_bad_segments_are_refused(text: str) -> None:
    with pytest.raises(InvalidPartition):
        PartitionKey.from_segments(text)
