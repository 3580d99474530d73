"""Stopping training cleanly: SIGINT (Ctrl-C) and SIGTERM ask the loop to stop after its step.

    with StopRequest() as request:
        while ...:
            train_step()
            if request.signal:   # 'SIGINT' or 'SIGTERM' once asked
                save(); break

A second signal stops at once (KeyboardInterrupt). The handlers that were there before come back
when the block ends, so a library caller's own handling is left as it was.
"""

from __future__ import annotations

import signal
import threading

from tqdm import tqdm

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """Turns the first SIGINT or SIGTERM into a flag; `signal` names it once one arrived."""

    def __init__(self):
        self.signal: str | None = None
        self._previous: dict = {}

    def _handle(self, signum, frame) -> None:
        if self.signal is not None:
            raise KeyboardInterrupt
        self.signal = signal.Signals(signum).name
        tqdm.write(f"{self.signal}: stopping after this step and saving a checkpoint "
                   "(send it again to stop at once, without saving)")

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():  # handlers live there only
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        self._previous = {}
