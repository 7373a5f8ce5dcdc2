"""`python -m pulid <command>`: the older spelling of `python -m pulid_cli <command>`, kept for existing users.

The command-line tools live in pulid_cli/ and use the library, never the other way round, so this module
does not import them: it starts `python -m pulid_cli` with the same arguments, working directory and
environment. The tools are then found exactly as this package was (run from the pack's folder, `-m` puts
that folder first on sys.path in both programs), and relative paths in the arguments mean the same thing.
On POSIX the program is replaced in place (same process id, signals and exit status); Windows has no
such exec (os.execv there returns the console to the shell while the tool still runs), so it waits for
the tool, leaving Ctrl+C to the tool, which gets it too, and exits with its status.
"""
import os
import signal
import subprocess
import sys

argv = [sys.executable, "-m", "pulid_cli", *sys.argv[1:]]
if os.name == "nt":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(subprocess.call(argv))
os.execv(sys.executable, argv)
