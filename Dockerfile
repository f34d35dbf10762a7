# The image Kubeflow runs the devise-keras pipeline in: the public TFX 1.16 image with
# this package installed (run functions are dotted paths into it). See BUILD.md.
FROM gcr.io/tfx-oss-public/tfx:1.16.0

WORKDIR /pipeline
COPY requirements.lock pyproject.toml README.md LICENSE ./
COPY devise_keras ./devise_keras
# devise.*: the custom artifact types under their Kubeflow schema titles (devise/__init__.py).
COPY devise ./devise
COPY components ./components
COPY pipeline ./pipeline

# Keras 3 in every process, Beam workers included (tfx would otherwise select tf-keras).
ENV TF_USE_LEGACY_KERAS=0
# The pinned stack first (tensorflow-hub 0.16.1 overrides tfx's <0.16 pin), then the
# package itself without re-resolving.
RUN python -m pip install --no-cache-dir uv \
 && python -m uv pip install --system --no-cache -r requirements.lock \
 && python -m uv pip install --system --no-cache --no-deps .
