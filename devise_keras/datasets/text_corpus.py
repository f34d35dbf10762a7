"""The demo text corpus: GCIDE (Debian `dict-gcide`) plus WordNet glosses (`wordnet-base`).

DeViSE (Frome et al., NIPS 2013) trained skip-gram vectors on Wikipedia; no Wikipedia
dump reaches these machines, so the demo corpus is the Collaborative International
Dictionary of English (Webster 1913 + WordNet, `gcide.dict.dz`, a gzip file) and the
WordNet 3.0 glosses, about 6M words. `prepare_corpus` writes it as plain text, one
document per line (a dictionary entry, or a synset's lemmas and gloss), the input
CorpusGen reads with ``document_per="line"``.

Markup removed from GCIDE entries: pronunciations ``\\Ab*do"men\\``, bracketed notes
(etymologies, ``[1913 Webster]``, ``[R.]``), the braces of cross references
(``{inguinal ring}`` keeps its words) and ``--`` before citations.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

GCIDE_PACKAGE = "dict-gcide"
WORDNET_PACKAGE = "wordnet-base"
GCIDE_FILE = "/usr/share/dictd/gcide.dict.dz"
WORDNET_DIR = "/usr/share/wordnet"
WORDNET_DATA = ("data.noun", "data.verb", "data.adj", "data.adv")
CORPUS_DIR = "corpus"
CORPUS_FILE = "gcide_wordnet.txt"
MARKER_FILE = "gcide_wordnet.json"
CORPORA = ("gcide",)

_PRONUNCIATION = re.compile(r"\\[^\\\n]*\\")
_BRACKETED = re.compile(r"\[[^\[\]]*\]")
_BRACES = re.compile(r"[{}]")
_DASHES = re.compile(r"--+")
_SPACES = re.compile(r"\s+")


class CorpusSourceError(FileNotFoundError):
    """A Debian package the demo corpus needs is not installed and cannot be installed."""


def clean_gcide_entry(entry: str) -> str:
    """One GCIDE entry as one line of plain text.

    >>> clean_gcide_entry('Abdicator \\\\Ab"di*ca`tor\\\\, n.\\n   One who abdicates.\\n   [1913 Webster]')
    'Abdicator , n. One who abdicates.'
    """
    text = _PRONUNCIATION.sub(" ", entry)
    text = _BRACKETED.sub(" ", text)
    text = _BRACES.sub("", text)
    text = _DASHES.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def gcide_documents(path: str | os.PathLike = GCIDE_FILE) -> Iterator[str]:
    """Cleaned GCIDE entries (blank-line separated blocks), the database header left out."""
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
        block: list[str] = []
        for line in f:
            if line.strip():
                block.append(line)
                continue
            if block:
                yield from _finish_block(block)
                block = []
        if block:
            yield from _finish_block(block)


def _finish_block(block: list[str]) -> Iterator[str]:
    if block[0].startswith("00-database") or block[0].lstrip().startswith("Begin file"):
        return
    text = clean_gcide_entry("".join(block))
    if text:
        yield text


def wordnet_documents(wordnet_dir: str | os.PathLike = WORDNET_DIR) -> Iterator[str]:
    """Per synset: its lemmas then its gloss (``destruction devastation : the termination ...``)."""
    for name in WORDNET_DATA:
        with open(Path(wordnet_dir) / name, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("  ") or "|" not in line:
                    continue  # the license header
                head, gloss = line.split("|", 1)
                fields = head.split()
                count = int(fields[3], 16)
                lemmas = [re.sub(r"\(.*\)$", "", fields[4 + 2 * i]) for i in range(count)]
                yield " ".join(lemmas) + " : " + gloss.strip()


def ensure_packages(paths: dict[str, str]) -> None:
    """Installs the Debian packages whose files are missing (as root), or explains how."""
    missing = [pkg for pkg, path in paths.items() if not os.path.exists(path)]
    if not missing:
        return
    command = ["apt-get", "install", "-y", *missing]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        print(f"installing Debian packages {missing} (apt-get)")
        subprocess.run(["apt-get", "update", "-qq"], check=False)
        done = subprocess.run(command, check=False)
        if done.returncode == 0 and all(os.path.exists(paths[p]) for p in missing):
            return
    raise CorpusSourceError(
        f"the demo corpus needs the Debian packages {missing}: run `sudo {' '.join(command)}`"
    )


def prepare_corpus(
    data_dir: str | os.PathLike,
    *,
    gcide_path: str | os.PathLike = GCIDE_FILE,
    wordnet_dir: str | os.PathLike = WORDNET_DIR,
    progress: bool = True,
) -> dict[str, str]:
    """Writes ``<data_dir>/corpus/gcide_wordnet.txt`` (idempotent); returns its paths.

    Returns:
        {"corpus": the text file, "marker": a JSON file with documents and words}.
    """
    from tqdm import tqdm

    folder = Path(data_dir) / CORPUS_DIR
    target, marker = folder / CORPUS_FILE, folder / MARKER_FILE
    if target.is_file() and marker.is_file():
        return {"corpus": str(target), "marker": str(marker)}
    if os.fspath(gcide_path) == GCIDE_FILE and os.fspath(wordnet_dir) == WORDNET_DIR:
        ensure_packages(
            {GCIDE_PACKAGE: GCIDE_FILE, WORDNET_PACKAGE: os.path.join(WORDNET_DIR, "data.noun")}
        )
    folder.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    counts = {"gcide_documents": 0, "wordnet_documents": 0, "words": 0}
    with open(partial, "w", encoding="utf-8") as out:
        for source, documents in (
            ("gcide", gcide_documents(gcide_path)),
            ("wordnet", wordnet_documents(wordnet_dir)),
        ):
            bar = tqdm(documents, desc=f"corpus: {source}", unit=" docs", disable=not progress)
            for text in bar:
                out.write(text + "\n")
                counts[f"{source}_documents"] += 1
                counts["words"] += len(text.split())
    partial.replace(target)
    marker.write_text(json.dumps({**counts, "sources": [GCIDE_PACKAGE, WORDNET_PACKAGE]}) + "\n")
    return {"corpus": str(target), "marker": str(marker)}
