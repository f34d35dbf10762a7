import json

import pytest

from devise_keras.config import (
    ConfigError,
    DataConfig,
    DeviseConfig,
    ModelConfig,
    TrainConfig,
)


def test_json_round_trip_preserves_every_section():
    cfg = DeviseConfig(
        data=DataConfig(image_dir="/x", unseen_classes=["Bag", "Coat"], max_images_per_class=7),
        model=ModelConfig(margin=0.25, negatives="truncated", cnn_filters=[8, 16]),
        train=TrainConfig(batch_size=3, steps_per_epoch=None),
        beam_pipeline_args=["--direct_num_workers=2"],
    )
    text = cfg.to_json()
    again = DeviseConfig.from_json(text)
    assert again == cfg
    assert json.loads(text)["model"]["margin"] == 0.25
    assert again.data.unseen_classes == ["Bag", "Coat"]


def test_save_and_load_file(tmp_path):
    cfg = DeviseConfig(pipeline_name="p1")
    cfg.save(tmp_path / "c.json")
    assert DeviseConfig.load(tmp_path / "c.json") == cfg


def test_ints_are_accepted_for_float_fields():
    cfg = DeviseConfig.from_dict({"model": {"margin": 1}})
    assert cfg.model.margin == 1.0 and isinstance(cfg.model.margin, float)


def test_gzsl_calibration_is_off_by_default_and_round_trips_when_set():
    assert DeviseConfig().eval.gzsl_calibration is None
    cfg = DeviseConfig.from_dict({"eval": {"gzsl_calibration": -1}})
    assert cfg.eval.gzsl_calibration == -1.0 and isinstance(cfg.eval.gzsl_calibration, float)
    assert DeviseConfig.from_json(cfg.to_json()) == cfg
    assert DeviseConfig.from_dict({"eval": {"gzsl_calibration": None}}) == DeviseConfig()


@pytest.mark.parametrize(
    "data, message",
    [
        ({"model": {"loss": "hinge"}}, "model.loss must be one of"),
        ({"model": {"negatives": "some"}}, "model.negatives must be one of"),
        ({"model": {"margin": 0}}, "model.margin must be > 0"),
        ({"data": {"eval_fraction": 1.5}}, "data.eval_fraction must be in (0, 1)"),
        ({"embeddings": {"oov_policy": "drop"}}, "embeddings.oov_policy must be one of"),
        ({"model": {"marg": 0.1}}, "config.model: unknown field(s) ['marg']"),
        ({"train": {"batch_size": "64"}}, "config.train.batch_size must be int"),
        ({"train": {"batch_size": True}}, "config.train.batch_size must be int"),
        ({"data": {"unseen_classes": "Bag"}}, "config.data.unseen_classes must be a list"),
        ({"model": []}, "config.model must be a JSON object"),
        ({"eval": {"gzsl_calibration": float("nan")}}, "eval.gzsl_calibration must be a finite"),
        ({"eval": {"gzsl_calibration": float("inf")}}, "eval.gzsl_calibration must be a finite"),
        ({"eval": {"gzsl_calibration": "0.1"}}, "eval.gzsl_calibration must be a finite"),
        ({"eval": {"gzsl_calibration": True}}, "eval.gzsl_calibration must be a finite"),
    ],
)
def test_bad_values_name_the_field(data, message):
    with pytest.raises(ConfigError) as err:
        DeviseConfig.from_dict(data)
    assert message in str(err.value)


def test_sections_give_only_the_named_parts_and_read_back():
    config = DeviseConfig.from_dict({"model": {"margin": 0.3}, "eval": {"min_hit_at_1": 0.5}})
    part = config.sections("model", "eval.k_values")
    assert set(part) == {"model", "eval"} and part["eval"] == {"k_values": [1, 2, 5, 10, 20]}
    back = DeviseConfig.from_dict(part)
    assert back.model == config.model and back.eval.min_hit_at_1 == 0.0
    with pytest.raises(ConfigError, match="eval.nope"):
        config.sections("eval.nope")
