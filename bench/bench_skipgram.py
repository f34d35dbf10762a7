"""Benchmark: skip-gram vectors from CorpusGen + SkipGramTrainer vs gensim's Word2Vec.

Run: ``python -m bench.bench_skipgram`` (writes bench/results/skipgram.md).

Both train on the GCIDE + WordNet demo corpus (`devise_keras.datasets.text_corpus`),
tokenized the same way (`devise_keras.label_matching.text_words`; gensim gets the
tokens joined by spaces), with the same dim, window, negatives, epochs, min_count and
subsampling threshold. Quality is measured with gensim's own evaluators on the sets in
gensim's wheel (``questions-words.txt`` analogies, Spearman on ``wordsim353.tsv`` and
``simlex999.txt``) for both vector sets. Words/s = corpus tokens x epochs / training
wall time. The Beam part runs CorpusGen's executor (DirectRunner) with 1 and 2 worker
processes on a subset, and at two corpus sizes for peak memory. Every measurement runs
in its own subprocess; peak memory is VmHWM of that process and, for multi-process
Beam, the largest child's peak RSS.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "skipgram.md"


def _peak_rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def _children_peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0


def worker_corpus_gen(corpus: str, out: str, settings: dict, workers: int) -> dict:
    from tfx.dsl.components.base.base_beam_executor import BaseBeamExecutor

    from components.artifacts import SkipGramCorpus
    from components.corpus_gen.executor import Executor
    from devise_keras import skipgram_corpus as sg

    args = []
    if workers > 1:
        args = [f"--direct_num_workers={workers}", "--direct_running_mode=multi_processing"]
    artifact = SkipGramCorpus()
    artifact.uri = out
    start = time.perf_counter()
    Executor(BaseBeamExecutor.Context(beam_pipeline_args=args)).Do(
        {}, {"corpus": [artifact]}, {"corpus_paths": json.dumps([corpus]), **settings}
    )
    stats = sg.read_stats(out)
    return {
        "seconds": time.perf_counter() - start,
        "job_seconds": stats["seconds"],
        "tokens": stats["tokens"],
        "pairs": stats["pairs"],
        "vocabulary_size": stats["vocabulary_size"],
        "peak_mib": _peak_rss_mib(),
        "children_peak_mib": _children_peak_mib(),
    }


def worker_ours(corpus_dir: str, out: str, train: dict) -> dict:
    from devise_keras.skipgram import train_skipgram

    log = train_skipgram(corpus_dir, out, verbose=2, **train)
    return {**log, "peak_mib": _peak_rss_mib()}


def worker_gensim(tokens_file: str, out: str, settings: dict, train: dict, workers: int) -> dict:
    from gensim.models import Word2Vec
    from gensim.models.word2vec import LineSentence

    start = time.perf_counter()
    model = Word2Vec(
        sentences=LineSentence(tokens_file, max_sentence_length=100_000),
        vector_size=train["dim"],
        window=settings["window"],
        negative=train["negatives"],
        sg=1,
        hs=0,
        min_count=settings["min_count"],
        sample=settings["sample"],
        epochs=train["epochs"],
        alpha=train["learning_rate"],
        min_alpha=train["min_learning_rate"],
        seed=train["seed"],
        workers=workers,
    )
    seconds = time.perf_counter() - start
    model.wv.save_word2vec_format(os.path.join(out, "vectors.txt"))
    return {
        "seconds": seconds,
        "corpus_tokens": model.corpus_total_words,
        "vocabulary_size": len(model.wv),
        "peak_mib": _peak_rss_mib(),
    }


def worker_evaluate(vectors: str) -> dict:
    import gensim
    from gensim.models import KeyedVectors

    data = Path(gensim.__file__).parent / "test" / "test_data"
    kv = KeyedVectors.load_word2vec_format(vectors)
    analogy, sections = kv.evaluate_word_analogies(
        str(data / "questions-words.txt"), case_insensitive=True
    )
    answered = sum(
        len(s["correct"]) + len(s["incorrect"])
        for s in sections
        if s["section"] == "Total accuracy"
    )
    result = {"analogy": analogy, "analogy_answered": answered}
    for name, file in (("wordsim353", "wordsim353.tsv"), ("simlex999", "simlex999.txt")):
        pearson, spearman, oov = kv.evaluate_word_pairs(str(data / file), case_insensitive=True)
        result[name] = float(spearman[0])
        result[name + "_oov_percent"] = float(oov)
    return result


def _run(*args: str) -> dict:
    """Runs `python -m bench.bench_skipgram worker ...` in a fresh process; its JSON result."""
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "0", "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        [sys.executable, "-m", "bench.bench_skipgram", "worker", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"worker {args[0]} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _subset(corpus: str, lines: int, path: Path) -> str:
    if not path.exists():
        with open(corpus, encoding="utf-8") as src, open(path, "w", encoding="utf-8") as dst:
            for i, line in enumerate(src):
                if i >= lines:
                    break
                dst.write(line)
    return str(path)


def _tokens_file(corpus: str, path: Path) -> str:
    """The corpus as gensim's input: one document per line, tokens joined by spaces."""
    from devise_keras.label_matching import text_words

    if not path.exists():
        with open(corpus, encoding="utf-8") as src, open(path, "w", encoding="utf-8") as dst:
            batch = []
            for line in src:
                if line.strip():
                    batch.append(line.rstrip("\n"))
                if len(batch) == 512:
                    dst.writelines(" ".join(ws) + "\n" for ws in text_words(batch) if ws)
                    batch = []
            dst.writelines(" ".join(ws) + "\n" for ws in text_words(batch) if ws)
    return str(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work-dir", default="/tmp/devise-bench-skipgram")
    parser.add_argument("--data-dir", default=".devise-data")
    parser.add_argument("--max-lines", type=int, default=0, help="corpus subset (0: all)")
    parser.add_argument("--beam-lines", type=int, nargs=2, default=[40_000, 80_000])
    parser.add_argument("--dim", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--gensim-workers", type=int, default=2)
    parser.add_argument("--sample", type=float, default=1e-5, help="subsampling threshold")
    parser.add_argument("--min-count", type=int, default=5)
    parser.add_argument(
        "--only",
        choices=["quality", "beam"],
        help="run one part; results of the other part "
        "are taken from an earlier run in --work-dir (each part caches its results there)",
    )
    args = parser.parse_args(argv)

    from devise_keras.datasets.text_corpus import prepare_corpus

    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    corpus = prepare_corpus(args.data_dir)["corpus"]
    if args.max_lines:
        corpus = _subset(corpus, args.max_lines, work / f"corpus_{args.max_lines}.txt")
    settings = {
        "min_count": args.min_count,
        "sample": args.sample,
        "window": 5,
        "seed": 0,
        "num_shards": 4,
    }
    train = {
        "dim": args.dim,
        "negatives": 5,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "learning_rate": 0.025,
        "min_learning_rate": 0.0001,
        "seed": 0,
    }
    # Tags of the default sample/min_count stay as before, so earlier results are reused.
    data_tag = f"{args.max_lines or 'all'}"
    if (args.sample, args.min_count) != (1e-5, 5):
        data_tag += f"_s{args.sample:g}_m{args.min_count}"
    tag = f"{data_tag}_d{args.dim}_e{args.epochs}"
    corpus_dir = work / f"corpus_gen_{data_tag}"
    quality_cache, beam_cache = work / f"quality_{tag}.json", work / "beam.json"
    if args.only != "beam":
        load_before = os.getloadavg()
        parts = _quality(args, work, corpus, corpus_dir, tag, settings, train)
        parts.append({"before": load_before, "after": os.getloadavg()})
        quality_cache.write_text(json.dumps(parts))
    if args.only != "quality":
        beam_cache.write_text(json.dumps(_beam(args, work, corpus, settings)))
    if not (quality_cache.exists() and beam_cache.exists()):
        print("results of one part are missing; run without --only to write the table")
        return
    parts = json.loads(quality_cache.read_text())
    if len(parts) == 4:  # written before the load average was recorded
        parts.append(None)
    _write(args, corpus, settings, train, *parts, json.loads(beam_cache.read_text()))


def _quality(args, work, corpus, corpus_dir, tag, settings, train):
    if (corpus_dir / "corpus_stats.json").exists():
        gen = json.loads((corpus_dir / "corpus_stats.json").read_text())
        gen = {**gen, "seconds": sum(gen["seconds"].values()), "reused": True}
    else:
        gen = _run("corpus_gen", corpus, str(corpus_dir), json.dumps(settings), "1")
    print("CorpusGen", gen, flush=True)
    subprocess.run(["rm", "-rf", str(work / f"ours_{tag}")], check=True)
    ours = _run("ours", str(corpus_dir), str(work / f"ours_{tag}"), json.dumps(train))
    print("ours", ours, flush=True)
    tokens = _tokens_file(corpus, work / f"tokens_{args.max_lines or 'all'}.txt")
    (work / f"gensim_{tag}").mkdir(exist_ok=True)
    theirs = _run(
        "gensim", tokens, str(work / f"gensim_{tag}"), json.dumps(settings), json.dumps(train),
        str(args.gensim_workers),
    )  # fmt: skip
    print("gensim", theirs, flush=True)
    quality = {
        "ours": _run("evaluate", str(work / f"ours_{tag}" / "vectors.txt")),
        "gensim": _run("evaluate", str(work / f"gensim_{tag}" / "vectors.txt")),
    }
    print("quality", quality, flush=True)
    return [gen, ours, theirs, quality]


def _beam(args, work, corpus, settings):
    beam = []
    for lines in args.beam_lines:
        subset = _subset(corpus, lines, work / f"corpus_{lines}.txt")
        for workers in (1, 2):
            out = work / f"beam_{lines}_{workers}"
            subprocess.run(["rm", "-rf", str(out)], check=True)
            result = _run("corpus_gen", subset, str(out), json.dumps(settings), str(workers))
            beam.append({"lines": lines, "workers": workers, **result})
            print("beam", beam[-1], flush=True)
    return beam


def _write(args, corpus, settings, train, gen, ours, theirs, quality, load, beam) -> None:
    import keras
    import tensorflow as tf

    tokens = ours["corpus_tokens"]
    ours_wps = tokens * train["epochs"] / ours["seconds"]
    gensim_wps = theirs["corpus_tokens"] * train["epochs"] / theirs["seconds"]
    q_o, q_g = quality["ours"], quality["gensim"]
    from bench.portable_paths import portable_args, portable_path

    command = "python -m bench.bench_skipgram " + " ".join(portable_args(sys.argv[1:]))
    lines = [
        "## Skip-gram vectors: CorpusGen + SkipGramTrainer vs gensim Word2Vec",
        "",
        f"- command: `{command.strip()}`",
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPU cores shared with other "
        "engineers' jobs ("
        + (
            f"load average over 1/5/15 min: {_load(load['before'])} at the start of the "
            f"quality part, {_load(load['after'])} at its end; "
            if load
            else ""
        )
        + "timings are noisy), no GPU; "
        f"TF {tf.__version__}, Keras {keras.__version__}",
        f"- corpus: {portable_path(corpus)} ({tokens:,} tokens after label-matching tokenization"
        + (f", first {args.max_lines:,} lines" if args.max_lines else ", all of it")
        + f"); vocabulary {ours['vocabulary_size']:,} (ours) / {theirs['vocabulary_size']:,} "
        "(gensim)",
        f"- settings (both): skip-gram, dim {train['dim']}, window {settings['window']} "
        f"(dynamic), {train['negatives']} negatives, {train['epochs']} epoch(s), min_count "
        f"{settings['min_count']}, sample {settings['sample']}, lr {train['learning_rate']} -> "
        f"{train['min_learning_rate']} linear; ours batch {train['batch_size']} (SGD on the "
        f"summed loss), gensim {args.gensim_workers} worker threads",
        "- quality: gensim's `evaluate_word_analogies` (questions-words.txt, case-insensitive) "
        "and `evaluate_word_pairs` (Spearman) on both vector files",
        "",
        "| | analogy acc. | WordSim353 ρ | SimLex999 ρ | train s | words/s | peak MiB |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| ours (Keras) | {q_o['analogy']:.4f} | {q_o['wordsim353']:.3f} | "
        f"{q_o['simlex999']:.3f} | {ours['seconds']:.0f} | {ours_wps:,.0f} | "
        f"{ours['peak_mib']:.0f} |",
        f"| gensim Word2Vec | {q_g['analogy']:.4f} | {q_g['wordsim353']:.3f} | "
        f"{q_g['simlex999']:.3f} | {theirs['seconds']:.0f} | {gensim_wps:,.0f} | "
        f"{theirs['peak_mib']:.0f} |",
        f"| ratio ours/gensim | {_ratio(q_o['analogy'], q_g['analogy'])} | "
        f"{_ratio(q_o['wordsim353'], q_g['wordsim353'])} | "
        f"{_ratio(q_o['simlex999'], q_g['simlex999'])} | | {ours_wps / gensim_wps:.3f} | |",
        "",
        f"Analogy questions answered (all words in vocabulary): ours {q_o['analogy_answered']}, "
        f"gensim {q_g['analogy_answered']}. OOV pairs: WordSim353 {q_o['wordsim353_oov_percent']:.1f}% "
        f"/ {q_g['wordsim353_oov_percent']:.1f}%, SimLex999 {q_o['simlex999_oov_percent']:.1f}% "
        f"/ {q_g['simlex999_oov_percent']:.1f}% (ours / gensim). gensim's time includes its "
        "vocabulary scan; ours excludes CorpusGen "
        f"({gen['seconds']:.0f} s for this corpus{', reused from an earlier run' if gen.get('reused') else ''}).",
    ]
    if beam:
        lines += [
            "",
            "CorpusGen (both Beam jobs: count words, generate pairs), DirectRunner:",
            "",
            "| corpus lines | tokens | pairs | workers | count s | pairs s | pairs/s (pair job) "
            "| peak MiB (main / largest worker) |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for b in beam:
            pair_s = b["job_seconds"]["generate_pairs"]
            lines.append(
                f"| {b['lines']:,} | {b['tokens']:,} | {b['pairs']:,} | {b['workers']} | "
                f"{b['job_seconds']['count_words']:.0f} | {pair_s:.0f} | "
                f"{b['pairs'] / pair_s:,.0f} | {b['peak_mib']:.0f} / {b['children_peak_mib']:.0f} |"
            )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print(RESULTS.read_text())


def _load(averages: list[float]) -> str:
    return "/".join(f"{x:.1f}" for x in averages)


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.3f}" if b else "n/a"


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        kind, rest = sys.argv[2], sys.argv[3:]
        if kind == "corpus_gen":
            out = worker_corpus_gen(rest[0], rest[1], json.loads(rest[2]), int(rest[3]))
        elif kind == "ours":
            out = worker_ours(rest[0], rest[1], json.loads(rest[2]))
        elif kind == "gensim":
            out = worker_gensim(
                rest[0], rest[1], json.loads(rest[2]), json.loads(rest[3]), int(rest[4])
            )
        else:
            out = worker_evaluate(rest[0])
        print(json.dumps(out))
    else:
        main()
