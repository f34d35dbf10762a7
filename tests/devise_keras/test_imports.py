"""Every module that registers a Keras class imports first in a fresh process.

Importing Keras runs devise_keras' registration hook, which imports all of them; a
module that takes a name from another one at import time would then meet it half
initialised (a circular ImportError), but only when it is the process's first import.
"""

import os
import subprocess
import sys

import pytest

import devise_keras


@pytest.mark.parametrize("module", devise_keras._KERAS_MODULES)
def test_a_registering_module_imports_first_in_a_fresh_process(module):
    result = subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr[-1500:]
