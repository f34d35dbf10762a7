"""Label text -> word vector, the first step of DeViSE (Frome et al., NIPS 2013).

DeViSE embeds every label with the word vector of its name. Label names are rarely
single vocabulary words (``golden retriever``, ``Ankle_boot``, ``T-shirt/top``), so each
label is matched by the first of these rules that finds a vector:

1. an alias (JSON object or 2-column TSV, plus the built-in Fashion-MNIST aliases of
   `devise_keras.datasets.glove`), whose target goes through rules 2-5; the method is
   recorded as ``alias:<rule>``;
2. ``exact``: the label as it is;
3. ``casefold``: any case variant (``Cat`` for ``cat``); the most frequent one wins;
4. ``phrase``: the words joined by ``_`` or ``-`` (``golden retriever`` ->
   ``golden_retriever``, as in the GoogleNews phrases), exact then case-folded;
5. ``token_mean``: the mean of the vectors of the lower-cased tokens
   (tensorflow-text `WhitespaceTokenizer` over the label with ``_``/``/`` read as
   spaces; a token without a vector is split once more with `UnicodeScriptTokenizer`,
   so ``t-shirt`` can fall back to ``t`` + ``shirt``). Tokens without a vector are
   dropped and recorded as ``missing``.

Labels with no vector follow the OOV policy: ``"error"`` raises one `OOVError`
listing every such label with the forms tried, ``"skip"`` drops them, ``"random"``
gives each a seeded random unit vector; both are recorded in the match report.

All candidate forms of all labels are computed up front (`plan_lookups`), so one
streaming pass over the vectors file (`devise_keras.word_vectors.read_vectors_for`
with ``key=str.casefold``) finds everything.
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
import json
import os
import re
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from devise_keras import storage
from devise_keras.label_embeddings import LabelEmbeddings

OOV_POLICIES = ("error", "skip", "random")
_PHRASE_SEPARATORS = re.compile(r"[\s_\-/]+")
_TOKEN_SEPARATORS = re.compile(r"[_/]+")
_PUNCTUATION_ONLY = re.compile(r"^\W+$")


class OOVError(ValueError):
    """Labels without a vector under ``oov_policy="error"``, or no label matched at all."""


@dataclasses.dataclass(frozen=True)
class LookupPlan:
    """Every form to look up for a set of labels, computed before reading vectors.

    DeViSE (Frome et al., NIPS 2013) needs a vector per label name; planning all
    forms first lets one streaming pass over a multi-GB vectors file serve them all.

    Args:
        labels: the label texts, in order.
        candidates: per label, the forms to try (see `plan_lookups`).
        exact: words to look up as they are.
        casefolded: case-folded forms; a file word is needed when its casefold is here.

    Example:
    >>> plan = plan_lookups(["golden retriever"])
    >>> sorted(plan.exact)
    ['golden', 'golden retriever', 'golden-retriever', 'golden_retriever', 'retriever']
    >>> plan.wants("Golden_Retriever")
    True
    """

    labels: tuple[str, ...]
    candidates: tuple[dict[str, Any], ...]
    exact: frozenset[str]
    casefolded: frozenset[str]

    @property
    def wanted_words(self) -> frozenset[str]:
        """The set to pass to `read_vectors_for` together with ``key=str.casefold``."""
        return self.exact | self.casefolded

    def wants(self, word: str) -> bool:
        return word in self.exact or word.casefold() in self.casefolded


def load_aliases(path: str | os.PathLike = "", *, defaults: bool = True) -> dict[str, str]:
    """Reads an alias file: a JSON object ``{label: word}`` or TSV lines ``label<TAB>word``.

    With `defaults`, the built-in aliases (Fashion-MNIST's ``T-shirt/top`` and its
    folder name ``T-shirt_top``) come first and the file overrides them.
    """
    aliases: dict[str, str] = {}
    if defaults:
        from devise_keras.datasets.glove import DEFAULT_ALIASES

        aliases.update(DEFAULT_ALIASES)
    if not path:
        return aliases
    path = os.fspath(path)
    if not storage.isfile(path):
        raise FileNotFoundError(f"alias file {path!r} does not exist (embeddings.aliases_path)")
    text = storage.read_text(path)
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"alias file {path}: invalid JSON ({e})") from None
        if not isinstance(data, dict):
            raise ValueError(f"alias file {path}: expected a JSON object {{label: word}}")
        bad = {k: v for k, v in data.items() if not isinstance(v, str) or not v.strip()}
        if bad:
            raise ValueError(f"alias file {path}: values must be non-empty strings, got {bad}")
        aliases.update({str(k): v.strip() for k, v in data.items()})
        return aliases
    # Plain tab splitting, not the csv module: labels may contain quotes.
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip() or line.startswith("#"):
            continue
        row = line.split("\t")
        if len(row) != 2 or not row[0] or not row[1].strip():
            raise ValueError(
                f"alias file {path}: line {number}: expected 'label<TAB>word', got {line!r}"
            )
        aliases[row[0]] = row[1].strip()
    return aliases


def plan_lookups(labels: list[str], aliases: Mapping[str, str] | None = None) -> LookupPlan:
    """Computes every candidate form of every label (alias, exact, phrase, tokens).

    Aliases are matched on the exact label, then case-insensitively.
    """
    labels = [str(label) for label in labels]
    aliases = dict(aliases or {})
    folded_aliases = {k.casefold(): v for k, v in aliases.items()}
    texts = list(labels)
    for label in labels:
        target = aliases.get(label, folded_aliases.get(label.casefold()))
        if target is not None:
            texts.append(target)
    tokens = dict(zip(texts, _tokenize(texts), strict=True))
    candidates = []
    exact: set[str] = set()
    casefolded: set[str] = set()
    for label in labels:
        target = aliases.get(label, folded_aliases.get(label.casefold()))
        forms = {"label": label, "chains": []}
        texts_to_try = ([(target, True)] if target is not None else []) + [(label, False)]
        for text, is_alias in texts_to_try:
            chain = {
                "text": text,
                "alias": is_alias,
                "phrases": _phrase_forms(text),
                "tokens": tokens[text],
            }
            forms["chains"].append(chain)
            exact.add(text)
            casefolded.add(text.casefold())
            exact.update(chain["phrases"])
            casefolded.update(p.casefold() for p in chain["phrases"])
            for token, subtokens in chain["tokens"]:
                exact.add(token)
                casefolded.add(token.casefold())
                exact.update(subtokens)
                casefolded.update(s.casefold() for s in subtokens)
        candidates.append(forms)
    return LookupPlan(tuple(labels), tuple(candidates), frozenset(exact), frozenset(casefolded))


def match_labels(
    plan: LookupPlan,
    vectors: Mapping[str, np.ndarray],
    dim: int,
    *,
    ranks: Mapping[str, int] | None = None,
    oov_policy: str = "error",
    seed: int = 0,
    source: str = "",
    metadata: Mapping[str, Any] | None = None,
) -> LabelEmbeddings:
    """Matches each planned label to a vector and builds unit-norm `LabelEmbeddings`.

    Args:
        plan: from `plan_lookups`.
        vectors: word -> vector, holding (at least) the words the plan wants, e.g.
            from `read_vectors_for(path, plan.wanted_words, key=str.casefold)`.
        dim: vector width (needed for random vectors).
        ranks: word -> frequency rank, to pick the most frequent case variant
            (default: the order of `vectors`).
        oov_policy: "error", "skip" or "random".
        seed: seed of the random vectors (each label's vector depends only on the
            seed and the label text).
        source: where the vectors came from, named in errors and stored.
        metadata: extra metadata for the result.

    Returns:
        `LabelEmbeddings` in plan order (skipped labels left out); its
        `match_report` has one record per label: ``label``, ``method`` (exact,
        casefold, phrase, token_mean, alias:<method>, random or skipped), ``words``
        (the file words used), ``missing`` (tokens without a vector) and, for
        unmatched labels, ``tried``.

    Example:
    >>> import numpy as np
    >>> plan = plan_lookups(["Ankle_boot"])
    >>> emb = match_labels(plan, {"ankle": np.array([1.0, 0]), "boot": np.array([0, 1.0])}, 2)
    >>> emb.match_report[0]["method"], emb.match_report[0]["words"]
    ('token_mean', ['ankle', 'boot'])
    """
    if oov_policy not in OOV_POLICIES:
        raise ValueError(f"oov_policy must be one of {OOV_POLICIES}, got {oov_policy!r}")
    by_fold = _casefold_index(vectors, ranks)
    labels, rows, records, unmatched = [], [], [], []
    for forms in plan.candidates:
        record, vector = _match_one(forms, vectors, by_fold)
        if vector is None:
            unmatched.append(record)
            if oov_policy == "skip":
                record["method"] = "skipped"
            elif oov_policy == "random":
                record["method"] = "random"
                vector = _random_unit_vector(forms["label"], dim, seed)
        else:
            vector = np.asarray(vector, dtype=np.float32)
            if vector.shape != (dim,):
                raise ValueError(
                    f"label {forms['label']!r}: vector has shape {vector.shape}, expected ({dim},)"
                )
        records.append(record)
        if vector is not None:
            labels.append(forms["label"])
            rows.append(vector)
    where = source or "the word vectors"
    if len(unmatched) == len(plan.labels) and plan.labels:
        raise OOVError(
            f"none of the {len(plan.labels)} labels has a vector in {where} "
            f"(right file and format? {_describe_unmatched(unmatched[:5])})"
        )
    if unmatched and oov_policy == "error":
        raise OOVError(
            f"{len(unmatched)} of {len(plan.labels)} labels have no vector in {where}:\n"
            + _describe_unmatched(unmatched)
            + "\nFix: map them to words in an alias file (embeddings.aliases_path: JSON "
            '{"label": "word"} or TSV label<TAB>word), or set embeddings.oov_policy to '
            "'skip' or 'random', or use a larger vectors file."
        )
    methods: dict[str, int] = {}
    for record in records:
        methods[record["method"]] = methods.get(record["method"], 0) + 1
    meta = {
        **(metadata or {}),
        "oov_policy": oov_policy,
        "match_methods": methods,
        "skipped_labels": [r["label"] for r in records if r["method"] == "skipped"],
        "random_labels": [r["label"] for r in records if r["method"] == "random"],
    }
    matrix = np.stack(rows) if rows else np.zeros((0, dim), np.float32)
    return LabelEmbeddings(labels, matrix, source, meta, records)


def embed_labels(
    labels: list[str],
    vectors_path: str | os.PathLike,
    *,
    format: str = "auto",
    vocab_path: str = "",
    aliases_path: str | os.PathLike = "",
    oov_policy: str = "error",
    seed: int = 0,
) -> LabelEmbeddings:
    """Label texts -> `LabelEmbeddings`, in one streaming pass over `vectors_path`.

    Example (GloVe prepared by `devise_keras.datasets.glove.prepare_glove`)::

        paths = prepare_glove("~/.cache/devise-keras")
        emb = embed_labels(["Ankle_boot", "T-shirt_top"], paths["vectors"],
                           vocab_path=paths["vocab"])
    """
    from devise_keras.word_vectors import read_vectors_for

    plan = plan_lookups(labels, load_aliases(aliases_path))
    vectors, dim, info = read_vectors_for(
        vectors_path, plan.wanted_words, format, vocab_path, key=str.casefold
    )
    return match_labels(
        plan,
        vectors,
        dim,
        ranks=info["ranks"],
        oov_policy=oov_policy,
        seed=seed,
        source=os.fspath(vectors_path),
        metadata={"format": info["format"]},
    )


def normalize_text(text: str) -> str:
    """Lower-cases `text` and reads ``_`` and ``/`` as spaces, before tokenization.

    The one normalisation of label texts and of the corpus text skip-gram vectors are
    trained on (`text_words`), so a label's tokens are the corpus's words.

    >>> normalize_text("Ankle_boot T-shirt/top")
    'ankle boot t-shirt top'
    """
    return _TOKEN_SEPARATORS.sub(" ", text).lower()


def text_words(texts: list[str]) -> list[list[str]]:
    """The words of running text as label matching sees them (for skip-gram corpora).

    Each text goes through `normalize_text` and the tokenizers of rule 5: a
    whitespace token is kept when tensorflow-text's `UnicodeScriptTokenizer` leaves
    it whole, otherwise it is replaced by its sub-tokens; punctuation-only pieces
    are dropped. So ``"Boots, t-shirts."`` gives ``boots t shirts``, the words
    ``token_mean`` looks up for ``t-shirts``.

    >>> text_words(["Boots, t-shirts."])
    [['boots', 't', 'shirts']]
    """
    words = []
    for row in _tokenize(texts):
        out = []
        for token, subtokens in row:
            if subtokens:
                out.extend(subtokens)
            elif not _PUNCTUATION_ONLY.match(token):
                out.append(token)
        words.append(out)
    return words


def _tokenize(texts: list[str]) -> list[list[tuple[str, list[str]]]]:
    """Per text: [(lower-cased token, its sub-tokens without punctuation-only ones)]."""
    if not texts:
        return []
    whitespace_split, script_split = _tokenizers()
    words = whitespace_split([normalize_text(t) for t in texts]).to_list()
    sub: dict[bytes, list[str]] = {}
    to_split = []
    for word in {w for row in words for w in row}:
        # ASCII letters only, or ASCII digits only: one script, so UnicodeScriptTokenizer
        # keeps the word whole; skipping it here makes corpus tokenization ~10x faster.
        if word.isalpha() or word.isdigit():
            sub[word] = []
        else:
            to_split.append(word)
    if to_split:
        pieces = script_split(to_split).to_list()
        for word, parts in zip(to_split, pieces, strict=True):
            decoded = [p.decode("utf-8") for p in parts]
            sub[word] = [
                p for p in decoded if not _PUNCTUATION_ONLY.match(p) and p != word.decode()
            ]
    return [[(w.decode("utf-8"), sub[w]) for w in row] for row in words]


@functools.lru_cache(maxsize=1)
def _tokenizers():
    """tensorflow-text's tokenizers as graph functions (eagerly, their ragged ops cost
    ~0.5 s of Python per call, whatever the batch size)."""
    import tensorflow as tf
    import tensorflow_text as tft

    spec = [tf.TensorSpec([None], tf.string)]
    whitespace = tft.WhitespaceTokenizer()
    script = tft.UnicodeScriptTokenizer()
    # Dropped before interpreter shutdown, when TensorFlow can still free them.
    atexit.register(_tokenizers.cache_clear)
    return (
        tf.function(whitespace.tokenize, input_signature=spec),
        tf.function(script.tokenize, input_signature=spec),
    )


def _phrase_forms(text: str) -> list[str]:
    parts = [p for p in _PHRASE_SEPARATORS.split(text.strip()) if p]
    if len(parts) < 2:
        return []
    return list(dict.fromkeys(sep.join(parts) for sep in ("_", "-")))


def _casefold_index(
    vectors: Mapping[str, np.ndarray], ranks: Mapping[str, int] | None
) -> dict[str, str]:
    words = list(vectors)
    if ranks is not None:
        words.sort(key=lambda w: ranks.get(w, len(ranks)))
    index: dict[str, str] = {}
    for word in words:
        index.setdefault(word.casefold(), word)
    return index


def _match_one(forms, vectors, by_fold) -> tuple[dict[str, Any], np.ndarray | None]:
    label = forms["label"]
    tried: list[str] = []
    for chain in forms["chains"]:
        prefix = "alias:" if chain["alias"] else ""
        found = _match_chain(chain, vectors, by_fold, tried)
        if found is not None:
            method, words, missing, vector = found
            record = {"label": label, "method": prefix + method, "words": words, "missing": missing}
            if prefix:
                record["alias"] = chain["text"]
            return record, vector
    return {"label": label, "method": "oov", "words": [], "missing": [], "tried": tried}, None


def _match_chain(chain, vectors, by_fold, tried):
    text = chain["text"]
    tried.append(text)
    if text in vectors:
        return "exact", [text], [], vectors[text]
    tried.append(f"casefold:{text.casefold()}")
    if text.casefold() in by_fold:
        word = by_fold[text.casefold()]
        return "casefold", [word], [], vectors[word]
    for phrase in chain["phrases"]:
        tried.append(phrase)
        word = phrase if phrase in vectors else by_fold.get(phrase.casefold())
        if word is not None:
            return "phrase", [word], [], vectors[word]
    if not chain["tokens"]:
        return None
    tried.append("tokens:" + " ".join(t for t, _ in chain["tokens"]))
    used, missing = [], []
    for token, subtokens in chain["tokens"]:
        word = _lookup(token, vectors, by_fold)
        if word is not None:
            used.append(word)
            continue
        found = [w for w in (_lookup(s, vectors, by_fold) for s in subtokens) if w is not None]
        if found:
            used.extend(found)
        else:
            missing.append(token)
    if not used:
        return None
    vector = np.mean([np.asarray(vectors[w], dtype=np.float32) for w in used], axis=0)
    return "token_mean", used, missing, vector


def _lookup(word: str, vectors, by_fold) -> str | None:
    if word in vectors:
        return word
    return by_fold.get(word.casefold())


def _random_unit_vector(label: str, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, zlib.crc32(label.encode("utf-8"))])
    vector = rng.standard_normal(dim).astype(np.float32)
    return vector / np.linalg.norm(vector)


def _describe_unmatched(records: list[dict[str, Any]]) -> str:
    return "\n".join(f"  {r['label']!r}: tried {', '.join(r['tried'])}" for r in records)
