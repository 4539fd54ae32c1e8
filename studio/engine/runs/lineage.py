"""Which run continued or branched from which, told as a tree and as a timeline.

The registry stores only `parent_id`; the kind of link follows from the versioning rules
(docs/versioning.md): a MINOR bump is a continuation, a MAJOR bump a branch onto new data or a new base
model, a PATCH bump a re-run with changed settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from studio.engine.runs.registry import RunRecord

RELATION_WORDS = {
    "new": "new run",
    "continued": "continued training from",
    "branched": "branched (new data or model) from",
    "rerun": "re-run with other settings of",
}


def relation(parent: RunRecord | None, child: RunRecord) -> str:
    """'new', 'continued', 'branched' or 'rerun', read from how the version changed."""
    if parent is None:
        return "new"
    try:
        p_major, p_minor, _ = (int(x) for x in parent.version.split("."))
        c_major, c_minor, _ = (int(x) for x in child.version.split("."))
    except ValueError:
        return "rerun"
    if c_major != p_major or parent.name != child.name:
        return "branched"
    return "continued" if c_minor != p_minor else "rerun"


@dataclass
class LineageNode:
    run: RunRecord
    relation: str
    children: list[LineageNode] = field(default_factory=list)


@dataclass(frozen=True)
class TimelineEntry:
    """One row of the timeline: the run, how deep it sits in its family, and what it came from."""

    run: RunRecord
    depth: int
    relation: str
    parent: RunRecord | None
    family: str  # id of the family's first run

    def describe(self) -> str:
        label = f"{self.run.name} {self.run.version}"
        if self.parent is None:
            return f"{label}: {RELATION_WORDS['new']}"
        return f"{label}: {RELATION_WORDS[self.relation]} {self.parent.name} {self.parent.version}"


def lineage_forest(runs: Sequence[RunRecord]) -> list[LineageNode]:
    """Families of runs, oldest first; a parent missing from `runs` makes its child a root."""
    by_id = {run.id: run for run in runs}
    nodes = {run.id: LineageNode(run, relation(by_id.get(run.parent_id or ""), run)) for run in runs}
    roots: list[LineageNode] = []
    for run in sorted(runs, key=lambda r: r.created_at):
        node = nodes[run.id]
        if run.parent_id in nodes and run.parent_id != run.id:
            nodes[run.parent_id].children.append(node)
        else:
            roots.append(node)
    return roots


def timeline(runs: Sequence[RunRecord]) -> list[TimelineEntry]:
    """Depth-first through each family, families by age: reads top to bottom like a history."""
    by_id = {run.id: run for run in runs}
    entries: list[TimelineEntry] = []

    def walk(node: LineageNode, depth: int, family: str) -> None:
        parent = by_id.get(node.run.parent_id or "")
        entries.append(TimelineEntry(node.run, depth, node.relation, parent, family))
        for child in node.children:
            walk(child, depth + 1, family)

    for root in lineage_forest(runs):
        walk(root, 0, root.run.id)
    return entries


def ancestors(runs: Sequence[RunRecord], run_id: str) -> list[RunRecord]:
    """The chain from the run's first ancestor down to its parent."""
    by_id = {run.id: run for run in runs}
    chain: list[RunRecord] = []
    current = by_id.get(run_id)
    while current is not None and current.parent_id in by_id and len(chain) < len(runs):
        current = by_id[current.parent_id]
        chain.append(current)
    return list(reversed(chain))


def children(runs: Sequence[RunRecord], run_id: str) -> list[RunRecord]:
    return sorted((run for run in runs if run.parent_id == run_id), key=lambda r: r.created_at)
