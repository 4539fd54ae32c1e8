"""The post-run summary over hand-built event streams, from memory and from an events.jsonl file."""

from __future__ import annotations

from studio.engine.anomalies import summarize_file, summarize_run
from studio.engine.events import (
    Anomaly,
    Completed,
    Error,
    Eval,
    Progress,
    Recovery,
    Started,
    Stopped,
)

RUN = "run-1"


def evals(*pairs):
    return [Eval(run_id=RUN, step=step, eval_loss=loss) for step, loss in pairs]


def progress(*steps):
    return [Progress(run_id=RUN, step=s, total_steps=500, loss=1.5) for s in steps]


def anomaly(kind, step, severity="critical"):
    return Anomaly(run_id=RUN, anomaly=kind, severity=severity, message=f"The {kind} happened.", step=step)


def recovery(action, step):
    return Recovery(run_id=RUN, action=action, message=f"Did {action}.", step=step)


def test_a_clean_run_is_trustworthy():
    events = [
        Started(run_id=RUN),
        *progress(100, 200),
        *evals((200, 1.5), (340, 1.18), (500, 1.21)),
        Completed(run_id=RUN, step=500),
    ]
    summary = summarize_run(events)
    assert summary.headline == "Training completed normally; final eval loss 1.21, best at step 340."
    assert summary.trustworthy
    assert (summary.final_eval_loss, summary.best_eval_loss, summary.best_step) == (1.21, 1.18, 340)
    assert (summary.anomalies, summary.recoveries) == (0, 0)


def test_diverged_twice_and_recovered():
    events = [
        Started(run_id=RUN),
        *evals((100, 1.6)),
        anomaly("divergence", 150),
        recovery("rollback_and_halve_lr", 150),
        anomaly("divergence", 260),
        recovery("rollback_and_halve_lr", 260),
        *evals((340, 1.18), (500, 1.21)),
        Completed(run_id=RUN, step=500),
    ]
    summary = summarize_run(events)
    assert (
        summary.headline == "Training diverged twice and recovered; final eval loss 1.21, best at step 340."
    )
    assert summary.trustworthy
    assert (summary.anomalies, summary.recoveries) == (2, 2)
    assert "Step 150: The divergence happened." in summary.details
    assert "Step 260: Did rollback_and_halve_lr." in summary.details


def test_an_unrecovered_nan_makes_the_model_untrustworthy():
    events = [*evals((100, 1.4)), anomaly("nan", 180), *evals((200, 1.4)), Completed(run_id=RUN, step=200)]
    summary = summarize_run(events)
    assert summary.headline.startswith("Training hit invalid numbers (NaN) and did not recover;")
    assert not summary.trustworthy
    assert any("step 180 was not fixed" in d for d in summary.details)


def test_giving_up_after_repeated_rollbacks_is_not_trustworthy():
    events = [*evals((50, 2.0))]
    for step in (100, 200, 300):
        events += [anomaly("loss_spike", step, "warning"), recovery("rollback_and_halve_lr", step)]
    events += [
        anomaly("loss_spike", 400, "warning"),
        recovery("stop_training", 400),
        Stopped(run_id=RUN, step=400, reason="anomaly"),
    ]
    summary = summarize_run(events)
    assert summary.headline.startswith(
        "Training had a loss spike 4 times and did not recover; it was stopped at step 400;"
    )
    assert not summary.trustworthy and summary.recoveries == 4


def test_early_stop_with_best_restored_is_trustworthy():
    events = [
        *evals((100, 1.5), (200, 1.3), (300, 1.35), (400, 1.45), (500, 1.6)),
        anomaly("overfitting", 500, "warning"),
        recovery("early_stop_restore_best", 500),
        Completed(run_id=RUN, step=500),
    ]
    summary = summarize_run(events)
    assert summary.headline == (
        "Training began to overfit and was stopped early with the best model restored; "
        "final eval loss 1.6, best at step 200."
    )
    assert summary.trustworthy


def test_a_final_model_much_worse_than_the_best_is_flagged():
    events = [*evals((100, 1.2), (200, 1.6)), Completed(run_id=RUN, step=200)]
    summary = summarize_run(events)
    assert not summary.trustworthy
    assert any("use that checkpoint instead" in d for d in summary.details)


def test_warnings_and_info_are_reported_without_claiming_a_recovery():
    events = [
        *evals((100, 1.3)),
        anomaly("memory_pressure", 50, "warning"),
        anomaly("plateau", 90, "info"),
        Completed(run_id=RUN, step=100),
    ]
    summary = summarize_run(events)
    assert summary.headline == "Training ran low on memory; final eval loss 1.3, best at step 100."
    assert summary.trustworthy and summary.anomalies == 2
    assert any("plateau" in d for d in summary.details)


def test_failed_stopped_and_interrupted_runs():
    failed = summarize_run(
        [*progress(10), Error(run_id=RUN, code="out_of_memory", message="It ran out of memory.", exit_code=3)]
    )
    assert failed.headline == "Training failed: It ran out of memory; no check on held-out data was run."
    assert not failed.trustworthy
    stopped = summarize_run([*progress(10, 20), *evals((20, 1.9)), Stopped(run_id=RUN, step=20)])
    assert (
        stopped.headline
        == "Training was stopped at step 20 before the end; final eval loss 1.9, best at step 20."
    )
    assert not stopped.trustworthy
    interrupted = summarize_run(progress(10, 30))
    assert interrupted.headline.startswith("Training did not finish (last step seen: 30)")
    assert not interrupted.trustworthy


def test_summary_from_an_events_file_skips_broken_lines(tmp_path):
    events = [
        Started(run_id=RUN),
        *evals((100, 1.6)),
        anomaly("nan", 150),
        recovery("rollback_and_halve_lr", 150),
        *evals((340, 1.18), (500, 1.21)),
        Completed(run_id=RUN, step=500),
    ]
    path = tmp_path / "events.jsonl"
    lines = [e.to_json() for e in events]
    lines.insert(2, "{not json")
    lines.insert(3, '{"event": "from_the_future", "run_id": "x"}')
    path.write_text("\n".join(lines) + '\n{"event": "progr', encoding="utf-8")
    summary = summarize_file(path)
    assert summary == summarize_run(events)
    assert summary.headline == (
        "Training hit invalid numbers (NaN) and recovered; final eval loss 1.21, best at step 340."
    )
