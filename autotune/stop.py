"""Stop a sweep gently: the first SIGINT (Ctrl-C) or SIGTERM lets the running trial finish, then
the sweep confirms and writes its pick as when its budget runs out; a second one aborts at once.

Overnight sweeps are often ended by a person or a job scheduler rather than by their budget, and
killing one mid-trial throws away the model it is building (up to 35 min on the overnight preset).
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


@dataclass
class StopRequest:
    requested: bool = False


@contextmanager
def graceful_stop() -> Iterator[StopRequest]:
    """While inside, the first signal only sets ``requested``; handlers are restored on exit.
    Outside the main thread (where Python cannot take signals) nothing is installed."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {s: signal.getsignal(s) for s in SIGNALS}

    def restore() -> None:
        for s, handler in previous.items():
            signal.signal(s, handler)

    def handle(signum, _frame) -> None:
        if request.requested:
            restore()
            raise KeyboardInterrupt
        request.requested = True
        log.warning("%s: stopping after the running trial, then confirming the pick; send it again to abort now",
                    signal.Signals(signum).name)

    for s in SIGNALS:
        signal.signal(s, handle)
    try:
        yield request
    finally:
        restore()
