"""The "Supported ComfyUI" table of CONTRIBUTING.md, made from what the host runs recorded.

.ci/run sets PULID_HOST_REPORT=.ci/last/hosts.jsonl for each host run; tests/conftest.py appends one
JSON line per run there (version, commit, frontend that ran and the host's pin, torch, date, pytest
counts). This prints the table, or with --into FILE rewrites the part of FILE (CONTRIBUTING.md) between
the hosts-table markers.

    python -m tools.hosts_table .ci/last/hosts.jsonl [--into CONTRIBUTING.md]
"""
import argparse
import json
import re
import sys
from pathlib import Path

START, END = "<!-- hosts-table:start -->", "<!-- hosts-table:end -->"


def table(records):
    rows = ["| ComfyUI | frontend | torch | tested on | what ran |", "|---|---|---|---|---|"]
    for r in records:
        if r.get("only"):  # a run of some files only, e.g. the browser test on a second frontend
            ran = (f"{r.get('passed', 0)} tests passed ({', '.join(f'`{a}`' for a in r['only'])} only), "
                   f"{r.get('failed', 0)} failed, {r.get('skipped', 0)} skipped")
        else:
            ran = (f"{r.get('passed', 0)} tests passed ({r.get('host_tests_passed', 0)} through ComfyUI: in-process "
                   f"executor, `generate` both modes, browser test), {r.get('failed', 0)} failed, "
                   f"{r.get('skipped', 0)} skipped")
        frontend = r["frontend"]
        if r.get("frontend_pin") not in (None, "?", frontend):  # PULID_FRONTEND: another than the host pins
            frontend = f"{frontend} (host pins {r['frontend_pin']})"
        rows.append(f"| {r['version']} (`{r['commit']}`) | {frontend} | {r['torch']} | {r['date']} | {ran} |")
    return "\n".join(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", help="the JSON lines file of the host runs")
    parser.add_argument("--into", metavar="FILE", help="rewrite the table between the hosts-table markers of FILE in place")
    args = parser.parse_args(argv)
    records = [json.loads(line) for line in Path(args.report).read_text().splitlines() if line.strip()]
    text = table(records)
    if not args.into:
        sys.stdout.write(text + "\n")
        return 0
    target = Path(args.into)
    old = target.read_text(encoding="utf-8")
    if START not in old or END not in old:
        sys.exit(f"{target} has no {START} ... {END} section")
    new = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: f"{START}\n{text}\n{END}", old, flags=re.S)
    target.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
