"""CPU-bound tool work in a worker process of its own, killed when the call times out or is cancelled.

A thread cannot be stopped: a calculation that overruns its timeout there keeps a core busy until it ends.
A process can. Workers come from the forkserver, a small single-threaded parent: forking the host itself
would copy its threads' held locks into the child.
"""

import asyncio
import logging
import multiprocessing
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")
WORKERS = multiprocessing.get_context("forkserver")


class WorkerFailed(Exception):
    """The worker process died or answered with something that could not be read back."""


async def run_in_worker(function: Callable[..., T], *args: Any) -> T:
    """`function(*args)` in a new worker process, its exception raised here; cancelling the call kills it.

    `function` and `args` must pickle: a module-level function with plain arguments.
    """
    receiver, sender = WORKERS.Pipe(duplex=False)
    worker = WORKERS.Process(target=_work, args=(sender, function, args), daemon=True, name="tool-worker")
    # Starting asks the forkserver for a child (and starts the forkserver the first time): off the event loop.
    starting = asyncio.ensure_future(asyncio.to_thread(worker.start))
    try:
        await asyncio.shield(starting)
        sender.close()  # the worker holds the only writer now: its death reads as end of file
        await _readable(receiver)
        try:
            ok, value = receiver.recv()
        except EOFError:
            await asyncio.to_thread(worker.join, 1.0)
            raise WorkerFailed(f"the worker process ended without an answer (exit code {worker.exitcode})") from None
        except Exception as exc:  # an exception the worker raised that does not unpickle
            raise WorkerFailed(f"the worker's answer could not be read: {type(exc).__name__}: {exc}") from None
    finally:
        if not starting.done():  # cancelled while starting: let the start finish so there is a process to kill
            await asyncio.wait([starting])
        await _stop(worker)
        receiver.close()
        sender.close()
    if not ok:
        raise value
    return value  # type: ignore[no-any-return]


def _work(sender: Connection, function: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        answer: tuple[bool, Any] = (True, function(*args))
    except Exception as exc:
        answer = (False, exc)
    try:
        sender.send(answer)
    except Exception as exc:  # a result or exception that does not pickle
        sender.send((False, WorkerFailed(f"{type(exc).__name__}: {exc}")))


async def _readable(connection: Connection) -> None:
    loop = asyncio.get_running_loop()
    ready = asyncio.Event()
    loop.add_reader(connection.fileno(), ready.set)
    try:
        await ready.wait()
    finally:
        loop.remove_reader(connection.fileno())


async def _stop(worker: BaseProcess) -> None:
    """Kills the worker if it still runs (a timeout or cancellation) and waits until it is gone."""
    if worker.pid is None:
        return
    if worker.is_alive():
        log.warning("killing tool worker %s: its call was cancelled or timed out", worker.pid)
        worker.kill()
    await asyncio.to_thread(worker.join, 5.0)
    if not worker.is_alive():
        worker.close()
