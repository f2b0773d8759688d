"""Stop a sweep gently. The first SIGINT (Ctrl-C) or SIGTERM lets the running trial finish, then
the sweep confirms and writes its pick as when its budget runs out. A second one stops the
running trial before it builds its next compression step: the trial is failed with that reason,
its point is queued again (the rerun finds the steps built so far in the cache) and the sweep
still confirms and writes its pick. A third one aborts at once.

Overnight sweeps are often ended by a person or a job scheduler rather than by their budget.
Killing one mid-trial throws away the step it is building and leaves a trial whose end is unknown
(its time counts nowhere); waiting for the trial can take an hour on the overnight preset.
"""
from __future__ import annotations

import logging
import signal
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

log = logging.getLogger(__name__)
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StepStop(Exception):
    """Raised before an uncached compression step after a second stop signal."""


@dataclass
class StopRequest:
    requested: bool = False  # finish the running trial, then stop
    at_step: bool = False  # stop the running trial before it builds another step

    def before_build(self, step: str, key: str) -> None:
        """``compress.pipeline.build``'s hook: leave the build before a step that is not cached."""
        if self.at_step:
            raise StepStop(f"stopped by a signal before building step {step} ({key}); the steps before it are "
                           f"cached and the trial's point is queued again")


@contextmanager
def graceful_stop(request: StopRequest | None = None) -> Iterator[StopRequest]:
    """While inside, signals set ``request`` (first, second) or abort (third); handlers are
    restored on exit. Outside the main thread (where Python cannot take signals) nothing is installed."""
    request = request if request is not None else StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {s: signal.getsignal(s) for s in SIGNALS}

    def restore() -> None:
        for s, handler in previous.items():
            signal.signal(s, handler)

    def handle(signum, _frame) -> None:
        name = signal.Signals(signum).name
        if request.at_step:
            restore()
            raise KeyboardInterrupt
        if request.requested:
            request.at_step = True
            log.warning("%s again: stopping the running trial before it builds another step (its point is queued "
                        "again), then confirming the pick; send it a third time to abort now", name)
            return
        request.requested = True
        log.warning("%s: stopping after the running trial, then confirming the pick; send it again to stop the "
                    "trial before its next build step, a third time to abort now", name)

    for s in SIGNALS:
        signal.signal(s, handle)
    try:
        yield request
    finally:
        restore()
