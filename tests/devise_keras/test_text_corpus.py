"""The GCIDE + WordNet demo corpus: markup stripped, one document per line, idempotent."""

from __future__ import annotations

import gzip
import json

from devise_keras.datasets.text_corpus import (
    clean_gcide_entry,
    gcide_documents,
    prepare_corpus,
    wordnet_documents,
)

GCIDE = """00-database-short
   The Collaborative International Dictionary of English v.0.48

Abdomen \\Ab*do"men\\, n. [L. abdomen (a word of uncertain
   etymol.): cf. F. abdomen.]
   1. (Anat.) The belly. --Cowell.
      [1913 Webster]

   {Abdominal ring} (Anat.), an opening.
      [1913 Webster]

"""
WORDNET = (
    "  1 This software and database is being provided\n"
    "00217499 04 n 02 disaster 0 calamity(a) 0 001 @ 00217014 n 0000 | an act that has "
    'disastrous consequences; "it was a disaster"  \n'
)


def test_gcide_markup_is_stripped():
    assert clean_gcide_entry(
        'Abdicator \\Ab"di*ca`tor\\, n.\n   One who abdicates.\n   [1913 Webster]'
    ) == ("Abdicator , n. One who abdicates.")


def test_documents_and_prepare(tmp_path):
    dz = tmp_path / "gcide.dict.dz"
    with gzip.open(dz, "wt") as f:
        f.write(GCIDE)
    (tmp_path / "wn").mkdir()
    for name in ("data.noun", "data.verb", "data.adj", "data.adv"):
        (tmp_path / "wn" / name).write_text(WORDNET if name == "data.noun" else "")
    assert list(gcide_documents(dz)) == [
        "Abdomen , n. 1. (Anat.) The belly. Cowell.",
        "Abdominal ring (Anat.), an opening.",
    ]
    assert list(wordnet_documents(tmp_path / "wn")) == [
        'disaster calamity : an act that has disastrous consequences; "it was a disaster"'
    ]
    paths = prepare_corpus(tmp_path / "data", gcide_path=dz, wordnet_dir=tmp_path / "wn",
                           progress=False)  # fmt: skip
    lines = open(paths["corpus"], encoding="utf-8").read().splitlines()
    assert len(lines) == 3
    marker = json.loads(open(paths["marker"]).read())
    assert marker["gcide_documents"] == 2 and marker["wordnet_documents"] == 1
    assert marker["words"] == sum(len(line.split()) for line in lines)
    assert prepare_corpus(tmp_path / "data", gcide_path=dz, wordnet_dir=tmp_path / "wn") == paths
