"""quiet_tensorflow sets log defaults only: a user's own setting wins."""

import os
import subprocess
import sys

from devise_keras.quiet import drop_load_notices, quiet_tensorflow


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


NOTICES = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    "I0000 00:00:1796425573.265693   24506 port.cc:153] oneDNN custom operations are on. "
    "You may see slightly different numerical results.\n"
    "I0000 00:00:1796425573.266086   24506 cudart_stub.cc:31] Could not find cuda drivers on "
    "your machine, GPU will not be used.\n"
    "I0000 00:00:1796425573.327383   24506 cpu_feature_guard.cc:227] This TensorFlow binary "
    "is optimized to use available CPU instructions in performance-critical operations.\n"
    "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow "
    "with the appropriate compiler flags.\n"
)
REAL = (
    "E0000 00:00:1796425576.003440   24506 cuda_platform.cc:52] failed call to cuInit\n"
    "I0000 00:00:1796425576.1   24506 saver.cc:10] restoring variables\n"
    "Traceback (most recent call last):\n"
)


def test_only_the_load_notices_are_dropped():
    assert drop_load_notices(NOTICES) == ""
    assert drop_load_notices(NOTICES + REAL) == REAL
    assert drop_load_notices("partial line without newline") == "partial line without newline"


def _run(tmp_path, fake_tensorflow: str | None, **env):
    if fake_tensorflow is not None:
        (tmp_path / "tensorflow.py").write_text(fake_tensorflow)
    code = (
        "import sys\n"
        "from devise_keras.quiet import import_tensorflow_quietly\n"
        "try:\n"
        "    import_tensorflow_quietly()\n"
        "finally:\n"
        "    print('after', file=sys.stderr)\n"
    )
    environ = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    path = [str(tmp_path)] if fake_tensorflow is not None else []
    environ["PYTHONPATH"] = os.pathsep.join(path + sys.path)
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environ, timeout=300
    )


def test_a_real_message_written_during_the_import_is_kept(tmp_path):
    fake = f"import os\nos.write(2, {(NOTICES + REAL).encode()!r})\n"
    result = _run(tmp_path, fake)
    assert result.returncode == 0
    assert result.stderr == REAL + "after\n"


def test_a_failing_import_keeps_its_output_and_raises(tmp_path):
    fake = (
        f"import os\nos.write(2, {NOTICES.encode()!r} + b'boom\\n')\nraise ImportError('no TF')\n"
    )
    result = _run(tmp_path, fake)
    assert result.returncode == 1
    assert result.stderr.startswith("boom\nafter\nTraceback")
    assert "ImportError: no TF" in result.stderr


def test_log_level_zero_shows_everything(tmp_path):
    fake = f"import os\nos.write(2, {NOTICES.encode()!r})\n"
    result = _run(tmp_path, fake, TF_CPP_MIN_LOG_LEVEL="0")
    assert result.stderr == NOTICES + "after\n"


def test_importing_the_real_tensorflow_prints_nothing(tmp_path):
    # FutureWarning: google-api-core's Python 3.10 notice (a Python warning; the CLI filters it).
    result = _run(tmp_path, None, PYTHONWARNINGS="ignore::FutureWarning")
    assert result.returncode == 0, result.stderr
    assert result.stderr == "after\n"
