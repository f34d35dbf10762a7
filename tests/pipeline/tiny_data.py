"""A tiny, learnable image dataset and word-vector file for pipeline tests.

Each class is a solid-ish colour with noise, so a few training steps separate them; the
word vectors are hand-made so class words are far apart.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

CLASS_COLOURS = {
    "cat": (220, 40, 40),
    "dog": (40, 200, 40),
    "car": (40, 40, 220),
    "tree": (220, 220, 40),
    "boat": (40, 220, 220),
}


def write_images(root: Path, per_class: int = 12, size: int = 16, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for label, colour in CLASS_COLOURS.items():
        folder = root / label
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            noise = rng.integers(-30, 30, size=(size, size, 3))
            pixels = np.clip(np.asarray(colour) + noise, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{label}_{i:03d}.png")
    return root


def write_glove(path: Path, dim: int = 8, seed: int = 1) -> Path:
    """GloVe-style text (no header): the class words plus a few distractors."""
    rng = np.random.default_rng(seed)
    words = [*CLASS_COLOURS, "the", "of", "kitten", "puppy"]
    lines = []
    for word in words:
        vec = rng.normal(size=dim)
        lines.append(word + " " + " ".join(f"{v:.5f}" for v in vec))
    path.write_text("\n".join(lines) + "\n")
    return path
