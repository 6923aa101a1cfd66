"""`pipeline report`: one self-contained HTML page (works offline) answering what ran, what
failed and why: a timeline of steps per partition, step duration distributions, failures
grouped by root cause with their manifests and log tails, input gaps and pointer changes."""

from __future__ import annotations

import html
from collections import defaultdict
from datetime import date

import pandas as pd
import plotly.express as px

from steps.runtime import layout
from steps.runtime.errors import ObjectNotFound
from steps.runtime.partition import PartitionKey
from steps.runtime.pointer import list_history
from steps.runtime.store import Store
from workflows.graph import Graph
from workflows.status import PartitionView
from workflows.summary import error_signature

STATUS_COLOURS = {"success": "#2e7d32", "failed": "#c62828", "skipped": "#f9a825", "missing": "#9e9e9e"}
CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222}
h1{margin-bottom:4px} h2{margin-top:32px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:13px} td,th{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
.failed{color:#c62828;font-weight:600} .success{color:#2e7d32} .muted{color:#777}
pre{background:#f6f6f6;padding:8px;max-height:240px;overflow:auto;font-size:12px}
.cards span{display:inline-block;margin-right:18px;font-size:18px}
"""


def _table(rows: list[list[str]], header: list[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _log_tail(store: Store, asset: str, view: PartitionView) -> str:
    manifest = view.steps[asset].manifest
    key = manifest.partition.key if manifest else PartitionKey(game_date=view.game_date, run_id=view.run_id)
    prefix = layout.log_prefix(asset, key)
    logs = sorted(i.key for i in store.list(prefix) if i.key.endswith("stderr.txt"))
    if logs:
        try:
            return store.get_bytes(logs[-1]).decode(errors="replace")[-1500:]
        except ObjectNotFound:
            pass
    return manifest.error.traceback_snippet[-1500:] if manifest and manifest.error else ""


def build_report(
    store: Store, graph: Graph, views: list[PartitionView], *, title: str, summary: dict | None = None
) -> str:
    rows = []
    for view in views:
        for asset, step in view.steps.items():
            if step.manifest is None:
                continue
            t = step.manifest.timing
            rows.append(
                {
                    "partition": view.game_date.isoformat(),
                    "step": asset,
                    "status": step.status,
                    "start": t.started_at,
                    "finish": max(t.finished_at, t.started_at + pd.Timedelta(milliseconds=50)),
                    "duration_s": t.duration_s,
                    "attempt": step.manifest.attempt,
                }
            )
    frame = pd.DataFrame(rows)
    parts = [f"<h1>{html.escape(title)}</h1>"]
    counts = defaultdict(int)
    for view in views:
        counts[view.status] += 1
    parts.append(
        '<div class="cards">'
        + "".join(f"<span><b>{n}</b> {html.escape(k)}</span>" for k, n in sorted(counts.items()))
        + f"<span><b>{len(views)}</b> partitions</span></div>"
    )
    if summary:
        acc = summary.get("accuracy") or {}
        line = f"backfill {summary['backfill_id']} ({summary['kind']}), {summary['wall_s']:.1f}s wall"
        if acc:
            line += f"; accuracy MAE {acc['mae_fp']:.2f} fp vs naive baseline {acc['baseline_mae_fp']:.2f}"
        parts.append(f'<p class="muted">{html.escape(line)}</p>')

    first_plot = True

    def plot(fig) -> str:  # type: ignore[no-untyped-def]
        nonlocal first_plot
        out = fig.to_html(full_html=False, include_plotlyjs=first_plot)
        first_plot = False
        return out

    parts.append('<h2 id="timeline">Timeline</h2>')
    if frame.empty:
        parts.append("<p>No step has run in this range.</p>")
    else:
        fig = px.timeline(
            frame,
            x_start="start",
            x_end="finish",
            y="partition",
            color="status",
            color_discrete_map=STATUS_COLOURS,
            hover_data=["step", "duration_s", "attempt"],
        )
        fig.update_yaxes(autorange="reversed")
        fig.update_layout(height=max(300, 40 * len(views) + 120), title="Steps per partition (Gantt)")
        parts.append(plot(fig))
        parts.append('<h2 id="durations">Step durations</h2>')
        fig = px.box(frame, x="step", y="duration_s", points="all", title="Duration per step (seconds)")
        fig.update_layout(height=420)
        parts.append(plot(fig))

    groups: dict[str, list[tuple[PartitionView, str]]] = defaultdict(list)
    for view in views:
        for asset, step in view.steps.items():
            if step.status == "failed" and step.manifest and step.manifest.error:
                groups[error_signature(asset, step.manifest.error.type, step.manifest.error.message)].append(
                    (view, asset)
                )
    parts.append(f'<h2 id="failures">Failures by root cause ({len(groups)})</h2>')
    if not groups:
        parts.append('<p class="success">No failures.</p>')
    for signature, members in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        view, asset = members[0]
        manifest = view.steps[asset].manifest
        assert manifest is not None and manifest.error is not None
        parts.append(
            f'<div class="failure-group"><h3 class="failed">{len(members)} x {html.escape(signature)}</h3>'
            f"<p>dates: {html.escape(', '.join(sorted({v.game_date.isoformat() for v, _ in members})))}</p>"
            f"<p>example: {html.escape(manifest.error.message)}</p>"
            f'<p class="muted">manifest: {html.escape(layout.manifest_key(asset, view.steps[asset].manifest.partition.key))}</p>'  # type: ignore[union-attr]
            f"<pre>{html.escape(_log_tail(store, asset, view))}</pre></div>"
        )

    gap_rows = [
        [
            v.game_date.isoformat(),
            html.escape(a),
            html.escape(g.source),
            html.escape(g.policy),
            html.escape(g.detail),
        ]
        for v in views
        for a, s in v.steps.items()
        if s.manifest
        for g in s.manifest.gaps
    ]
    parts.append(f'<h2 id="gaps">Input gaps ({len(gap_rows)})</h2>')
    parts.append(
        _table(gap_rows, ["date", "step", "source", "policy", "detail"]) if gap_rows else "<p>None.</p>"
    )

    pointer_rows = []
    for view in views:
        for pointer in view.pointers.values():
            for version in list_history(store, pointer.scope):
                pointer_rows.append(
                    [
                        html.escape(
                            PartitionKey(
                                game_date=view.game_date, draft_group_id=version.draft_group_id
                            ).describe()
                        ),
                        str(version.seq),
                        html.escape(version.run_id),
                        version.promoted_at.isoformat(timespec="seconds"),
                        html.escape(version.promoted_by),
                        html.escape(version.reason),
                    ]
                )
    parts.append(f'<h2 id="pointers">Pointer changes ({len(pointer_rows)})</h2>')
    parts.append(
        _table(pointer_rows, ["partition", "version", "run", "promoted at", "by", "reason"])
        if pointer_rows
        else "<p>None.</p>"
    )

    partition_rows = [
        [
            v.game_date.isoformat(),
            html.escape(v.run_id),
            f'<span class="{v.status}">{v.status}</span>',
            f"{v.duration_s:.1f}",
            html.escape(", ".join(a for a, s in v.steps.items() if s.status == "failed")),
        ]
        for v in views
    ]
    parts.append('<h2 id="partitions">Partitions</h2>')
    parts.append(_table(partition_rows, ["date", "run", "status", "step seconds", "failed steps"]))
    return f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{CSS}</style></head><body>{''.join(parts)}</body></html>"


def runs_of_summary(summary: dict) -> dict[date, str]:
    return {date.fromisoformat(o["game_date"]): o["run_id"] for o in summary["partition_outcomes"]}
