# One command from a fresh clone: `make test` builds .venv from the package registry and runs pytest.
# torch and torchvision are installed together at a matching pair: the registry's torchvision is a
# CUDA build that cannot load beside a CPU-only torch wheel. ComfyUI owns them in a real install,
# so they are never listed in requirements.txt.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_PAIR := torch==2.14.1 torchvision==0.29.1

.PHONY: test venv clean

test: $(VENV)/.installed
	$(PY) -m pytest $(PYTEST_ARGS)

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-test.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_PAIR)
	$(PY) -m pip install -q -r requirements.txt -r requirements-test.txt
	touch $@

clean:
	rm -rf $(VENV) tests/_generated bench/_generated .pytest_cache

# README pictures: every workflows/*.json loaded in the real ComfyUI frontend, saved as docs/workflow_<name>.png.
# Needs COMFYUI_PATH (a ComfyUI checkout), /usr/bin/chromium and the playwright Python package (no browser
# download); COMFYUI_PYTHON may name an interpreter that has ComfyUI's requirements (default: $(PY)).
.PHONY: screenshots
screenshots:
	@test -n "$(COMFYUI_PATH)" || { echo "make screenshots: set COMFYUI_PATH to a ComfyUI checkout" >&2; exit 2; }
	$(PY) tools/screenshots.py --comfyui "$(COMFYUI_PATH)" --out docs
