"""Pretrained image backbones from package registries, exported as TF-Hub feature vectors.

- `torch_checkpoint`: reads PyTorch state dicts into numpy without torch (allow-listed unpickler).
- `efficientnet_lite`: EfficientNet-Lite0/1/2 in Keras 3 and the torch -> Keras weight layout.
- `efficientnet_lite_hub`: the data step, `prepare_efficientnet_lite("lite0")` -> the path of a
  TF-Hub image feature-vector SavedModel for `model.backbone` / `HubBackbone`.
"""
