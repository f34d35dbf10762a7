"""WordNet 3.0 noun hierarchy, read directly from the Debian files, for hierarchical metrics.

DeViSE (Frome et al., NIPS 2013) scores "hierarchical precision@k" over the ImageNet
(WordNet) hierarchy: a prediction near the true label in the tree counts. This module
maps label texts to noun synsets and measures hop distances between them through
their common hypernyms, reading ``index.noun`` and ``data.noun`` of the Debian
packages ``wordnet-base`` + ``wordnet-sense-index`` (``/usr/share/wordnet``) with no
extra dependency (nltk would also need a ``lexnames`` file Debian does not ship).

File format (WordNet ``wndb(5)``): an ``index.noun`` line is
``lemma pos synset_cnt p_cnt [ptr...] sense_cnt tagsense_cnt offset...`` with the
offsets in sense order (most frequent first); a ``data.noun`` line starts at the byte
offset that names its synset: ``offset lex_filenum ss_type w_cnt word lex_id ...
p_cnt [symbol offset pos source/target]... | gloss``. Hypernym pointers are ``@``
(class) and ``@i`` (instance). Header lines start with two spaces.

Fashion-MNIST label -> synset (first noun sense unless aliased; checked by
`tests/devise_keras/test_wordnet.py` against the real files):

=============  ==========  ==========================================================
label          lemma       synset (offset, gloss)
=============  ==========  ==========================================================
T-shirt/top    t-shirt     03595614 jersey, T-shirt, tee_shirt: a close-fitting pullover shirt
Trouser        trouser     04489008 trouser, pant: a garment extending from the waist ...
Pullover       pullover    04021028 pullover, slipover: a sweater put on over the head
Dress          dress       03236735 dress, frock: a one-piece garment for a woman
Coat           coat        03057021 coat: an outer garment that has sleeves
Sandal         sandal      04133789 sandal: a shoe consisting of a sole fastened by straps
Shirt          shirt       04197391 shirt: a garment worn on the upper half of the body
Sneaker        sneaker     03472535 gym_shoe, sneaker, tennis_shoe: a canvas shoe
Bag            bag         02773037 bag: a flexible container with a single opening
Ankle boot     boot        02872752 boot: footwear that covers the whole foot and lower leg
=============  ==========  ==========================================================

"Ankle boot" has no WordNet lemma, so it maps to its hypernym "boot"; "T-shirt/top"
(and its folder name "T-shirt_top") maps to "t-shirt" rather than to "top".

The paper's large-scale protocol (section 4.3, ImageNet-21K) ranks each image among
ALL noun synsets: `noun_synset_texts` gives every synset's id and a text to embed
("dog: a member of the genus Canis ..."), and `WordNet.synsets_within_hops` the
synsets a prediction may hit to count within h hops (for
`devise_keras.zero_shot.open_set_hit_at_k`).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

DEBIAN_PACKAGES = "wordnet-base wordnet-sense-index"
DEFAULT_DIRS = ("/usr/share/wordnet",)
INDEX_FILE = "index.noun"
DATA_FILE = "data.noun"
HYPERNYM_POINTERS = ("@", "@i")

# Label text -> WordNet lemma, for labels whose own text is not a noun lemma or whose
# first sense is the wrong one. Matched on the exact label, then case-insensitively.
FASHION_MNIST_SYNSET_ALIASES = {
    "T-shirt/top": "t-shirt",
    "T-shirt_top": "t-shirt",
    "T-shirt top": "t-shirt",
    "Ankle boot": "boot",
    "Ankle_boot": "boot",
}


class WordNetNotFoundError(FileNotFoundError):
    """No WordNet noun files where they were looked for."""


def _parse_data_line(line: str, where: str) -> tuple[int, list[str], list[int], str]:
    """(offset, words, class + instance hypernym offsets, gloss) of one data.noun line."""
    fields, _, gloss = line.partition(" | ")
    fields = fields.split()
    try:
        offset = int(fields[0])
        word_count = int(fields[3], 16)
        words = fields[4 : 4 + 2 * word_count : 2]
        at = 4 + 2 * word_count
        pointer_count = int(fields[at])
        hypernyms = []
        for i in range(pointer_count):
            symbol, target, pos = fields[at + 1 + 4 * i : at + 4 + 4 * i]
            if symbol in HYPERNYM_POINTERS and pos == "n":
                hypernyms.append(int(target))
    except (IndexError, ValueError):
        raise ValueError(f"{where}: not a data.noun synset line: {line[:120]!r}") from None
    if len(words) != word_count:
        raise ValueError(f"{where}: not a data.noun synset line: {line[:120]!r}")
    return offset, words, hypernyms, gloss.strip()


def iter_noun_synsets(
    directory: str | os.PathLike,
) -> Iterator[tuple[int, list[str], list[int], str]]:
    """Every noun synset of ``<directory>/data.noun``, in file (offset) order.

    Yields:
        (offset, words, hypernym offsets, gloss): the synset id (its byte offset in
        data.noun), its lemmas in WordNet's order, its class (``@``) and instance
        (``@i``) hypernyms, and the gloss (definition; examples after "; ").
    """
    path = Path(directory) / DATA_FILE
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, start=1):
            if line.startswith("  ") or not line.strip():
                continue  # licence header
            yield _parse_data_line(line, f"{path}:{number}")


def synset_text(words: Sequence[str], gloss: str) -> str:
    """The text a synset is embedded by: "<first lemma, underscores as spaces>: <gloss>".

    Example:
    >>> synset_text(["tee_shirt", "T-shirt"], "a short-sleeved pullover")
    'tee shirt: a short-sleeved pullover'
    """
    if not words:
        raise ValueError("a synset without words has no text")
    return f"{words[0].replace('_', ' ')}: {gloss}"


def noun_synset_texts(wordnet_dir: str | os.PathLike = "") -> tuple[list[int], list[str]]:
    """Ids and texts of ALL WordNet noun synsets (82,115 in WordNet 3.0).

    The candidate labels of the paper's ImageNet-21K protocol (Frome et al., NIPS 2013,
    section 4.3), where an image is ranked among every noun synset: embed the texts
    (e.g. with a text encoder) and search them with `devise_keras.LabelIndex`.

    Args:
        wordnet_dir: folder of ``data.noun``; "" looks where `find_wordnet_dir` does.

    Returns:
        (synset_ids, texts): the synsets' data.noun offsets (the ids `WordNet` uses),
        ascending, and one `synset_text` per synset, e.g.
        "dog: a member of the genus Canis (probably descended from the common wolf) ...".

    Example::

        ids, texts = noun_synset_texts()
        len(ids)  # 82115
    """
    directory = find_wordnet_dir([wordnet_dir] if wordnet_dir else None)
    ids, texts = [], []
    for offset, words, _, gloss in iter_noun_synsets(directory):
        ids.append(offset)
        texts.append(synset_text(words, gloss))
    return ids, texts


def find_wordnet_dir(candidates: Sequence[str | os.PathLike] | None = None) -> Path:
    """The folder holding ``index.noun`` and ``data.noun`` (Debian: /usr/share/wordnet).

    Args:
        candidates: folders to try first; then the Debian location and the folder
            `dpkg -L wordnet-base` names.

    Raises:
        WordNetNotFoundError naming the packages to install.
    """
    folders = [Path(c) for c in (candidates or [])] + [Path(d) for d in DEFAULT_DIRS]
    try:
        listed = subprocess.run(
            ["dpkg", "-L", "wordnet-base"], capture_output=True, text=True, check=False
        ).stdout.split()
        folders += [Path(p).parent for p in listed if p.endswith("/" + DATA_FILE)]
    except OSError:  # no dpkg: not a Debian system
        pass
    for folder in folders:
        if (folder / INDEX_FILE).is_file() and (folder / DATA_FILE).is_file():
            return folder
    tried = ", ".join(str(f) for f in dict.fromkeys(folders))
    raise WordNetNotFoundError(
        f"WordNet 3.0 noun files ({INDEX_FILE}, {DATA_FILE}) not found in: {tried}. "
        f"Install them with `apt-get install {DEBIAN_PACKAGES}` (Debian/Ubuntu) or pass "
        "the folder that holds them."
    )


def lemma_forms(label: str) -> list[str]:
    """Candidate noun lemmas of a label text, most literal first.

    Lower case with spaces (and "/" or "_") as underscores first, then also hyphens as
    underscores ("T-shirt" stays "t-shirt", which WordNet lists with its hyphen).

    Example:
    >>> lemma_forms("Ankle boot"), lemma_forms("golden-retriever")
    (['ankle_boot'], ['golden-retriever', 'golden_retriever'])
    """
    base = "_".join(str(label).strip().lower().replace("/", " ").replace("_", " ").split())
    forms = [base, base.replace("-", "_")]
    return list(dict.fromkeys(f for f in forms if f))


class WordNet:
    """The WordNet 3.0 noun hierarchy: label -> synset, and hop distances between synsets.

    DeViSE's hierarchical precision@k (Frome et al., NIPS 2013, Table 1/3) counts a
    prediction as correct when it lies within a few hops of the true label in this
    hierarchy. The distance of two synsets is the shortest path through a common
    hypernym: min over shared ancestors a of hops(s -> a) + hops(t -> a), following
    class (``@``) and instance (``@i``) hypernym pointers.

    Args:
        directory: folder with ``index.noun`` and ``data.noun`` (default:
            `find_wordnet_dir()`).
        aliases: label text -> lemma overrides, applied before `lemma_forms`
            (default: `FASHION_MNIST_SYNSET_ALIASES`).

    Example::

        wn = WordNet()
        wn.distance(wn.synset("dog"), wn.synset("cat"))  # 4: both carnivores
        matrix, report = wn.label_distances(["Sandal", "Sneaker", "Bag"])
    """

    def __init__(
        self,
        directory: str | os.PathLike | None = None,
        aliases: Mapping[str, str] | None = None,
    ):
        self.directory = Path(directory) if directory is not None else find_wordnet_dir()
        for name in (INDEX_FILE, DATA_FILE):
            if not (self.directory / name).is_file():
                raise WordNetNotFoundError(
                    f"{self.directory / name} is missing: not a WordNet dict folder "
                    f"(install with `apt-get install {DEBIAN_PACKAGES}`)"
                )
        self.aliases = dict(FASHION_MNIST_SYNSET_ALIASES if aliases is None else aliases)
        self._folded_aliases = {k.casefold(): v for k, v in self.aliases.items()}
        self._senses = self._read_index(self.directory / INDEX_FILE)
        self._records: dict[int, tuple[list[str], list[int], str]] = {}
        self._ancestors: dict[int, dict[int, int]] = {}
        self._hyponyms: dict[int, list[int]] | None = None

    @staticmethod
    def _read_index(path: Path) -> dict[str, list[int]]:
        senses: dict[str, list[int]] = {}
        with open(path, encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, start=1):
                if line.startswith("  ") or not line.strip():
                    continue  # licence header
                fields = line.split()
                try:
                    pointer_count = int(fields[3])
                    sense_count = int(fields[4 + pointer_count])
                    offsets = fields[6 + pointer_count : 6 + pointer_count + sense_count]
                    senses[fields[0]] = [int(o) for o in offsets]
                except (IndexError, ValueError):
                    raise ValueError(f"{path}:{number}: not an index.noun line: {line!r}") from None
        return senses

    def _record(self, offset: int) -> tuple[list[str], list[int], str]:
        """(words, hypernym offsets, gloss) of the synset at byte `offset` of data.noun."""
        if offset not in self._records:
            with open(self.directory / DATA_FILE, "rb") as f:
                f.seek(offset)
                line = f.readline().decode("utf-8", errors="replace")
            fields = line.split(maxsplit=1)
            if not fields or not fields[0].isdigit() or int(fields[0]) != offset:
                raise ValueError(
                    f"{self.directory / DATA_FILE}: no synset at offset {offset} "
                    "(index.noun and data.noun are from different WordNet versions?)"
                )
            _, words, hypernyms, gloss = _parse_data_line(
                line, f"{self.directory / DATA_FILE}@{offset}"
            )
            self._records[offset] = (words, hypernyms, gloss)
        return self._records[offset]

    def lemma_for(self, label: str) -> str | None:
        """The noun lemma a label maps to (after aliases), or None."""
        target = self.aliases.get(label, self._folded_aliases.get(str(label).casefold()))
        for text in ([target] if target else []) + [label]:
            for form in lemma_forms(text):
                if form in self._senses:
                    return form
        return None

    def synset(self, label: str, sense: int = 1) -> int | None:
        """Offset of the label's noun synset (first sense by default), or None."""
        lemma = self.lemma_for(label)
        if lemma is None:
            return None
        offsets = self._senses[lemma]
        if not 1 <= sense <= len(offsets):
            raise ValueError(f"{lemma!r} has {len(offsets)} noun senses, asked for {sense}")
        return offsets[sense - 1]

    def words(self, offset: int) -> list[str]:
        """The lemmas of a synset (e.g. ['dog', 'domestic_dog', 'Canis_familiaris'])."""
        return list(self._record(offset)[0])

    def gloss(self, offset: int) -> str:
        return self._record(offset)[2]

    def hypernyms(self, offset: int) -> list[int]:
        """Direct class and instance hypernyms of a synset."""
        return list(self._record(offset)[1])

    def text(self, offset: int) -> str:
        """The synset's `synset_text` ("dog: a member of the genus Canis ...")."""
        words, _, gloss = self._record(offset)
        return synset_text(words, gloss)

    def hyponyms(self, offset: int) -> list[int]:
        """Direct class and instance hyponyms: the synsets naming this one as hypernym.

        The first call reads all of data.noun once (about a second for WordNet 3.0),
        so hyponyms are exactly the reversed hypernym pointers `hypernyms` follows.
        """
        if self._hyponyms is None:
            hyponyms: dict[int, list[int]] = {}
            for child, words, parents, gloss in iter_noun_synsets(self.directory):
                self._records.setdefault(child, (words, parents, gloss))
                for parent in parents:
                    hyponyms.setdefault(parent, []).append(child)
            self._hyponyms = hyponyms
        return list(self._hyponyms.get(offset, ()))

    def synsets_within_hops(self, offset: int, max_hops: int) -> dict[int, int]:
        """Every synset at most `max_hops` from `offset` -> its `distance` in hops.

        Hops are counted as `distance` counts them: up hypernym edges to a common
        ancestor, then down hyponym edges, so ``synsets_within_hops(a, h)[b] ==
        distance(a, b)`` for every b within h. The synset itself is at 0. A
        breadth-first walk: up to h levels of ancestors, then down from each.

        Args:
            offset: the synset (e.g. `synset("dog")`).
            max_hops: the radius h >= 0 (the paper's 2-hop / 3-hop sets use 2 and 3).

        Example::

            wn = WordNet()
            near = wn.synsets_within_hops(wn.synset("dog"), 2)
            near[wn.synset("wolf")]  # 2: both canines
        """
        if isinstance(max_hops, bool) or not isinstance(max_hops, int) or max_hops < 0:
            raise ValueError(f"max_hops must be an int >= 0, got {max_hops!r}")
        found: dict[int, int] = {}
        for ancestor, up in self.ancestors(offset).items():
            if up > max_hops:
                continue
            frontier, hops = [ancestor], up
            while frontier and hops <= max_hops:
                following = []
                for node in frontier:
                    if found.get(node, max_hops + 1) > hops:
                        found[node] = hops
                        following.extend(self.hyponyms(node) if hops < max_hops else ())
                frontier, hops = following, hops + 1
        return found

    def open_set_id(self, label: str) -> int | str:
        """A dataset label's id among the WordNet candidates: its synset, else the label.

        A label that maps to a noun synset (`synset`: the label, after `aliases`, as
        a whole noun lemma - "Ankle boot" via its alias "boot", "golden retriever" as
        "golden_retriever" - first sense) IS that synset; any other label stays a
        candidate of its own, hit only exactly.
        """
        offset = self.synset(label)
        return str(label) if offset is None else offset

    def neighbourhood(self, open_set_id: int | str, max_hops: int) -> dict[int | str, int]:
        """`synsets_within_hops` of a synset id; {label: 0} for a label without synset."""
        if isinstance(open_set_id, str):
            return {open_set_id: 0}
        return dict(self.synsets_within_hops(int(open_set_id), max_hops))

    def ancestors(self, offset: int) -> dict[int, int]:
        """Every hypernym ancestor (and the synset itself, at 0) -> fewest hops up to it."""
        if offset not in self._ancestors:
            hops = {offset: 0}
            frontier = [offset]
            while frontier:
                following = []
                for node in frontier:
                    for parent in self.hypernyms(node):
                        if parent not in hops:
                            hops[parent] = hops[node] + 1
                            following.append(parent)
                frontier = following
            self._ancestors[offset] = hops
        return self._ancestors[offset]

    def distance(self, a: int, b: int) -> float:
        """Fewest hops between two synsets through a common hypernym (inf if none)."""
        up_a, up_b = self.ancestors(a), self.ancestors(b)
        common = up_a.keys() & up_b.keys()
        return float(min(up_a[c] + up_b[c] for c in common)) if common else float("inf")

    def label_distances(self, labels: Sequence[str]) -> tuple[np.ndarray, list[dict]]:
        """(L, L) hop distances between labels, and a per-label mapping report.

        Labels without a noun synset are counted, not fatal: their row and column are
        inf (0 on the diagonal), and the report says ``"synset": None``.
        """
        offsets = [self.synset(label) for label in labels]
        report = []
        for label, offset in zip(labels, offsets, strict=True):
            entry = {"label": label, "lemma": self.lemma_for(label), "synset": offset}
            if offset is not None:
                entry["words"] = self.words(offset)
            report.append(entry)
        n = len(labels)
        matrix = np.full((n, n), np.inf)
        np.fill_diagonal(matrix, 0.0)
        for i in range(n):
            for j in range(i + 1, n):
                if offsets[i] is not None and offsets[j] is not None:
                    matrix[i, j] = matrix[j, i] = self.distance(offsets[i], offsets[j])
        return matrix, report
