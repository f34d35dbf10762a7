"""Progress lines of a local run: one per component start and finish, with key numbers."""

from __future__ import annotations

import io
import json
import logging

from pipeline import progress


def _record(message: str) -> logging.LogRecord:
    return logging.LogRecord("absl", logging.INFO, __file__, 1, message, None, None)


def test_start_and_finish_lines_with_elapsed_time_cache_and_key_number():
    times = iter([10.0, 12.5, 20.0, 20.25])
    out = io.StringIO()
    handler = progress.ComponentProgress(
        lambda node: {"ImageExampleGen": "700 records, 3 skipped"}.get(node, ""),
        stream=out,
        clock=lambda: next(times),
    )
    for message in (
        "Component ImageExampleGen is running.",
        "some Beam chatter",
        "Component ImageExampleGen is finished.",
        "Component SchemaGen is running.",
        "A cached execution 7 is used.",
        "Component SchemaGen is finished.",
    ):
        handler.emit(_record(message))
    assert out.getvalue().splitlines() == [
        "[ImageExampleGen] started",
        "[ImageExampleGen] finished in 2.5 s: 700 records, 3 skipped",
        "[SchemaGen] started",
        "[SchemaGen] finished in 0.2 s (cached)",
    ]


def test_a_failing_summary_never_breaks_the_run():
    out = io.StringIO()

    def broken(node):
        raise OSError("store locked")

    handler = progress.ComponentProgress(broken, stream=out, clock=lambda: 1.0)
    handler.emit(_record("Component Pusher is running."))
    handler.emit(_record("Component Pusher is finished."))
    assert out.getvalue().splitlines()[-1] == "[Pusher] finished in 0.0 s: (no summary: OSError)"


def test_artifact_summaries_say_the_key_number(tmp_path):
    assert (
        progress.artifact_summary("Examples", "", {"num_examples": 700, "num_skipped": 3})
        == "700 records, 3 skipped"
    )
    assert (
        progress.artifact_summary("devise.LabelEmbeddings", "", {"num_labels": 10, "dim": 50})
        == "10 labels matched (50-d)"
    )
    assert progress.artifact_summary("ModelBlessing", "", {"blessed": 0}).startswith("NOT")
    (tmp_path / "metrics.json").write_text(json.dumps({"hit_at_1": 0.9412, "hit_at_5": 1.0}))
    assert (
        progress.artifact_summary("ModelRun", str(tmp_path), {}) == "eval hit@1 0.941, hit@5 1.000"
    )
    assert progress.artifact_summary("SchemaGen", "", {}) is None
