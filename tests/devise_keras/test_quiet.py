"""quiet_tensorflow sets log defaults only: a user's own setting wins."""

import os

from devise_keras.quiet import quiet_tensorflow


def test_quiet_tensorflow_sets_defaults(monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    monkeypatch.delenv("GRPC_VERBOSITY", raising=False)
    quiet_tensorflow()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3"
    assert os.environ["GRPC_VERBOSITY"] == "ERROR"


def test_a_users_log_level_is_kept(monkeypatch):
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    monkeypatch.setenv("GRPC_VERBOSITY", "DEBUG")
    quiet_tensorflow()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"
    assert os.environ["GRPC_VERBOSITY"] == "DEBUG"
