"""`pipeline report`: one self-contained HTML page (works offline) answering what ran, what
failed and why: a timeline of steps per partition, step duration distributions, failures
grouped by root cause with their manifests and log tails, accuracy over time (MAE against the
naive baseline, coverage per draft group and the dates that breached its thresholds), input
gaps and pointer changes."""

from __future__ import annotations

import html
from collections import defaultdict
from datetime import date
from typing import Any

import pandas as pd
import plotly.express as px

from steps.pipeline.health import COVERAGE_CRITICAL, COVERAGE_WARN
from steps.runtime import layout
from steps.runtime.errors import ObjectNotFound
from steps.runtime.manifest import record_of
from steps.runtime.partition import PartitionKey
from steps.runtime.pointer import list_history
from steps.runtime.store import Store
from workflows.dag.graph import Graph
from workflows.observe.status import PartitionView
from workflows.observe.summary import error_signature

# One per manifest status (and missing): the timeline's colours and its legend.
STATUS_COLOURS = {
    "success": "#2e7d32",
    "failed": "#c62828",
    "not_due": "#f9a825",
    "not_promoted": "#1565c0",
    "missing": "#9e9e9e",
}
CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222}
h1{margin-bottom:4px} h2{margin-top:32px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:13px} td,th{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
.failed{color:#c62828;font-weight:600} .warn{color:#b26a00;font-weight:600} .success{color:#2e7d32} .muted{color:#777}
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
    newest = layout.newest_log(i.key for i in store.list(prefix))
    if newest is not None:
        try:
            return store.get_bytes(newest).decode(errors="replace")[-1500:]
        except ObjectNotFound:
            pass
    return manifest.error.traceback_snippet[-1500:] if manifest and manifest.error else ""


def accuracy_rows(views: list[PartitionView]) -> list[dict[str, Any]]:
    """Per date: the `accuracy` step's MAE of the projections and of the naive baseline."""
    rows = []
    for view in views:
        step = view.steps.get("accuracy")
        for m in step.manifests if step else []:
            if "mae_fp" in m.metrics and "baseline_mae_fp" in m.metrics:
                rows.append(
                    {
                        "date": view.game_date,
                        "run": view.run_id,
                        "players": int(m.metrics.get("n", 0)),
                        "mae_fp": m.metrics["mae_fp"],
                        "baseline_mae_fp": m.metrics["baseline_mae_fp"],
                    }
                )
    return rows


def coverage_rows(views: list[PartitionView]) -> list[dict[str, Any]]:
    """Per date and draft group: health.checks' `coverage` metric and the threshold it breached
    (`critical` below COVERAGE_CRITICAL, `warn` below COVERAGE_WARN, else empty)."""
    rows = []
    for view in views:
        step = view.steps.get("health.checks")
        for m in step.manifests if step else []:
            if "coverage" not in m.metrics:
                continue
            value = m.metrics["coverage"]
            breach = "critical" if value < COVERAGE_CRITICAL else "warn" if value < COVERAGE_WARN else ""
            rows.append(
                {
                    "date": view.game_date,
                    "draft_group": m.partition.draft_group_id or "",
                    "coverage": value,
                    "breach": breach,
                }
            )
    return sorted(rows, key=lambda r: (r["date"], r["draft_group"]))


class _Plots:
    """Figures as HTML fragments; plotly's script is inlined once, with the first figure, so
    the page works offline."""

    def __init__(self) -> None:
        self.first = True

    def __call__(self, fig: Any) -> str:
        out = str(fig.to_html(full_html=False, include_plotlyjs=self.first))
        self.first = False
        return out


def _step_frame(views: list[PartitionView]) -> pd.DataFrame:
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
    return pd.DataFrame(rows)


def _header(views: list[PartitionView], title: str, summary: dict[str, Any] | None) -> list[str]:
    counts: dict[str, int] = defaultdict(int)
    for view in views:
        counts[view.status] += 1
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        '<div class="cards">'
        + "".join(f"<span><b>{n}</b> {html.escape(k)}</span>" for k, n in sorted(counts.items()))
        + f"<span><b>{len(views)}</b> partitions</span></div>",
    ]
    if summary:
        acc = summary.get("accuracy") or {}
        line = f"backfill {summary['backfill_id']} ({summary['kind']}), {summary['wall_s']:.1f}s wall"
        if acc:
            line += f"; accuracy MAE {acc['mae_fp']:.2f} fp vs naive baseline {acc['baseline_mae_fp']:.2f}"
        parts.append(f'<p class="muted">{html.escape(line)}</p>')
    return parts


def _timeline(frame: pd.DataFrame, views: list[PartitionView], plot: _Plots) -> list[str]:
    parts = ['<h2 id="timeline">Timeline</h2>']
    if frame.empty:
        return [*parts, "<p>No step has run in this range.</p>"]
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
    return [*parts, plot(fig)]


def _accuracy_charts(
    accuracy: list[dict[str, Any]], coverage: list[dict[str, Any]], plot: _Plots
) -> list[str]:
    parts = ['<h2 id="accuracy">Accuracy over time</h2>']
    if accuracy:
        melted = pd.DataFrame(accuracy).melt(
            id_vars=["date"],
            value_vars=["mae_fp", "baseline_mae_fp"],
            var_name="series",
            value_name="MAE (fp)",
        )
        fig = px.line(
            melted, x="date", y="MAE (fp)", color="series", markers=True, title="MAE vs naive baseline"
        )
        fig.update_layout(height=360)
        parts.append(plot(fig))
    if coverage:
        fig = px.line(
            pd.DataFrame(coverage),
            x="date",
            y="coverage",
            color="draft_group",
            markers=True,
            title="Coverage of expected active players",
        )
        fig.add_hline(y=COVERAGE_WARN, line_dash="dash", line_color="#f9a825", annotation_text="warn")
        fig.add_hline(y=COVERAGE_CRITICAL, line_dash="dash", line_color="#c62828", annotation_text="critical")
        fig.update_layout(height=360)
        parts.append(plot(fig))
    if not accuracy and not coverage:
        parts.append("<p>No accuracy or coverage metrics in this range.</p>")
    return parts


def _accuracy_table(accuracy: list[dict[str, Any]], coverage: list[dict[str, Any]]) -> list[str]:
    groups_of: dict[date, list[dict[str, Any]]] = defaultdict(list)
    for row in coverage:
        groups_of[row["date"]].append(row)
    by_date = {r["date"]: r for r in accuracy}
    rows = []
    for day in sorted(set(by_date) | set(groups_of)):
        a = by_date.get(day)
        groups = "<br>".join(
            html.escape(f"{r['draft_group']}: {r['coverage']:.4f}") for r in groups_of.get(day, [])
        )
        rows.append(
            [
                day.isoformat(),
                f"{a['mae_fp']:.4f}" if a else "-",
                f"{a['baseline_mae_fp']:.4f}" if a else "-",
                str(a["players"]) if a else "-",
                groups or "-",
            ]
        )
    if not rows:
        return []
    header = ["date", "MAE fp", "baseline MAE fp", "players", "coverage (draft group)"]
    return ['<div id="accuracy-table">' + _table(rows, header) + "</div>"]


def _breaches(coverage: list[dict[str, Any]]) -> list[str]:
    breaches = [r for r in coverage if r["breach"]]
    heading = (
        f'<h3 id="coverage-breaches">Coverage breaches ({len(breaches)}): below {COVERAGE_WARN:.0%} warns, '
        f"below {COVERAGE_CRITICAL:.0%} is critical</h3>"
    )
    if not breaches:
        return [heading, '<p class="success">No date breached a coverage threshold.</p>']
    rows = [
        [
            r["date"].isoformat(),
            html.escape(r["draft_group"]),
            f"{r['coverage']:.4f}",
            f'<span class="{"failed" if r["breach"] == "critical" else "warn"}">{r["breach"]}</span>',
        ]
        for r in breaches
    ]
    return [
        heading,
        '<div id="breach-table">' + _table(rows, ["date", "draft group", "coverage", "breach"]) + "</div>",
    ]


def _failures(store: Store, views: list[PartitionView]) -> list[str]:
    groups: dict[str, list[tuple[PartitionView, str]]] = defaultdict(list)
    for view in views:
        for asset, step in view.steps.items():
            if step.status == "failed" and step.manifest and step.manifest.error:
                error = step.manifest.error
                groups[error_signature(asset, error.type, error.message)].append((view, asset))
    parts = [f'<h2 id="failures">Failures by root cause ({len(groups)})</h2>']
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
            f'<p class="muted">manifest: {html.escape(record_of(manifest)[0])}</p>'
            f"<pre>{html.escape(_log_tail(store, asset, view))}</pre></div>"
        )
    return parts


def _gaps(views: list[PartitionView]) -> list[str]:
    rows = [
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
    table = _table(rows, ["date", "step", "source", "policy", "detail"]) if rows else "<p>None.</p>"
    return [f'<h2 id="gaps">Input gaps ({len(rows)})</h2>', table]


def _pointer_changes(store: Store, views: list[PartitionView]) -> list[str]:
    rows = [
        [
            html.escape(
                PartitionKey(game_date=view.game_date, draft_group_id=version.draft_group_id).describe()
            ),
            str(version.seq),
            html.escape(version.run_id),
            version.promoted_at.isoformat(timespec="seconds"),
            html.escape(version.promoted_by),
            html.escape(version.reason),
        ]
        for view in views
        for pointer in view.pointers.values()
        for version in list_history(store, pointer.scope)
    ]
    header = ["partition", "version", "run", "promoted at", "by", "reason"]
    return [
        f'<h2 id="pointers">Pointer changes ({len(rows)})</h2>',
        _table(rows, header) if rows else "<p>None.</p>",
    ]


def _partitions(views: list[PartitionView]) -> list[str]:
    rows = [
        [
            v.game_date.isoformat(),
            html.escape(v.run_id),
            f'<span class="{v.status}">{v.status}</span>',
            f"{v.duration_s:.1f}",
            html.escape(", ".join(a for a, s in v.steps.items() if s.status == "failed")),
        ]
        for v in views
    ]
    return [
        '<h2 id="partitions">Partitions</h2>',
        _table(rows, ["date", "run", "status", "step seconds", "failed steps"]),
    ]


def build_report(
    store: Store,
    graph: Graph,
    views: list[PartitionView],
    *,
    title: str,
    summary: dict[str, Any] | None = None,
) -> str:
    """One self-contained page: header, timeline, accuracy over time, failures, gaps, pointers."""
    plot = _Plots()
    accuracy, coverage = accuracy_rows(views), coverage_rows(views)
    parts = [
        *_header(views, title, summary),
        *_timeline(_step_frame(views), views, plot),
        *_accuracy_charts(accuracy, coverage, plot),
        *_accuracy_table(accuracy, coverage),
        *_breaches(coverage),
        *_failures(store, views),
        *_gaps(views),
        *_pointer_changes(store, views),
        *_partitions(views),
    ]
    head = f"<meta charset='utf-8'><title>{html.escape(title)}</title><style>{CSS}</style>"
    return f"<!doctype html><html><head>{head}</head><body>{''.join(parts)}</body></html>"


def runs_of_summary(summary: dict[str, Any]) -> dict[date, str]:
    return {date.fromisoformat(o["game_date"]): o["run_id"] for o in summary["partition_outcomes"]}


def range_report(store: Store, graph: Graph, summary: dict[str, Any]) -> str:
    """The HTML report of one range (a backfill, a chunked submit or a daily run), from its
    summary and the runs it records."""
    from workflows.observe.status import collect

    views = collect(store, graph, runs=runs_of_summary(summary))
    title = f"{str(summary.get('kind') or 'range').capitalize()} {summary['backfill_id']}: {summary['range']['start']} to {summary['range']['end']}"
    return build_report(store, graph, views, title=title, summary=summary)


def publish_range_report(store: Store, graph: Graph, summary: dict[str, Any]) -> str:
    """Build the range's report and store it beside its summary (`backfills/<id>/report.html`),
    where the Argo UI's workflow link and the MinIO console open it. Returns the page."""
    page = range_report(store, graph, summary)
    store.put_bytes(layout.backfill_key(summary["backfill_id"], "report.html"), page.encode())
    return page
