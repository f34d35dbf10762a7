"""The layer rule: the library (`devise_keras/`) never imports the TFX layer.

`devise_keras/` is the Keras library (pip-installable alone); `pipeline/`,
`components/` and the TFX stack (tfx, Beam, TFMA, TFDV, TFT, ML Metadata, kfp) call it,
never the reverse (BUILD.md, "Layout"). Checked two ways: every import statement of
every library file, at module level or inside a function, plus
`importlib.import_module("...")` strings; and a fresh process that imports every
library module and then holds none of those modules.
"""

import ast
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import devise_keras

FORBIDDEN = (
    "tfx",
    "tfx_bsl",
    "apache_beam",
    "tensorflow_model_analysis",
    "tensorflow_data_validation",
    "tensorflow_transform",
    "ml_metadata",
    "kfp",
    "kfp_pipeline_spec",
    "pipeline",
    "components",
)
LIBRARY = Path(devise_keras.__file__).parent
_IMPORT_FUNCTIONS = {"import_module", "__import__"}


def _imported_names(tree: ast.AST):
    """(line, module name) of every absolute import in `tree`, wherever it is."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            if name in _IMPORT_FUNCTIONS and isinstance(first, ast.Constant):
                if isinstance(first.value, str):
                    yield node.lineno, first.value


def forbidden_imports(source: str, filename: str) -> list[str]:
    """`file:line module` for each import of `source` that names a forbidden package."""
    return [
        f"{filename}:{line} imports {name}"
        for line, name in _imported_names(ast.parse(source, filename))
        if name.split(".")[0] in FORBIDDEN
    ]


def test_the_checker_finds_every_form_of_import():
    source = textwrap.dedent(
        """
        import os, tfx.v1
        from apache_beam import io
        import numpy as np
        def late():
            from pipeline.local_runner import run
            import components
        importlib.import_module("tensorflow_model_analysis")
        __import__("ml_metadata.proto")
        from . import relative
        from devise_keras import pipeline_like
        importlib.import_module(name_in_a_variable)
        """
    )
    assert forbidden_imports(source, "x.py") == [
        "x.py:2 imports tfx.v1",
        "x.py:3 imports apache_beam",
        "x.py:6 imports pipeline.local_runner",
        "x.py:7 imports components",
        "x.py:8 imports tensorflow_model_analysis",
        "x.py:9 imports ml_metadata.proto",
    ]


def test_no_library_file_imports_the_tfx_layer():
    files = sorted(LIBRARY.rglob("*.py"))
    assert len(files) > 30  # the whole library, not an empty glob
    found = [
        hit
        for path in files
        for hit in forbidden_imports(path.read_text(), str(path.relative_to(LIBRARY.parent)))
    ]
    assert found == []


def test_importing_every_library_module_loads_none_of_the_tfx_layer():
    modules = sorted(
        info.name for info in pkgutil.walk_packages([str(LIBRARY)], prefix="devise_keras.")
    )
    assert {"devise_keras.cli", "devise_keras.apps", "devise_keras.app_bundle"} <= set(modules)
    script = textwrap.dedent(
        f"""
        import importlib, sys
        for name in {modules!r}:
            importlib.import_module(name)
        forbidden = {FORBIDDEN!r}
        print(sorted(m for m in sys.modules if m.split(".")[0] in forbidden))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
