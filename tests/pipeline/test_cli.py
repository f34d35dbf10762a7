"""`devise-keras` (pipeline/cli.py): the library's commands plus the pipeline's, and what a
pipeline command says without the `pipeline` extra. Nothing here runs a pipeline."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from pipeline import cli as pipeline_cli
from pipeline import local_runner

COMMAND = [sys.executable, "-m", "pipeline.cli"]
EXTRA_LINE = "devise-keras {} needs the pipeline extra: pip install 'devise-keras[pipeline]'"


def run(*args):
    return subprocess.run([*COMMAND, *map(str, args)], capture_output=True, text=True, timeout=300)


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_help_lists_every_command_and_the_exit_codes():
    result = run("--help")
    assert result.returncode == 0
    for command in (
        "data",
        "run",
        "compile-kubeflow",
        "run-kubeflow-spec",
        "predict",
        "neighbors",
        "search-images",
        "analogy",
        "report",
    ):
        assert command in result.stdout
    assert "exit codes: 0 success, 1 the work failed, 2 bad usage" in result.stdout
    sub = run("search-images", "--help")
    assert sub.returncode == 0 and "--images DIR" in sub.stdout and "exit codes" in sub.stdout


def test_the_console_script_is_pipeline_cli_main():
    pyproject = (Path(__file__).parents[2] / "pyproject.toml").read_text()
    assert 'devise-keras = "pipeline.cli:main"' in pyproject


def test_pipeline_usage_errors_exit_2_with_one_line(tmp_path, capsys):
    assert pipeline_cli.main(["run", "--config", str(tmp_path / "missing.json")]) == 2
    assert _error_line(capsys) == (
        f"devise-keras run: error: config file not found: {tmp_path / 'missing.json'}"
    )
    assert pipeline_cli.main(["report", "--output-dir", str(tmp_path / "no-run")]) == 2
    assert "devise-keras report: error: no local run in" in _error_line(capsys)
    # A missing image folder is one line and exit 2, before the pipeline starts.
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"data": {"image_dir": str(tmp_path / "no-images")}}))
    out = tmp_path / "out"
    assert pipeline_cli.main(["run", "--config", str(config), "--output-dir", str(out)]) == 2
    assert _error_line(capsys).endswith(f"no such directory: {tmp_path / 'no-images'}")
    assert not out.exists()


def test_the_pipeline_defaults_to_the_emoji_demo():
    parser = pipeline_cli.build_parser()
    assert parser.parse_args(["run"]).dataset == "emoji"
    assert parser.parse_args(["run", "--dataset", "fashion-mnist"]).dataset == "fashion-mnist"
    assert parser.parse_args(["data"]).dataset == "emoji"  # the library's command, here too


def _tiny_image_config(tmp_path) -> Path:
    (tmp_path / "images" / "cat").mkdir(parents=True)
    (tmp_path / "images" / "cat" / "a.png").write_bytes(b"x")
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"data": {"image_dir": str(tmp_path / "images")}}))
    return config


def test_run_without_tfx_says_it_needs_the_pipeline_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tfx", None)  # as if tfx were not installed
    out = tmp_path / "out"
    code = pipeline_cli.main(
        ["run", "--config", str(_tiny_image_config(tmp_path)), "--output-dir", str(out)]
    )
    assert code == 2
    assert _error_line(capsys) == EXTRA_LINE.format("run")
    assert not out.exists()
    code = pipeline_cli.main(
        ["compile-kubeflow", "--config", "c.json"]
        + ["--pipeline-root", "gs://b/r", "--serving-dir", "gs://b/s"]
    )
    assert code == 2 and _error_line(capsys) == EXTRA_LINE.format("compile-kubeflow")


def test_report_without_tfma_says_it_needs_the_pipeline_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tensorflow_model_analysis", None)
    assert pipeline_cli.main(["report", "--output-dir", str(tmp_path)]) == 2
    assert _error_line(capsys) == EXTRA_LINE.format("report")


def test_a_missing_extra_module_inside_a_command_is_the_same_one_line(capsys):
    @pipeline_cli.needs()
    def beam_command(args):
        raise ModuleNotFoundError("No module named 'apache_beam'", name="apache_beam.io")

    @pipeline_cli.needs()
    def broken_command(args):
        raise ModuleNotFoundError("No module named 'mistyped'", name="mistyped")

    args = pipeline_cli.build_parser().parse_args(["run"])
    with pytest.raises(pipeline_cli.MissingPipelineExtraError, match="^devise-keras run needs"):
        beam_command(args)
    with pytest.raises(ModuleNotFoundError, match="mistyped"):  # not the extra's: raised
        broken_command(args)


def test_the_console_script_imports_and_builds_its_parser_without_the_pipeline_stack():
    script = textwrap.dedent(
        """
        import sys
        import pipeline.cli
        pipeline.cli.build_parser().parse_args(["run"])
        heavy = ("tfx", "apache_beam", "tensorflow_model_analysis", "ml_metadata", "kfp")
        print(sorted(m for m in sys.modules if m.split(".")[0] in heavy))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


def _fake_run_with_zero_shot_report(out: Path) -> None:
    report_dir = out / "pipeline_root" / "ZeroShotEvaluator" / "report" / "7"
    report_dir.mkdir(parents=True)
    (report_dir / "report.md").write_text("## Zero-shot\n\n| hit@1 | 0.420 |\n")
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = str(out / local_runner.METADATA_FILENAME)
    config.sqlite.connection_mode = (
        metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    )
    store = metadata_store.MetadataStore(config)
    type_id = store.put_artifact_type(metadata_store_pb2.ArtifactType(name="devise.ZeroShotReport"))
    store.put_artifacts(
        [
            metadata_store_pb2.Artifact(
                type_id=type_id, uri=str(report_dir), state=metadata_store_pb2.Artifact.LIVE
            )
        ]
    )


def test_report_prints_and_writes_the_newest_zero_shot_report(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    _fake_run_with_zero_shot_report(out)
    written = tmp_path / "report.md"
    assert pipeline_cli.main(["report", "--output-dir", str(out), "--write", str(written)]) == 0
    printed = capsys.readouterr().out
    assert "| hit@1 | 0.420 |" in printed and "Flat hit@k" in printed
    assert "not pushed" in printed
    assert written.read_text() == printed
