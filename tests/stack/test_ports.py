"""A port a crashed service leaves in TIME_WAIT is free: no start check may call it busy."""

import socket
import time
from pathlib import Path

from agent_host.__main__ import port_problem
from devstack.probe import free_port, port_in_use

TIME_WAIT = "06"  # the state column of /proc/net/tcp


def _time_wait_on(port: int) -> bool:
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return any(line.split()[1].endswith(f":{port:04X}") and line.split()[3] == TIME_WAIT for line in lines)


def _leave_time_wait(port: int) -> None:
    """A server that accepted a connection and closed it first, then went away, as a crashed one does."""
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", port))
        server.listen()
        with socket.create_connection(("127.0.0.1", port)) as client:
            accepted, _ = server.accept()
            accepted.close()  # the server side closes first: its end goes to TIME_WAIT
            client.recv(1)
    deadline = time.monotonic() + 2  # a moment for the last FIN and ACK to cross
    while not _time_wait_on(port) and time.monotonic() < deadline:
        time.sleep(0.01)


def test_a_port_in_time_wait_is_neither_busy_for_up_nor_for_the_agent_host() -> None:
    port = free_port()
    _leave_time_wait(port)
    assert _time_wait_on(port), "the test could not produce a TIME_WAIT socket"
    assert not port_in_use(port)
    assert port_problem("127.0.0.1", port) is None
    with socket.socket() as restarted:  # what uvicorn does on a restart: SO_REUSEADDR, then bind
        restarted.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        restarted.bind(("127.0.0.1", port))
        restarted.listen()


def test_a_port_someone_listens_on_is_busy() -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        assert port_in_use(port)
        assert port_problem("127.0.0.1", port) == f"port {port} is already in use"
