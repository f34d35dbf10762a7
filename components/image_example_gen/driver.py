"""ImageExampleGen's driver: fingerprints the images it will read, for the cache key."""

from __future__ import annotations

import os
from typing import Any

from components.image_example_gen import executor, transforms
from components.input_fingerprint import InputFingerprintDriver, folder_files
from devise_keras import storage


def manifest_files(manifest: str) -> list[tuple[str, str]]:
    """The manifest itself and every image it lists (paths resolved like the executor's)."""
    files = [(manifest, manifest)]
    if not storage.isfile(manifest):
        return files
    root = os.path.dirname(manifest)
    try:
        with storage.open_file(manifest, "r") as f:
            for number, line in enumerate(f, start=1):
                ref = transforms.parse_manifest_line(line, number)
                if ref is not None:
                    files.append((ref.path, os.path.join(root, ref.path)))
    except ValueError:
        pass  # a malformed manifest: the executor names the line
    return files


class ImageExampleGenDriver(InputFingerprintDriver):
    """Fingerprints every file under `image_dir`, or the manifest and the images it lists."""

    def input_files(self, exec_properties: dict[str, Any]) -> list[tuple[str, str]]:
        image_dir = exec_properties.get(executor.IMAGE_DIR_KEY)
        if image_dir:
            return folder_files(image_dir)
        return manifest_files(exec_properties.get(executor.MANIFEST_KEY) or "")
