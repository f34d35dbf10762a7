"""A TF-Hub image feature-vector model (or local SavedModel) as a Keras 3 layer.

`hub.KerasLayer` is a tf-keras layer and cannot live in a Keras 3 model, and
`keras.layers.TFSMLayer` neither trains with Adam (its variable names hold '/' and
':') nor survives `.keras` save/load without the original directory. `HubBackbone`
owns Keras variables for every SavedModel variable and points the restored
`__call__` functions at them (their captured variable handles are replaced), so the
optimizer, `.keras` weights and the restored graph all share one set of variables,
and the SavedModel itself is bundled into the `.keras` archive as an asset.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import weakref

import keras
import numpy as np
import tensorflow as tf

from devise_keras import graph_safety, hub_handles, storage

_BUNDLE_DIRNAME = "saved_model"


class _Untracked:
    """Holds TF objects out of Keras/TF tracking, so exports do not save them twice."""

    def __init__(self, value):
        self.value = value


class HubLoadError(ValueError):
    """A backbone handle cannot be resolved or is not a usable feature-vector SavedModel."""


def _sanitize(name: str) -> str:
    # Keras forbids '/' in variable names and Adam builds TF name scopes from them,
    # which reject ':' ("not a valid scope name").
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", name) or "variable"


def resolve_handle(handle: str) -> str:
    """Returns a SavedModel directory for a TF-Hub handle or a path (`hub_handles.resolve`).

    An existing directory (local or on an object store) is used as is; an http(s) handle is
    resolved with tensorflow_hub when it imports, else downloaded into the same TF-Hub cache.
    Raises `HubLoadError` naming the handle when that fails.
    """
    try:
        return hub_handles.resolve(handle)
    except hub_handles.HubHandleError as error:
        raise HubLoadError(f"backbone {error}") from error


def _training_values(concrete_functions) -> set:
    values = set()
    for function in concrete_functions:
        args, kwargs = function.structured_input_signature
        if "training" in kwargs and isinstance(kwargs["training"], bool):
            values.add(kwargs["training"])
        elif len(args) > 1 and isinstance(args[1], bool):
            values.add(args[1])
    return values


def _image_size(concrete_functions):
    """(height, width) when every trace fixes it, else None (any size accepted)."""
    sizes = set()
    for function in concrete_functions:
        args, _ = function.structured_input_signature
        if not args or not isinstance(args[0], tf.TensorSpec) or args[0].shape.rank != 4:
            return None
        sizes.add(tuple(args[0].shape)[1:3])
    if len(sizes) != 1:
        return None
    size = sizes.pop()
    return None if None in size else size


def _output_dim(concrete_functions):
    dims = set()
    for function in concrete_functions:
        outputs = function.structured_outputs
        if not isinstance(outputs, tf.Tensor | tf.TensorSpec) or outputs.shape.rank != 2:
            raise HubLoadError(
                "the SavedModel's __call__ must return one (batch, features) tensor, as TF-Hub "
                f"image feature-vector models do; it returns {outputs!r}"
            )
        dims.add(outputs.shape[-1])
    return dims.pop() if len(dims) == 1 else None


@keras.saving.register_keras_serializable(package="devise_keras")
class HubBackbone(keras.layers.Layer):
    """An image feature-vector SavedModel (TF-Hub handle or local path) as a Keras 3 layer.

    Implements the visual model of DeViSE (Frome et al., "DeViSE: A Deep
    Visual-Semantic Embedding Model", NIPS 2013): a pre-trained image network whose
    top layers can be fine-tuned together with the projection.

    The layer maps float32 images (batch, S, S, 3) in [0, 1] to features
    (batch, output_dim) by calling the SavedModel's `__call__(images, training)` (the
    TF-Hub reusable SavedModel convention; `export_hub_feature_vector` writes it).
    Its variables are ordinary Keras variables: it trains with any optimizer, is
    frozen with `trainable=False`, and `set_trainable_tail(n)` unfreezes only the
    last `n` SavedModel variables (the top of the network). Saving a model to
    `.keras` copies the SavedModel into the archive, so `keras.models.load_model`
    works after the original directory is gone (and without `safe_mode=False`).

    A SavedModel is a program: before loading one (from the handle, or the copy
    bundled in a `.keras` archive) the layer reads its graph as data and refuses ops
    that touch files or run Python (`graph_safety.REFUSED_OPS`) with an
    `UntrustedModelError`, unless `trust_model=True` or the load runs inside
    `graph_safety.trusted_models()` (what `devise_keras.load(..., trust_model=True)`
    opens around Keras' loader). Trust is never saved in the config.

    Args:
        handle: local SavedModel directory, or a TF-Hub/Kaggle handle resolved by
            `hub_handles.resolve` (downloaded once into TFHUB_CACHE_DIR).
        output_dim: feature width; inferred from the SavedModel when None. When given,
            it must match the SavedModel.
        trainable: whether the backbone's variables are trained (default frozen).
        freeze_batch_norm: keep the SavedModel in inference mode even while the layer
            trains (default True). A SavedModel is called whole, so with `training=True`
            every batch-norm layer, frozen or not, would normalize with batch
            statistics and overwrite its moving averages; in inference mode the
            unfrozen tail still gets gradients but the statistics stay those of
            pre-training, as Keras recommends for fine-tuning.
        trust_model: load the SavedModel without refusing file-system and Python
            ops (default False); not part of the config.
        **kwargs: standard Keras layer arguments (`name`, `dtype`, ...).

    Example:
        >>> backbone = HubBackbone("/path/to/feature_vector_savedmodel")  # doctest: +SKIP
        >>> backbone(np.zeros((2, 32, 32, 3), "float32")).shape           # doctest: +SKIP
        TensorShape([2, 256])
        >>> backbone.set_trainable_tail(4)  # fine-tune the last 4 variables  # doctest: +SKIP
    """

    def __init__(
        self,
        handle,
        output_dim=None,
        trainable=False,
        freeze_batch_norm=True,
        trust_model=False,
        _defer_loading=False,
        **kwargs,
    ):
        super().__init__(trainable=trainable, **kwargs)
        self._trust_model = bool(trust_model)
        self.handle = handle
        self.freeze_batch_norm = bool(freeze_batch_norm)
        self.output_dim = None if output_dim is None else int(output_dim)
        if self.output_dim is not None and self.output_dim <= 0:
            raise ValueError(f"output_dim must be positive, got {output_dim!r}")
        self._hub_variables = []
        self._hub_trainable = []
        self._restored = None
        self._call_fn = None
        self._saved_model_dir = None
        self._private_dir = None
        self._image_size = None
        if not _defer_loading:
            self._load_saved_model(resolve_handle(handle), create_variables=True)
            self._build_at_init()

    # -- construction from config / .keras archives --------------------------------
    @classmethod
    def from_config(cls, config):
        # Loading waits: either build_from_config recreates the variables and
        # load_assets brings the bundled SavedModel (.keras archives), or build()
        # resolves the handle (a bare config, e.g. clone_model).
        # Trust comes from the caller (trusted_models()), never from the file.
        config = {k: v for k, v in config.items() if k != "trust_model"}
        return cls(**config, _defer_loading=True)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "handle": self.handle,
                "output_dim": self.output_dim,
                "freeze_batch_norm": self.freeze_batch_norm,
            }
        )
        return config

    def get_build_config(self):
        return {
            "variables": [
                {
                    "name": variable.name,
                    "shape": list(variable.shape),
                    "dtype": variable.dtype,
                    "trainable": bool(variable.trainable),
                    "hub_trainable": hub_trainable,
                }
                for variable, hub_trainable in zip(
                    self._hub_variables, self._hub_trainable, strict=True
                )
            ]
        }

    def build_from_config(self, config):
        # Placeholder variables with the saved shapes: they exist before the
        # optimizer is rebuilt and before the weights are loaded; load_assets
        # then points the bundled SavedModel's functions at them.
        for spec in config["variables"]:
            self._hub_variables.append(
                self.add_weight(
                    name=spec["name"],
                    shape=tuple(spec["shape"]),
                    dtype=spec["dtype"],
                    trainable=bool(spec["hub_trainable"]),
                    initializer="zeros",
                )
            )
            self._hub_trainable.append(bool(spec["hub_trainable"]))
        # After creation: a Layer.trainable change resets every variable created
        # trainable, so the fine-tuning tail is restored variable by variable.
        for variable, spec in zip(self._hub_variables, config["variables"], strict=True):
            variable.trainable = bool(spec["trainable"])
        self.built = True

    def build(self, input_shape=None):
        if self._restored is None and not self._hub_variables:
            self._load_saved_model(resolve_handle(self.handle), create_variables=True)
        self.built = True

    def save_own_variables(self, store):
        for index, variable in enumerate(self._hub_variables):
            store[str(index)] = variable

    def load_own_variables(self, store):
        if len(store.keys()) != len(self._hub_variables):
            raise ValueError(
                f"HubBackbone {self.name!r} has {len(self._hub_variables)} variables but the "
                f"weights file holds {len(store.keys())}; the archive does not match this "
                f"backbone ({self.handle!r})"
            )
        for index, variable in enumerate(self._hub_variables):
            value = store[str(index)]
            if tuple(value.shape) != tuple(variable.shape):
                raise ValueError(
                    f"HubBackbone {self.name!r}: variable {variable.name!r} has shape "
                    f"{tuple(variable.shape)} but the weights file holds {tuple(value.shape)}"
                )
            variable.assign(np.asarray(value))

    def save_assets(self, dir_path):
        if self._saved_model_dir is None:
            raise ValueError(f"HubBackbone {self.name!r} has no SavedModel loaded to save")
        storage.copy_tree(self._saved_model_dir, os.path.join(dir_path, _BUNDLE_DIRNAME))

    def load_assets(self, dir_path):
        bundled = os.path.join(dir_path, _BUNDLE_DIRNAME)
        if not tf.saved_model.contains_saved_model(bundled):
            raise HubLoadError(
                f"the .keras archive has no bundled SavedModel for HubBackbone {self.name!r}"
            )
        # Keras deletes its extraction directory after loading; keep a private copy
        # that lives as long as this layer, so the model can be saved again.
        self._private_dir = tempfile.mkdtemp(prefix="devise_hub_backbone_")
        weakref.finalize(self, shutil.rmtree, self._private_dir, True)
        local = os.path.join(self._private_dir, _BUNDLE_DIRNAME)
        storage.copy_tree(bundled, local)
        if self._restored is None:
            self._load_saved_model(local, create_variables=not self._hub_variables, bundled=True)
        else:
            # Already loaded from the original handle (it still existed): keep the
            # graph, but save from the private copy from now on.
            self._saved_model_dir = local

    # -- the SavedModel ----------------------------------------------------------------
    def _load_saved_model(self, path, create_variables, bundled=False):
        what = f"backbone {self.handle!r}" + (" (bundled in the .keras archive)" if bundled else "")
        graph_safety.check_saved_model(path, what, self._trust_model)
        try:
            restored = tf.saved_model.load(path)
        except Exception as error:
            raise HubLoadError(
                f"cannot load the SavedModel of backbone {self.handle!r} from {path!r}: {error}"
            ) from error
        call = getattr(restored, "__call__", None)  # noqa: B004 (the restored tf.function)
        functions = list(getattr(call, "concrete_functions", []) or [])
        if not functions:
            raise HubLoadError(
                f"the SavedModel of backbone {self.handle!r} at {path!r} has no traced "
                "__call__; a TF2 reusable SavedModel (TF-Hub image feature vector) is needed, "
                "not a TF1 hub.Module or a signatures-only export"
            )
        output_dim = _output_dim(functions)
        if output_dim is None and self.output_dim is None:
            raise HubLoadError(
                f"the feature width of backbone {self.handle!r} is not static; pass output_dim"
            )
        if self.output_dim is None:
            self.output_dim = int(output_dim)
        elif output_dim is not None and int(output_dim) != self.output_dim:
            raise HubLoadError(
                f"backbone {self.handle!r} returns {output_dim} features but output_dim is "
                f"{self.output_dim}"
            )

        restored_vars = list(getattr(restored, "variables", None) or [])
        if not restored_vars:
            seen = set()
            for function in functions:
                for variable in function.variables:
                    if id(variable) not in seen:
                        seen.add(id(variable))
                        restored_vars.append(variable)
        trainable_ids = {
            id(v)
            for v in (getattr(restored, "trainable_variables", None) or restored_vars)
            if v.trainable
        }
        if create_variables:
            for variable in restored_vars:
                hub_trainable = id(variable) in trainable_ids
                own = self.add_weight(
                    name=_sanitize(variable.name.split(":")[0]),
                    shape=tuple(variable.shape),
                    dtype=variable.dtype.name,
                    trainable=hub_trainable,
                    initializer="zeros",
                )
                own.assign(variable)
                self._hub_variables.append(own)
                self._hub_trainable.append(hub_trainable)
        elif len(restored_vars) != len(self._hub_variables) or any(
            tuple(r.shape) != tuple(o.shape)
            for r, o in zip(restored_vars, self._hub_variables, strict=True)
        ):
            raise HubLoadError(
                f"the SavedModel of backbone {self.handle!r} has variables "
                f"{[tuple(v.shape) for v in restored_vars]} but the saved layer has "
                f"{[tuple(v.shape) for v in self._hub_variables]}"
            )

        # Point every restored function at our variables: the optimizer, the
        # .keras weights and the graph then share one set of variables.
        own_by_handle = {
            id(r.handle): o.value for r, o in zip(restored_vars, self._hub_variables, strict=True)
        }
        for function in functions:
            captures = function.captured_inputs
            function.set_external_captures(
                [own_by_handle[id(c)].handle if id(c) in own_by_handle else c for c in captures]
            )
            function.set_variables([own_by_handle.get(id(v.handle), v) for v in function.variables])
        # The restored object stays alive (it owns the functions) but untracked: our
        # variables are what a checkpoint or export must hold, not its originals.
        self._restored = _Untracked(restored)
        self._call_fn = _Untracked(call)
        self._training_modes = _Untracked(frozenset(_training_values(functions)))
        self._image_size = _image_size(functions)
        self._saved_model_dir = path

    def set_trainable_tail(self, n: int) -> None:
        """Trains only the last `n` trainable SavedModel variables (-1: all, 0: none).

        The paper fine-tunes the top of the visual model after the projection has
        converged; the SavedModel lists its variables bottom-up, so the last `n` are
        the top. Recompile the model after calling this.
        """
        if not isinstance(n, int) or n < -1:
            raise ValueError(f"n must be -1 (all) or a count >= 0, got {n!r}")
        candidates = [v for v, t in zip(self._hub_variables, self._hub_trainable, strict=True) if t]
        if n > len(candidates):
            raise ValueError(
                f"n={n} but backbone {self.handle!r} has only {len(candidates)} trainable "
                "variables"
            )
        keep = len(candidates) if n == -1 else n
        chosen = {id(v) for v in candidates[len(candidates) - keep :]} if keep else set()
        # Layer.trainable's setter flips every variable, so it goes first.
        self.trainable = keep > 0
        for variable in self._hub_variables:
            variable.trainable = id(variable) in chosen

    def call(self, inputs, training=None):
        if self._call_fn is None:
            raise HubLoadError(
                f"HubBackbone {self.name!r} has no SavedModel: it was rebuilt from a config "
                f"without its bundled asset and the handle {self.handle!r} was not loaded"
            )
        images = tf.cast(inputs, tf.float32)
        call, modes = self._call_fn.value, self._training_modes.value
        if not modes:
            return call(images)
        # A frozen backbone runs in inference mode (batch norm statistics fixed), and so
        # does a fine-tuned one unless its batch norm is explicitly left to train.
        mode = bool(training) and self.trainable and not self.freeze_batch_norm
        if mode not in modes:
            mode = next(iter(modes))
        return call(images, training=mode)

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 4 or input_shape[-1] != 3:
            raise ValueError(
                f"HubBackbone expects images (batch, height, width, 3), got {input_shape}"
            )
        expected = self._image_size
        if expected is not None and None not in input_shape[1:3]:
            if tuple(input_shape[1:3]) != expected:
                raise ValueError(
                    f"backbone {self.handle!r} takes {expected[0]}x{expected[1]} images, got "
                    f"{input_shape[1]}x{input_shape[2]}; set image_size to match the backbone"
                )
        return (input_shape[0], self.output_dim)
