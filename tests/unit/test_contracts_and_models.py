from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from steps.pipeline.contracts import MINUTES_SCORE
from steps.pipeline.landing import ROSTER
from steps.pipeline.sim import simulate
from steps.runtime.contracts import enforce
from steps.runtime.errors import ContractBroken

ROSTER_OK = pd.DataFrame(
    {
        "team": ["BOS", "BOS"],
        "player_id": ["P0100", "P0101"],
        "player_name": ["A", "B"],
        "position": ["PG", "C"],
        "active": [True, False],
    }
)
SCORE_OK = pd.DataFrame(
    {
        "player_id": ["a", "b"],
        "team": ["BOS", "NYK"],
        "game_id": ["g1", "g1"],
        "is_out": [False, True],
        "minutes_mean": [30.0, 0.0],
        "minutes_sd": [5.0, 0.0],
        "model_run_id": ["r", "r"],
    }
)


def test_good_frames_pass() -> None:
    enforce(ROSTER_OK, ROSTER, "test")
    enforce(SCORE_OK, MINUTES_SCORE, "test")


@pytest.mark.parametrize(
    ("frame", "schema", "fragments"),
    [
        (ROSTER_OK.drop(columns=["position"]), ROSTER, ["missing column(s) position"]),
        (ROSTER_OK.assign(active=["yes", "no"]), ROSTER, ["column 'active'", "dtype"]),
        (ROSTER_OK.assign(player_id=["P0100", "P0100"]), ROSTER, ["player_id", "unique"]),
        (
            ROSTER_OK.assign(position=["PG", "GOALIE"]),
            ROSTER,
            ["column 'position'", "isin", "GOALIE"],
        ),
        (
            SCORE_OK.assign(minutes_mean=[30.0, np.nan]),
            MINUTES_SCORE,
            ["column 'minutes_mean'", "not_nullable"],
        ),
        (
            SCORE_OK.assign(minutes_mean=[30.0, 61.0]),
            MINUTES_SCORE,
            ["column 'minutes_mean'", "in_range", "61.0"],
        ),
        (SCORE_OK.assign(extra=[1, 2]), MINUTES_SCORE, ["extra"]),
    ],
)
def test_broken_contracts_name_column_and_check(frame: pd.DataFrame, schema, fragments: list[str]) -> None:
    with pytest.raises(ContractBroken) as err:
        enforce(frame, schema, "unit test input")
    text = str(err.value)
    assert text.startswith("contract broken at unit test input")
    for fragment in fragments:
        assert fragment in text


def test_simulation_is_seeded_and_sane() -> None:
    minutes = SCORE_OK.drop(columns=["model_run_id"])
    rates = pd.DataFrame({"player_id": ["a", "b"], "rate_mean": [1.0, 1.0], "rate_sd": [0.25, 0.25]})
    one = simulate(minutes, rates, worlds=4000, seed=11)
    two = simulate(minutes, rates, worlds=4000, seed=11)
    pd.testing.assert_frame_equal(one, two)
    assert not one.equals(simulate(minutes, rates, worlds=4000, seed=12))
    a = one.set_index("player_id").loc["a"]
    assert a.fp_p10 <= a.fp_p50 <= a.fp_p90
    assert abs(a.fp_mean - 30.0) < 1.5  # 30 minutes at 1 fp/min
    assert one.set_index("player_id").loc["b", "fp_mean"] == 0.0  # out
