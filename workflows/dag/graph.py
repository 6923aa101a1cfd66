"""The DAG, derived from the steps' declarations and nothing else."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from steps.runtime.errors import PipelineError
from steps.runtime.shapes import check_mapping
from steps.runtime.step import StepSpec


class GraphError(PipelineError):
    """The declarations do not form a valid DAG, or a selection names unknown steps."""


@dataclass(frozen=True)
class Graph:
    specs: Mapping[str, StepSpec]
    deps: Mapping[str, tuple[str, ...]]  # asset -> upstream assets inside this graph
    order: tuple[str, ...]  # a deterministic topological order
    external: Mapping[str, tuple[str, ...]]  # asset -> upstream assets read from earlier runs

    def downstream(self, asset: str) -> set[str]:
        found: set[str] = set()
        frontier = [asset]
        while frontier:
            current = frontier.pop()
            for other, ups in self.deps.items():
                if current in ups and other not in found:
                    found.add(other)
                    frontier.append(other)
        return found

    def upstream(self, asset: str) -> set[str]:
        found: set[str] = set()
        frontier = [asset]
        while frontier:
            for up in self.deps[frontier.pop()]:
                if up not in found:
                    found.add(up)
                    frontier.append(up)
        return found

    def hard_upstream(self, asset: str) -> set[str]:
        """Upstream steps whose outcome holds `asset` back: every input but a window's, which
        reads whatever of its slates succeeded."""
        found: set[str] = set()
        frontier = [asset]
        while frontier:
            spec = self.specs[frontier.pop()]
            for item in spec.inputs:
                if item.asset in self.specs and item.mapping != "window" and item.asset not in found:
                    found.add(item.asset)
                    frontier.append(item.asset)
        return found

    def window_only(self, asset: str) -> bool:
        """Read only through windows: its partitions belong to no one slate (they are every
        later slate's history), so a slate is complete without its own."""
        readers = [i for a in self.order for i in self.specs[a].inputs if i.asset == asset]
        return bool(readers) and all(i.mapping == "window" for i in readers)

    def skip_sources(self, asset: str) -> list[str]:
        """The upstream steps (in this graph) whose skip makes `asset` skip, in graph order."""
        ancestors = self.hard_upstream(asset)
        return [a for a in self.order if a in ancestors and self.specs[a].may_skip]

    def select(self, selection: Iterable[str], *, downstream: bool = False) -> Graph:
        """A sub-graph. `asset+` (or `downstream`) adds everything downstream; `+asset`
        everything upstream."""
        chosen: set[str] = set()
        for raw in selection:
            for item in filter(None, (part.strip() for part in raw.split(","))):
                name = item.strip("+")
                if name not in self.specs:
                    raise GraphError(f"unknown step {name!r}; known steps: {', '.join(self.order)}")
                chosen.add(name)
                if item.endswith("+") or downstream:
                    chosen |= self.downstream(name)
                if item.startswith("+"):
                    chosen |= self.upstream(name)
        if not chosen:
            raise GraphError("--steps selected nothing")
        return build_graph([self.specs[a] for a in self.order if a in chosen], partial=True)


def _topological(deps: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    indegree = {a: len(ups) for a, ups in deps.items()}
    children: dict[str, list[str]] = {a: [] for a in deps}
    for asset, ups in deps.items():
        for up in ups:
            children[up].append(asset)
    ready = [a for a, n in indegree.items() if n == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        asset = heapq.heappop(ready)
        order.append(asset)
        for child in children[asset]:
            indegree[child] -= 1
            if indegree[child] == 0:
                heapq.heappush(ready, child)
    if len(order) != len(deps):
        stuck = sorted(a for a, n in indegree.items() if n > 0)
        raise GraphError(f"the step declarations form a cycle among: {', '.join(stuck)}")
    return tuple(order)


def build_graph(specs: Iterable[StepSpec], *, partial: bool = False) -> Graph:
    """Wire steps by what they consume. Unknown inputs are errors unless `partial`, where
    they are read from earlier runs (success manifests or pointers)."""
    by_asset: dict[str, StepSpec] = {}
    for spec in specs:
        if spec.asset in by_asset:
            raise GraphError(f"asset {spec.asset!r} is declared twice")
        by_asset[spec.asset] = spec
    deps: dict[str, tuple[str, ...]] = {}
    external: dict[str, tuple[str, ...]] = {}
    for asset, spec in by_asset.items():
        inside = tuple(sorted(c for c in spec.consumed_assets if c in by_asset))
        outside = tuple(sorted(c for c in spec.consumed_assets if c not in by_asset))
        for item in spec.inputs:
            producer = by_asset.get(item.asset)
            why = check_mapping(spec.shape, producer.shape, item.mapping) if producer else None
            if why:
                raise GraphError(f"step {asset!r} reads {item.asset!r} through `{item.mapping}`: {why}")
        if outside and not partial:
            raise GraphError(f"step {asset!r} consumes {', '.join(outside)}, which no step produces")
        deps[asset] = inside
        external[asset] = outside
    return Graph(specs=by_asset, deps=deps, order=_topological(deps), external=external)


def pipeline_graph() -> Graph:
    from steps.registry import all_steps

    return build_graph(all_steps().values())


def check_limits(graph: Graph, limits: Mapping[str, int]) -> None:
    for asset in graph.order:
        for group in graph.specs[asset].concurrency:
            if group not in limits:
                raise GraphError(
                    f"step {asset!r} names concurrency group {group!r}, which the limits config does not define"
                )
