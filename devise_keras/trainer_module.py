"""TFX Trainer modules: `backbone_run_fn` (softmax CNN) and `run_fn` (DeViSE).

The paper's three steps (Frome et al., 2013, section 3): a visual model pre-trained with
softmax, a linear projection into the word-vector space trained with the hinge rank
loss while the visual model is frozen, then fine-tuning of the top of the visual model.
Both functions take a TFX `FnArgs`; `custom_config["config"]` holds the sections of a
`DeviseConfig` the trainer reads (`DeviseConfig.sections`), so one typed config drives
every stage, and those sections are written beside each model.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from devise_keras import feature_cache, features, input_pipeline
from devise_keras.app_bundle import (
    CONFIG_FILENAME,
    METRICS_FILENAME,
    MODEL_KERAS_FILENAME,
    SOFTMAX_DIRNAME,
    portable_config,
    write_app_bundle,
)
from devise_keras.config import DeviseConfig
from devise_keras.export import export_serving_model
from devise_keras.hub_backbone import HubBackbone
from devise_keras.hub_export import export_hub_feature_vector
from devise_keras.label_embeddings import LabelEmbeddings
from devise_keras.model import (
    build_devise_model,
    build_small_cnn,
    build_softmax_model,
    compile_devise_model,
    hit_at_k_metrics,
    make_optimizer,
)
from devise_keras.text_encoder import TextEncoder, load_text_encoder

log = logging.getLogger(__name__)

# Custom-config keys the DeviseTrainer executor fills in from its input artifacts.
LABEL_EMBEDDINGS_URI_KEY = "label_embeddings_uri"
OPEN_VOCABULARY_URI_KEY = "open_vocabulary_uri"  # only when the channel is wired
CONFIG_KEY = "config"


def config_from_fn_args(fn_args: Any) -> DeviseConfig:
    custom = fn_args.custom_config or {}
    if CONFIG_KEY not in custom:
        raise ValueError(
            f"custom_config has no {CONFIG_KEY!r} entry: pass DeviseConfig.to_dict() "
            "as custom_config={'config': ...}"
        )
    return DeviseConfig.from_dict(custom[CONFIG_KEY])


def examples_root(file_pattern: str) -> str:
    """`<examples uri>` from a TFX split file pattern `<uri>/Split-train/*`."""
    return os.path.dirname(os.path.dirname(file_pattern.rstrip("/")))


def read_class_split(file_pattern: str) -> dict[str, list[str]]:
    return features.read_class_split(examples_root(file_pattern), "the Trainer")


class NonFiniteLossError(FloatingPointError):
    """Training diverged: the loss became NaN or infinite."""


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops training with `NonFiniteLossError` naming the stage, epoch and batch.

    Keras's `TerminateOnNaN` only stops quietly; a diverged stage must fail its
    Trainer run (so nothing is exported or pushed) and say where it diverged.

    Args:
        stage: the training stage, for the message ("projection", "finetune", ...).
    """

    def __init__(self, stage: str):
        super().__init__()
        self.stage = stage
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise NonFiniteLossError(
                f"training stage {self.stage!r} diverged: the loss became {float(loss)} at "
                f"epoch {self._epoch + 1}, batch {batch + 1}; lower the learning rate "
                "(train.learning_rate / train.finetune_learning_rate) or check the inputs"
            )


def tensorboard_installed() -> bool:
    """True when TensorBoard's summary ops exist: TensorFlow >= 2.20 no longer installs it
    (the pipeline's TensorFlow 2.16 does), and Keras' TensorBoard callback then fails."""
    return importlib.util.find_spec("tensorboard") is not None


def fit_stage(model: keras.Model, data: tuple, epochs: int, model_run_dir: str, stage: str):
    """Fits one training stage with resumable checkpoints, and TensorBoard logs when
    TensorBoard is installed (`tensorboard_installed`).

    `data` is (train, eval, steps per epoch, eval steps), repeated datasets.
    """
    train, evaluation, steps, eval_steps = data
    logs = os.path.join(model_run_dir, "logs", stage)
    tensorboard = [keras.callbacks.TensorBoard(log_dir=logs)] if tensorboard_installed() else []
    return model.fit(
        train,
        epochs=epochs,
        steps_per_epoch=steps,
        validation_data=evaluation,
        validation_steps=eval_steps,
        callbacks=[
            StopOnNonFiniteLoss(stage),
            *tensorboard,
            # Resume an interrupted run at the last finished epoch of this stage.
            keras.callbacks.BackupAndRestore(os.path.join(model_run_dir, "backup", stage)),
        ],
        verbose=2,
    )


def split_size(file_patterns: list[str], split: str) -> int:
    """Records in a split: from ImageExampleGen's report, else by counting them."""
    count = features.split_record_count(examples_root(file_patterns[0]), split)
    return input_pipeline.count_records(file_patterns) if count is None else count


def _datasets(fn_args, config: DeviseConfig, num_labels: int, label_vectors=None):
    batch = config.train.batch_size
    common = dict(
        image_size=config.model.image_size,
        batch_size=batch,
        num_labels=num_labels,
        label_vectors=label_vectors,
        cache=config.train.cache_images,
    )
    num_train = split_size(fn_args.train_files, "train")
    if num_train == 0:
        raise ValueError("the train split has no records")
    num_eval = split_size(fn_args.eval_files, "eval")
    if num_eval == 0:
        raise ValueError(
            "the eval split has no records: raise data.eval_fraction or add images, so "
            "the trained model can be evaluated"
        )
    steps = config.train.steps_per_epoch or max(1, -(-num_train // batch))
    train = input_pipeline.make_dataset(
        fn_args.train_files,
        shuffle=True,
        repeat=True,
        seed=config.train.seed,
        num_records=num_train,
        **common,
    )
    # Repeated with exact steps: Keras never runs out of data mid-validation.
    evaluation = input_pipeline.make_dataset(fn_args.eval_files, repeat=True, **common)
    return train, evaluation, steps, -(-num_eval // batch)


def _write_json(path: str | Path, payload: Any) -> None:
    tf.io.gfile.makedirs(os.path.dirname(str(path)))
    with tf.io.gfile.GFile(str(path), "w") as f:
        f.write(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def _metric_values(model: keras.Model, data: tuple) -> dict[str, float]:
    _, evaluation, _, eval_steps = data
    values = model.evaluate(evaluation, steps=eval_steps, return_dict=True, verbose=0)
    return {k.removeprefix("scores_"): float(v) for k, v in values.items()}


def backbone_run_fn(fn_args: Any) -> None:
    """Pre-trains the small CNN with softmax on the seen classes (the paper's step 1).

    Writes the feature extractor as a TF-Hub-style feature-vector SavedModel to
    `serving_model_dir` (so the DeViSE trainer loads it like any TF-Hub handle), and
    the classifier (the softmax baseline) to `<model uri>/softmax/`.
    """
    config = config_from_fn_args(fn_args)
    keras.utils.set_random_seed(config.train.seed)
    seen = read_class_split(fn_args.train_files[0])["seen"]
    size = config.model.image_size
    cnn = build_small_cnn(
        size, filters=config.model.cnn_filters, feature_dim=config.model.feature_dim
    )
    model = build_softmax_model(cnn, len(seen), image_size=size)
    compile_softmax(model, config, len(seen))
    data = _datasets(fn_args, config, len(seen))
    fit_stage(model, data, config.train.backbone_epochs, fn_args.model_run_dir, "backbone")
    export_hub_feature_vector(cnn, fn_args.serving_model_dir, size)
    softmax_dir = os.path.join(os.path.dirname(fn_args.serving_model_dir), SOFTMAX_DIRNAME)
    tf.io.gfile.makedirs(softmax_dir)
    model.save(os.path.join(softmax_dir, MODEL_KERAS_FILENAME))
    export_serving_model(
        model,
        seen,
        os.path.join(softmax_dir, "serving"),
        image_size=size,
        top_k=config.model.top_k,
        max_image_pixels=config.serving.max_image_pixels,
    )
    metrics = _metric_values(model, data)
    _write_json(os.path.join(softmax_dir, METRICS_FILENAME), metrics)
    config_written = portable_config(fn_args.custom_config[CONFIG_KEY])  # no machine paths
    _write_json(os.path.join(softmax_dir, CONFIG_FILENAME), config_written)
    log.info("softmax backbone eval metrics: %s", metrics)


def compile_softmax(model: keras.Model, config: DeviseConfig, num_labels: int) -> None:
    """Compiles a softmax classifier (`build_softmax_model` or its feature head)."""
    model.compile(
        optimizer=make_optimizer(config.train.learning_rate, config.train.weight_decay),
        loss={"scores": keras.losses.SparseCategoricalCrossentropy()},
        metrics={"scores": hit_at_k_metrics(config.eval.k_values, num_labels)},
    )


def build_devise_from_config(backbone, label_vectors, config: DeviseConfig) -> keras.Model:
    """`build_devise_model` with every model option of the config (the one construction path).

    Args:
        backbone: the image feature extractor (e.g. a frozen `HubBackbone`).
        label_vectors: (L, D) vectors of the labels the model scores.
        config: reads `model.image_size`, `projection_normalize`, `projection_bias` and
            `feature_dropout`.

    Example:
        >>> from devise_keras.config import ModelConfig
        >>> config = DeviseConfig(model=ModelConfig(image_size=8, feature_dropout=0.5))
        >>> model = build_devise_from_config(
        ...     build_small_cnn(8, filters=(4,), feature_dim=6), np.eye(3, 5), config)
        >>> model.get_layer("feature_dropout").rate
        0.5
    """
    m = config.model
    return build_devise_model(
        backbone,
        label_vectors,
        image_size=m.image_size,
        normalize_projection=m.projection_normalize,
        projection_bias=m.projection_bias,
        feature_dropout=m.feature_dropout,
    )


def resolve_backbone_handle(config: DeviseConfig, base_model: str | None) -> str:
    if config.model.backbone:
        return config.model.backbone
    if base_model:
        return base_model
    raise ValueError(
        "no backbone: set model.backbone to a TF-Hub handle or SavedModel path, or wire the "
        "backbone Trainer's model into the DeviseTrainer's base_model"
    )


def label_text_encoder(embeddings: LabelEmbeddings) -> TextEncoder | None:
    """The text encoder the label vectors came from (metadata "text_encoder"), or None."""
    handle = embeddings.metadata.get("text_encoder")
    return load_text_encoder(handle) if handle else None


def _finite_dataset(files, config: DeviseConfig, num_labels: int, label_vectors):
    return input_pipeline.make_dataset(
        files,
        image_size=config.model.image_size,
        batch_size=config.train.batch_size,
        num_labels=num_labels,
        label_vectors=label_vectors,
    )


def cached_feature_data(
    model: keras.Model,
    backbone: keras.layers.Layer,
    train_images: tf.data.Dataset,
    eval_images: tf.data.Dataset,
    config: DeviseConfig,
    sizes: tuple[int | None, int | None] = (None, None),
) -> tuple:
    """(train, eval, steps, eval steps) of backbone features: the backbone runs once
    per image (and once per `train.feature_augmentation` copy of a train image).

    `train_images` and `eval_images` are finite, unshuffled image batches; the cached
    train features (originals, then each augmented copy with the same targets) are
    reshuffled every epoch. `sizes` (their record counts, when known) gives the
    progress bars their totals.
    """
    extractor = feature_cache.feature_extractor(model, backbone)
    batch = config.train.batch_size
    totals = [None if n is None else -(-n // batch) for n in sizes]
    train_x, train_y = feature_cache.compute_features(
        extractor, train_images, total=totals[0], description="train features"
    )
    chunks, target_chunks = [train_x], [train_y]
    for kind in config.train.feature_augmentation:
        augmented = train_images.map(
            lambda images, targets, kind=kind: (
                feature_cache.augment_images(images, kind),
                targets,
            )
        )
        x, y = feature_cache.compute_features(
            extractor, augmented, total=totals[0], description=f"train features ({kind})"
        )
        chunks.append(x)
        target_chunks.append(y)
    if len(chunks) > 1:
        train_x = np.concatenate(chunks)
        train_y = {key: np.concatenate([y[key] for y in target_chunks]) for key in train_y}
    eval_x, eval_y = feature_cache.compute_features(
        extractor, eval_images, total=totals[1], description="eval features"
    )
    log.info(
        "backbone features computed once: %d train (%d originals and %s copies) and %d "
        "eval images, %d floats each",
        len(train_x),
        len(chunks[0]),
        list(config.train.feature_augmentation) or "no",
        len(eval_x),
        train_x.shape[1],
    )
    return feature_fit_data(train_x, train_y, eval_x, eval_y, config)


def feature_fit_data(train_x, train_y: dict, eval_x, eval_y: dict, config: DeviseConfig) -> tuple:
    """(train, eval, steps, eval steps) for `fit_stage` from cached features and targets.

    The train features are reshuffled every epoch; both datasets repeat, with exact
    step counts, as `_datasets` does for images.
    """
    batch = config.train.batch_size
    steps = config.train.steps_per_epoch or max(1, -(-len(train_x) // batch))
    train = feature_cache.feature_dataset(
        train_x, train_y, batch_size=batch, shuffle=True, repeat=True, seed=config.train.seed
    )
    evaluation = feature_cache.feature_dataset(eval_x, eval_y, batch_size=batch, repeat=True)
    return train, evaluation, steps, -(-len(eval_x) // batch)


def fit_projection(
    model: keras.Model,
    backbone: keras.layers.Layer,
    fn_args: Any,
    config: DeviseConfig,
    seen: LabelEmbeddings,
) -> tuple[keras.Model, tuple]:
    """Stage 2 of the paper: only the projection learns, the backbone is frozen.

    With `train.cache_features` the backbone runs once per train and eval image and
    the projection head (sharing the full model's layers) trains on those features.
    Returns the model that was fitted and its data (train, eval, steps, eval steps).
    """
    if not config.train.cache_features:
        data = _datasets(fn_args, config, len(seen), seen.vectors)
        compile_devise_model(model, config)
        fit_stage(model, data, config.train.projection_epochs, fn_args.model_run_dir, "projection")
        return model, data
    data = cached_feature_data(
        model,
        backbone,
        _finite_dataset(fn_args.train_files, config, len(seen), seen.vectors),
        _finite_dataset(fn_args.eval_files, config, len(seen), seen.vectors),
        config,
        sizes=(split_size(fn_args.train_files, "train"), split_size(fn_args.eval_files, "eval")),
    )
    head = feature_cache.build_projection_head(model)
    compile_devise_model(head, config)
    fit_stage(head, data, config.train.projection_epochs, fn_args.model_run_dir, "projection")
    return head, data


def run_fn(fn_args: Any) -> None:
    """Trains DeViSE: projection with the backbone frozen, then fine-tuning; exports it."""
    config = config_from_fn_args(fn_args)
    keras.utils.set_random_seed(config.train.seed)
    split = read_class_split(fn_args.train_files[0])
    embeddings = LabelEmbeddings.load(fn_args.custom_config[LABEL_EMBEDDINGS_URI_KEY])
    # Read before training, so a bad artifact fails in seconds, not after the fit.
    vocabulary_uri = fn_args.custom_config.get(OPEN_VOCABULARY_URI_KEY)
    open_vocabulary = LabelEmbeddings.load(vocabulary_uri) if vocabulary_uri else None
    missing = [label for label in split["seen"] if label not in embeddings.labels]
    if missing:
        raise ValueError(
            f"seen classes without a label vector: {missing}. Every trained class needs one: "
            "add them to the alias file or use embeddings.oov_policy='random'"
        )
    seen = embeddings.subset(split["seen"])
    size = config.model.image_size

    backbone = HubBackbone(resolve_backbone_handle(config, fn_args.base_model), trainable=False)
    model = build_devise_from_config(backbone, seen.vectors, config)
    evaluated, evaluation = model, None
    if config.train.projection_epochs > 0:
        evaluated, evaluation = fit_projection(model, backbone, fn_args, config, seen)
    # Stage 3: fine-tune the top of the backbone with a smaller learning rate (its
    # BatchNorm statistics stay frozen: HubBackbone.freeze_batch_norm).
    if config.train.finetune_epochs > 0 or evaluation is None:
        data = _datasets(fn_args, config, len(seen), seen.vectors)
        evaluated, evaluation = model, data
    if config.train.finetune_epochs > 0:
        backbone.trainable = True
        backbone.set_trainable_tail(config.train.finetune_variables)
        compile_devise_model(model, config, learning_rate=config.train.finetune_learning_rate)
        fit_stage(model, data, config.train.finetune_epochs, fn_args.model_run_dir, "finetune")
    if evaluated is model and not model.compiled:
        compile_devise_model(model, config)

    # Every class (seen + unseen) for "zero_shot"; the encoder for request-time labels.
    encoder = label_text_encoder(embeddings)
    export_serving_model(
        model,
        seen.labels,
        fn_args.serving_model_dir,
        image_size=size,
        top_k=config.model.top_k,
        all_labels=embeddings.labels,
        all_label_vectors=embeddings.vectors,
        text_encoder=encoder,
        max_image_pixels=config.serving.max_image_pixels,
    )
    write_app_bundle(
        fn_args.serving_model_dir,
        model,
        fn_args.custom_config[CONFIG_KEY],
        embeddings,
        text_encoder=encoder,
        open_vocabulary=open_vocabulary,
    )
    metrics = _metric_values(evaluated, evaluation)
    _write_json(os.path.join(fn_args.model_run_dir, METRICS_FILENAME), metrics)
    log.info("DeViSE eval metrics: %s", metrics)
