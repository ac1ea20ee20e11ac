"""Deterministic kill points for the crash tests: ``CrashPoint("RAG_TEST_EXIT_AT_WRITE")`` makes the process
exit at once, as a SIGKILL leaves it (no finally, no atexit, no flush, no rollback), right after its Nth
counted write, N taken from that environment variable. Unset, as it always is outside those tests, a call
only counts.

Example:
    >>> point = CrashPoint("RAG_NEVER_SET_IN_THIS_DOCTEST")
    >>> point.wrote(); point.wrote(); point.count
    2
"""

from __future__ import annotations

import os


class CrashPoint:
    def __init__(self, variable: str):
        self.at = int(os.environ.get(variable) or 0)
        self.count = 0

    def wrote(self) -> None:
        """Count one write; exit now when it is the Nth."""
        self.count += 1
        if self.count == self.at:
            os._exit(137)
