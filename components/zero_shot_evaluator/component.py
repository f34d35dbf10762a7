"""ZeroShotEvaluator: the zero-shot evaluation of a trained DeViSE model, as a TFX component.

DeViSE (Frome et al., NIPS 2013) exists to name classes it never saw. This component
scores the DeviseTrainer's model on the held-out seen images (`eval` split) and on the
images of the unseen classes (`unseen` split) against the label vectors of EVERY class,
and writes a `devise.ZeroShotReport` artifact (``report.json`` + ``report.md``) with
flat hit@k, zero-shot hit@k in the paper's "-0" and "+seen" protocols, generalized
zero-shot u/s/H (Xian et al., 2017), the ConSE baseline (Norouzi et al., 2014) from the
softmax backbone when it is wired in, and hierarchical precision@k over WordNet 3.0.
"""

from __future__ import annotations

import math

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from components.artifacts import LabelEmbeddings, ZeroShotReport
from components.zero_shot_evaluator import executor
from devise_keras.zero_shot import DEFAULT_K_VALUES
from devise_keras.zero_shot_metrics import check_k_values


class ZeroShotEvaluatorSpec(ComponentSpec):
    """Inputs, outputs and execution properties of ZeroShotEvaluator."""

    PARAMETERS = {
        executor.K_VALUES_KEY: ExecutionParameter(type=str),  # JSON list of ints
        executor.CONSE_TOP_T_KEY: ExecutionParameter(type=int),
        executor.WORDNET_DIR_KEY: ExecutionParameter(type=str, optional=True),
        executor.BATCH_SIZE_KEY: ExecutionParameter(type=int, optional=True),
        executor.GZSL_CALIBRATION_KEY: ExecutionParameter(type=float, optional=True),
    }
    INPUTS = {
        executor.EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
        executor.MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
        executor.LABEL_EMBEDDINGS_KEY: ChannelParameter(type=LabelEmbeddings),
        executor.BASE_MODEL_KEY: ChannelParameter(type=standard_artifacts.Model, optional=True),
    }
    OUTPUTS = {
        executor.REPORT_KEY: ChannelParameter(type=ZeroShotReport),
    }


class ZeroShotEvaluator(base_component.BaseComponent):
    """Writes the zero-shot report of a DeViSE model (see the module docstring).

    Args:
        examples: Examples of ImageExampleGen (splits `eval` and `unseen`, and
            ``class_split.json``).
        model: the DeviseTrainer's Model; its ``Format-Serving/assets.extra/`` app
            bundle holds ``model.keras`` and ``config.json`` (image size).
        label_embeddings: LabelEmbeddings of every class, seen and unseen.
        base_model: optional Model of the backbone Trainer; ``<uri>/softmax/model.keras``
            is the softmax classifier over the seen classes (the Softmax and ConSE rows).
        k_values: hit@k cut-offs; each is capped by the size of the label set it ranks.
        conse_top_t: T of ConSE (capped by the number of seen classes).
        wordnet_dir: folder of WordNet's ``index.noun``/``data.noun``; "" looks in the
            Debian location. Without WordNet, hierarchical precision is skipped and the
            report says why.
        batch_size: images scored per batch.
        gzsl_calibration: calibrated-stacking gamma (`EvalConfig.gzsl_calibration`):
            when set, the report also has GZSL u/s/H with gamma subtracted from the
            seen labels' scores; None leaves it out.

    Outputs:
        report: `devise.ZeroShotReport` with ``report.json`` and ``report.md``.

    Example::

        zero_shot = ZeroShotEvaluator(
            examples=example_gen.outputs["examples"],
            model=trainer.outputs["model"],
            label_embeddings=embedding_gen.outputs["label_embeddings"],
            base_model=backbone_trainer.outputs["model"],
        )
    """

    SPEC_CLASS = ZeroShotEvaluatorSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(
        self,
        examples: types.BaseChannel,
        model: types.BaseChannel,
        label_embeddings: types.BaseChannel,
        base_model: types.BaseChannel | None = None,
        k_values=DEFAULT_K_VALUES,
        conse_top_t: int = 10,
        wordnet_dir: str = "",
        batch_size: int = 256,
        gzsl_calibration: float | None = None,
    ):
        ks = check_k_values(k_values)
        if isinstance(conse_top_t, bool) or not isinstance(conse_top_t, int) or conse_top_t < 1:
            raise ValueError(f"conse_top_t must be an int >= 1, got {conse_top_t!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        if gzsl_calibration is not None:
            if (
                isinstance(gzsl_calibration, bool)
                or not isinstance(gzsl_calibration, int | float)
                or not math.isfinite(gzsl_calibration)
            ):
                raise ValueError(
                    f"gzsl_calibration must be a finite number or None, got {gzsl_calibration!r}"
                )
            gzsl_calibration = float(gzsl_calibration)
        spec = ZeroShotEvaluatorSpec(
            examples=examples,
            model=model,
            label_embeddings=label_embeddings,
            base_model=base_model,
            k_values=executor.json.dumps(ks),
            conse_top_t=conse_top_t,
            wordnet_dir=wordnet_dir,
            batch_size=batch_size,
            gzsl_calibration=gzsl_calibration,
            report=types.Channel(type=ZeroShotReport),
        )
        super().__init__(spec=spec)
