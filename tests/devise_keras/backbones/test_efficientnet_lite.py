"""EfficientNet-Lite in Keras 3: architecture, weight layout, and the real ImageNet weights.

The tests on real weights read what the backbone data step (`make backbone`) puts in
~/.cache/devise-keras; without it they fail and say so (CI runs the step first).
"""

import hashlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from bench.verify_efficientnet_lite import golden_path, golden_pixels
from devise_keras.backbones.efficientnet_lite import (
    FEATURE_DIM,
    WeightsMismatchError,
    block_specs,
    build_efficientnet_lite,
    feature_extractor,
    get_variant,
    load_torch_weights,
    round_filters,
)
from devise_keras.backbones.efficientnet_lite_hub import (
    BackboneNotPreparedError,
    load_efficientnet_lite,
)
from devise_keras.datasets.sample_photos import prepared_sample_photos
from devise_keras.features import decode_image

# ImageNet-1k class ids (the standard 0-based order) of what the photos show.
TABBY, TIGER_CAT, EGYPTIAN_CAT = 281, 282, 285
ESPRESSO, CUP, COFFEE_MUG = 967, 968, 504
MISSILE, PROJECTILE, SPACE_SHUTTLE = 657, 744, 812
MOPED, MOTOR_SCOOTER = 665, 670
PHOTO_CLASSES = {
    "chelsea.png": {TABBY, TIGER_CAT, EGYPTIAN_CAT},
    "coffee.png": {ESPRESSO, CUP, COFFEE_MUG},
    "rocket.jpg": {MISSILE, PROJECTILE, SPACE_SHUTTLE},
    "motorcycle_left.png": {MOPED, MOTOR_SCOOTER},
}
GOLDEN_TOLERANCE = 1e-4


def test_lite0_has_the_checkpoints_4694024_parameters():
    # 4,694,073 values in the .pth minus 49 BatchNorm num_batches_tracked counters.
    model = build_efficientnet_lite("lite0")
    assert model.count_params() == 4_694_024
    assert model.output_shape == (None, 1000)
    assert feature_extractor(model).output_shape == (None, FEATURE_DIM)


def test_round_filters_and_block_counts_match_the_lite_scaling_rules():
    # width 1.1 (Lite2): 16*1.1=17.6 -> 16, 40*1.1=44 -> 48, 112*1.1=123.2 -> 120, 320 -> 352
    assert [round_filters(f, 1.1) for f in (16, 24, 40, 80, 112, 192, 320)] == [
        16,
        24,
        48,
        88,
        120,
        208,
        352,
    ]
    assert round_filters(40, 1.0) == 40
    # Lite keeps the first and last stage at one block: 1+2+2+3+3+4+1 = 16 for Lite0;
    # Lite1 (depth 1.1): 1+3+3+4+4+5+1 = 21; Lite2 (depth 1.2): the same ceilings.
    assert [len(block_specs(v)) for v in ("lite0", "lite1", "lite2")] == [16, 21, 21]
    first, last = block_specs("lite2")[0], block_specs("lite2")[-1]
    assert (first["filters_in"], first["filters_out"], first["expand"]) == (32, 16, 1)
    assert (last["filters_in"], last["filters_out"], last["kernel"]) == (208, 352, 3)
    with pytest.raises(ValueError, match="unknown EfficientNet-Lite variant"):
        get_variant("lite9")


def _torch_style_state_dict(variant, seed=0):
    """Random tensors named and shaped as efficientnet-lite-pytorch saves them."""
    rng = np.random.default_rng(seed)
    state = {}

    def conv(name, out, inp, k):
        state[name + ".weight"] = rng.normal(size=(out, inp, k, k)).astype("float32")

    def bn(name, n):
        state[name + ".weight"] = rng.normal(size=n).astype("float32")
        state[name + ".bias"] = rng.normal(size=n).astype("float32")
        state[name + ".running_mean"] = rng.normal(size=n).astype("float32")
        state[name + ".running_var"] = rng.uniform(0.5, 2.0, size=n).astype("float32")
        state[name + ".num_batches_tracked"] = np.array(0, "int64")

    conv("_conv_stem", 32, 3, 3)
    bn("_bn0", 32)
    for i, spec in enumerate(block_specs(variant)):
        p, mid = f"_blocks.{i}.", spec["filters_in"] * spec["expand"]
        if spec["expand"] != 1:
            conv(p + "_expand_conv", mid, spec["filters_in"], 1)
            bn(p + "_bn0", mid)
        conv(p + "_depthwise_conv", mid, 1, spec["kernel"])
        bn(p + "_bn1", mid)
        conv(p + "_project_conv", spec["filters_out"], mid, 1)
        bn(p + "_bn2", spec["filters_out"])
    last = block_specs(variant)[-1]["filters_out"]
    conv("_conv_head", 1280, last, 1)
    bn("_bn1", 1280)
    state["_fc.weight"] = rng.normal(size=(1000, 1280)).astype("float32")
    state["_fc.bias"] = rng.normal(size=1000).astype("float32")
    return state


def test_torch_layouts_are_transposed_into_keras_layouts():
    state = _torch_style_state_dict("lite0")
    model = load_torch_weights(build_efficientnet_lite("lite0"), state)
    stem = model.get_layer("stem_conv").kernel.numpy()  # (kh, kw, in, out) <- (out, in, kh, kw)
    assert stem[1, 2, 0, 5] == state["_conv_stem.weight"][5, 0, 1, 2]
    dw = model.get_layer("block3_dw_conv").kernel.numpy()  # (kh, kw, C, 1) <- (C, 1, kh, kw)
    assert dw.shape == (5, 5, 144, 1)
    assert dw[0, 4, 7, 0] == state["_blocks.3._depthwise_conv.weight"][7, 0, 0, 4]
    dense = model.get_layer("logits")
    assert dense.kernel.numpy()[3, 9] == state["_fc.weight"][9, 3]
    np.testing.assert_array_equal(dense.bias.numpy(), state["_fc.bias"])
    bn = model.get_layer("block15_project_bn")
    np.testing.assert_array_equal(bn.moving_variance.numpy(), state["_blocks.15._bn2.running_var"])
    np.testing.assert_array_equal(bn.gamma.numpy(), state["_blocks.15._bn2.weight"])


def test_a_checkpoint_of_another_variant_or_with_missing_tensors_is_refused():
    with pytest.raises(WeightsMismatchError, match="shape|fit no layer"):
        load_torch_weights(build_efficientnet_lite("lite0"), _torch_style_state_dict("lite1"))
    state = _torch_style_state_dict("lite0")
    del state["_blocks.4._bn1.running_mean"]
    with pytest.raises(WeightsMismatchError, match=r"_blocks\.4\._bn1\.running_mean"):
        load_torch_weights(build_efficientnet_lite("lite0"), state)


# -- the real ImageNet weights (from the backbone data step) -----------------------------
@pytest.fixture(scope="module")
def lite0():
    try:
        return load_efficientnet_lite("lite0")
    except BackboneNotPreparedError as error:
        pytest.fail(str(error))


def test_keras_logits_match_the_pytorch_golden_logits(lite0):
    golden = np.load(golden_path("lite0"))
    pixels = golden_pixels(224)
    assert str(golden["pixels_sha256"]) == hashlib.sha256(pixels.tobytes()).hexdigest()
    logits = np.asarray(lite0(pixels.astype("float32") / 255.0, training=False))
    np.testing.assert_allclose(logits, golden["logits"], rtol=0, atol=GOLDEN_TOLERANCE)


def test_real_photos_get_the_right_imagenet_class_in_the_top_5(lite0):
    photos = prepared_sample_photos()
    if photos is None:
        pytest.fail("scikit-image's sample photos are missing: run `make backbone`")
    names = sorted(PHOTO_CLASSES)
    # The pipeline's own decoding: [0, 1] floats, bilinear resize (no crop) to 224 px.
    images = tf.stack([decode_image(tf.io.read_file(photos["photos"][n]), 224) for n in names])
    logits = np.asarray(lite0(images, training=False))
    for name, row in zip(names, logits, strict=True):
        top5 = set(np.argsort(-row)[:5].tolist())
        assert top5 & PHOTO_CLASSES[name], f"{name}: top-5 {sorted(top5)}"
    # The unambiguous two are right at top-1.
    top1 = dict(zip(names, logits.argmax(axis=1).tolist(), strict=True))
    assert top1["chelsea.png"] in PHOTO_CLASSES["chelsea.png"]
    assert top1["coffee.png"] == ESPRESSO
    assert keras.ops.softmax(logits[names.index("coffee.png")])[ESPRESSO] > 0.5
