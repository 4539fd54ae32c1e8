"""Lineage on real runs: a continued run is the child of the run it continued."""

from __future__ import annotations

from studio.engine.runs.lineage import ancestors, children, lineage_forest, relation, timeline


def test_continued_run_is_a_child(library):
    runs = library.registry.list_runs()
    assert library.child.parent_id == library.parent.id
    assert (library.parent.version, library.child.version) == ("1.0.0", "1.1.0")
    forest = lineage_forest(runs)
    assert [node.run.id for node in forest] == [library.parent.id]
    assert [node.run.id for node in forest[0].children] == [library.child.id]
    assert forest[0].children[0].relation == "continued"
    assert [r.id for r in ancestors(runs, library.child.id)] == [library.parent.id]
    assert [r.id for r in children(runs, library.parent.id)] == [library.child.id]


def test_timeline_reads_like_a_history(library):
    entries = timeline(library.registry.list_runs())
    assert [(e.run.id, e.depth) for e in entries] == [(library.parent.id, 0), (library.child.id, 1)]
    assert entries[1].describe() == "pip 1.1.0: continued training from pip 1.0.0"
    assert entries[0].describe() == "pip 1.0.0: new run"


def test_relation_follows_the_version_rules(library):
    from dataclasses import replace

    parent = library.parent
    assert relation(None, parent) == "new"
    assert relation(parent, replace(parent, version="2.0.0")) == "branched"
    assert relation(parent, replace(parent, version="1.0.1")) == "rerun"
