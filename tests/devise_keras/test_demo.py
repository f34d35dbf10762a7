"""Tests of the demo configurations and data preparation (devise_keras.demo)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from devise_keras import demo

EMOJI_DATA = {
    "manifest": "/d/emoji/manifest.csv",
    "vectors": "/d/g.npy",
    "vocab": "/d/vocab.txt",
    "backbone": "/c/lite0",
    "text_encoder": "/c/use",
    "label_texts": "/d/emoji/label_texts.csv",
}


def test_the_emoji_demo_uses_the_lite0_hub_backbone_and_the_chosen_projection():
    cfg = demo.demo_config(EMOJI_DATA, quick=False, dataset="emoji")
    assert cfg.model.backbone == "/c/lite0"  # the hub handle path, no softmax pre-training
    # Label vectors: the text encoder of "name: keywords"; the projection chosen on the
    # held-out style (bench/results/zero_shot/selection.md).
    assert (cfg.embeddings.text_encoder, cfg.embeddings.label_texts) == (
        "/c/use",
        "/d/emoji/label_texts.csv",
    )
    assert cfg.embeddings.vocab_path == "/d/vocab.txt"
    assert not cfg.embeddings.vectors_path and cfg.embeddings.open_vocabulary_size == 20_000
    assert (cfg.model.loss, cfg.model.temperature) == ("cross_entropy", 0.03)
    assert cfg.model.projection_normalize and cfg.model.feature_dropout == 0.25
    assert cfg.train.feature_augmentation == ["flip", "crop"]
    assert (cfg.data.manifest, cfg.data.eval_style, cfg.data.unseen_fraction) == (
        "/d/emoji/manifest.csv",
        "twitter",
        0.2,
    )
    assert cfg.model.image_size == demo.EMOJI_IMAGE_SIZE == 128
    assert cfg.train.projection_epochs == demo.DEMO_PROJECTION_EPOCHS == 30
    assert cfg.train.cache_features and cfg.train.finetune_epochs == 1
    assert (cfg.eval.min_hit_at_1, cfg.eval.min_hit_at_5) == (0.4, 0.6)
    assert cfg == demo.emoji_demo_config(EMOJI_DATA, quick=False)
    quick = demo.demo_config(EMOJI_DATA, quick=True, dataset="emoji")
    assert quick.train.finetune_epochs == 0 and quick.pipeline_name == "devise-emoji-quick"
    assert quick.train.projection_epochs == 10


def test_the_fashion_mnist_demo_pretrains_a_small_cnn():
    data = {"images": "/d/fm", "vectors": "/d/g.npy"}
    fashion = demo.demo_config(data, quick=True, dataset="fashion-mnist")
    assert fashion == demo.fashion_mnist_demo_config(data, quick=True)
    assert fashion.data.image_dir == "/d/fm" and not fashion.model.backbone
    assert (fashion.data.max_images_per_class, fashion.train.batch_size) == (300, 64)
    full = demo.fashion_mnist_demo_config(data, quick=False)
    assert (full.data.max_images_per_class, full.train.batch_size) == (None, 128)
    assert full.pipeline_name == "devise-fashion-mnist"


def test_an_unknown_dataset_or_corpus_is_named():
    with pytest.raises(ValueError, match=r"dataset must be one of \('emoji', 'fashion-mnist'\)"):
        demo.demo_config({}, quick=True, dataset="mnist")
    with pytest.raises(ValueError, match="dataset must be one of"):
        demo.prepare_demo_data("/nowhere", "mnist")
    with pytest.raises(ValueError, match="corpus must be 'gcide', got 'wiki'"):
        demo.prepare_demo_data("/nowhere", corpus="wiki")


def test_demo_imports_no_pipeline_layer():
    code = (
        "import sys, devise_keras.demo; "
        "bad = [m for m in ('tfx', 'apache_beam', 'tensorflow_model_analysis', 'pipeline', "
        "'components', 'tensorflow') if m in sys.modules]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
