# One command from a fresh clone: `make test` builds .venv from the package registry and runs pytest.
# torch and torchvision are installed together at a matching set (TORCH): the registry's torchvision is
# a CUDA build that cannot load beside a CPU-only torch wheel. ComfyUI owns them in a real install, so
# they are never listed in requirements.txt.
#
# With a ComfyUI host: `make test COMFYUI_PATH=/path/to/ComfyUI VENV=.venv-host TORCH="..."` also installs
# that ComfyUI's requirements (minus torch*) into VENV, and the host tests run instead of skipping
# (a skipped host test then fails the run). 0.33 imports torchaudio: TORCH="$(TORCH_0_33)".
# PULID_FRONTEND=1.58.1 installs that comfyui-frontend-package over the host's pin (users update it on its
# own), and the browser test checks that one; the same VENV is reused, only this step runs again.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.14.1 torchvision==0.29.1
TORCH_0_33 := torch==2.11.0 torchvision==0.26.0 torchaudio==2.11.0
COMFYUI_PATH ?=
PULID_FRONTEND ?=
PY := $(VENV)/bin/python
HOST_STAMP := $(VENV)/.host-$(subst /,_,$(abspath $(COMFYUI_PATH)))$(if $(PULID_FRONTEND),-frontend-$(PULID_FRONTEND))
export COMFYUI_PATH PULID_FRONTEND

.PHONY: test venv clean

test: $(VENV)/.installed $(if $(COMFYUI_PATH),$(HOST_STAMP))
	$(PY) -m pytest $(PYTEST_ARGS)

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-test.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -r requirements.txt -r requirements-test.txt
	touch $@

$(HOST_STAMP): $(VENV)/.installed
	@test -f "$(COMFYUI_PATH)/main.py" || { echo "COMFYUI_PATH=$(COMFYUI_PATH) holds no ComfyUI (main.py)" >&2; exit 2; }
	grep -v -E '^(torch|torchvision|torchaudio)([<>=~ ]|$$)|^#|^$$' "$(COMFYUI_PATH)/requirements.txt" \
		> $(VENV)/host-requirements.txt
	$(PY) -m pip install -q -r $(VENV)/host-requirements.txt torchsde
	$(if $(PULID_FRONTEND),$(PY) -m pip install -q comfyui-frontend-package==$(PULID_FRONTEND))
	touch $@

clean:
	rm -rf $(VENV) .venv-host-* .hosts tests/_generated bench/_generated .pytest_cache

# README pictures: every workflows/*.json loaded in the real ComfyUI frontend, saved as docs/workflow_<name>.png.
# Needs COMFYUI_PATH (a ComfyUI checkout), /usr/bin/chromium and the playwright Python package (no browser
# download); COMFYUI_PYTHON may name an interpreter that has ComfyUI's requirements (default: $(PY)).
.PHONY: screenshots
screenshots:
	@test -n "$(COMFYUI_PATH)" || { echo "make screenshots: set COMFYUI_PATH to a ComfyUI checkout" >&2; exit 2; }
	$(PY) -m tools.screenshots --comfyui "$(COMFYUI_PATH)" --out docs
