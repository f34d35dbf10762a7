"""devise-keras: DeViSE (Frome et al., NIPS 2013) in Keras 3.

DeViSE tops an image model with a linear projection into a word-vector space and
trains it with a hinge rank loss against unit-norm label vectors, so the model can
rank labels it never saw in training (zero-shot).

`import devise_keras` stays light (no TensorFlow): the custom Keras classes register
themselves when Keras is imported, so `keras.models.load_model("model.keras")` works
after `import devise_keras` in any process. `devise_keras.load(path)` opens a trained
model for apps (see `devise_keras.apps`).
"""

import importlib.abc
import os
import sys

# Keras 3 only. tfx imports tensorflow_transform, which sets TF_USE_LEGACY_KERAS=1
# when it is unset; Beam workers inherit the environment. Set it before TensorFlow
# is imported anywhere in this process.
os.environ["TF_USE_LEGACY_KERAS"] = "0"

__version__ = "0.1.0"

# Modules whose import registers a class with keras.saving (layers, losses, metrics
# that a saved model.keras refers to by "devise_keras>Name").
_KERAS_MODULES = (
    "devise_keras.hub_backbone",
    "devise_keras.label_similarity",
    "devise_keras.hinge_rank_loss",
    "devise_keras.label_softmax_loss",
    "devise_keras.embedding_losses",
    "devise_keras.hit_at_k",
)


def register_keras_objects() -> None:
    """Imports every module that registers a devise_keras Keras class (idempotent)."""
    import importlib

    for name in _KERAS_MODULES:
        importlib.import_module(name)


class _RegisterAfterKerasImport(importlib.abc.MetaPathFinder):
    # Importing Keras costs ~10 s, so registration waits until the process imports
    # Keras anyway: the registering modules are imported right after `keras` is.
    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras":
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        for finder in sys.meta_path:  # whoever would have found Keras without us
            find_spec = getattr(finder, "find_spec", None)
            spec = find_spec(fullname, path, target) if find_spec else None
            if spec is not None:
                break
        else:
            return None
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_register(module):
            exec_module(module)
            register_keras_objects()

        spec.loader.exec_module = exec_then_register
        return spec


def load(path, vocabulary=None, **kwargs):
    """Opens a trained DeViSE model for apps; see `devise_keras.apps.load`."""
    from devise_keras import apps

    return apps.load(path, vocabulary=vocabulary, **kwargs)


if "keras" in sys.modules:
    register_keras_objects()
elif not any(isinstance(f, _RegisterAfterKerasImport) for f in sys.meta_path):
    sys.meta_path.insert(0, _RegisterAfterKerasImport())
