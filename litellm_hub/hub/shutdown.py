"""Runs a last flush when the proxy is told to stop, before the process is gone.

Neither atexit nor task cancellation gets a chance under uvicorn: once it has shut the server
down it restores the default SIGTERM/SIGINT handlers and re-raises the signal, still inside the
event loop, which kills the process on the spot (uvicorn/server.py, Server.capture_signals).
So the hub chains a handler in front of uvicorn's: it schedules `on_stop` in the event loop,
where it runs before uvicorn's shutdown sequence can finish.
"""

import asyncio
import signal
import threading
from collections.abc import Callable
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def run_before_stop(on_stop: Callable[[], None]) -> bool:
    """Chains `on_stop` in front of the running server's signal handlers; False when there are none."""
    if threading.current_thread() is not threading.main_thread():
        return False
    loop = asyncio.get_running_loop()
    installed = False
    for sig in STOP_SIGNALS:
        previous = signal.getsignal(sig)
        if not callable(previous):
            continue  # no server handler to chain: the default action ends the process, atexit covers it
        signal.signal(sig, _chained(loop, on_stop, previous))
        installed = True
    return installed


def _chained(
    loop: asyncio.AbstractEventLoop, on_stop: Callable[[], None], previous: Callable[[int, FrameType | None], object]
) -> Callable[[int, FrameType | None], None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(on_stop)
        previous(signum, frame)

    return handler
