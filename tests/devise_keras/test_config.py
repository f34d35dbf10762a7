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
        ({"model": {"feature_dropout": 1.0}}, "model.feature_dropout must be a number in [0, 1)"),
        ({"model": {"feature_dropout": -0.1}}, "model.feature_dropout must be a number in [0, 1)"),
        ({"model": {"feature_dropout": "0.5"}}, "model.feature_dropout must be a number"),
        ({"model": {"feature_dropout": True}}, "model.feature_dropout must be a number"),
        ({"model": {"temperature": 0}}, "model.temperature must be a finite number > 0"),
        ({"model": {"temperature": float("inf")}}, "model.temperature must be a finite number"),
        ({"model": {"temperature": float("nan")}}, "model.temperature must be a finite number"),
        ({"model": {"temperature": "0.05"}}, "model.temperature must be a number"),
        ({"train": {"weight_decay": -1e-4}}, "train.weight_decay must be a finite number >= 0"),
        ({"train": {"weight_decay": None}}, "train.weight_decay must be a number, got None"),
        ({"train": {"feature_augmentation": "flip"}}, "train.feature_augmentation must be a list"),
        (
            {"train": {"feature_augmentation": ["rotate"]}},
            "train.feature_augmentation entries must be among ('flip', 'crop'), got 'rotate'",
        ),
        ({"train": {"feature_augmentation": [1]}}, "config.train.feature_augmentation[0] must be"),
        (
            {"train": {"feature_augmentation": ["flip", "flip"]}},
            "train.feature_augmentation has duplicates: ['flip', 'flip']",
        ),
        (
            {"train": {"feature_augmentation": ["flip"], "cache_features": False}},
            "train.feature_augmentation=['flip'] needs train.cache_features=True",
        ),
        ({"eval": {"gzsl_calibration": float("nan")}}, "eval.gzsl_calibration must be a finite"),
        ({"eval": {"gzsl_calibration": float("inf")}}, "eval.gzsl_calibration must be a finite"),
        ({"eval": {"gzsl_calibration": "0.1"}}, "eval.gzsl_calibration must be a number"),
        ({"eval": {"gzsl_calibration": True}}, "eval.gzsl_calibration must be a number"),
    ],
)
def test_bad_values_name_the_field(data, message):
    with pytest.raises(ConfigError) as err:
        DeviseConfig.from_dict(data)
    assert message in str(err.value)


def test_projection_options_default_off_and_round_trip():
    default = DeviseConfig()
    assert default.model.feature_dropout == 0.0 and default.model.temperature == 0.05
    assert default.model.loss == "rank"  # the paper's hinge rank loss stays the default
    assert default.train.weight_decay == 0.0 and default.train.feature_augmentation == []
    cfg = DeviseConfig.from_dict(
        {
            "model": {"loss": "cross_entropy", "temperature": 0.1, "feature_dropout": 0.5},
            "train": {"weight_decay": 1e-4, "feature_augmentation": ["crop", "flip"]},
        }
    )
    assert DeviseConfig.from_json(cfg.to_json()) == cfg
    assert cfg.train.feature_augmentation == ["crop", "flip"]


def test_direct_construction_is_validated_too():
    with pytest.raises(ConfigError, match="model.feature_dropout must be a number in"):
        DeviseConfig(model=ModelConfig(feature_dropout=0.9999 + 1))
    with pytest.raises(ConfigError, match="train.feature_augmentation must be a list"):
        DeviseConfig(train=TrainConfig(feature_augmentation="crop"))


def test_sections_give_only_the_named_parts_and_read_back():
    config = DeviseConfig.from_dict({"model": {"margin": 0.3}, "eval": {"min_hit_at_1": 0.5}})
    part = config.sections("model", "eval.k_values")
    assert set(part) == {"model", "eval"} and part["eval"] == {"k_values": [1, 2, 5, 10, 20]}
    back = DeviseConfig.from_dict(part)
    assert back.model == config.model and back.eval.min_hit_at_1 == 0.0
    with pytest.raises(ConfigError, match="eval.nope"):
        config.sections("eval.nope")


@pytest.mark.parametrize(
    "section, field, value, message",
    [
        ("model", "margin", "0.1", r"model\.margin must be a number, got '0\.1'"),
        ("train", "learning_rate", "fast", r"train\.learning_rate must be a number, got 'fast'"),
        ("train", "learning_rate", float("nan"), r"train\.learning_rate must be a finite number"),
        ("train", "learning_rate", -5, r"train\.learning_rate must be > 0, got -5"),
        ("model", "margin", float("inf"), r"model\.margin must be a finite number, got inf"),
        ("train", "steps_per_epoch", 0, r"train\.steps_per_epoch must be >= 1 or null, got 0"),
        ("train", "finetune_variables", -7, r"train\.finetune_variables must be >= 0, or -1"),
        ("eval", "min_hit_at_1", "high", r"eval\.min_hit_at_1 must be a number, got 'high'"),
        ("eval", "min_hit_at_1", 2.0, r"eval\.min_hit_at_1 must be in \[0, 1\], got 2\.0"),
        ("train", "batch_size", True, r"train\.batch_size must be int, got True"),
        ("model", "cnn_filters", [8, "16"], r"model\.cnn_filters\[1\] must be int, got '16'"),
        ("data", "image_dir", 3, r"data\.image_dir must be str, got 3"),
    ],
)
def test_a_field_of_the_wrong_type_or_range_is_named_with_its_value(section, field, value, message):
    with pytest.raises(ConfigError, match=message):
        DeviseConfig.from_dict({section: {field: value}})


def test_types_are_checked_on_direct_construction_too():
    # Not only from JSON: a dataclass built in Python is checked before any work.
    with pytest.raises(ConfigError, match=r"^model\.margin must be a number, got '0\.1'$"):
        DeviseConfig(model=ModelConfig(margin="0.1"))
    assert DeviseConfig(model=ModelConfig(margin=1)).model.margin == 1


def test_check_inputs_names_a_missing_or_empty_image_folder_or_manifest(tmp_path):
    from devise_keras.config import DataConfig, check_inputs

    def check(**data):
        check_inputs(DeviseConfig(data=DataConfig(**data)))

    with pytest.raises(ConfigError, match="set data.image_dir .* or data.manifest"):
        check()
    with pytest.raises(ConfigError, match="data.image_dir: no such directory: .*nope"):
        check(image_dir=str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match="has no class folders"):
        check(image_dir=str(tmp_path))
    (tmp_path / "cat").mkdir()
    with pytest.raises(ConfigError, match="every class folder is empty"):
        check(image_dir=str(tmp_path))
    (tmp_path / "cat" / "1.png").write_bytes(b"x")
    check(image_dir=str(tmp_path))
    manifest = tmp_path / "m.csv"
    with pytest.raises(ConfigError, match="data.manifest: no such file"):
        check(manifest=str(manifest))
    manifest.write_text("path,label\n")
    with pytest.raises(ConfigError, match="lists no images"):
        check(manifest=str(manifest))
    manifest.write_text("path,label\ncat/1.png,cat\n")
    check(manifest=str(manifest))


@pytest.mark.parametrize(
    "embeddings, message",
    [
        (
            {"text_encoder": "/m/use", "vectors_path": "glove.txt"},
            "embeddings.text_encoder and embeddings.vectors_path are both set; keep one",
        ),
        (
            {"text_encoder": "/m/use", "train_from_corpus": {"corpus_paths": ["c.txt"]}},
            "embeddings.text_encoder and embeddings.train_from_corpus are both set; keep one",
        ),
        ({"label_texts": "t.csv"}, "embeddings.label_texts needs embeddings.text_encoder"),
        (
            {"text_encoder": "/m/use", "open_vocabulary_size": 5},
            "embeddings.open_vocabulary_size > 0 with embeddings.text_encoder needs "
            "embeddings.vocab_path",
        ),
        (
            {"text_encoder": "/m/use", "max_text_chars": 0},
            "embeddings.max_text_chars must be >= 1, got 0",
        ),
        (
            {"text_encoder": "/m/use", "text_batch_size": -2},
            "embeddings.text_batch_size must be >= 1, got -2",
        ),
    ],
)
def test_text_encoder_fields_are_validated(embeddings, message):
    with pytest.raises(ConfigError) as err:
        DeviseConfig.from_dict({"embeddings": embeddings})
    assert message in str(err.value)


def test_text_encoder_fields_round_trip_with_their_defaults():
    cfg = DeviseConfig.from_dict({"embeddings": {"text_encoder": "/m/use", "label_texts": "t.csv"}})
    assert (cfg.embeddings.max_text_chars, cfg.embeddings.text_batch_size) == (2000, 128)
    assert DeviseConfig.from_json(cfg.to_json()) == cfg


def test_corpus_training_settings_are_checked_by_one_function():
    from devise_keras.config import CorpusTrainingConfig, validate_corpus_training

    ok = CorpusTrainingConfig(corpus_paths=["c.txt"])
    validate_corpus_training(ok)
    # Only the named fields: CorpusGen's settings do not include the trainer's dim.
    validate_corpus_training(CorpusTrainingConfig(dim=0), "", fields=["window"])
    with pytest.raises(
        ConfigError, match=r"^embeddings.train_from_corpus.dim must be >= 1, got 0$"
    ):
        validate_corpus_training(CorpusTrainingConfig(corpus_paths=["c.txt"], dim=0))
    with pytest.raises(ConfigError, match=r"^document_per must be one of \('line', 'file'\)"):
        validate_corpus_training(CorpusTrainingConfig(document_per="page"), "", ["document_per"])
    with pytest.raises(ConfigError, match=r"^sample must be a number, got '1e-5'$"):
        validate_corpus_training(CorpusTrainingConfig(sample="1e-5"), "", ["sample"])
    with pytest.raises(ConfigError, match="^num_shards must be >= 0, got -1$"):
        validate_corpus_training(CorpusTrainingConfig(num_shards=-1), "", ["num_shards"])
