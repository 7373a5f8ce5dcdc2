"""The README's "Supported ComfyUI" table, made from what the host runs recorded.

.ci/run sets PULID_HOST_REPORT=.ci/last/hosts.jsonl for each host run; tests/conftest.py appends one
JSON line per run there (version, commit, frontend pin, torch, date, pytest counts). This prints the
table, or with --readme rewrites the part of README.md between the hosts-table markers.

    python -m tools.hosts_table .ci/last/hosts.jsonl [--readme README.md]
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
        ran = (f"{r.get('passed', 0)} tests passed ({r.get('host_tests_passed', 0)} through ComfyUI: in-process "
               f"executor, `generate` both modes, browser test), {r.get('failed', 0)} failed, "
               f"{r.get('skipped', 0)} skipped")
        rows.append(f"| {r['version']} (`{r['commit']}`) | {r['frontend']} | {r['torch']} | {r['date']} | {ran} |")
    return "\n".join(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", help="the JSON lines file of the host runs")
    parser.add_argument("--readme", help="rewrite this README's table in place")
    args = parser.parse_args(argv)
    records = [json.loads(line) for line in Path(args.report).read_text().splitlines() if line.strip()]
    text = table(records)
    if not args.readme:
        sys.stdout.write(text + "\n")
        return 0
    readme = Path(args.readme)
    old = readme.read_text(encoding="utf-8")
    if START not in old or END not in old:
        sys.exit(f"{readme} has no {START} ... {END} section")
    new = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: f"{START}\n{text}\n{END}", old, flags=re.S)
    readme.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
