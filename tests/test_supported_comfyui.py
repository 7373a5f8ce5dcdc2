"""The supported ComfyUI range has one home: the hosts `.ci/run` runs the tests on (its `run_host` lines).

The oldest is the first supported version and the newest the last; everything else that states the range is
checked against them: `requires-comfyui` in pyproject.toml (what the Registry enforces), README's
"Supported:" line, CONTRIBUTING's "Supported ComfyUI" section and its hosts table (each end of the range has
a recorded run, no row lies outside it), and the branch of `.ci/run` that runs the browser test again on
the newest host.
"""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CI_RUN = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
README = (ROOT / "README.md").read_text(encoding="utf-8")
CONTRIBUTING = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
HOST_LINE = re.compile(r'^timed "host ComfyUI ([\d.]+)[^"]*" run_host "\$HOSTS/comfyui-([\d.]+)-[0-9a-f]+\.tar\.gz"',
                       re.M)


def version_key(version):
    return tuple(int(part) for part in version.split("."))


def ci_hosts():
    """The ComfyUI versions `.ci/run` runs the host tests on, oldest first."""
    found = HOST_LINE.findall(CI_RUN)
    for stage, tarball in found:
        assert stage == tarball, f".ci/run: the stage 'host ComfyUI {stage}' runs the tarball of {tarball}"
    return sorted((tarball for _, tarball in found), key=version_key)


HOSTS = ci_hosts()
OLDEST, NEWEST = HOSTS[0], HOSTS[-1]


def test_ci_runs_at_least_two_hosts():
    assert len(HOSTS) >= 2 and OLDEST != NEWEST, HOSTS


def test_requires_comfyui_is_the_oldest_host():
    # A line match, not tomllib: the pack supports Python 3.10, which has none.
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert re.findall(r'^requires-comfyui = "([^"]*)"', pyproject, re.M) == [f">={OLDEST}"]


def test_readme_states_the_range():
    assert f"Supported: ComfyUI {OLDEST} to {NEWEST} " in README


def test_contributing_states_the_range():
    stated = re.search(r"^Every ComfyUI from ([\d.]+) \([^)]*\) to ([\d.]+) \(", CONTRIBUTING, re.M)
    assert stated and stated.groups() == (OLDEST, NEWEST)
    assert f"{OLDEST} and {NEWEST} by `.ci/run`" in CONTRIBUTING


def test_the_hosts_table_covers_the_range():
    table = CONTRIBUTING.split("<!-- hosts-table:start -->")[1].split("<!-- hosts-table:end -->")[0]
    versions = set(re.findall(r"^\| ([\d.]+) \(`", table, re.M))
    assert {OLDEST, NEWEST} <= versions
    assert all(version_key(OLDEST) <= version_key(v) <= version_key(NEWEST) for v in versions), versions


def test_ci_runs_the_newest_frontend_on_the_newest_host():
    assert re.findall(r'if \[ "\$version" = ([\d.]+) \]', CI_RUN) == [NEWEST]


@pytest.mark.parametrize("text", ['timed "host ComfyUI 1.2.3" run_host "$HOSTS/comfyui-1.2.3-abc123.tar.gz"'])
def test_the_host_line_pattern_reads_a_host_line(text):
    assert HOST_LINE.findall(text) == [("1.2.3", "1.2.3")]
