"""The committed reports and docs name no machine: no absolute path of the computer that
wrote them (its home, checkout, temp folder, virtualenv or site-packages).

The rule (bench/portable_paths.py writes paths this way):
- flagged: absolute paths under a machine's own folders (/root, /home, /Users, /work,
  /tmp, /var/tmp, /var/folders, /private, /mnt, /scratch, C:\\Users), and any path
  through a site-packages/ or dist-packages/ folder (the word alone, in prose, is fine) or into a virtualenv's lib/;
- allowed: repository-relative paths (``.venv/bin/python``, ``bench/results/...``),
  ``~/...`` (the documented per-user locations such as ``~/.cache/devise-keras/...``:
  ``~`` is whoever follows the instruction, not one machine), ``$TMPDIR/...``, system
  folders that are the same on every Debian machine (``/usr/...``), URIs
  (``gs://bucket/tmp``), and placeholders (``/path/to/...``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.portable_paths import portable_args, portable_path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ["README.md", "BUILD.md", "bench/RESULTS.md"]
BINARY_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".npy", ".npz", ".gz", ".pb", ".keras"}
MACHINE_PATH = re.compile(
    r"(?<![\w.~$:/<>-])/(?:root|home|Users|work|tmp|var/tmp|var/folders|private|mnt|scratch)"
    r"(?![\w.-])"
    r"|\b[A-Za-z]:\\+Users\\"
    r"|(?:site|dist)-packages/"
    r"|\.venv/lib/"
)


def machine_paths(text: str) -> list[tuple[int, str]]:
    """(line number, line) of every line of `text` naming a machine path."""
    return [
        (number, line.strip())
        for number, line in enumerate(text.splitlines(), start=1)
        if MACHINE_PATH.search(line)
    ]


def committed_reports(root: Path = ROOT) -> list[Path]:
    """Every text file under bench/results/ plus the docs."""
    files = [p for p in sorted((root / "bench" / "results").rglob("*")) if p.is_file()]
    files += [root / name for name in DOCS if (root / name).is_file()]
    return [p for p in files if p.suffix.lower() not in BINARY_SUFFIXES]


@pytest.mark.parametrize(
    "line",
    [
        "corpus: /tmp/devise-bench-skipgram/corpus.txt",
        "`make demo` in /work/main",
        "model at /root/.cache/devise-keras/backbones/x",
        "home: /home/ada/r",
        "(/Users/ada/data)",
        r"C:\Users\ada\data",
        ".venv/lib/python3.10/site-packages/tfx/x.py",
        "/usr/local/lib/python3.10/dist-packages/tfx",
        "--cache-dir=/tmp",
    ],
)
def test_a_machine_path_is_flagged(line):
    assert machine_paths(f"ok\n{line}\n") == [(2, line)]


@pytest.mark.parametrize(
    "line",
    [
        "`.venv/bin/python -m bench.bench_label_index`",
        "kept in `~/.cache/devise-keras/npm`",
        "Fashion-MNIST (/usr/share/datasets/fashion-mnist)",
        "`--temp_location=gs://BUCKET/tmp`, `gs:///root` has no bucket",
        "docker run -v /path/to/serving:/models/devise",
        "<pushed version>/assets.extra/model.keras and $TMPDIR/lite_cache",
        "bench/results/zero_shot/report.md, runs/demo/tmp/x",
    ],
)
def test_documented_and_relative_paths_are_allowed(line):
    assert machine_paths(line) == []


def test_portable_paths_name_no_machine(tmp_path):
    repo, home = tmp_path / "repo", tmp_path / "home" / "ada"
    kwargs = {"repo_root": repo, "home": str(home)}
    assert portable_path(repo / "bench" / "results" / "x.md", **kwargs) == "bench/results/x.md"
    assert portable_path(repo, **kwargs) == "."
    assert portable_path(home / ".cache" / "hub", **kwargs) == "~/.cache/hub"
    assert portable_path("/srv/data/glove.txt", **kwargs) == "<abs>/glove.txt"
    assert portable_path("/usr/share/wordnet", **kwargs) == "/usr/share/wordnet"
    assert portable_path(".devise-data", **kwargs) == ".devise-data"
    assert portable_path("gs://bucket/tmp", **kwargs) == "gs://bucket/tmp"
    assert portable_args(
        ["--out", str(home / "r"), f"--cache-dir={repo / 'c'}", "--seeds=5"], **kwargs
    ) == ["--out", "~/r", "--cache-dir=c", "--seeds=5"]
    for written in (portable_path(repo / "x", **kwargs), portable_path(home / "x", **kwargs)):
        assert machine_paths(written) == []


def test_committed_reports_name_no_machine_path():
    files = committed_reports()
    assert any(p.name == "report.html" for p in files)  # the scan reaches the reports
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line[:160]}"
        for path in files
        for number, line in machine_paths(path.read_text(encoding="utf-8", errors="replace"))
    ]
    assert not found, "machine paths in committed files:\n" + "\n".join(found)
