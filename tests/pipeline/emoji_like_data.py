"""A tiny emoji-shaped data set: a few classes x styles of coloured shapes, built in tests.

Like the real emoji set (`devise_keras.datasets.emoji`), every class has one image per
style plus a few variants, the manifest has the columns `path,label,split,style,category`,
and labels are multi-word names. A class is a colour; a style is how it is drawn
(shape, size, background), so a model trained on some styles can recognise the class
in a style it never saw.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CLASS_COLOURS = {
    "red apple": (220, 30, 30),
    "green leaf": (30, 180, 40),
    "blue car": (30, 60, 220),
    "yellow sun": (235, 215, 30),
    "purple grape": (140, 40, 170),
    "orange fish": (245, 140, 20),
}
STYLES = ("disc", "square", "diamond", "ring")
VARIANTS = 3


def _draw(style: str, colour, size: int, rng: np.random.Generator) -> Image.Image:
    background = tuple(int(v) for v in rng.integers(225, 256, size=3))
    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)
    margin = int(rng.integers(1, size // 5 + 1))
    box = (margin, margin, size - 1 - margin, size - 1 - margin)
    if style == "disc":
        draw.ellipse(box, fill=colour)
    elif style == "square":
        draw.rectangle(box, fill=colour)
    elif style == "diamond":
        mid = size // 2
        draw.polygon(
            [(mid, margin), (size - 1 - margin, mid), (mid, size - 1 - margin), (margin, mid)],
            fill=colour,
        )
    else:
        draw.ellipse(box, outline=colour, width=max(2, size // 5))
    return image


def write_emoji_like(root: Path, size: int = 16, seed: int = 0) -> Path:
    """Writes `images/<style>/<label>_<i>.png` and `manifest.csv`; returns the manifest."""
    rng = np.random.default_rng(seed)
    rows = [["path", "label", "split", "style", "category"]]
    for label, colour in CLASS_COLOURS.items():
        slug = label.replace(" ", "_")
        for style in STYLES:
            folder = root / "images" / style
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(VARIANTS):
                path = folder / f"{slug}_{i}.png"
                _draw(style, colour, size, rng).save(path)
                rows.append([f"images/{style}/{path.name}", label, "", style, "Things"])
    manifest = root / "manifest.csv"
    with open(manifest, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return manifest


def write_word_vectors(path: Path, dim: int = 8, seed: int = 1) -> Path:
    """GloVe-style text (no header) with every word of the class names and a distractor."""
    rng = np.random.default_rng(seed)
    words = sorted({w for label in CLASS_COLOURS for w in label.split()} | {"the"})
    lines = [w + " " + " ".join(f"{v:.5f}" for v in rng.normal(size=dim)) for w in words]
    path.write_text("\n".join(lines) + "\n")
    return path


# Colour words carry their RGB direction, so an unseen "<colour> <thing>" lands where its
# colour's images project: zero-shot on this toy set is possible, and measurable.
COLOUR_WORDS = {
    "red": [1.0, 0.0, 0.0],
    "green": [0.0, 1.0, 0.0],
    "blue": [0.0, 0.0, 1.0],
    "yellow": [0.7, 0.7, 0.0],
    "purple": [0.6, 0.0, 0.8],
    "orange": [0.9, 0.45, 0.0],
}


def write_colour_text_encoder(path: Path, dim: int = 8, seed: int = 2) -> str:
    """A TF-Hub-format text encoder (bag of words) over the class names' words."""
    from tests.text_encoder_testutil import write_bag_of_words_encoder

    rng = np.random.default_rng(seed)
    things = sorted({label.split()[1] for label in CLASS_COLOURS})
    vectors = {w: v + [0.0] * (dim - 3) for w, v in COLOUR_WORDS.items()}
    for word in things:  # the thing words: off the colour axes, so red and orange differ
        vectors[word] = [0.0, 0.0, 0.0] + list(rng.normal(size=dim - 3))
    return write_bag_of_words_encoder(str(path), vectors)
