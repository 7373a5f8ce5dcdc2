"""Shared pytest setup (the repo root is on sys.path through pyproject's `pythonpath`, so `pulid` and
`testkit` import without installing): the rule of a host run: with COMFYUI_PATH set, a host test that skips fails (the harness lost the host).

PULID_HOST_REPORT=<file> appends one JSON line per host run (version, commit, frontend, counts) for
CONTRIBUTING.md's "Supported ComfyUI" table (tools/hosts_table.py). The frontend is the one the browser test
saw running (PULID_FRONTEND may put a newer one over the host's pin), else the one asked for.
"""
import json
import os
import re
import sys
import time
from pathlib import Path

import pytest

COMFYUI_PATH = os.environ.get("COMFYUI_PATH")
HOST_REPORT = pytest.StashKey[dict]()


def _is_host_test(item):
    return item.get_closest_marker("host") is not None or Path(str(item.path)).parent.name == "host"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if COMFYUI_PATH and report.skipped and _is_host_test(item) and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"host test skipped on a host run (COMFYUI_PATH={COMFYUI_PATH}): {reason}"


@pytest.fixture(scope="session")
def host_report(request):
    """Facts a host test measured for the PULID_HOST_REPORT line (the browser test: "frontend")."""
    return request.config.stash.setdefault(HOST_REPORT, {})


def host_description(path):
    """(version, frontend pin) of the ComfyUI at `path`, read from its files."""
    version = re.search(r'__version__\s*=\s*"([^"]+)"', (Path(path) / "comfyui_version.py").read_text())
    pin = re.search(r"^comfyui-frontend-package==(\S+)", (Path(path) / "requirements.txt").read_text(), re.M)
    return (version.group(1) if version else "?"), (pin.group(1) if pin else "?")


def pytest_terminal_summary(terminalreporter):
    out = os.environ.get("PULID_HOST_REPORT")
    if not (COMFYUI_PATH and out):
        return
    stats = {k: len(v) for k, v in terminalreporter.stats.items() if k in ("passed", "failed", "skipped", "error")}
    host_tests = sum(1 for r in terminalreporter.stats.get("passed", []) if "tests/host/" in r.nodeid)
    version, pin = host_description(COMFYUI_PATH)
    seen = terminalreporter.config.stash.get(HOST_REPORT, {}).get("frontend")
    # A run of some test files only (a second frontend on a host whose full run is already recorded).
    only = [a for a in terminalreporter.config.invocation_params.args if a.split("::")[0].endswith(".py")]
    record = {"version": version, "commit": os.environ.get("PULID_HOST_COMMIT", "?"),
              "frontend": seen or os.environ.get("PULID_FRONTEND") or pin, "frontend_pin": pin,
              "torch": _torch_version(), "date": time.strftime("%Y-%m-%d"), "host_tests_passed": host_tests,
              **({"only": only} if only else {}), **stats}
    with open(out, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def _torch_version():
    torch = sys.modules.get("torch")
    return getattr(torch, "__version__", "?")


def pytest_report_header(config):
    """The float kernels this run gets (CONTRIBUTING.md, "Float comparisons"): .ci/run logs them per run."""
    import torch

    return f"torch {torch.__version__}, cpu capability {torch.backends.cpu.get_cpu_capability()}"
