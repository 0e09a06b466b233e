"""Signals end the CLI's long-running commands through their exit hooks."""

from __future__ import annotations

import os
import signal
import sys


def exit_through_hooks_on_signals() -> None:
    """Make SIGTERM and SIGHUP (a closed terminal) end the process through its exit hooks.

    Python's default for both ends the process on the spot, and pgserver stops the embedded
    Postgres in an exit hook: it would run on with nobody to stop it.
    """
    signal.signal(signal.SIGTERM, lambda signum, _: sys.exit(128 + signum))
    signal.signal(signal.SIGHUP, lambda *_: os.kill(os.getpid(), signal.SIGTERM))
