"""The one stream reader: a thread reads the HTTP stream into a queue, and the page polls the queue.

The page keeps control while the backend is silent (it polls every `poll` seconds), and a page that stops
iterating (Stop, a rerun) closes the stream from its own thread: the connection closes, and the server behind it
(proxy, runtime, agent host) stops generating.
"""

import queue
import threading
from collections.abc import Callable, Generator

_DONE = object()


class Feed:
    """What the reading thread writes to: `put` an item; `closing` registers how to end the stream early."""

    def __init__(self) -> None:
        self.items: queue.Queue[object] = queue.Queue()
        self.cancelled = threading.Event()
        self._lock = threading.Lock()
        self._close: Callable[[], None] | None = None

    def put(self, item: object) -> None:
        self.items.put(item)

    def closing(self, close: Callable[[], None]) -> None:
        """Called once the stream is open; a page that already stopped closes it at once."""
        with self._lock:
            self._close = close
            cancelled = self.cancelled.is_set()
        if cancelled:
            close()

    def cancel(self) -> None:
        with self._lock:
            self.cancelled.set()
            close = self._close
        if close is not None:
            close()


def relay(produce: Callable[[Feed], None], poll: float = 0.05, name: str = "stream") -> Generator[object, None, None]:
    """Runs `produce(feed)` on a thread; yields what it puts (an exception it raised too) and None while silent.

    The generator ends when `produce` returns; closing it early cancels the feed, which closes the stream.
    """
    feed = Feed()

    def run() -> None:
        try:
            produce(feed)
        except Exception as exc:  # handed to the page, which explains it; after Stop it is only the closed stream
            if not feed.cancelled.is_set():
                feed.put(exc)
        finally:
            feed.put(_DONE)

    threading.Thread(target=run, name=name, daemon=True).start()
    finished = False
    try:
        while True:
            try:
                item = feed.items.get(timeout=poll)
            except queue.Empty:
                yield None
                continue
            if item is _DONE:
                finished = True
                return
            yield item
    finally:
        if not finished:
            feed.cancel()
