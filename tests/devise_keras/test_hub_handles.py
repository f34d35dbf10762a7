"""hub_handles.resolve without tensorflow_hub, against a TF-Hub-like server on 127.0.0.1.

The server answers `<path>?tf-hub-format=compressed` with a tar.gz built here (a tiny text
encoder SavedModel, or a hostile archive), so nothing leaves the machine.
"""

import hashlib
import http.server
import io
import os
import socket
import sys
import tarfile
import threading

import numpy as np
import pytest

from devise_keras import hub_handles
from devise_keras.hub_backbone import HubLoadError, resolve_handle
from devise_keras.text_encoder import TextEncoder, TextEncoderError
from tests.text_encoder_testutil import write_bag_of_words_encoder


def _tar_gz(members) -> bytes:
    """members: (name, bytes) for files, (name, None) for folders, (name, "->target") links."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in members:
            info = tarfile.TarInfo(name)
            if content is None:
                info.type = tarfile.DIRTYPE
                archive.addfile(info)
            elif isinstance(content, str):
                info.type = tarfile.SYMTYPE
                info.linkname = content.removeprefix("->")
                archive.addfile(info)
            else:
                info.size = len(content)
                archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _saved_model_tar_gz(model_dir) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.add(model_dir, arcname=".")  # TF-Hub archives hold ./saved_model.pb, ...
    return buffer.getvalue()


@pytest.fixture
def server():
    """A TF-Hub-like server: `routes[path] = (status, body)`; `requests` lists the paths."""
    routes, requests = {}, []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            status, body = routes.get(self.path, (404, b"not found"))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.routes, httpd.requests = routes, requests
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def no_hub(monkeypatch, tmp_path):
    """tensorflow_hub unimportable, an empty TF-Hub cache, and no proxy for 127.0.0.1."""
    monkeypatch.setitem(sys.modules, "tensorflow_hub", None)
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "hub_cache"))
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "hub_cache"


@pytest.fixture(scope="module")
def encoder_tar_gz(tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("encoder") / "model"
    write_bag_of_words_encoder(str(model_dir), {"red": [1.0, 0.0, 0.0], "blue": [0.0, 0.0, 2.0]})
    return _saved_model_tar_gz(model_dir)


COMPRESSED = "?tf-hub-format=compressed"


def test_compressed_url_appends_the_format_query_to_existing_ones():
    assert hub_handles.compressed_url("https://h/m/1") == "https://h/m/1?tf-hub-format=compressed"
    assert (
        hub_handles.compressed_url("https://h/m/1?a=b")
        == "https://h/m/1?a=b&tf-hub-format=compressed"
    )


def test_cache_folder_is_tensorflow_hubs_sha1_of_the_handle(monkeypatch, tmp_path):
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path))
    handle = "https://tfhub.dev/google/nnlm-en-dim50/2"
    assert hub_handles.cached_module_dir(handle) == str(
        tmp_path / hashlib.sha1(handle.encode()).hexdigest()
    )
    monkeypatch.delenv("TFHUB_CACHE_DIR")
    assert hub_handles.cache_dir().endswith(os.sep + "tfhub_modules")


def test_text_encoder_downloads_once_without_tensorflow_hub(server, no_hub, encoder_tar_gz):
    server.routes["/enc/1" + COMPRESSED] = (200, encoder_tar_gz)
    handle = server.url + "/enc/1"

    encoder = TextEncoder(handle)

    expected_dir = no_hub / hashlib.sha1(handle.encode()).hexdigest()
    assert encoder.path == str(expected_dir)
    assert (expected_dir / "saved_model.pb").is_file()
    np.testing.assert_allclose(encoder.encode(["red", "blue"]), [[1, 0, 0], [0, 0, 1]])
    # The second resolve is a cache hit: no request; nothing left besides the module folder.
    assert hub_handles.resolve(handle) == str(expected_dir)
    assert server.requests == ["/enc/1" + COMPRESSED]
    assert sorted(os.listdir(no_hub)) == [expected_dir.name]


def test_tensorflow_hub_reads_the_cache_written_without_it(
    server, no_hub, encoder_tar_gz, monkeypatch
):
    server.routes["/enc/2" + COMPRESSED] = (200, encoder_tar_gz)
    handle = server.url + "/enc/2"
    path = hub_handles.resolve(handle)
    monkeypatch.delitem(sys.modules, "tensorflow_hub")
    hub = pytest.importorskip("tensorflow_hub")
    assert hub.resolve(handle) == path
    assert len(server.requests) == 1  # tensorflow_hub found it cached


def test_http_error_names_the_handle_and_status(server, no_hub):
    handle = server.url + "/missing/1"
    with pytest.raises(HubLoadError, match=r"backbone handle '.*/missing/1'.*HTTP 404"):
        resolve_handle(handle)
    assert not no_hub.exists() or os.listdir(no_hub) == []


def test_unreachable_server_names_the_handle_and_suggests_a_local_path(no_hub):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handle = f"http://127.0.0.1:{port}/enc/1"
    with pytest.raises(TextEncoderError) as error:
        TextEncoder(handle)
    message = str(error.value)
    assert handle in message and "local SavedModel directory" in message
    assert "TFHUB_CACHE_DIR" in message


def test_a_body_that_is_not_a_tar_archive_is_refused(server, no_hub):
    server.routes["/html/1" + COMPRESSED] = (200, b"<html>sign in</html>")
    with pytest.raises(hub_handles.HubHandleError, match="did not send a tar archive"):
        hub_handles.resolve(server.url + "/html/1")
    assert os.listdir(no_hub) == []


@pytest.mark.parametrize(
    "members, problem",
    [
        ([("saved_model.pb", b"x"), ("../escaped.txt", b"x")], "leaving its folder"),
        ([("variables/../../escaped.txt", b"x")], "leaving its folder"),
        ([("/tmp/escaped.txt", b"x")], "absolute path"),
        ([("saved_model.pb", b"x"), ("evil", "->/etc/passwd")], "link"),
    ],
)
def test_unsafe_archive_members_are_refused_and_nothing_is_kept(
    server, no_hub, members, problem, tmp_path
):
    server.routes["/evil/1" + COMPRESSED] = (200, _tar_gz(members))
    with pytest.raises(hub_handles.HubHandleError, match=problem):
        hub_handles.resolve(server.url + "/evil/1")
    assert os.listdir(no_hub) == []  # neither the module folder nor its temp folder
    assert not (tmp_path / "escaped.txt").exists()


def test_an_archive_without_a_saved_model_is_rejected(server, no_hub):
    server.routes["/notes/1" + COMPRESSED] = (200, _tar_gz([("notes.txt", b"hello")]))
    with pytest.raises(hub_handles.HubHandleError, match="not a SavedModel directory"):
        hub_handles.resolve(server.url + "/notes/1")


def test_paths_are_used_as_is_and_a_missing_one_is_named(tmp_path):
    model_dir = write_bag_of_words_encoder(str(tmp_path / "m"), {"red": [1.0, 0.0]})
    assert hub_handles.resolve(model_dir) == model_dir
    with pytest.raises(hub_handles.HubHandleError, match="no_such_dir.*neither an existing"):
        hub_handles.resolve(str(tmp_path / "no_such_dir"))
    with pytest.raises(hub_handles.HubHandleError, match="non-empty string"):
        hub_handles.resolve("")
