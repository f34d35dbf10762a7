"""ImageSearch: text -> image ranking over a folder, and its embedding cache."""

import os

import numpy as np
import pytest

from devise_keras.apps import VocabularyError, load
from devise_keras.image_search import ImageSearch
from tests.devise_keras import devise_app_testutil as tu


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    pushed = tu.make_pushed_model(tmp_path_factory.mktemp("search"))
    return load(pushed["serving_dir"])


@pytest.fixture()
def folder(tmp_path):
    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    for seed in range(4):
        (root / f"{seed}.png").write_bytes(tu.image_bytes(seed))
    (root / "sub" / "4.jpg").write_bytes(tu.image_bytes(4, "JPEG", size=11))
    (root / "notes.txt").write_text("not an image, not listed")
    return root


def _expected(app, paths, query, k):
    embeddings = app.embed_images([str(p) for p in paths])
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    cosines = embeddings @ app.word_vector(query)
    order = np.argsort(-cosines, kind="stable")[:k]
    return [str(paths[i]) for i in order], cosines[order]


def test_search_ranks_the_folder_by_cosine_with_the_query(app, folder, tmp_path):
    search = ImageSearch(app, folder, cache_dir=tmp_path / "cache", progress=False)
    got = search.search("red ship", k=3)
    paths = sorted([*folder.glob("*.png"), folder / "sub" / "4.jpg"])
    labels, cosines = _expected(app, paths, "red ship", 3)
    assert [p for p, _ in got] == labels
    np.testing.assert_allclose([s for _, s in got], cosines, atol=1e-5)
    assert len(search.search("king", k=10)) == 5  # k is capped at the image count


def test_a_second_search_embeds_nothing_and_answers_the_same(app, folder, tmp_path):
    first = ImageSearch(app, folder, cache_dir=tmp_path / "cache", progress=False).refresh()
    assert first.embedded_count == 5 and first.cache_path.is_file()
    second = ImageSearch(app, folder, cache_dir=tmp_path / "cache", progress=False).refresh()
    assert second.embedded_count == 0
    assert second.paths == first.paths
    np.testing.assert_array_equal(second.embeddings, first.embeddings)
    assert second.search("king", k=2) == first.search("king", k=2)


def test_only_new_or_changed_images_are_embedded_and_deleted_ones_leave(app, folder, tmp_path):
    cache = tmp_path / "cache"
    ImageSearch(app, folder, cache_dir=cache, progress=False).refresh()
    changed = folder / "0.png"
    changed.write_bytes(tu.image_bytes(40))
    stat = changed.stat()
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    (folder / "new.png").write_bytes(tu.image_bytes(41))
    (folder / "1.png").unlink()
    search = ImageSearch(app, folder, cache_dir=cache, progress=False).refresh()
    assert search.embedded_count == 2
    assert str(folder / "1.png") not in search.paths and str(folder / "new.png") in search.paths
    row = search.paths.index(str(changed))
    np.testing.assert_allclose(search.embeddings[row], app.embed_images(changed)[0], atol=1e-6)


def test_another_model_fingerprint_does_not_reuse_the_cache(app, folder, tmp_path):
    cache = tmp_path / "cache"
    first = ImageSearch(app, folder, cache_dir=cache, progress=False).refresh()
    original = app.fingerprint
    try:
        app.fingerprint = "another-model"
        other = ImageSearch(app, folder, cache_dir=cache, progress=False).refresh()
        assert other.embedded_count == 5 and other.cache_path != first.cache_path
    finally:
        app.fingerprint = original


def test_undecodable_files_are_skipped_and_reported(app, folder, tmp_path):
    (folder / "broken.png").write_bytes(b"\x89PNG but nothing else")
    search = ImageSearch(app, folder, cache_dir=tmp_path / "cache", progress=False).refresh()
    assert list(search.skipped) == [str(folder / "broken.png")]
    assert "truncated or corrupt PNG data" in search.skipped[str(folder / "broken.png")]
    assert len(search.paths) == 5


def test_bad_folders_and_queries_raise_clear_errors(app, tmp_path):
    with pytest.raises(FileNotFoundError, match="image folder not found"):
        ImageSearch(app, tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no decodable images"):
        ImageSearch(app, empty, cache_dir=tmp_path / "cache", progress=False).search("king")
    (empty / "a.png").write_bytes(tu.image_bytes(0))
    search = ImageSearch(app, empty, cache_dir=tmp_path / "cache", progress=False)
    with pytest.raises(VocabularyError, match="zeppelin"):
        search.search("zeppelin")
    with pytest.raises(ValueError, match="k must be >= 1"):
        search.search("king", k=0)


@pytest.mark.parametrize("damage", ["empty", "truncated", "garbage"])
def test_an_unreadable_cache_is_ignored_with_a_warning_and_rebuilt(
    app, folder, tmp_path, damage, caplog
):
    first = ImageSearch(app, folder, cache_dir=tmp_path / "cache", progress=False).refresh()
    data = first.cache_path.read_bytes()
    damaged = {"empty": b"", "truncated": data[: len(data) // 2], "garbage": b"PK\x03\x04" * 9}
    first.cache_path.write_bytes(damaged[damage])
    with caplog.at_level("WARNING"):
        again = ImageSearch(app, folder, cache_dir=tmp_path / "cache", progress=False).refresh()
    assert again.embedded_count == 5  # rebuilt from the images
    assert "ignoring unreadable image-search cache" in caplog.text
    np.testing.assert_allclose(again.embeddings, first.embeddings, atol=1e-6)
    # ... and written back whole: the next search reads it again.
    assert (
        ImageSearch(app, folder, cache_dir=tmp_path / "cache", progress=False)
        .refresh()
        .embedded_count
        == 0
    )


def test_two_writers_of_one_cache_never_collide_or_leave_a_broken_file(app, folder, tmp_path):
    import threading

    writers = [
        ImageSearch(app, folder, cache_dir=tmp_path / "cache", progress=False).refresh()
        for _ in range(2)
    ]
    errors = []

    def write_many(search):
        try:
            for _ in range(25):
                search._write_cache()
        except Exception as error:  # the old shared temp name: FileNotFoundError
            errors.append(error)

    threads = [threading.Thread(target=write_many, args=(w,)) for w in writers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [writers[0].cache_path.name]
    reader = ImageSearch(app, folder, cache_dir=tmp_path / "cache", progress=False).refresh()
    assert reader.embedded_count == 0


def test_search_embeds_free_text_through_the_bundled_text_encoder(
    tmp_path_factory, folder, tmp_path
):
    pushed = tu.make_pushed_model(tmp_path_factory.mktemp("search_encoder"), text_encoder=True)
    app = load(pushed["serving_dir"])
    search = ImageSearch(app, folder, cache_dir=tmp_path / "cache", progress=False)
    # "a" and "on" are not words of the encoder (nor of the vocabulary): free text works.
    got = search.search("a red ship on tree", k=3)
    paths = sorted(folder.rglob("*.png")) + sorted(folder.rglob("*.jpg"))
    embeddings = app.embed_images([str(p) for p in paths])
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    cosines = embeddings @ tu.text_vector("red ship tree", pushed["vectors"])
    order = np.argsort(-cosines, kind="stable")[:3]
    assert [p for p, _ in got] == [str(paths[i]) for i in order]
    np.testing.assert_allclose([s for _, s in got], cosines[order], atol=1e-5)
