"""`create_pipeline`: the devise-keras TFX pipeline, pure (no flags, no environment reads).

ImageExampleGen -> StatisticsGen -> SchemaGen -> ExampleValidator -> LabelEmbeddingGen
(fed by CorpusGen -> SkipGramTrainer when `embeddings.train_from_corpus` is set)
-> backbone Trainer (softmax CNN; skipped when the config names a TF-Hub handle or
SavedModel) -> DeviseTrainer -> ZeroShotEvaluator (zero-shot report) -> Evaluator (flat
hit@k, gated) -> Pusher.
"""

from __future__ import annotations

from tfx import v1 as tfx

from components.corpus_gen.component import CorpusGen
from components.devise_trainer.component import DeviseTrainer
from components.image_example_gen.component import ImageExampleGen
from components.label_embedding_gen.component import LabelEmbeddingGen
from components.pusher.component import Pusher
from components.skipgram_trainer.component import SkipGramTrainer
from components.zero_shot_evaluator.component import ZeroShotEvaluator
from devise_keras.config import DeviseConfig
from pipeline.eval_config import build_eval_config

BACKBONE_RUN_FN = "devise_keras.trainer_module.backbone_run_fn"
DEVISE_RUN_FN = "devise_keras.trainer_module.run_fn"
# The config each trainer reads (custom_config is in TFX's cache key: an Evaluator
# threshold or a Beam option must not retrain). k_values names the trainers' hit@k metrics;
# embeddings goes into the DeViSE app bundle's config.json (its paths as provenance only).
BACKBONE_CONFIG_SECTIONS = ("model", "train", "eval.k_values", "serving")
DEVISE_CONFIG_SECTIONS = ("embeddings", "model", "train", "eval.k_values", "serving")


def create_pipeline(
    config: DeviseConfig,
    *,
    pipeline_root: str,
    serving_dir: str,
    metadata_connection_config=None,
    enable_cache: bool = True,
) -> tfx.dsl.Pipeline:
    """The devise-keras pipeline for `config`.

    Args:
        config: the whole run configuration (data, embeddings, model, train, eval).
        pipeline_root: where TFX writes artifacts.
        serving_dir: Pusher's base directory; blessed models land in `<serving_dir>/<version>/`.
        metadata_connection_config: MLMD connection (None: the orchestrator's default).
        enable_cache: reuse outputs of unchanged components.
    """
    example_gen = ImageExampleGen.from_data_config(config.data)
    examples = example_gen.outputs["examples"]
    statistics_gen = tfx.components.StatisticsGen(examples=examples)
    schema_gen = tfx.components.SchemaGen(
        statistics=statistics_gen.outputs["statistics"], infer_feature_shape=True
    )
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
    )
    components = [example_gen, statistics_gen, schema_gen, example_validator]
    word_vectors = None
    if config.embeddings.train_from_corpus is not None:
        corpus_gen = CorpusGen.from_config(config.embeddings.train_from_corpus)
        skipgram_trainer = SkipGramTrainer.from_config(
            corpus_gen.outputs["corpus"], config.embeddings.train_from_corpus
        )
        word_vectors = skipgram_trainer.outputs["word_vectors"]
        components += [corpus_gen, skipgram_trainer]
    embedding_gen = LabelEmbeddingGen.from_config(examples, config.embeddings, word_vectors)
    components.append(embedding_gen)

    base_model = None
    if not config.model.backbone:
        backbone_trainer = tfx.components.Trainer(
            examples=examples,
            run_fn=BACKBONE_RUN_FN,
            custom_config={"config": config.sections(*BACKBONE_CONFIG_SECTIONS)},
        ).with_id("BackboneTrainer")
        base_model = backbone_trainer.outputs["model"]
        components.append(backbone_trainer)

    # The open vocabulary travels in the model's app bundle (the apps' default vocabulary).
    open_vocabulary = None
    if config.embeddings.open_vocabulary_size > 0:
        open_vocabulary = embedding_gen.outputs["open_vocabulary"]
    trainer = DeviseTrainer(
        examples=examples,
        label_embeddings=embedding_gen.outputs["label_embeddings"],
        open_vocabulary=open_vocabulary,
        base_model=base_model,
        run_fn=DEVISE_RUN_FN,
        custom_config={"config": config.sections(*DEVISE_CONFIG_SECTIONS)},
    )
    zero_shot_evaluator = ZeroShotEvaluator(
        examples=examples,
        model=trainer.outputs["model"],
        label_embeddings=embedding_gen.outputs["label_embeddings"],
        base_model=base_model,
        k_values=config.eval.k_values,
        gzsl_calibration=config.eval.gzsl_calibration,
    )
    baseline_resolver = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id("LatestBlessedModelResolver")
    evaluator = tfx.components.Evaluator(
        examples=examples,
        model=trainer.outputs["model"],
        baseline_model=baseline_resolver.outputs["model"],
        eval_config=build_eval_config(config),
    )
    pusher = Pusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=serving_dir)
        ),
    )
    components += [trainer, zero_shot_evaluator, baseline_resolver, evaluator, pusher]
    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=pipeline_root,
        components=components,
        enable_cache=enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=list(config.beam_pipeline_args),
    )
