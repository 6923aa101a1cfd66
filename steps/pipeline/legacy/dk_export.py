"""An "existing script": writes the DraftKings upload CSV from the projection table.

It knows nothing of the orchestrator: it reads a parquet path and writes into a folder, both
given in the environment, as such scripts usually do.
"""

import os
import sys
from pathlib import Path

import pandas as pd

source = os.environ["PIPELINE_INPUT_FINALIZE_UNIFIED"]
out_dir = Path(os.environ["PIPELINE_OUTPUT_DIR"])
frame = pd.read_parquet(source)
if frame.empty:
    print("no projections to export", file=sys.stderr)
    sys.exit(3)
for group, rows in frame.groupby("draft_group_id"):
    path = out_dir / f"dk_upload_{group}.csv"
    rows.sort_values("player_id")[["player_id", "salary", "fp_mean", "ownership_pct"]].to_csv(
        path, index=False
    )
    print(f"wrote {path.name}: {len(rows)} players")
