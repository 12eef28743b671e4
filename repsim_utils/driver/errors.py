"""The driver's failures, each reported in one line: a run that failed, a run another driver
holds, Ctrl-C and SIGTERM.
"""

from __future__ import annotations


class RunFailed(RuntimeError):
    """A run that did not complete; its previous published page is untouched."""


class RunBusy(RuntimeError):
    """Another driver is executing the same run."""


class Interrupted(RuntimeError):
    """Ctrl-C: the run in progress was stopped and nothing of it published."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (what CI runners, SLURM and ``kill`` send): handled as Ctrl-C is."""
