"""`python -m agent_host.worker` on its own: one line and exit 1 when it cannot start, a clean stop on SIGTERM."""

import os
import signal
import socket
import subprocess
from collections.abc import Iterator

import pytest
from rag_support import own_database

from devstack.probe import free_port
from procs import PYTHON, PostgresInstance, scaled, start_chroma_server, start_rag_worker


def worker_exit(env: dict[str, str]) -> tuple[int, str]:
    """Runs a worker that cannot start: its exit code and what it printed."""
    done = subprocess.run(
        [PYTHON, "-m", "agent_host.worker"],
        env={**os.environ, "HF_HUB_OFFLINE": "1", **env},
        capture_output=True,
        text=True,
        timeout=scaled(120),
    )
    return done.returncode, (done.stdout + done.stderr).strip()


@pytest.fixture(scope="module")
def chroma(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    process, url = start_chroma_server(tmp_path_factory.mktemp("worker-chroma"))
    yield url
    process.stop()


def test_a_worker_without_its_database_says_so_in_one_line(chroma: str) -> None:
    dead = f"postgresql://nobody:secret-pw@127.0.0.1:{free_port()}/genailabs"
    code, output = worker_exit({"DATABASE_URL": dead, "CHROMA_URL": chroma, "RAG_WORKER_PORT": str(free_port())})
    assert code == 1
    assert output.splitlines() == [output] and "database is unreachable" in output
    assert "secret-pw" not in output


def test_a_worker_without_its_chroma_server_says_so_in_one_line(postgres: PostgresInstance) -> None:
    database = own_database(postgres, "worker_no_chroma")
    gone = f"http://127.0.0.1:{free_port()}"
    code, output = worker_exit({"DATABASE_URL": database, "CHROMA_URL": gone, "RAG_WORKER_PORT": str(free_port())})
    assert code == 1
    last = output.splitlines()[-1]  # after the log lines of what it did before (created the queue's tables)
    assert last.startswith("rag worker: the vector store at " + gone) and "Traceback" not in output


def test_a_worker_whose_port_is_taken_says_so_in_one_line(postgres: PostgresInstance, chroma: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, output = worker_exit(
            {"DATABASE_URL": postgres.url("genailabs"), "CHROMA_URL": chroma, "RAG_WORKER_PORT": str(port)}
        )
    assert code == 1
    assert output == f"rag worker: port {port} is already in use"


def test_a_worker_stops_cleanly_on_sigterm(postgres: PostgresInstance, chroma: str) -> None:
    process, _ = start_rag_worker(own_database(postgres, "worker_stop"), chroma)
    assert process.proc is not None
    os.killpg(process.proc.pid, signal.SIGTERM)
    assert process.proc.wait(timeout=scaled(60)) == 0
    assert "Traceback" not in process.log_path.read_text()
