"""ImageExampleGen executor: one Beam job from an image folder or CSV manifest to Examples.

The driver-side work is small and bounded by the number of classes: list the class
folders (or scan the manifest for its labels), choose the unseen classes, and after
the job turn the per-class counts into the report and the failure checks. Everything
per image (listing files, hashing, capping, reading, checking, encoding, writing)
happens in the Beam job (`transforms.py`).
"""

from __future__ import annotations

import json
import os
from typing import Any

import tensorflow as tf
from absl import logging
from tfx import types
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_executor
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils

from components.image_example_gen import transforms
from devise_keras import class_split, features
from devise_keras.config import DataConfig

# Execution property and output keys; the names are DataConfig's field names.
IMAGE_DIR_KEY = "image_dir"
MANIFEST_KEY = "manifest"
EVAL_FRACTION_KEY = "eval_fraction"
UNSEEN_CLASSES_KEY = "unseen_classes"
NUM_UNSEEN_KEY = "num_unseen"
SPLIT_SEED_KEY = "split_seed"
MAX_IMAGES_PER_CLASS_KEY = "max_images_per_class"
IMAGE_SIZE_KEY = "image_size"
MAX_IMAGE_PIXELS_KEY = "max_image_pixels"
MIN_IMAGE_SIDE_KEY = "min_image_side"
UNSEEN_FRACTION_KEY = "unseen_fraction"
EVAL_STYLE_KEY = "eval_style"
EXAMPLES_KEY = "examples"

_COUNTS_FILE = "_counts.json"  # Beam -> driver hand-over, deleted after the job


class ImageExampleGenError(ValueError):
    """The images or parameters cannot give a usable train/eval/unseen split."""


def list_classes(image_dir: str) -> list[str]:
    """Sorted class folder names directly under `image_dir` (hidden folders ignored)."""
    classes = sorted(
        name.rstrip("/")
        for name in tf.io.gfile.listdir(image_dir)
        if not name.startswith(".") and tf.io.gfile.isdir(os.path.join(image_dir, name))
    )
    if not classes:
        raise ImageExampleGenError(
            f"image_dir {image_dir!r} has no class folders; expected the ImageNet layout "
            "<image_dir>/<label>/<image>"
        )
    return classes


def scan_manifest(manifest: str) -> tuple[list[str], set[str], set[str], set[str]]:
    """Reads the manifest's labels and styles only: (sorted labels, labels with rows
    marked "unseen", labels with rows marked "train"/"eval", styles).

    Memory grows with the number of classes and styles, not rows. Raises ValueError
    naming the first malformed line.
    """
    labels: set[str] = set()
    marked_unseen: set[str] = set()
    marked_seen: set[str] = set()
    styles: set[str] = set()
    columns = transforms.read_manifest_columns(manifest)
    with tf.io.gfile.GFile(manifest, "r") as f:
        for number, line in enumerate(f, start=1):
            ref = transforms.parse_manifest_line(line, number, columns)
            if ref is None:
                continue
            labels.add(ref.label)
            styles.add(ref.style)
            if ref.split == "unseen":
                marked_unseen.add(ref.label)
            elif ref.split:
                marked_seen.add(ref.label)
    if not labels:
        raise ImageExampleGenError(f"manifest {manifest!r} lists no images")
    return sorted(labels), marked_unseen, marked_seen, styles - {""}


def check_eval_style(eval_style: str, styles: set[str], source: str) -> None:
    """Raises ImageExampleGenError unless `eval_style` is one of the manifest's styles."""
    if not eval_style:
        return
    if not styles:
        raise ImageExampleGenError(
            f"eval_style={eval_style!r} needs a manifest with a header naming a 'style' "
            f"column (e.g. path,label,split,style,category); {source} has none"
        )
    if eval_style not in styles:
        raise ImageExampleGenError(
            f"eval_style={eval_style!r} is not a style of {source}; its styles: {sorted(styles)}"
        )
    if len(styles) < 2:
        raise ImageExampleGenError(
            f"eval_style={eval_style!r} is the only style of {source}: nothing is left to train on"
        )


def build_report(
    counts: list[list[Any]], seen: list[str], unseen: list[str], parameters: dict[str, Any]
) -> dict[str, Any]:
    """Turns the job's [[kind, label, detail, n], ...] counts into report.json's content."""
    vocabulary = seen + unseen
    classes = {
        label: {
            "label_id": i,
            "role": "seen" if i < len(seen) else "unseen",
            "listed": 0,
            "capped": 0,
            "skipped": 0,
            **{split: 0 for split in features.SPLITS},
        }
        for i, label in enumerate(vocabulary)
    }
    by_reason = {reason: 0 for reason in transforms.SKIP_REASONS}
    for kind, label, detail, n in counts:
        entry = classes[label]
        if kind == "listed":
            entry["listed"] += n
        elif kind == "written":
            entry[detail] += n
        elif kind == "skipped":
            entry["skipped"] += n
            by_reason[detail] += n
    for entry in classes.values():
        used = entry["skipped"] + sum(entry[s] for s in features.SPLITS)
        entry["capped"] = entry["listed"] - used
    splits = {s: sum(c[s] for c in classes.values()) for s in features.SPLITS}
    return {
        "parameters": parameters,
        "num_classes": len(vocabulary),
        "seen": seen,
        "unseen": unseen,
        "splits": splits,
        "listed": sum(c["listed"] for c in classes.values()),
        "written": sum(splits.values()),
        "capped": sum(c["capped"] for c in classes.values()),
        "skipped": {"total": sum(by_reason.values()), "by_reason": by_reason},
        "classes": classes,
    }


def check_report(report: dict[str, Any], skip_report_path: str) -> None:
    """Raises ImageExampleGenError when the Examples cannot train and evaluate DeViSE."""
    skipped = report["skipped"]
    if report["written"] == 0:
        if report["listed"] == 0:
            raise ImageExampleGenError("no files found: every class folder/manifest is empty")
        raise ImageExampleGenError(
            f"no usable image: all {report['listed']} files were skipped "
            f"({_reasons(skipped['by_reason'])}); see {skip_report_path}"
        )
    problems = []
    classes = report["classes"]
    empty_unseen = [c for c in report["unseen"] if classes[c]["unseen"] == 0]
    if empty_unseen:
        problems.append(
            f"unseen class(es) {class_split.short_name_list(empty_unseen)} have no usable image: add images "
            "or drop them from unseen_classes"
        )
    no_train = [c for c in report["seen"] if classes[c]["train"] == 0]
    if no_train:
        details = ", ".join(
            f"{c!r} ({classes[c]['listed']} files, {classes[c]['skipped']} skipped, "
            f"{classes[c]['eval']} in eval)"
            for c in no_train[: class_split.MAX_NAMES_IN_MESSAGE]
        )
        problems.append(
            f"seen class(es) without a train image: {details}; add images to them, list "
            "them in unseen_classes (or remove them), lower eval_fraction or change split_seed"
        )
    if problems:
        raise ImageExampleGenError(
            "; ".join(problems) + f" (bad files are listed in {skip_report_path})"
        )


def _reasons(by_reason: dict[str, int]) -> str:
    return ", ".join(f"{n} {reason}" for reason, n in by_reason.items() if n) or "none"


def _optional_int(value: Any) -> int | None:
    return None if value in (None, "") else int(value)


def _unseen_list(value: Any) -> list[str]:
    if value in (None, ""):
        return []
    names = json.loads(value) if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ImageExampleGenError(f"unseen_classes must be a JSON list of names, got {value!r}")
    return names


class Executor(base_beam_executor.BaseBeamExecutor):
    """Writes images as tf.Examples into Split-train/eval/unseen of an Examples artifact.

    See `component.ImageExampleGen` for the parameters and the output files.
    """

    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        image_dir = exec_properties.get(IMAGE_DIR_KEY) or ""
        manifest = exec_properties.get(MANIFEST_KEY) or ""
        eval_fraction = float(exec_properties.get(EVAL_FRACTION_KEY, DataConfig.eval_fraction))
        num_unseen = int(exec_properties.get(NUM_UNSEEN_KEY, DataConfig.num_unseen))
        split_seed = int(exec_properties.get(SPLIT_SEED_KEY, DataConfig.split_seed))
        max_per_class = _optional_int(exec_properties.get(MAX_IMAGES_PER_CLASS_KEY))
        image_size = _optional_int(exec_properties.get(IMAGE_SIZE_KEY))
        limits = transforms.ImageLimits(
            max_pixels=int(
                exec_properties.get(MAX_IMAGE_PIXELS_KEY) or transforms.DEFAULT_LIMITS.max_pixels
            ),
            min_side=int(
                exec_properties.get(MIN_IMAGE_SIDE_KEY) or transforms.DEFAULT_LIMITS.min_side
            ),
        )
        unseen_classes = _unseen_list(exec_properties.get(UNSEEN_CLASSES_KEY))
        unseen_fraction = float(exec_properties.get(UNSEEN_FRACTION_KEY) or 0.0)
        eval_style = exec_properties.get(EVAL_STYLE_KEY) or ""
        _check_parameters(image_dir, manifest, eval_fraction, max_per_class, image_size)

        if image_dir:
            root = image_dir
            classes = list_classes(image_dir)
            marked_unseen, marked_seen, styles = set(), set(), set()
        else:
            root = os.path.dirname(manifest)
            classes, marked_unseen, marked_seen, styles = scan_manifest(manifest)
        check_eval_style(eval_style, styles, image_dir or manifest)
        try:
            seen, unseen = class_split.choose_class_split(
                classes,
                unseen_classes,
                class_split.num_unseen_classes(len(classes), num_unseen, unseen_fraction),
                split_seed,
                marked_unseen,
                marked_seen,
            )
        except class_split.ClassSplitError as err:
            raise ImageExampleGenError(str(err)) from err
        logging.info(
            "ImageExampleGen: %d classes (%d seen, %d unseen: %s) from %s",
            len(classes),
            len(seen),
            len(unseen),
            unseen,
            image_dir or manifest,
        )

        examples = artifact_utils.get_single_instance(output_dict[EXAMPLES_KEY])
        examples.split_names = artifact_utils.encode_split_names(list(features.SPLITS))
        uri = examples.uri
        skip_report_path = os.path.join(uri, features.SKIP_REPORT_FILE)
        counts_path = os.path.join(uri, _COUNTS_FILE)

        with self._make_beam_pipeline() as pipeline:
            refs = pipeline | "ListImages" >> (
                transforms.ListImageDir(root, classes)
                if image_dir
                else transforms.ReadManifest(manifest)
            )
            outputs = refs | "Generate" >> transforms.GenerateExamples(
                root,
                seen,
                unseen,
                eval_fraction,
                split_seed,
                max_per_class,
                image_size,
                limits,
                eval_style,
            )
            _ = outputs | "Write" >> transforms.WriteOutputs(uri, skip_report_path, counts_path)

        with fileio.open(counts_path, "r") as f:
            counts = json.loads(f.read())
        fileio.remove(counts_path)
        parameters = {
            IMAGE_DIR_KEY: image_dir,
            MANIFEST_KEY: manifest,
            EVAL_FRACTION_KEY: eval_fraction,
            UNSEEN_CLASSES_KEY: unseen_classes,
            NUM_UNSEEN_KEY: num_unseen,
            SPLIT_SEED_KEY: split_seed,
            MAX_IMAGES_PER_CLASS_KEY: max_per_class,
            IMAGE_SIZE_KEY: image_size,
            MAX_IMAGE_PIXELS_KEY: limits.max_pixels,
            MIN_IMAGE_SIDE_KEY: limits.min_side,
            UNSEEN_FRACTION_KEY: unseen_fraction,
            EVAL_STYLE_KEY: eval_style,
        }
        report = build_report(counts, seen, unseen, parameters)
        _write_json(os.path.join(uri, features.GEN_REPORT_FILE), report)
        _write_json(
            os.path.join(uri, features.CLASS_SPLIT_FILE),
            {
                "classes": seen + unseen,
                "seen": seen,
                "unseen": unseen,
                # Flat evaluation on a held-out style: eval is this style, train the rest.
                "eval_style": eval_style,
                "styles": sorted(styles),
                "split_seed": split_seed,
            },
        )
        logging.info(
            "ImageExampleGen: %d files listed, written %s, %d capped, %d skipped (%s)",
            report["listed"],
            report["splits"],
            report["capped"],
            report["skipped"]["total"],
            _reasons(report["skipped"]["by_reason"]),
        )

        examples_utils.set_payload_format(examples, example_gen_pb2.FORMAT_TF_EXAMPLE)
        examples_utils.set_file_format(examples, "tfrecords_gzip")
        examples.set_int_custom_property("num_classes", len(classes))
        examples.set_int_custom_property("num_seen_classes", len(seen))
        examples.set_int_custom_property("num_unseen_classes", len(unseen))
        examples.set_int_custom_property("num_examples", report["written"])
        examples.set_int_custom_property("num_skipped", report["skipped"]["total"])
        check_report(report, skip_report_path)


def _check_parameters(
    image_dir: str,
    manifest: str,
    eval_fraction: float,
    max_per_class: int | None,
    image_size: int | None,
) -> None:
    if bool(image_dir) == bool(manifest):
        raise ImageExampleGenError(
            "give exactly one of image_dir and manifest, got "
            f"image_dir={image_dir!r}, manifest={manifest!r}"
        )
    if image_dir and not tf.io.gfile.isdir(image_dir):
        raise ImageExampleGenError(f"image_dir {image_dir!r} does not exist or is not a folder")
    if manifest and not tf.io.gfile.exists(manifest):
        raise ImageExampleGenError(f"manifest {manifest!r} does not exist")
    if not 0.0 < eval_fraction < 1.0:
        raise ImageExampleGenError(f"eval_fraction must be in (0, 1), got {eval_fraction}")
    if max_per_class is not None and max_per_class < 1:
        raise ImageExampleGenError(f"max_images_per_class must be >= 1, got {max_per_class}")
    if image_size is not None and image_size < 1:
        raise ImageExampleGenError(f"image_size must be >= 1, got {image_size}")


def _write_json(path: str, content: dict[str, Any]) -> None:
    with fileio.open(path, "w") as f:
        f.write(json.dumps(content, indent=2, sort_keys=True) + "\n")
