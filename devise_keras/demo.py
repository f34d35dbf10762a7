"""The demos of `make demo` / `devise-keras run`: their data preparation and configurations.

Two demos: the emoji set (831 classes in five styles) with the ImageNet
EfficientNet-Lite0 backbone and USE-multilingual label vectors (the default), and
Fashion-MNIST with GloVe and a small CNN. Where each part comes from is told by its
`prepare_*` function in `devise_keras.datasets`, `.backbones` and `.text_encoders`.
No TFX here: the pipeline commands call these functions.
"""

from __future__ import annotations

import sys

from devise_keras.config import DeviseConfig

DATASETS = ("emoji", "fashion-mnist")
DEFAULT_DATASET = "emoji"
DEFAULT_BACKBONE = "lite0"
# The emoji demo: images and the model at 128 px (the emoji data step's size; 224 px
# upsamples them and costs 3x the backbone time, bench/results/demo.md).
EMOJI_IMAGE_SIZE = 128

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


def demo_config(data: dict[str, str], *, quick: bool, dataset: str) -> DeviseConfig:
    """The configuration `make demo` runs: emoji + Lite0 (the default) or Fashion-MNIST.

    Args:
        data: the paths `prepare_demo_data` returns for `dataset`.
        quick: fewer epochs, no fine-tuning (Fashion-MNIST: 300 images per class).
        dataset: one of `DATASETS`.

    Example:
    >>> cfg = demo_config({"images": "/d/fm", "vectors": "/d/g.npy"}, quick=True, dataset="fashion-mnist")
    >>> cfg.pipeline_name, cfg.data.image_dir, cfg.model.image_size
    ('devise-fashion-mnist-quick', '/d/fm', 28)
    """
    if dataset == "emoji":
        return emoji_demo_config(data, quick=quick)
    if dataset == "fashion-mnist":
        return fashion_mnist_demo_config(data, quick=quick)
    raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")


def fashion_mnist_demo_config(data: dict[str, str], *, quick: bool) -> DeviseConfig:
    """Fashion-MNIST (10 grey classes, 2 unseen) + GloVe + a small CNN trained with softmax.

    Args:
        data: {"images": class folders, "vectors": GloVe .npy, "vocab": its words}
            (`prepare_fashion_mnist_data`).
        quick: 300 images per class, fewer epochs.

    Example:
    >>> fashion_mnist_demo_config({"images": "/d/fm", "vectors": "/d/g.npy"}, quick=True).train.backbone_epochs
    2
    """
    return DeviseConfig.from_dict(
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


def emoji_demo_config(data: dict[str, str], *, quick: bool) -> DeviseConfig:
    """Emoji (831 classes x 5 styles) + ImageNet EfficientNet-Lite0 + USE-multilingual.

    20 % of the classes are unseen (zero-shot); the seen classes train on four styles
    and are evaluated (and gated) on the fifth, Twemoji. Label vectors: the text
    encoder (USE-multilingual v3, `make text-encoder`) of "name: keywords"; the 20,000
    most frequent GloVe words through the same encoder are the open vocabulary. Stage 2
    trains the projection on Lite0 features computed once; stage 3 fine-tunes Lite0's
    last layers. The projection settings were chosen on the held-out style of the seen
    classes only (bench/results/zero_shot/selection.md).

    Args:
        data: the paths `prepare_emoji_demo` returns ("manifest", "text_encoder",
            "label_texts", "backbone", optionally "vocab").
        quick: 10 projection epochs and no fine-tuning.

    Example:
    >>> paths = {"manifest": "/d/m.csv", "text_encoder": "/c/use", "label_texts": "/d/t.csv",
    ...          "backbone": "/c/lite0", "vocab": "/d/vocab.txt"}
    >>> cfg = emoji_demo_config(paths, quick=True)
    >>> cfg.model.image_size == EMOJI_IMAGE_SIZE, cfg.train.finetune_epochs
    (True, 0)
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


def prepare_fashion_mnist_data(data_dir: str, max_per_class: int | None = None) -> dict[str, str]:
    """Fashion-MNIST as class folders of PNGs (Debian's dataset-fashion-mnist) and GloVe.

    Args:
        data_dir: the demo data directory.
        max_per_class: at most this many images per class (None: all).

    Returns:
        {"images": class-folder root, "vectors", "vocab", ...: GloVe's files}.
    """
    from devise_keras.datasets.fashion_mnist import prepare_fashion_mnist
    from devise_keras.datasets.glove import prepare_glove

    images = prepare_fashion_mnist(data_dir, max_per_class=max_per_class)
    glove = prepare_glove(data_dir)
    return {"images": str(images), **{k: str(v) for k, v in glove.items()}}


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


def prepare_emoji_demo(
    data_dir: str, image_size: int = EMOJI_IMAGE_SIZE, backbone: str = DEFAULT_BACKBONE
) -> dict[str, str]:
    """The emoji set, GloVe, the ImageNet EfficientNet-Lite backbone (its hub dir) and
    USE-multilingual (its TF-Hub export): everything `emoji_demo_config` names.

    Args:
        data_dir: the demo data directory (images, manifest, GloVe, keywords).
        image_size: emoji image side in pixels.
        backbone: EfficientNet-Lite variant ("lite0" ... "lite4"); it and the text
            encoder live in the user cache (~/.cache/devise-keras).

    Returns:
        {"manifest", "label_texts", "backbone", "text_encoder", "vectors", "vocab", ...}
        as strings, plus human-readable "classes" and "images" summaries.
    """
    from devise_keras.backbones.efficientnet_lite_hub import prepare_efficientnet_lite
    from devise_keras.text_encoders.use_multilingual import prepare_use_multilingual

    paths = _prepare_emoji_data(data_dir, image_size)
    # The backbone and the text encoder live in the user cache (~/.cache/devise-keras).
    paths["backbone"] = str(prepare_efficientnet_lite(backbone))
    paths["text_encoder"] = str(prepare_use_multilingual())
    return paths


def prepare_demo_data(
    data_dir: str,
    dataset: str = DEFAULT_DATASET,
    *,
    image_size: int = EMOJI_IMAGE_SIZE,
    max_per_class: int | None = None,
    backbone: str = "",
    corpus: str = "",
) -> dict[str, str]:
    """What `devise-keras data` prepares: the demo data of `dataset`, or a text corpus.

    Args:
        data_dir: the demo data directory.
        dataset: one of `DATASETS`.
        image_size: emoji image side in pixels (emoji only).
        max_per_class: cap on images per class (fashion-mnist only).
        backbone: an EfficientNet-Lite variant to prepare too (emoji: `DEFAULT_BACKBONE`
            unless given; fashion-mnist: also the sample photos).
        corpus: prepare only this text corpus for skip-gram training instead ("gcide":
            GCIDE dictionary + WordNet glosses from Debian, one document per line).

    Returns:
        {name: path or summary}, what the command prints.
    """
    if corpus:
        from devise_keras.datasets.text_corpus import prepare_corpus

        if corpus != "gcide":
            raise ValueError(f"corpus must be 'gcide', got {corpus!r}")
        return prepare_corpus(data_dir)
    if dataset == "emoji":
        return prepare_emoji_demo(data_dir, image_size, backbone or DEFAULT_BACKBONE)
    if dataset != "fashion-mnist":
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    paths = prepare_fashion_mnist_data(data_dir, max_per_class)
    if backbone:
        from devise_keras.backbones.efficientnet_lite_hub import prepare_efficientnet_lite
        from devise_keras.datasets.sample_photos import prepare_sample_photos

        # The backbone lives in the user cache (~/.cache/devise-keras), shared by runs.
        paths["backbone"] = str(prepare_efficientnet_lite(backbone))
        paths["sample_photos"] = str(prepare_sample_photos()["dir"])
    return paths


def prepared_demo_config(
    data_dir: str, dataset: str = DEFAULT_DATASET, *, quick: bool
) -> DeviseConfig:
    """Prepares the demo data of `dataset` and returns the configuration `make demo` runs.

    Args:
        data_dir: the demo data directory.
        dataset: one of `DATASETS`.
        quick: see `demo_config` (fashion-mnist: 300 images per class).
    """
    if dataset == "emoji":
        data = prepare_emoji_demo(data_dir, EMOJI_IMAGE_SIZE)
    else:
        data = prepare_fashion_mnist_data(data_dir, 300 if quick else None)
    return demo_config(data, quick=quick, dataset=dataset)
