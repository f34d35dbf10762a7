"""Keyword descriptions of the emoji classes, for a text encoder's label texts.

DeViSE (Frome et al., NIPS 2013) embeds a label by its name; a sentence encoder can
embed a description too (`devise_keras.label_texts`). For the emoji data set
(`devise_keras.datasets.emoji`) the descriptions are the keywords two MIT-licensed npm
packages give every emoji:

    package                 file                      per emoji
    emojilib@4.0.3          dist/emoji-en-US.json     char -> [name, keywords...]
    emojibase-data@17.0.0   en/data.json              hexcode, label, tags

A class (from ``classes.json``) is matched by its code points with U+FE0F dropped (the
packages disagree on the presentation selector). Its text is emojilib's keywords other
than the name (``_`` read as a space), then emojibase's tags not already there, each
once, in that order, joined by ``", "`` (`keyword_text`). `prepare_emoji_keywords`
writes ``<data_dir>/emoji/label_texts.csv`` (``label,text``, what
`EmbeddingConfig.label_texts` reads) and appends both licenses to ``LICENSES.md``.

Run it by hand: ``python -m devise_keras.datasets.emoji_keywords [DATA_DIR]``.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from devise_keras.datasets.emoji import CLASSES_FILE, LICENSES_FILE, SUBDIR
from devise_keras.datasets.npm import (
    NpmPackage,
    TarballError,
    fetch_npm_tarball,
    read_tarball_members,
)
from devise_keras.label_texts import LABEL_COLUMN, TEXT_COLUMN

PACKAGES = {
    "emojilib": NpmPackage(
        "emojilib",
        "4.0.3",
        "sha512-KbWiYre9aRSaPbHrHZIz9zmoM+21LAsK1VFJtnTh1VCtWE/rNMDviGhQTmselFl95dhqtGlY22iH0leG5BuW0g==",
        "MIT",
    ),
    "emojibase": NpmPackage(
        "emojibase-data",
        "17.0.0",
        "sha512-Yvgb5AWoHViHV/gq1qr5ZAarcBip+B27/ZLRsUJkbgAEaLlZ/fof9g882LTpmEpyhBNEC0m2SEmItljHsTygjA==",
        "MIT",
    ),
}
MEMBERS = {"emojilib": "package/dist/emoji-en-US.json", "emojibase": "package/en/data.json"}
LICENSE_MEMBER = "package/LICENSE"
LABEL_TEXTS_FILE = "label_texts.csv"
# The heading of the section appended to LICENSES.md (replaced, never duplicated).
LICENSES_HEADING = "## Label texts: emojilib and emojibase-data (MIT)"
_SELECTOR = "FE0F"


class EmojiKeywordsError(ValueError):
    """A keyword package is unreadable, or the emoji classes file is missing."""


@dataclasses.dataclass(frozen=True)
class KeywordMatch:
    """Descriptions of the emoji classes and which classes a package lacked.

    Args:
        texts: label -> keyword text, for classes with at least one keyword.
        missing_emojilib: labels whose emoji emojilib does not list.
        missing_emojibase: labels whose emoji emojibase does not list.
    """

    texts: dict[str, str]
    missing_emojilib: list[str]
    missing_emojibase: list[str]


def code_point_key(hexcodes: str) -> str:
    """Upper-case code points joined by ``-``, U+FE0F dropped (``2602-fe0f`` -> ``2602``)."""
    parts = [p.upper() for p in hexcodes.replace(" ", "-").split("-") if p]
    return "-".join(p for p in parts if p != _SELECTOR)


def char_key(emoji: str) -> str:
    """`code_point_key` of an emoji string (``"☂️"`` -> ``2602``)."""
    return code_point_key("-".join(f"{ord(c):X}" for c in emoji))


def keyword_text(emojilib_entry: Sequence[str] | None, tags: Iterable[str] | None) -> str:
    """emojilib's keywords after the name, then emojibase's new tags, joined by ", ".

    Example:
    >>> keyword_text(["red_apple", "fruit", "mac", "school"], ["apple", "fruit", "red"])
    'fruit, mac, school, apple, red'
    >>> keyword_text(None, ["ripe_fruit"])
    'ripe fruit'
    """
    words: list[str] = []
    seen: set[str] = set()
    for word in [*list(emojilib_entry or [])[1:], *list(tags or [])]:
        word = " ".join(str(word).replace("_", " ").split())
        if word and word.casefold() not in seen:
            seen.add(word.casefold())
            words.append(word)
    return ", ".join(words)


def match_keywords(
    classes: Sequence[Mapping[str, Any]],
    emojilib: Mapping[str, Sequence[str]],
    emojibase: Sequence[Mapping[str, Any]],
) -> KeywordMatch:
    """Keyword texts of `classes` (``classes.json`` records with ``label`` and ``unified``).

    Args:
        classes: the emoji classes.
        emojilib: emojilib's ``emoji-en-US.json`` (emoji char -> [name, keywords...]).
        emojibase: emojibase-data's ``en/data.json`` (records with ``hexcode``, ``tags``).

    Example:
    >>> match_keywords(
    ...     [{"label": "umbrella", "unified": "2602-FE0F"}],
    ...     {"\\u2602\\ufe0f": ["umbrella", "rain", "weather"]},
    ...     [{"hexcode": "2602", "tags": ["rain", "clothing"]}],
    ... ).texts
    {'umbrella': 'rain, weather, clothing'}
    """
    by_char = {char_key(char): entry for char, entry in emojilib.items()}
    by_hex = {code_point_key(str(r.get("hexcode", ""))): r.get("tags") or [] for r in emojibase}
    texts: dict[str, str] = {}
    missing_lib: list[str] = []
    missing_base: list[str] = []
    for record in classes:
        label, key = record["label"], code_point_key(record["unified"])
        entry, tags = by_char.get(key), by_hex.get(key)
        if entry is None:
            missing_lib.append(label)
        if tags is None:
            missing_base.append(label)
        text = keyword_text(entry, tags)
        if text:
            texts[label] = text
    return KeywordMatch(texts, missing_lib, missing_base)


def write_label_texts(path: str | os.PathLike, labels: Sequence[str], texts: Mapping[str, str]):
    """Writes ``label,text`` rows for the labels (in order) that have a text."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow([LABEL_COLUMN, TEXT_COLUMN])
        writer.writerows([label, texts[label]] for label in labels if label in texts)


def read_packages(sources: Mapping[str, str | os.PathLike]) -> tuple[dict, list, dict]:
    """(emojilib JSON, emojibase JSON, {package key: license bytes}) from the tarballs."""
    data, licenses = {}, {}
    for key, member in MEMBERS.items():
        spec, path = PACKAGES[key].spec, sources[key]
        if not Path(path).is_file():
            raise EmojiKeywordsError(f"the {spec} tarball {str(path)!r} does not exist")
        try:
            found = read_tarball_members(path, {member, LICENSE_MEMBER})
        except TarballError as e:
            raise EmojiKeywordsError(f"{spec}: {e}") from e
        if member not in found:
            raise EmojiKeywordsError(f"{path} ({spec}) has no {member}")
        try:
            data[key] = json.loads(found[member])
        except ValueError as e:
            raise EmojiKeywordsError(f"{path} ({spec}): {member} is not valid JSON ({e})") from e
        if LICENSE_MEMBER in found:
            licenses[key] = found[LICENSE_MEMBER]
    if not isinstance(data["emojilib"], dict) or not isinstance(data["emojibase"], list):
        raise EmojiKeywordsError(
            "emojilib's file must be a JSON object and emojibase's a JSON list; are the "
            "tarballs the right packages?"
        )
    return data["emojilib"], data["emojibase"], licenses


def prepare_emoji_keywords(
    data_dir: str | os.PathLike,
    *,
    tarballs: Mapping[str, str | os.PathLike] | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Writes ``<data_dir>/emoji/label_texts.csv`` for the classes of ``classes.json``.

    Args:
        data_dir: the folder holding ``emoji/`` (written by `prepare_emoji`).
        tarballs: {"emojilib": .tgz, "emojibase": .tgz} to read instead of fetching the
            pinned packages (for fixtures and offline copies).
        cache_dir: where fetched tarballs are kept (default ``~/.cache/devise-keras/npm``).
        progress: show npm's output.

    Returns:
        ``label_texts`` (the CSV path), ``num_classes``, ``num_with_text``,
        ``missing_emojilib`` and ``missing_emojibase`` (labels a package lacks).

    Example::

        info = prepare_emoji_keywords(".devise-data")
        EmbeddingConfig(text_encoder=handle, label_texts=info["label_texts"])
    """
    root = Path(data_dir).expanduser() / SUBDIR
    classes_path = root / CLASSES_FILE
    if not classes_path.is_file():
        raise EmojiKeywordsError(
            f"{classes_path} does not exist; prepare the emoji data first (prepare_emoji)"
        )
    classes = json.loads(classes_path.read_text(encoding="utf-8"))["classes"]
    if tarballs is None:
        if cache_dir is None:
            from devise_keras.data_cache import NPM_SUBDIR, cache_subdir

            cache_dir = cache_subdir(NPM_SUBDIR)
        tarballs = {
            key: fetch_npm_tarball(package, cache_dir, progress=progress)
            for key, package in PACKAGES.items()
        }
    emojilib, emojibase, licenses = read_packages(tarballs)
    match = match_keywords(classes, emojilib, emojibase)
    target = root / LABEL_TEXTS_FILE
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    write_label_texts(partial, [c["label"] for c in classes], match.texts)
    os.replace(partial, target)  # readers never see a half-written file
    _append_licenses(root / LICENSES_FILE, licenses)
    return {
        "label_texts": str(target),
        "num_classes": len(classes),
        "num_with_text": len(match.texts),
        "missing_emojilib": match.missing_emojilib,
        "missing_emojibase": match.missing_emojibase,
    }


def _append_licenses(path: Path, licenses: Mapping[str, bytes]) -> None:
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    if LICENSES_HEADING in text:  # a second run replaces its own section
        text = text[: text.index(LICENSES_HEADING)]
    lines = [
        LICENSES_HEADING,
        "",
        f"{LABEL_TEXTS_FILE} (the label descriptions a text encoder embeds) joins the emoji",
        "keywords of these npm packages:",
        "",
    ]
    for key, package in PACKAGES.items():
        lines += [f"### {package.spec} ({package.license})", ""]
        shipped = licenses.get(key)
        lines.append(shipped.decode("utf-8").strip() if shipped else "(no license file shipped)")
        lines.append("")
    path.write_text(text.rstrip("\n") + "\n\n" + "\n".join(lines), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    info = prepare_emoji_keywords(args[0] if args else ".devise-data")
    print(json.dumps(info, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
