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
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
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
            fields, _, gloss = line.partition(" | ")
            fields = fields.split()
            if not fields or not fields[0].isdigit() or int(fields[0]) != offset:
                raise ValueError(
                    f"{self.directory / DATA_FILE}: no synset at offset {offset} "
                    "(index.noun and data.noun are from different WordNet versions?)"
                )
            word_count = int(fields[3], 16)
            words = fields[4 : 4 + 2 * word_count : 2]
            at = 4 + 2 * word_count
            pointer_count = int(fields[at])
            hypernyms = []
            for i in range(pointer_count):
                symbol, target, pos = fields[at + 1 + 4 * i : at + 4 + 4 * i]
                if symbol in HYPERNYM_POINTERS and pos == "n":
                    hypernyms.append(int(target))
            self._records[offset] = (words, hypernyms, gloss.strip())
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
