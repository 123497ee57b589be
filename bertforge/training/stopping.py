"""Stopping like a cluster job: on SIGTERM (preemption, `scancel`, a spot reclaim) or SIGINT
(Ctrl-C) the trainer finishes the step it is in, writes a checkpoint and stops with
`TrainingStopped`; the command line then exits with `EXIT_STOPPED` (75, EX_TEMPFAIL: "try
again later"), which a scheduler can requeue with `--resume`. A second signal ends the process
at once, as the signal would without this handler (exit 143 for SIGTERM, 130 for Ctrl-C).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from bertforge.errors import BertforgeError

log = logging.getLogger(__name__)

EXIT_STOPPED = 75
SIGNALS = (signal.SIGTERM, signal.SIGINT)


class TrainingStopped(BertforgeError):
    """A run stopped early on a signal, after writing a checkpoint it resumes from."""

    def __init__(self, step: int, signal_name: str, checkpoint: Path | None) -> None:
        self.step, self.signal_name, self.checkpoint = step, signal_name, checkpoint
        where = f"checkpoint {checkpoint}" if checkpoint else "this rank wrote no checkpoint"
        super().__init__(
            f"stopped at step {step} on {signal_name} ({where}); continue with --resume "
            f"(exit code {EXIT_STOPPED})"
        )


class GracefulStop:
    """While active, the first SIGTERM/SIGINT only sets `requested` (the signal's name); the
    second restores the default action and re-delivers itself. Outside the main thread (where
    Python cannot install handlers) it never requests a stop."""

    def __init__(self) -> None:
        self.requested: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> GracefulStop:
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.requested is not None:  # the second signal: stop now
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        self.requested = name
        log.warning(
            "%s: finishing this step, then saving a checkpoint (send it again to stop at once)",
            name,
        )
