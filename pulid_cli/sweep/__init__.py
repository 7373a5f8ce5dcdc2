"""`python -m pulid_cli sweep`: render a grid (faces x prompts x weights x methods x seeds) through ComfyUI's HTTP
API and score it with the library.

- grid.py: the jobs (one image each; baselines once per prompt x seed), prompt files, the flags' lists;
- manifest.py: sweep.json, the settings every image of an output folder shares, and the model files' hashes;
- scheduler.py: the jobs spread over one or more servers, a dead server's jobs moved to the others;
- report.py: scores.csv (each image scored once, by pulid's scoring) and the chart's points;
- sheet.py: the contact sheet;
- command.py: the command itself: checks first, renders, stops cleanly on Ctrl-C or SIGTERM, reports.
Nothing here is imported by `python -m pulid_cli --help` but grid.py and scheduler.py (stdlib only: the defaults).
"""
