"""Operator commands for the cluster: render, submit, cron apply, and the in-cluster plan and
summarize steps that the CronWorkflow and the range exit handler run."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import typer

from steps.runtime import layout
from steps.runtime.errors import ManifestError, PipelineError
from steps.runtime.manifest import read_manifest
from steps.runtime.shapes import DRAFT_GROUP_SOURCE
from steps.runtime.store import Store, open_store
from steps.runtime.termination import report_termination
from steps.runtime.timefmt import utc_now
from workflows.argo import build as argo
from workflows.argo.cluster import ArgoServerSettings, apply_custom_object, kube_api_client, workflows_service
from workflows.argo.render import render as render_files
from workflows.cli.app import (
    STORE_HELP,
    app,
    as_of_mode_of,
    console,
    date_range,
    default_store,
    err_console,
    fail,
    today_et,
)
from workflows.dag.catchup import catch_up_annotator
from workflows.dag.config import load_config
from workflows.dag.graph import build_graph, pipeline_graph
from workflows.dag.ids import new_backfill_id
from workflows.dag.model import NodeId, Plan, node_label
from workflows.dag.outcome import TaskResult, held_back
from workflows.dag.plan import make_plan
from workflows.dag.planrecord import as_plan, read_plan, record_plan
from workflows.observe.summary import Summary, build_summary, write_summary

cron_app = typer.Typer(
    help="The daily CronWorkflow on the cluster.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(cron_app, name="cron")

SERVER_HELP = "Argo Server, host:port or URL (env ARGO_SERVER)"
TOKEN_HELP = "The operator's ServiceAccount token (env ARGO_TOKEN)"
CA_HELP = "CA bundle that signed the Argo Server's certificate (env ARGO_CA_FILE)"
INSECURE_HELP = "Skip TLS verification, e.g. through a port-forward (env ARGO_INSECURE_SKIP_VERIFY)"


@app.command()
def render(
    root: Path = typer.Option(Path("."), "--root", help="Repository root to write into"),
    check: bool = typer.Option(False, "--check", help="Only compare; exit 1 when the committed files differ"),
    config_path: Path | None = typer.Option(None, "--config"),
) -> None:
    """Write the generated Argo objects to k8s/generated/ and the Helm chart."""
    try:
        differ = render_files(root, pipeline_graph(), load_config(config_path), check=check)
    except PipelineError as exc:
        raise fail(str(exc)) from None
    if check and differ:
        raise fail(
            "rendered files differ from the code; run `pipeline render`: " + ", ".join(map(str, differ)), 1
        )
    console.print(("up to date" if not differ else "wrote " + ", ".join(map(str, differ))), highlight=False)


@app.command("init-store")
def init_store(
    urls: list[str] = typer.Argument(..., help="Stores to create (buckets or directories)"),
) -> None:
    """Create stores (e.g. the pipeline bucket and Argo's artifact bucket) if missing."""
    for url in urls:
        try:
            target = open_store(url, create=True)
        except PipelineError as exc:
            raise fail(str(exc)) from None
        console.print(f"ready: {target.url}", highlight=False)


@app.command()
def plan(
    catch_up_days: int = typer.Option(0, "--catch-up-days", min=0),
    store: str = typer.Option(None, "--store", help=STORE_HELP),
    backfill_id: str = typer.Option(..., "--backfill-id"),
    output: Path = typer.Option(..., "--output", help="Where to write the slates JSON (an Argo output)"),
    shared_dir: Path | None = typer.Option(
        None, "--shared-dir", help="Where to write each shared step's partitions JSON (Argo outputs)"
    ),
) -> None:
    """Plan today's range (with the catch-up window) in-cluster; record it in the store."""
    try:
        config = load_config()
        target = open_store(store or default_store())
        last = today_et(config)
        first = last.fromordinal(last.toordinal() - catch_up_days)
        graph = pipeline_graph()
        planned = make_plan(target, graph, config, start=first, end=last)
        caught_up = catch_up_annotator(last, target)(planned)
        record = record_plan(
            target,
            planned,
            backfill_id=backfill_id,
            kind="catch-up" if catch_up_days else "daily",
            options={
                "start": first.isoformat(),
                "end": last.isoformat(),
                "catch_up_days": catch_up_days,
                "caught_up": caught_up,
            },
            created_at=utc_now(),
        )
    except PipelineError as exc:
        raise fail(str(exc)) from None
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(record.argo_items()))
    if shared_dir is not None:
        shared_dir.mkdir(parents=True, exist_ok=True)
        items = record.shared_items(graph)
        for asset in argo.shared_assets(graph):
            (shared_dir / f"{argo.shared_param(asset)}.json").write_text(json.dumps(items.get(asset, [])))
    console.print(f"{len(record.partitions)} partition(s) to run for {first}..{last}", highlight=False)


def results_from_manifests(plan_obj: Plan, store: Store) -> list[TaskResult]:
    """What happened, read back from the manifests (how the Argo path learns outcomes): a
    step partition without a manifest was held back (Argo omitted or skipped it) when what it
    reads failed or stopped short (not_due), and never finished otherwise."""
    found: dict[NodeId, TaskResult] = {}

    def outcome(node_id: NodeId) -> TaskResult:
        if node_id in found:
            return found[node_id]
        node = plan_obj.nodes[node_id]
        p = node.partition
        result = TaskResult(
            p.game_date, p.run_id, node.asset, "failed", attempts=1, key=p.key, slate=node.slate
        )
        try:
            manifest = read_manifest(store, node.asset, p.key)
        except ManifestError:
            manifest = None
        if manifest is None:
            upstream = {node_label(*n): outcome(n).status for n in node.needs if n in plan_obj.nodes}
            if node.fan_in is not None and node.fan_in not in plan_obj.draft_groups:
                upstream[f"{DRAFT_GROUP_SOURCE[0]} {node.fan_in.describe()}"] = "failed"
            gate = {node_label(*n): outcome(n).status for n in node.gate if n in plan_obj.nodes}
            held = held_back(upstream, gate)
            result.attempts = 0
            if held:
                result.status, result.reason = held
            else:
                result.error_type, result.error = "NotRun", "no manifest: the step never finished"
        else:
            result.take_manifest(manifest)
            result.attempts = manifest.attempt
        found[node_id] = result
        return result

    return [outcome(n) for n in plan_obj.nodes]


@app.command()
def summarize(
    backfill_id: str = typer.Option(..., "--backfill-id"),
    store: str = typer.Option(None, "--store", help=STORE_HELP),
    workflow_status: str = typer.Option("", "--workflow-status"),
    webhook_url: str = typer.Option(
        "none", "--webhook-url", help="POSTed a JSON message when anything failed"
    ),
    summary_file: Path | None = typer.Option(
        None, "--summary-file", help="Also write summary.json here (an Argo output artifact)"
    ),
    report_file: Path | None = typer.Option(
        None, "--report-file", help="Also write the offline HTML report here (an Argo output artifact)"
    ),
    figures_dir: Path | None = typer.Option(
        None, "--figures-dir", help="Write kind, coverage and accuracy here, one file each (Argo outputs)"
    ),
) -> None:
    """Write the range summary from the manifests (the Argo exit handler)."""
    try:
        target = open_store(store or default_store())
        record = read_plan(target, backfill_id)
        graph = build_graph([pipeline_graph().specs[a] for a in record.steps], partial=True)
        plan_obj = as_plan(record, graph, target)
        results = results_from_manifests(plan_obj, target)
        summary = build_summary(
            backfill_id=backfill_id,
            kind=record.kind,
            plan=plan_obj,
            results=results,
            store=target,
            options={**record.options, "workflow_status": workflow_status},
            started_at=record.created_at,
            finished_at=utc_now(),
            mode="argo",
            caught_up=list(record.options.get("caught_up") or []),  # type: ignore[call-overload]
        )
        keys = write_summary(target, summary, results)
    except PipelineError as exc:
        raise fail(str(exc)) from None
    console.print(f"summary: {target.describe(keys[0])}", highlight=False)
    publish_summary(
        summary, target, summary_file=summary_file, report_file=report_file, figures_dir=figures_dir
    )
    failed = summary.failed or (workflow_status and workflow_status != "Succeeded")
    if failed and webhook_url and webhook_url != "none":
        message = {
            "text": f"projections {summary.kind} {backfill_id}: {summary.partitions['failed']} partition(s) failed (workflow {workflow_status or 'unknown'})",
            "backfill_id": backfill_id,
            "workflow_status": workflow_status,
            "partitions": summary.partitions,
            "top_errors": [
                {"signature": g.signature, "count": g.count, "dates": g.dates} for g in summary.top_errors[:5]
            ],
            "summary": target.describe(keys[0]),
        }
        request = urllib.request.Request(
            webhook_url, data=json.dumps(message).encode(), headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=10):
                pass
        except OSError as exc:
            raise fail(
                f"summary written, but the failure notification to the webhook failed: {exc}", 1
            ) from None
    if summary.failed:
        failure = summary.failure_message()
        err_console.print(failure, highlight=False, markup=False)
        report_termination(failure)
        raise typer.Exit(1)


def range_figures(summary: Summary) -> dict[str, str]:
    """The figures the exit handler's metrics read (workflows/argo/names.py RANGE_FIGURES); one that
    does not apply (no accuracy yet, nothing planned) is left out, so no metric reads it."""
    p = summary.partitions
    planned = p.get("planned", 0)
    done = p.get("succeeded", 0) + p.get("reused", 0)
    figures = {
        "partitions_planned": str(planned),
        "partitions_succeeded": str(done),
        "partitions_failed": str(p.get("failed", 0)),
    }
    if planned:
        figures["coverage"] = f"{done / planned:.6f}"
    if "mae_fp" in summary.accuracy:
        figures["mae_fp"] = f"{summary.accuracy['mae_fp']:.6f}"
    return figures


def publish_summary(
    summary: Summary,
    store: Store,
    *,
    summary_file: Path | None,
    report_file: Path | None,
    figures_dir: Path | None,
) -> None:
    """The exit handler's files for Argo: summary.json and the HTML report (output artifacts
    the UI opens), and the range figures (output parameters its metrics read). Best effort: the
    artifacts are optional, so a report that cannot be built is said and skipped, never fatal."""
    from workflows.observe.report import publish_range_report

    data = summary.model_dump(mode="json")
    if summary_file is not None:
        summary_file.parent.mkdir(parents=True, exist_ok=True)
        summary_file.write_text(json.dumps(data, indent=2, sort_keys=True))
    if figures_dir is not None:
        figures_dir.mkdir(parents=True, exist_ok=True)
        (figures_dir / "kind").write_text(summary.kind or "unknown")
        for name, value in range_figures(summary).items():
            (figures_dir / name).write_text(value)
    try:
        page = publish_range_report(store, pipeline_graph(), data)
    except Exception as exc:  # the report is optional; the summary is not
        err_console.print(f"report not built: {exc}", highlight=False, markup=False)
        return
    console.print(
        f"report: {store.describe(layout.backfill_key(summary.backfill_id, 'report.html'))}", highlight=False
    )
    if report_file is not None:
        report_file.parent.mkdir(parents=True, exist_ok=True)
        report_file.write_text(page)


@app.command()
def submit(
    start: str = typer.Option(..., "--start"),
    end: str | None = typer.Option(None, "--end"),
    as_of_mode: str = typer.Option("pretip", "--as-of-mode"),
    as_of_ts: str | None = typer.Option(None, "--as-of-ts"),
    worlds: int | None = typer.Option(None, "--worlds"),
    profile: str | None = typer.Option(None, "--profile"),
    resume: bool = typer.Option(True, "--resume/--no-resume"),
    store: str = typer.Option(None, "--store", help="The store as the operator reaches it (for planning)"),
    cluster_store: str | None = typer.Option(
        None, "--cluster-store", help="The store URL the pods use (default: config argo.store_url)"
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run/--no-dry-run", help="Print the Workflow YAML; submit and record nothing"
    ),
    argo_server: str | None = typer.Option(None, "--argo-server", help=SERVER_HELP),
    token: str | None = typer.Option(None, "--token", help=TOKEN_HELP),
    ca_file: str | None = typer.Option(None, "--ca-file", help=CA_HELP),
    insecure: bool | None = typer.Option(None, "--insecure/--verify", help=INSECURE_HELP),
    namespace: str | None = typer.Option(None, "--namespace", envvar="ARGO_NAMESPACE"),
    reason: str | None = typer.Option(
        None, "--reason", help="Why this range is run; kept in every manifest and the summary"
    ),
    pack: bool | None = typer.Option(
        None,
        "--pack/--no-pack",
        help="Run each slate's steps in one pod (a container per step) or one pod per step "
        "(default: packed from argo.pack_from_partitions partitions; docs/runbooks/backfill.md)",
    ),
    config_path: Path | None = typer.Option(None, "--config"),
) -> None:
    """Submit a range of dates to Argo as one range Workflow (chunked child workflows)."""
    from steps.runtime.partition import parse_as_of
    from workflows.argo.render import dump

    try:
        config = load_config(config_path)
        first, last = date_range(start, end)
        mode_of_as_of = as_of_mode_of(as_of_mode)
        target = open_store(store or default_store())
        started = utc_now()
        backfill_id = new_backfill_id(started)
        planned = make_plan(
            target,
            pipeline_graph(),
            config,
            start=first,
            end=last,
            as_of_mode=mode_of_as_of,
            as_of_ts=parse_as_of(as_of_ts) if as_of_ts else None,
            worlds=worlds,
            profile=profile,
            resume=resume,
            remember=not dry_run,
        )
        graph = pipeline_graph()
        items = argo.slate_items([p.partition for p in planned.slates_with_work()])
        packed, why = argo.pack_range(len(items), config, pack)
        shared = argo.shared_items(
            [(n.asset, n.partition) for n in planned.nodes.values() if n.slate is None and n.action == "run"]
        )
        workflow = argo.range_workflow(
            items,
            correlation_id=backfill_id,
            store_url=cluster_store or config.argo.store_url,
            cfg=config,
            graph=graph,
            shared={a: v for a, v in shared.items() if a in argo.shared_assets(graph)},
            reason=reason or "",
            resume=resume,
            as_of_mode=as_of_mode,
            packed=packed,
        )
        if namespace:
            workflow.namespace = namespace
        mode = f"{argo.MODES[packed]} ({why})"
        if dry_run:  # the mode as a YAML comment: the output stays one Workflow to apply
            console.print(f"# mode: {mode}\n" + dump(argo.to_dict(workflow)), highlight=False, markup=False)
            return
        if not items:
            console.print("Nothing to submit: every partition in the range already succeeded (resume).")
            return
        settings = ArgoServerSettings.resolve(argo_server, token, insecure, ca_file)
        service = workflows_service(settings, workflow.namespace or config.argo.namespace)
        record_plan(
            target,
            planned,
            backfill_id=backfill_id,
            kind="backfill",
            options={
                "start": first.isoformat(),
                "end": last.isoformat(),
                "as_of_mode": as_of_mode,
                "reason": reason,
            },
            created_at=started,
        )
        workflow.workflows_service = service
        try:
            created = workflow.create()
        except Exception as exc:  # the server said no, or was unreachable
            # A refused submit leaves nothing behind: the plan is recorded only for a workflow
            # that exists (the summary reads it), so drop it again.
            target.delete(layout.plan_key(backfill_id))
            raise fail(f"Argo Server refused or did not answer: {exc}", 1) from None
    except PipelineError as exc:
        raise fail(str(exc)) from None
    name = created.metadata.name if created.metadata else "?"
    console.print(
        f"submitted {name}: {len(items)} partition(s) in {-(-len(items) // config.argo.chunk_size)} chunk(s), "
        f"{mode}; correlation {backfill_id}",
        highlight=False,
    )


@cron_app.command("apply")
def cron_apply(
    namespace: str | None = typer.Option(None, "--namespace", envvar="ARGO_NAMESPACE"),
    config_path: Path | None = typer.Option(None, "--config"),
) -> None:
    """Create the daily CronWorkflow, or update it in place (server-side apply via KUBECONFIG)."""
    try:
        config = load_config(config_path)
        cron = argo.to_dict(argo.cron_workflow(pipeline_graph(), config))
        if namespace:
            cron["metadata"]["namespace"] = namespace
        action = apply_custom_object(kube_api_client(), cron)
    except PipelineError as exc:
        raise fail(str(exc)) from None
    meta = cron["metadata"]
    console.print(
        f"{action} CronWorkflow {meta['namespace']}/{meta['name']} ({config.argo.schedule} {config.timezone})",
        highlight=False,
    )
