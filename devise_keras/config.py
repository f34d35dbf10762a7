"""One typed configuration tree for devise-keras.

The same `DeviseConfig` flows from the CLI into `pipeline.create_pipeline`, into the
trainer's `custom_config` (as JSON), and is written beside every trained model, so a
model always carries the hyperparameters that produced it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import types
import typing
from collections.abc import Collection
from pathlib import Path
from typing import Any

from devise_keras import storage

LOSSES = ("rank", "l2", "cosine", "cross_entropy", "softmax")
# Copies of the train images whose backbone features join the cached train features.
FEATURE_AUGMENTATIONS = ("flip", "crop")
NEGATIVE_MODES = ("all", "sampled", "truncated")
# How CorpusGen cuts a corpus into documents (CorpusTrainingConfig.document_per).
DOCUMENT_PER = ("line", "file")
OOV_POLICIES = ("error", "skip", "random")
# Fields naming a file, folder or URI of the machine that runs the pipeline. A model's
# app bundle blanks them in its config.json (`app_bundle.portable_config`) and records
# their values under the top-level PROVENANCE_KEY, which `DeviseConfig.from_dict` ignores.
PATH_FIELDS = (
    "data.image_dir",
    "data.manifest",
    "embeddings.vectors_path",
    "embeddings.vocab_path",
    "embeddings.aliases_path",
    "embeddings.text_encoder",
    "embeddings.label_texts",
    "embeddings.train_from_corpus.corpus_paths",
    "model.backbone",
)
PROVENANCE_KEY = "provenance"


class ConfigError(ValueError):
    """A configuration value is missing, of the wrong type, or out of range."""


@dataclasses.dataclass
class DataConfig:
    """Where the images come from and how they are split.

    Args:
        image_dir: root of `<label>/<image>` class folders (ImageNet layout).
        manifest: a CSV `path,label[,split]` used instead of `image_dir`.
        eval_fraction: fraction of each seen class's images that go to `eval`.
        unseen_classes: classes held out of training for zero-shot evaluation.
        num_unseen: when `unseen_classes` is empty, hold out this many classes
            chosen with `split_seed`.
        split_seed: seed for the unseen-class choice and the hash-based splits.
        max_images_per_class: cap on images per class (None: no cap).
        image_size: when set, images are re-encoded at this square size in the
            Examples (None keeps the bytes as they are).
        max_image_pixels: images with more pixels (width x height) are skipped and
            reported before they are decoded, so a huge file cannot exhaust memory.
        min_image_side: images narrower or lower than this are skipped and reported.
        unseen_fraction: when > 0, hold out this fraction of the classes (seeded
            with `split_seed`) instead of `num_unseen`.
        eval_style: with a manifest `style` column: seen images of this style are
            the eval split, the other styles train (flat evaluation on a held-out
            style); empty: the hash split with `eval_fraction`.
    """

    image_dir: str = ""
    manifest: str = ""
    eval_fraction: float = 0.2
    unseen_classes: list[str] = dataclasses.field(default_factory=list)
    num_unseen: int = 2
    split_seed: int = 0
    max_images_per_class: int | None = None
    image_size: int | None = None
    max_image_pixels: int = 40_000_000
    min_image_side: int = 8
    unseen_fraction: float = 0.0
    eval_style: str = ""


@dataclasses.dataclass
class CorpusTrainingConfig:
    """Skip-gram vectors trained on the user's own text (Mikolov et al., NIPS 2013).

    Set as `embeddings.train_from_corpus`; the pipeline then runs CorpusGen (Beam) and
    SkipGramTrainer (Keras) and LabelEmbeddingGen reads the trained vectors.

    Args:
        corpus_paths: text files or glob patterns (``.gz`` read as gzip).
        document_per: "line" (each line a document) or "file".
        min_count: words rarer than this are left out of the vocabulary.
        sample: subsampling threshold t of frequent words (word2vec's; 0 keeps all).
        window: largest window reach; each position draws its reach in 1..window.
        dim: vector width.
        negatives: negative samples per pair (from the unigram^0.75 distribution).
        epochs: passes over the pairs.
        batch_size: pairs per training step.
        learning_rate: SGD learning rate at the start, decaying linearly ...
        min_learning_rate: ... to this at the end (word2vec's 0.025 -> 0.0001).
        num_shards: pair TFRecord shards (0: the runner decides).
        seed: seed of subsampling, windows, initialisation and negatives.
    """

    corpus_paths: list[str] = dataclasses.field(default_factory=list)
    document_per: str = "line"
    min_count: int = 5
    sample: float = 1e-5
    window: int = 5
    dim: int = 100
    negatives: int = 5
    epochs: int = 3
    batch_size: int = 1024
    learning_rate: float = 0.025
    min_learning_rate: float = 0.0001
    num_shards: int = 4
    seed: int = 0


@dataclasses.dataclass
class EmbeddingConfig:
    """The label-vector source: word vectors (file or trained) or a text encoder.

    Args:
        vectors_path: word2vec .bin, word2vec/fastText .vec/.txt with a header, GloVe
            .txt, or a `.npy` matrix (with `vocab_path`).
        vectors_format: "auto", "word2vec_binary", "word2vec_text", "glove_text", "npy".
        vocab_path: words of a `.npy` matrix (one per line, or a parquet `index` column);
            with `text_encoder`, the word list (one per line, most frequent first) whose
            first `open_vocabulary_size` words are encoded as the open vocabulary.
        aliases_path: JSON or TSV mapping awkward labels to words (`T-shirt/top` -> `t-shirt`).
        oov_policy: "error" (default), "skip" or "random" for labels with no vector.
        open_vocabulary_size: also export the N most frequent words as a label set
            (with `text_encoder`: the first N words of `vocab_path`, encoded), bundled
            with the model as the apps' default vocabulary (`assets.extra/open_vocabulary/`).
        train_from_corpus: train skip-gram vectors on a text corpus instead of reading
            `vectors_path` (which must then be empty).
        text_encoder: a TF-Hub text-embedding handle or local SavedModel directory
            (USE, USE-multilingual, NNLM) that embeds each label's text instead of word
            vectors; excludes `vectors_path` and `train_from_corpus`.
        label_texts: CSV with columns ``label,text``, a description per label; the
            encoder embeds ``"<label>: <text>"`` (labels without a row: the label alone).
            Needs `text_encoder`.
        max_text_chars: label texts longer than this are truncated (counted, warned).
        text_batch_size: texts per call of the text encoder.
    """

    vectors_path: str = ""
    vectors_format: str = "auto"
    vocab_path: str = ""
    aliases_path: str = ""
    oov_policy: str = "error"
    open_vocabulary_size: int = 0
    train_from_corpus: CorpusTrainingConfig | None = None
    text_encoder: str = ""
    label_texts: str = ""
    max_text_chars: int = 2000
    text_batch_size: int = 128


@dataclasses.dataclass
class ModelConfig:
    """The DeViSE model: backbone, projection and loss.

    Args:
        backbone: TF-Hub handle or local SavedModel path of an image feature-vector
            model; empty means the pipeline pre-trains a small CNN with softmax.
        image_size: square input size the backbone expects.
        projection_normalize: unit-normalize the projected image vector before the
            dot product with the label vectors (the paper did not).
        projection_bias: a bias in the projection (False: the paper's linear map).
        feature_dropout: dropout rate in [0, 1) on the backbone features before the
            projection, in training only (0: no dropout layer).
        loss: "rank" (hinge rank loss, the paper's), "l2", "cosine", "cross_entropy"
            (softmax cross-entropy over the label scores / `temperature`, best with
            `projection_normalize`) or "softmax" (the baseline classifier).
        margin: hinge margin of the rank loss (the paper's 0.1). With unnormalized
            embeddings any margin is met by scaling the embedding up; with
            `projection_normalize` the scores are cosines and the margin is absolute.
        temperature: > 0, the divisor of the scores in the "cross_entropy" loss
            (0.05 suits cosine scores).
        negatives: "all" labels, "sampled" negatives, or the paper's "truncated" sum.
        num_negatives: negatives per example in "sampled" mode.
        top_k: labels returned by the serving signatures.
        cnn_filters: conv widths of the small CNN backbone the pipeline pre-trains.
        feature_dim: width of that CNN's pooled feature vector.
    """

    backbone: str = ""
    image_size: int = 32
    projection_normalize: bool = False
    projection_bias: bool = True
    feature_dropout: float = 0.0
    loss: str = "rank"
    margin: float = 0.1
    temperature: float = 0.05
    negatives: str = "all"
    num_negatives: int = 5
    top_k: int = 5
    cnn_filters: list[int] = dataclasses.field(default_factory=lambda: [32, 64, 128])
    feature_dim: int = 256


@dataclasses.dataclass
class TrainConfig:
    """Training schedule: softmax backbone, projection (frozen backbone), fine-tune.

    Args:
        batch_size: examples per step.
        backbone_epochs: softmax pre-training epochs of the small CNN.
        projection_epochs: epochs training only the projection (stage 2).
        finetune_epochs: epochs fine-tuning the top of the backbone (stage 3).
        finetune_variables: how many of the backbone's last variables are trainable in
            fine-tuning (-1: all of them).
        learning_rate: Adam learning rate for the backbone and the projection.
        finetune_learning_rate: Adam learning rate for fine-tuning.
        weight_decay: decoupled weight decay (AdamW, Loshchilov & Hutter, ICLR 2019) of
            every training stage when > 0; 0 trains with plain Adam.
        steps_per_epoch: cap on steps per epoch (None: one pass over the data).
        cache_images: keep decoded images in memory after the first epoch (for data
            sets that fit: N x image_size^2 x 12 bytes).
        cache_features: in the projection stage (backbone frozen) compute the backbone
            features of the train and eval splits once and train the projection on
            them (N x feature_dim x 4 bytes in memory); False runs the backbone per step.
        feature_augmentation: with `cache_features`, also cache the features of these
            copies of every TRAIN image ("flip": mirrored left-right, "crop": a centre
            crop resized back), with the image's targets; an epoch then passes over
            the originals and the copies. Eval features are never augmented.
        seed: random seed for initialisation, sampling and shuffling.
    """

    batch_size: int = 64
    backbone_epochs: int = 3
    projection_epochs: int = 3
    finetune_epochs: int = 1
    finetune_variables: int = 4
    learning_rate: float = 1e-3
    finetune_learning_rate: float = 1e-4
    weight_decay: float = 0.0
    steps_per_epoch: int | None = None
    cache_images: bool = False
    cache_features: bool = True
    feature_augmentation: list[str] = dataclasses.field(default_factory=list)
    seed: int = 0


@dataclasses.dataclass
class EvalConfig:
    """Evaluation and the blessing gate.

    Args:
        k_values: flat hit@k cut-offs.
        min_hit_at_1: lower bound on eval hit@1 for the blessing.
        min_hit_at_5: lower bound on eval hit@5 for the blessing.
        max_regression: allowed drop of hit@1 against the last blessed model.
        gzsl_calibration: when set, the zero-shot report also gives generalized
            zero-shot u/s/H after calibrated stacking with this gamma (subtracted from
            the seen labels' scores, in the model's score units; Chao et al., ECCV
            2016), beside the raw numbers. Choose it on a validation split whose
            classes are not the test's unseen classes
            (`devise_keras.zero_shot.choose_calibration`). None: not reported.
    """

    k_values: list[int] = dataclasses.field(default_factory=lambda: [1, 2, 5, 10, 20])
    min_hit_at_1: float = 0.0
    min_hit_at_5: float = 0.0
    max_regression: float = 0.01
    gzsl_calibration: float | None = None


@dataclasses.dataclass
class ServingConfig:
    """What the exported model and the apps accept.

    Args:
        max_image_pixels: an image with more pixels (width x height, read from its
            header before anything is decoded) is refused: InvalidArgument naming the
            limit and the batch index in the serving signatures, exit 2 in the CLI. A
            few-KB PNG can claim 20000 x 20000 pixels, 1.2 GB decoded; 16 MP is a
            4000 x 4000 photo.
    """

    max_image_pixels: int = 16_000_000


@dataclasses.dataclass
class DeviseConfig:
    """The whole configuration of one devise-keras run.

    Example:
    >>> cfg = DeviseConfig(model=ModelConfig(margin=0.2))
    >>> DeviseConfig.from_json(cfg.to_json()) == cfg
    True
    """

    pipeline_name: str = "devise"
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    embeddings: EmbeddingConfig = dataclasses.field(default_factory=EmbeddingConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    eval: EvalConfig = dataclasses.field(default_factory=EvalConfig)
    serving: ServingConfig = dataclasses.field(default_factory=ServingConfig)
    beam_pipeline_args: list[str] = dataclasses.field(default_factory=list)

    def __post_init__(self):
        validate(self)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeviseConfig:
        """The config of a dict; a bundle config.json's "provenance" object is ignored."""
        if isinstance(data, dict) and PROVENANCE_KEY in data:
            data = {k: v for k, v in data.items() if k != PROVENANCE_KEY}
        return _from_dict(cls, data, "config")

    @classmethod
    def from_json(cls, text: str) -> DeviseConfig:
        return cls.from_dict(json.loads(text))

    def save(self, path: str | Path) -> None:
        storage.write_text(os.fspath(path), self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | Path) -> DeviseConfig:
        return cls.from_json(storage.read_text(os.fspath(path)))

    def sections(self, *names: str) -> dict[str, Any]:
        """The named parts of the config, as a dict `from_dict` reads back (defaults elsewhere).

        A name is a section ("model") or one field of a section ("eval.k_values"). Each
        pipeline component gets only what it reads, so a change elsewhere (an Evaluator
        threshold) leaves its TFX cache key alone.

        Example:
        >>> DeviseConfig().sections("model.margin", "eval.k_values")
        {'model': {'margin': 0.1}, 'eval': {'k_values': [1, 2, 5, 10, 20]}}
        """
        full = self.to_dict()
        out: dict[str, Any] = {}
        for name in names:
            section, _, field = name.partition(".")
            if section not in full or (field and field not in (full[section] or {})):
                raise ConfigError(f"no config section or field {name!r}")
            if field:
                out.setdefault(section, {})[field] = full[section][field]
            else:
                out[section] = full[section]
        return out

    def replace(self, **sections: Any) -> DeviseConfig:
        return dataclasses.replace(self, **sections)


def validate(config: DeviseConfig) -> None:
    """Raises ConfigError naming the first value of the wrong type or out of range."""
    check_types(config)
    m, t, d, e = config.model, config.train, config.data, config.embeddings
    _check(m.loss in LOSSES, f"model.loss must be one of {LOSSES}, got {m.loss!r}")
    _check(
        m.negatives in NEGATIVE_MODES,
        f"model.negatives must be one of {NEGATIVE_MODES}, got {m.negatives!r}",
    )
    _check(m.margin > 0, f"model.margin must be > 0, got {m.margin}")
    _check(m.image_size > 0, f"model.image_size must be > 0, got {m.image_size}")
    _check(m.top_k >= 1, f"model.top_k must be >= 1, got {m.top_k}")
    _check(m.num_negatives >= 1, f"model.num_negatives must be >= 1, got {m.num_negatives}")
    _check(
        0.0 <= m.feature_dropout < 1.0,
        f"model.feature_dropout must be a number in [0, 1), got {m.feature_dropout!r}",
    )
    _check(
        m.temperature > 0,
        f"model.temperature must be a finite number > 0, got {m.temperature!r}",
    )
    _check(
        t.weight_decay >= 0,
        f"train.weight_decay must be a finite number >= 0, got {t.weight_decay!r}",
    )
    _validate_feature_augmentation(t.feature_augmentation)
    _check(
        not t.feature_augmentation or t.cache_features,
        f"train.feature_augmentation={list(t.feature_augmentation)} needs "
        "train.cache_features=True (the copies are cached backbone features)",
    )
    _check(t.batch_size >= 1, f"train.batch_size must be >= 1, got {t.batch_size}")
    for name in ("backbone_epochs", "projection_epochs", "finetune_epochs"):
        _check(getattr(t, name) >= 0, f"train.{name} must be >= 0, got {getattr(t, name)}")
    _check(
        0.0 < d.eval_fraction < 1.0,
        f"data.eval_fraction must be in (0, 1), got {d.eval_fraction}",
    )
    _check(d.num_unseen >= 0, f"data.num_unseen must be >= 0, got {d.num_unseen}")
    _check(d.max_image_pixels >= 1, f"data.max_image_pixels must be >= 1, got {d.max_image_pixels}")
    _check(d.min_image_side >= 1, f"data.min_image_side must be >= 1, got {d.min_image_side}")
    _check(
        0.0 <= d.unseen_fraction < 1.0,
        f"data.unseen_fraction must be in [0, 1), got {d.unseen_fraction}",
    )
    _check(
        not d.eval_style or bool(d.manifest),
        f"data.eval_style={d.eval_style!r} needs data.manifest (a CSV with a 'style' column)",
    )
    _check(
        e.oov_policy in OOV_POLICIES,
        f"embeddings.oov_policy must be one of {OOV_POLICIES}, got {e.oov_policy!r}",
    )
    if e.train_from_corpus is not None:
        _validate_corpus_training(e)
    _validate_text_encoder(e)
    _check(
        all(k >= 1 for k in config.eval.k_values),
        f"eval.k_values must be >= 1, got {config.eval.k_values}",
    )
    _validate_ranges(config)


def check_inputs(config: DeviseConfig) -> None:
    """Raises ConfigError unless the images the config names exist and are not empty.

    Run before any pipeline work (`devise-keras run` calls it before TFX is imported),
    so a mistyped folder is one line and exit 2, not a failed component a minute later.
    Paths on object stores are checked through the same `storage` calls.
    """
    d = config.data
    if d.manifest:
        if not storage.isfile(d.manifest):
            raise ConfigError(f"data.manifest: no such file: {d.manifest}")
        lines = [line for line in storage.read_text(d.manifest).splitlines() if line.strip()]
        if len(lines) < 2:
            raise ConfigError(
                f"data.manifest {d.manifest} lists no images (a header and at least one row "
                "'path,label[,split]')"
            )
        return
    if not d.image_dir:
        raise ConfigError("no images: set data.image_dir (class folders) or data.manifest (CSV)")
    if not storage.isdir(d.image_dir):
        raise ConfigError(f"data.image_dir: no such directory: {d.image_dir}")
    classes = [
        name
        for name in storage.listdir(d.image_dir)
        if not name.startswith(".") and storage.isdir(os.path.join(d.image_dir, name))
    ]
    if not classes:
        raise ConfigError(
            f"data.image_dir {d.image_dir} has no class folders; expected "
            "<image_dir>/<label>/<image>"
        )
    if not any(storage.listdir(os.path.join(d.image_dir, name)) for name in classes):
        raise ConfigError(f"data.image_dir {d.image_dir}: every class folder is empty")


def _validate_ranges(config: DeviseConfig) -> None:
    t, ev = config.train, config.eval
    for name in ("learning_rate", "finetune_learning_rate"):
        value = getattr(t, name)
        _check(value > 0, f"train.{name} must be > 0, got {value}")
    _check(
        t.steps_per_epoch is None or t.steps_per_epoch >= 1,
        f"train.steps_per_epoch must be >= 1 or null, got {t.steps_per_epoch}",
    )
    _check(
        t.finetune_variables >= -1,
        f"train.finetune_variables must be >= 0, or -1 for all, got {t.finetune_variables}",
    )
    for name in ("min_hit_at_1", "min_hit_at_5", "max_regression"):
        value = getattr(ev, name)
        _check(0.0 <= value <= 1.0, f"eval.{name} must be in [0, 1], got {value}")
    _check(
        config.serving.max_image_pixels >= 1,
        f"serving.max_image_pixels must be >= 1, got {config.serving.max_image_pixels}",
    )
    _check(
        config.model.feature_dim >= 1,
        f"model.feature_dim must be >= 1, got {config.model.feature_dim}",
    )
    _check(
        all(f >= 1 for f in config.model.cnn_filters),
        f"model.cnn_filters must be >= 1, got {config.model.cnn_filters}",
    )


def check_types(config: Any, where: str = "") -> None:
    """Raises ConfigError naming the first field whose value is not of its declared type.

    Checked on every construction (not only `from_dict`), so `ModelConfig(margin="0.1")`
    fails here, naming `model.margin`, instead of as a TypeError deep in training. Floats
    must be finite; an int is accepted for a float field, a bool for nothing but a bool.
    """
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        name = f"{where}.{field.name}" if where else field.name
        _check_value(hints[field.name], getattr(config, field.name), name)


def _check_value(hint: Any, value: Any, where: str) -> None:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, hint):
            raise ConfigError(f"{where} must be a {hint.__name__} section, got {value!r}")
        check_types(value, where)
        return
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return
        inner = [a for a in args if a is not type(None)]
        _check_value(inner[0], value, where)
        return
    if origin is list:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        for i, item in enumerate(value):
            _check_value(args[0], item, f"{where}[{i}]")
        return
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{where} must be a finite number, got {value!r}")
        return
    if hint in (int, str, bool) and (
        not isinstance(value, hint) or (hint is int and isinstance(value, bool))
    ):
        raise ConfigError(f"{where} must be {hint.__name__}, got {value!r}")


def _validate_feature_augmentation(kinds: Any) -> None:
    where = "train.feature_augmentation"
    _check(isinstance(kinds, list | tuple), f"{where} must be a list, got {kinds!r}")
    for kind in kinds:
        _check(
            kind in FEATURE_AUGMENTATIONS,
            f"{where} entries must be among {FEATURE_AUGMENTATIONS}, got {kind!r}",
        )
    _check(len(set(kinds)) == len(kinds), f"{where} has duplicates: {list(kinds)}")


def _validate_corpus_training(e: EmbeddingConfig) -> None:
    _check(
        not e.vectors_path,
        "embeddings.vectors_path and embeddings.train_from_corpus are both set; "
        "keep one (the trained vectors replace the file)",
    )
    validate_corpus_training(e.train_from_corpus)


def validate_corpus_training(
    c: CorpusTrainingConfig,
    where: str = "embeddings.train_from_corpus",
    fields: Collection[str] | None = None,
) -> None:
    """Raises ConfigError naming the first skip-gram setting of the wrong type or out of range.

    The one range check of these settings: the config, CorpusGen and SkipGramTrainer
    (which each read only some of them) all call it.

    Args:
        c: the settings.
        where: prefix of the field names in the message ("" for bare names).
        fields: check only these fields (a component's own); None checks all.

    Example:
    >>> validate_corpus_training(CorpusTrainingConfig(dim=0), "", fields=["dim"])
    Traceback (most recent call last):
    ...
    devise_keras.config.ConfigError: dim must be >= 1, got 0
    """
    check_types(c, where)
    wanted = set(fields) if fields is not None else {f.name for f in dataclasses.fields(c)}

    def name(field: str) -> str:
        return f"{where}.{field}" if where else field

    if "corpus_paths" in wanted:
        _check(
            bool(c.corpus_paths),
            f"{name('corpus_paths')} is empty: name text files or glob patterns",
        )
    if "document_per" in wanted:
        _check(
            c.document_per in DOCUMENT_PER,
            f"{name('document_per')} must be one of {DOCUMENT_PER}, got {c.document_per!r}",
        )
    for field in ("min_count", "window", "dim", "negatives", "epochs", "batch_size"):
        if field in wanted:
            value = getattr(c, field)
            _check(value >= 1, f"{name(field)} must be >= 1, got {value}")
    if "sample" in wanted:
        _check(c.sample >= 0, f"{name('sample')} must be >= 0, got {c.sample}")
    if wanted & {"learning_rate", "min_learning_rate"}:
        _check(
            0 < c.min_learning_rate <= c.learning_rate,
            f"{where + ' ' if where else ''}needs 0 < min_learning_rate <= learning_rate, got "
            f"{c.min_learning_rate} and {c.learning_rate}",
        )
    if "num_shards" in wanted:
        _check(c.num_shards >= 0, f"{name('num_shards')} must be >= 0, got {c.num_shards}")


def _validate_text_encoder(e: EmbeddingConfig) -> None:
    _check(
        not (e.text_encoder and e.vectors_path),
        "embeddings.text_encoder and embeddings.vectors_path are both set; keep one "
        "(text_encoder embeds the label texts, vectors_path reads word vectors)",
    )
    _check(
        not (e.text_encoder and e.train_from_corpus is not None),
        "embeddings.text_encoder and embeddings.train_from_corpus are both set; keep one "
        "(text_encoder embeds the label texts, train_from_corpus trains word vectors)",
    )
    _check(
        not e.label_texts or bool(e.text_encoder),
        "embeddings.label_texts needs embeddings.text_encoder (only a text encoder reads "
        "label descriptions); set text_encoder or clear label_texts",
    )
    _check(
        not (e.text_encoder and e.open_vocabulary_size > 0 and not e.vocab_path),
        "embeddings.open_vocabulary_size > 0 with embeddings.text_encoder needs "
        "embeddings.vocab_path: a word list (one word per line, most frequent first) whose "
        "first open_vocabulary_size words the encoder embeds; or set open_vocabulary_size to 0",
    )
    for name in ("max_text_chars", "text_batch_size"):
        value = getattr(e, name)
        _check(value >= 1, f"embeddings.{name} must be >= 1, got {value}")


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _from_dict(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a JSON object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {unknown}; known: {sorted(names)}")
    kwargs = {name: _coerce(hints[name], value, f"{where}.{name}") for name, value in data.items()}
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return _from_dict(hint, value, where)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, where)
    if origin is list:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        return [_coerce(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint is float:
        raise ConfigError(f"{where} must be a number, got {value!r}")
    if hint in (int, str, bool) and not (
        isinstance(value, hint) and not (hint is int and isinstance(value, bool))
    ):
        raise ConfigError(f"{where} must be {hint.__name__}, got {value!r}")
    return value
