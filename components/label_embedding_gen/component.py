"""LabelEmbeddingGen: a Beam TFX component giving every class name a unit label vector.

DeViSE (Frome et al., NIPS 2013) scores images against the word vectors of the
label names. This component reads the class vocabulary of the Examples
(``class_split.json``, written by ImageExampleGen) and the label-vector source named
by `devise_keras.config.EmbeddingConfig` (a word-vector file, trained vectors, or a
TF-Hub text encoder embedding each label's name and description), and outputs a
`devise.LabelEmbeddings` artifact, so the vectors the trainer uses are tracked in
MLMD with their source.
"""

from __future__ import annotations

from tfx import types
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from components.artifacts import LabelEmbeddings, WordVectors
from components.input_fingerprint import INPUT_FINGERPRINT_KEY
from components.label_embedding_gen import executor
from components.label_embedding_gen.driver import LabelEmbeddingGenDriver
from devise_keras.config import EmbeddingConfig


class LabelEmbeddingGenSpec(ComponentSpec):
    """Inputs, outputs and execution properties of LabelEmbeddingGen."""

    PARAMETERS = {
        executor.VECTORS_PATH_KEY: ExecutionParameter(type=str, optional=True),
        executor.VECTORS_FORMAT_KEY: ExecutionParameter(type=str, optional=True),
        executor.VOCAB_PATH_KEY: ExecutionParameter(type=str, optional=True),
        executor.ALIASES_PATH_KEY: ExecutionParameter(type=str, optional=True),
        executor.OOV_POLICY_KEY: ExecutionParameter(type=str, optional=True),
        executor.OPEN_VOCABULARY_SIZE_KEY: ExecutionParameter(type=int, optional=True),
        executor.TEXT_ENCODER_KEY: ExecutionParameter(type=str, optional=True),
        executor.LABEL_TEXTS_KEY: ExecutionParameter(type=str, optional=True),
        executor.MAX_TEXT_CHARS_KEY: ExecutionParameter(type=int, optional=True),
        executor.TEXT_BATCH_SIZE_KEY: ExecutionParameter(type=int, optional=True),
        # Filled by LabelEmbeddingGenDriver when the component runs (covered by the cache key).
        INPUT_FINGERPRINT_KEY: ExecutionParameter(type=str, optional=True),
    }
    INPUTS = {
        executor.EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
        # Vectors trained in the pipeline (SkipGramTrainer); replaces vectors_path.
        executor.WORD_VECTORS_KEY: ChannelParameter(type=WordVectors, optional=True),
    }
    OUTPUTS = {
        executor.LABEL_EMBEDDINGS_KEY: ChannelParameter(type=LabelEmbeddings),
        # Only wired when open_vocabulary_size > 0 (decided at pipeline-construction time).
        executor.OPEN_VOCABULARY_KEY: ChannelParameter(type=LabelEmbeddings, optional=True),
    }


class LabelEmbeddingGen(base_beam_component.BaseBeamComponent):
    """Unit-norm label vectors for the class vocabulary of an Examples artifact.

    The label side of DeViSE (Frome et al., NIPS 2013): each class name becomes the
    unit vector the image projection is trained to rank first. The vectors come from
    exactly one source:

    - word vectors (`vectors_path`, or the `word_vectors` channel): labels are matched
      exactly, case-folded, as ``_``-joined phrases, or as the mean of their token
      vectors, after the aliases (`devise_keras.label_matching`); labels without a
      vector follow `oov_policy`;
    - a text encoder (`text_encoder`, a TF-Hub text-embedding handle or SavedModel):
      each label's text, ``"<label>: <description>"`` with the description from
      `label_texts` or the label alone, is encoded (`devise_keras.label_texts`); no
      label is out of vocabulary. The encoder is loaded and probed once before the
      Beam job, so a bad handle fails naming it. The metadata holds ``"kind":
      "text_encoder"``, ``"text_encoder"`` (the handle as given; apps bundle the
      encoder from it), ``"label_texts_path"`` and ``"truncated_texts"``.

    The output lists all classes, seen then unseen (the label-id order), unless
    `oov_policy="skip"` dropped some; its ``match_report.json`` says how each label
    was matched (for a text encoder: the text encoded).

    Args:
        examples: Examples channel of ImageExampleGen (holds ``class_split.json``).
        vectors_path: word2vec .bin, .vec/.txt with an "N D" header, GloVe .txt, or .npy
            ("" with `word_vectors` or `text_encoder`).
        vectors_format: "auto", "word2vec_binary", "word2vec_text", "glove_text", "npy".
        vocab_path: the vocabulary of a .npy matrix (text or parquet `index` column);
            with a text encoder, the word list (one per line, most frequent first) whose
            first `open_vocabulary_size` words are encoded as the open vocabulary.
        aliases_path: JSON object or TSV mapping awkward labels to words.
        oov_policy: "error", "skip" or "random" (a unit vector seeded by the label
            text, the same on every run). "skip" drops labels, so downstream code
            must index the output by label text, not by class id.
        open_vocabulary_size: when > 0, also output `open_vocabulary`: the N most
            frequent words (with a letter) and their vectors, a label set for
            zero-shot search (with a text encoder: the first N words of `vocab_path`
            with a letter, encoded).
        word_vectors: optional `devise.WordVectors` channel (SkipGramTrainer's); when
            given, its word2vec text file is read instead of `vectors_path`.
        text_encoder: TF-Hub handle or SavedModel path of a text encoder (strings ->
            vectors) used instead of word vectors.
        label_texts: CSV ``label,text`` of label descriptions (needs `text_encoder`).
        max_text_chars: longer label texts are truncated (counted in the metadata).
        text_batch_size: texts per encoder call.

    Outputs:
        label_embeddings: `devise.LabelEmbeddings` (properties dim, num_labels, source).
        open_vocabulary: `devise.LabelEmbeddings`, present only when
            open_vocabulary_size > 0.

    Example::

        gen = LabelEmbeddingGen.from_config(example_gen.outputs["examples"], config.embeddings)
        trainer = DeviseTrainer(..., label_embeddings=gen.outputs["label_embeddings"])
        # or, from a text encoder and label descriptions:
        gen = LabelEmbeddingGen(examples, text_encoder="/models/use/4", label_texts="texts.csv")
    """

    SPEC_CLASS = LabelEmbeddingGenSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)
    DRIVER_CLASS = LabelEmbeddingGenDriver

    def __init__(
        self,
        examples: types.BaseChannel,
        vectors_path: str = "",
        vectors_format: str = "auto",
        vocab_path: str = "",
        aliases_path: str = "",
        oov_policy: str = "error",
        open_vocabulary_size: int = 0,
        word_vectors: types.BaseChannel | None = None,
        text_encoder: str = "",
        label_texts: str = "",
        max_text_chars: int = EmbeddingConfig.max_text_chars,
        text_batch_size: int = EmbeddingConfig.text_batch_size,
    ):
        if open_vocabulary_size < 0:
            raise ValueError(f"open_vocabulary_size must be >= 0, got {open_vocabulary_size}")
        sources = {
            "vectors_path": bool(vectors_path),
            "word_vectors": word_vectors is not None,
            "text_encoder": bool(text_encoder),
        }
        if sum(sources.values()) != 1:
            given = [name for name, set_ in sources.items() if set_] or "none"
            raise ValueError(
                "LabelEmbeddingGen needs exactly one of vectors_path, word_vectors and "
                f"text_encoder; given: {given} (in a DeviseConfig: embeddings.vectors_path, "
                "embeddings.train_from_corpus or embeddings.text_encoder)"
            )
        if text_encoder and open_vocabulary_size > 0 and not vocab_path:
            raise ValueError(
                "open_vocabulary_size > 0 with a text_encoder needs vocab_path (the words "
                "to encode, one per line)"
            )
        if label_texts and not text_encoder:
            raise ValueError("label_texts needs a text_encoder")
        for name, value in (
            ("max_text_chars", max_text_chars),
            ("text_batch_size", text_batch_size),
        ):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        outputs = {executor.LABEL_EMBEDDINGS_KEY: types.Channel(type=LabelEmbeddings)}
        if open_vocabulary_size > 0:
            outputs[executor.OPEN_VOCABULARY_KEY] = types.Channel(type=LabelEmbeddings)
        inputs = {} if word_vectors is None else {executor.WORD_VECTORS_KEY: word_vectors}
        spec = LabelEmbeddingGenSpec(
            examples=examples,
            **inputs,
            vectors_path=vectors_path,
            vectors_format=vectors_format,
            vocab_path=vocab_path,
            aliases_path=aliases_path,
            oov_policy=oov_policy,
            open_vocabulary_size=open_vocabulary_size,
            text_encoder=text_encoder,
            label_texts=label_texts,
            max_text_chars=max_text_chars,
            text_batch_size=text_batch_size,
            **outputs,
        )
        super().__init__(spec=spec)

    @classmethod
    def from_config(
        cls,
        examples: types.BaseChannel,
        embeddings: EmbeddingConfig,
        word_vectors: types.BaseChannel | None = None,
    ) -> LabelEmbeddingGen:
        """Builds the component from the `embeddings` section of a `DeviseConfig`
        (and the trained vectors when `embeddings.train_from_corpus` is set)."""
        return cls(
            examples=examples,
            vectors_path=embeddings.vectors_path,
            vectors_format=embeddings.vectors_format,
            vocab_path=embeddings.vocab_path,
            aliases_path=embeddings.aliases_path,
            oov_policy=embeddings.oov_policy,
            open_vocabulary_size=embeddings.open_vocabulary_size,
            word_vectors=word_vectors,
            text_encoder=embeddings.text_encoder,
            label_texts=embeddings.label_texts,
            max_text_chars=embeddings.max_text_chars,
            text_batch_size=embeddings.text_batch_size,
        )
