"""Tiny fake npm tarballs in the real layouts of the five emoji packages (no network).

`build_fake_packages(folder)` writes one .tgz per style holding a few emoji:
emoji-datasource's ``package/emoji.json`` and 64 px PNGs, lobehub's 256 px WebPs,
OpenMoji's upper-case SVG file names, Iconify's ``chars.json`` + ``icons.json``. Every
image is a coloured square (`COLOR`) in the middle of a transparent canvas, so a
corner pixel tells whether transparency was composited on white.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from PIL import Image

COLOR = (200, 30, 40)

# name, unified, category, styles it exists in (None: all five), extra emoji.json fields
EMOJI = [
    ("DOG FACE", "1F436", "Animals & Nature", None, {}),
    ("HOT DOG", "1F32D", "Food & Drink", None, {}),
    ("JACK-O-LANTERN", "1F383", "Activities", None, {}),
    # lobehub and Iconify name it without the U+FE0F selector, the others with it.
    ("UMBRELLA", "2602-FE0F", "Travel & Places", None, {}),
    ("CLOCK FACE ONE OCLOCK", "1F550", "Travel & Places", None, {}),
    # Skin tones live inside the base entry; a separate toned entry must be ignored.
    ("HORSE RACING", "1F3C7", "Activities", None, {"skin_variations": {"1F3FB": {}}}),
    ("HORSE RACING: LIGHT SKIN TONE", "1F3C7-1F3FB", "Activities", None, {}),
    ("WAVING HAND SIGN", "1F44B", "People & Body", None, {}),
    ("BROWN MUSHROOM", "1F344-200D-1F7EB", "Food & Drink", ("google", "twitter", "openmoji"), {}),
]
KEPT_LABELS = ["dog face", "hot dog", "jack-o-lantern", "umbrella", "clock face one oclock"]
KEPT_LABELS.append("horse racing")
STYLES = ("google", "twitter", "fluent-3d", "openmoji", "fluent-flat")
TARBALL_NAMES = {
    "google": "emoji-datasource-google-16.0.0.tgz",
    "twitter": "emoji-datasource-twitter-16.0.0.tgz",
    "fluent-3d": "lobehub-fluent-emoji-3d-1.1.0.tgz",
    "openmoji": "openmoji-17.0.0.tgz",
    "fluent-flat": "iconify-json-fluent-emoji-flat-1.2.6.tgz",
}


def square_image(size: int, fmt: str) -> bytes:
    """A transparent `size` x `size` canvas with an opaque COLOR square in its middle half."""
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    image.paste(COLOR + (255,), (size // 4, size // 4, 3 * size // 4, 3 * size // 4))
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    return buffer.getvalue()


def square_svg_body() -> str:
    return '<rect x="18" y="18" width="36" height="36" fill="#c81e28"/>'


def _bare(unified: str) -> str:
    return "-".join(p for p in unified.lower().split("-") if p != "fe0f")


def package_files(style: str, emoji=EMOJI) -> dict[str, bytes]:
    """{member: bytes} of one fake package."""
    present = [e for e in emoji if e[3] is None or style in e[3]]
    files: dict[str, bytes] = {"package/package.json": b'{"name": "fake"}'}
    if style in ("google", "twitter"):
        entries = []
        for sort_order, (name, unified, category, _, extra) in enumerate(emoji):
            image = f"{unified.lower()}.png"
            entries.append(
                {
                    "name": name,
                    "unified": unified,
                    "image": image,
                    "short_name": name.lower().replace(" ", "_")[:12],
                    "category": category,
                    "sort_order": sort_order,
                    **extra,
                }
            )
        files["package/emoji.json"] = json.dumps(entries).encode()
        files["package/LICENSE"] = b"The MIT License (MIT)\nCopyright (c) 2013 Cal Henderson\n"
        for e in present:
            files[f"package/img/{style}/64/{e[1].lower()}.png"] = square_image(64, "PNG")
    elif style == "fluent-3d":
        for e in present:
            files[f"package/assets/{_bare(e[1])}.webp"] = square_image(256, "WEBP")
    elif style == "openmoji":
        files["package/LICENSE.txt"] = b"Attribution-ShareAlike 4.0 International\n"
        for e in present:
            svg = f'<svg viewBox="0 0 72 72" xmlns="http://www.w3.org/2000/svg">{square_svg_body()}</svg>'
            files[f"package/color/svg/{e[1].upper()}.svg"] = svg.encode()
    elif style == "fluent-flat":
        chars, icons = {}, {}
        for e in present:
            icon = e[0].lower().replace(" ", "-")
            chars[_bare(e[1])] = icon
            # Iconify's 32-unit grid: the same middle-half square as the other styles.
            icons[icon] = {"body": '<rect x="8" y="8" width="16" height="16" fill="#c81e28"/>'}
        files["package/chars.json"] = json.dumps(chars).encode()
        files["package/icons.json"] = json.dumps(
            {"prefix": "fluent-emoji-flat", "icons": icons, "width": 32, "height": 32}
        ).encode()
    return files


def write_tarball(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def build_fake_packages(folder: str | Path, emoji=EMOJI) -> dict[str, Path]:
    """Writes the five fake tarballs into `folder` under npm pack's file names."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return {
        style: write_tarball(folder / TARBALL_NAMES[style], package_files(style, emoji))
        for style in STYLES
    }
