"""Tests for LabelSimilarity: scores, per-row normalization, label swaps, errors, saving."""

import json
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf

from devise_keras.label_similarity import LabelSimilarity

# Rows of norm 5 and 2: stored as [0.6, 0.8] and [0, 1].
LABEL_VECTORS = [[3.0, 4.0], [0.0, 2.0]]


def _model(layer, dim=2):
    inputs = keras.Input((dim,), name="embedding")
    return keras.Model(inputs, layer(inputs))


def test_scores_are_dot_products_with_unit_label_rows():
    layer = LabelSimilarity(LABEL_VECTORS)
    scores = layer(np.array([[1.0, 1.0], [2.0, -1.0]], np.float32))
    # [1, 1] . [0.6, 0.8] = 1.4, [1, 1] . [0, 1] = 1; [2, -1] . [0.6, 0.8] = 0.4, . [0, 1] = -1
    np.testing.assert_allclose(scores, [[1.4, 1.0], [0.4, -1.0]], rtol=1e-6)
    np.testing.assert_allclose(layer.label_vectors, [[0.6, 0.8], [0.0, 1.0]], rtol=1e-6)


def test_label_matrix_is_a_non_trainable_weight():
    layer = LabelSimilarity(LABEL_VECTORS)
    layer.build((None, 2))
    assert layer.trainable_weights == []
    assert len(layer.non_trainable_weights) == 1


def test_normalize_inputs_divides_each_row_by_its_own_norm():
    layer = LabelSimilarity(LABEL_VECTORS, normalize_inputs=True)
    batch = np.array([[3.0, 4.0], [0.0, 100.0], [0.0, 0.0]], np.float32)
    scores = np.asarray(layer(batch))
    # [3, 4] / 5 = [0.6, 0.8]: scores [1.0, 0.8]; [0, 100] / 100 = [0, 1]: [0.8, 1.0];
    # an all-zero row stays zero instead of becoming NaN.
    np.testing.assert_allclose(scores, [[1.0, 0.8], [0.8, 1.0], [0.0, 0.0]], atol=1e-6)
    # A batch-wide norm would make row 0's scores depend on row 1.
    np.testing.assert_allclose(np.asarray(layer(batch[:1])), scores[:1], atol=1e-6)


def test_set_label_vectors_with_other_size_changes_scores_and_shape():
    layer = LabelSimilarity(LABEL_VECTORS)
    x = np.array([[1.0, 2.0]], np.float32)
    layer(x)
    layer.set_label_vectors([[1.0, 0.0], [0.0, 5.0], [-2.0, 0.0]])
    np.testing.assert_allclose(layer(x), [[1.0, 2.0, -1.0]], rtol=1e-6)
    assert len(layer.weights) == 1 and tuple(layer.weights[0].shape) == (3, 2)


def test_set_label_vectors_before_build_is_used_by_build():
    layer = LabelSimilarity(LABEL_VECTORS)
    layer.set_label_vectors([[0.0, 1.0]])
    np.testing.assert_allclose(layer(np.array([[3.0, 4.0]], np.float32)), [[4.0]], rtol=1e-6)


def test_same_size_swap_is_seen_by_an_already_traced_predict_function():
    model = _model(LabelSimilarity(LABEL_VECTORS))
    x = np.array([[1.0, 2.0]], np.float32)
    np.testing.assert_allclose(model.predict(x, verbose=0), [[2.2, 2.0]], rtol=1e-6)
    model.layers[-1].set_label_vectors([[0.0, 1.0], [1.0, 0.0]])
    np.testing.assert_allclose(model.predict(x, verbose=0), [[2.0, 1.0]], rtol=1e-6)


def test_resized_swap_makes_a_stale_traced_function_fail_until_rebuilt():
    model = _model(LabelSimilarity(LABEL_VECTORS))
    x = np.array([[1.0, 2.0]], np.float32)
    model.predict(x, verbose=0)
    model.layers[-1].set_label_vectors([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    with pytest.raises(tf.errors.InvalidArgumentError, match="label set was replaced"):
        model.predict(x, verbose=0)
    model.make_predict_function(force=True)
    np.testing.assert_allclose(model.predict(x, verbose=0), [[1.0, 2.0, -1.0]], rtol=1e-6)


def test_label_vectors_stay_fixed_while_training_the_projection():
    rng = np.random.default_rng(0)
    inputs = keras.Input((3,))
    projection = keras.layers.Dense(2)
    similarity = LabelSimilarity(LABEL_VECTORS)
    model = keras.Model(inputs, similarity(projection(inputs)))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    kernel_before = np.array(projection.kernel)
    model.fit(rng.normal(size=(8, 3)), rng.normal(size=(8, 2)), epochs=1, verbose=0)
    np.testing.assert_allclose(similarity.label_vectors, [[0.6, 0.8], [0.0, 1.0]], rtol=1e-6)
    assert not np.allclose(projection.kernel, kernel_before)


@pytest.mark.parametrize(
    "vectors, message",
    [
        ([1.0, 2.0], "2-D"),
        ([[1.0, np.nan], [0.0, 1.0]], "non-finite values in row"),
        ([[1.0, 0.0], [0.0, 0.0]], "all-zero row"),
        (np.zeros((0, 2)), "empty"),
    ],
)
def test_bad_label_vectors_raise_naming_the_problem(vectors, message):
    with pytest.raises(ValueError, match=message):
        LabelSimilarity(vectors)


def test_input_dim_mismatch_raises():
    with pytest.raises(ValueError, match="input dim 3 does not match the label vectors' dim 2"):
        _model(LabelSimilarity(LABEL_VECTORS), dim=3)


def test_swap_to_other_dim_raises():
    layer = LabelSimilarity(LABEL_VECTORS)
    with pytest.raises(ValueError, match="new label vectors have dim 3"):
        layer.set_label_vectors([[1.0, 0.0, 0.0]])


def test_config_round_trips_holding_the_shape_not_the_vectors():
    layer = LabelSimilarity(LABEL_VECTORS, normalize_inputs=True, name="sim")
    config = layer.get_config()
    assert "label_vectors" not in config
    assert (config["num_labels"], config["dim"]) == (2, 2)
    restored = LabelSimilarity.from_config(config)
    assert json.dumps(restored.get_config(), sort_keys=True) == json.dumps(config, sort_keys=True)
    with pytest.raises(ValueError, match="needs label_vectors, or num_labels >= 1 and dim >= 1"):
        LabelSimilarity()


def test_a_large_label_set_saves_as_weights_with_a_small_config(tmp_path):
    # Swapped to 20,000 labels (as nested JSON lists ~800 KB): the config stays small.
    model = _model(LabelSimilarity(LABEL_VECTORS))
    model.layers[-1].set_label_vectors(np.random.default_rng(1).normal(size=(20_000, 2)))
    path = tmp_path / "big.keras"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        assert archive.getinfo("config.json").file_size < 10_000
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(
        np.asarray(loaded.layers[-1].label_vectors), np.asarray(model.layers[-1].label_vectors)
    )


def test_saved_model_file_restores_swapped_labels_and_outputs(tmp_path):
    model = _model(LabelSimilarity(LABEL_VECTORS, normalize_inputs=True))
    model.layers[-1].set_label_vectors([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    x = np.array([[1.0, 2.0], [-3.0, 0.5]], np.float32)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    # predict() runs a traced graph, model(x) eager ops: equal up to rounding.
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model(x), rtol=1e-6, atol=1e-7)
    assert loaded.layers[-1].num_labels == 3
