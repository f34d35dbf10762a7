"""ImageExampleGen: a Beam TFX component turning labelled images into split tf.Examples."""

from __future__ import annotations

import dataclasses
import json

from tfx import types
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from components.image_example_gen import executor
from components.image_example_gen.driver import ImageExampleGenDriver
from components.input_fingerprint import INPUT_FINGERPRINT_KEY
from devise_keras.config import DataConfig


class ImageExampleGenSpec(ComponentSpec):
    """ImageExampleGen component spec (parameters named as DataConfig's fields)."""

    PARAMETERS = {
        executor.IMAGE_DIR_KEY: ExecutionParameter(type=str, optional=True),
        executor.MANIFEST_KEY: ExecutionParameter(type=str, optional=True),
        executor.EVAL_FRACTION_KEY: ExecutionParameter(type=float),
        # JSON list of class names.
        executor.UNSEEN_CLASSES_KEY: ExecutionParameter(type=str, optional=True),
        executor.NUM_UNSEEN_KEY: ExecutionParameter(type=int),
        executor.SPLIT_SEED_KEY: ExecutionParameter(type=int),
        executor.MAX_IMAGES_PER_CLASS_KEY: ExecutionParameter(type=int, optional=True),
        executor.IMAGE_SIZE_KEY: ExecutionParameter(type=int, optional=True),
        executor.MAX_IMAGE_PIXELS_KEY: ExecutionParameter(type=int),
        executor.MIN_IMAGE_SIDE_KEY: ExecutionParameter(type=int),
        executor.UNSEEN_FRACTION_KEY: ExecutionParameter(type=float, optional=True),
        executor.EVAL_STYLE_KEY: ExecutionParameter(type=str, optional=True),
        # Filled by ImageExampleGenDriver when the component runs (covered by the cache key).
        INPUT_FINGERPRINT_KEY: ExecutionParameter(type=str, optional=True),
    }
    INPUTS = {}
    OUTPUTS = {executor.EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples)}


class ImageExampleGen(base_beam_component.BaseBeamComponent):
    """Reads labelled images into train/eval/unseen tf.Examples for DeViSE (one Beam job).

    DeViSE (Frome et al., "DeViSE: A Deep Visual-Semantic Embedding Model", NIPS 2013)
    is evaluated zero-shot on classes held out of training; this component makes that
    hold-out explicit and reproducible. Whole classes go to the "unseen" split; the
    seen classes' images are split into "train" and "eval" by a stable hash of their
    relative path, so a re-run gives the same records and adding images never moves
    old ones between splits. Every image is fully decoded in the job; unreadable,
    empty, unknown-format or undecodable files are skipped, counted and listed.

    Output `examples` (standard `Examples`, split_names ["train", "eval", "unseen"]):
    - `Split-<split>/data_tfrecord-*.gz`: gzipped TFRecords of tf.Examples with the keys
      of `devise_keras.features` (encoded image bytes, label text, label id in the
      vocabulary sorted(seen) + sorted(unseen), relative file name).
    - `class_split.json`: {"classes": vocabulary, "seen": [...], "unseen": [...],
      "eval_style", "styles", "split_seed"}.
    - `skipped_images.csv`: `path,reason` for every skipped file (reasons:
      unreadable, empty_file, unknown_format, undecodable).
    - `report.json`: counts per split and per class (listed, capped, skipped, written).
    - custom properties num_classes, num_seen_classes, num_unseen_classes,
      num_examples, num_skipped.

    Args:
        image_dir: root of the ImageNet layout `<image_dir>/<label>/<image>`.
        manifest: CSV `path,label[,split]`, or with a header naming its columns
            (`path,label,split,style,category`), used instead of `image_dir`; relative
            paths are resolved against the CSV's folder, and a split of
            train/eval/unseen overrides the hash split.
        eval_fraction: share of each seen class's images that go to "eval".
        unseen_classes: class names held out for zero-shot evaluation (must exist).
        num_unseen: when `unseen_classes` is empty, hold out this many classes, chosen
            deterministically with `split_seed`.
        split_seed: seed of the unseen-class choice, the split hash and the cap.
        max_images_per_class: keep at most this many images per class (the ones with
            the smallest stable hash; counted before bad files are skipped).
        image_size: re-encode every image as a PNG of this square size; None keeps
            the original bytes (images TensorFlow cannot decode faithfully, such as
            CMYK JPEG or WebP, are re-encoded as PNG either way).
        max_image_pixels: skip (and report as "too_large") images with more pixels,
            checked from the header before decoding.
        min_image_side: skip (and report as "too_small") images narrower or lower.
        unseen_fraction: when > 0, hold out this fraction of the classes (rounded,
            at least one) instead of `num_unseen`.
        eval_style: with a manifest `style` column, the seen images of this style are
            the "eval" split and the other styles "train" (instead of the hash split).

    Example:
    ```python
    gen = ImageExampleGen(image_dir="/data/fashion_mnist/images", num_unseen=2)
    gen = gen.with_beam_pipeline_args(["--direct_num_workers=2"])
    statistics = StatisticsGen(examples=gen.outputs["examples"])
    ```
    """

    SPEC_CLASS = ImageExampleGenSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)
    DRIVER_CLASS = ImageExampleGenDriver

    def __init__(
        self,
        image_dir: str = "",
        manifest: str = "",
        eval_fraction: float = 0.2,
        unseen_classes: list[str] | None = None,
        num_unseen: int = 2,
        split_seed: int = 0,
        max_images_per_class: int | None = None,
        image_size: int | None = None,
        max_image_pixels: int = 40_000_000,
        min_image_side: int = 8,
        unseen_fraction: float = 0.0,
        eval_style: str = "",
    ):
        if not image_dir and not manifest:
            raise ValueError("ImageExampleGen needs image_dir or manifest; both are empty")
        if image_dir and manifest:
            raise ValueError(
                f"ImageExampleGen takes image_dir or manifest, not both (got {image_dir!r} "
                f"and {manifest!r})"
            )
        if not 0.0 < eval_fraction < 1.0:
            raise ValueError(f"eval_fraction must be in (0, 1), got {eval_fraction}")
        if not 0.0 <= unseen_fraction < 1.0:
            raise ValueError(f"unseen_fraction must be in [0, 1), got {unseen_fraction}")
        if eval_style and not manifest:
            raise ValueError("eval_style needs a manifest with a 'style' column")
        if isinstance(unseen_classes, str):
            raise ValueError(f"unseen_classes must be a list of names, got {unseen_classes!r}")
        spec = ImageExampleGenSpec(
            image_dir=image_dir or None,
            manifest=manifest or None,
            eval_fraction=float(eval_fraction),
            unseen_classes=json.dumps(list(unseen_classes)) if unseen_classes else None,
            num_unseen=int(num_unseen),
            split_seed=int(split_seed),
            max_images_per_class=max_images_per_class,
            image_size=image_size,
            max_image_pixels=int(max_image_pixels),
            min_image_side=int(min_image_side),
            unseen_fraction=float(unseen_fraction) or None,
            eval_style=eval_style or None,
            examples=types.Channel(type=standard_artifacts.Examples),
        )
        super().__init__(spec=spec)

    @classmethod
    def from_data_config(cls, data: DataConfig) -> ImageExampleGen:
        """The component configured by a `DataConfig` (same field names)."""
        return cls(**dataclasses.asdict(data))
