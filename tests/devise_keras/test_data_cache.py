"""The user cache root is read once, from one place, by every preparer."""

from pathlib import Path

from devise_keras import data_cache
from devise_keras.backbones import efficientnet_lite_hub
from devise_keras.datasets import sample_photos
from devise_keras.text_encoders import use_multilingual


def test_the_cache_root_follows_xdg_cache_home_else_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data_cache.default_data_dir() == tmp_path / "xdg" / "devise-keras"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_cache.default_data_dir() == tmp_path / "home" / ".cache" / "devise-keras"


def test_cache_subdir_takes_a_given_root_or_the_default(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_cache.cache_subdir("npm") == tmp_path / "devise-keras" / "npm"
    assert data_cache.cache_subdir("npm", "") == tmp_path / "devise-keras" / "npm"
    assert data_cache.cache_subdir("npm", "~/c") == tmp_path / "home" / "c" / "npm"


def test_backbones_text_encoders_and_photos_live_under_the_one_root(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    root = tmp_path / "devise-keras"
    assert efficientnet_lite_hub.backbone_dir("lite0") == root / "backbones/efficientnet_lite0"
    assert use_multilingual.text_encoder_dir().parent.parent == root / "text_encoders"
    assert sample_photos.prepared_sample_photos() is None  # nothing prepared in the new root
    assert efficientnet_lite_hub.backbone_dir("lite0", Path("/c")) == Path(
        "/c/backbones/efficientnet_lite0"
    )
