"""The private Redis and the HAProxy balancer devstack runs, started as the tests' helpers start them."""

import concurrent.futures
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devstack.balancer import Frontend, check_argv, render_config, server_states
from devstack.probe import free_port, http_ok
from devstack.redis_server import RedisServer, redacted, redis_ok
from procs import PYTHON, ManagedProcess, scaled, start_balancer, start_redis

# A backend as small as can be: readiness, its own name, and a GET or POST on /slow/<s> that takes a while to answer.
BACKEND = """
import sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    def _answer(self, body):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path.startswith("/slow/"):
            time.sleep(float(self.path.rsplit("/", 1)[-1]))
        self._answer(sys.argv[2].encode())

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        time.sleep(float(self.path.rsplit("/", 1)[-1]))
        self._answer(sys.argv[2].encode())

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


def _backend(name: str) -> tuple[ManagedProcess, str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = ManagedProcess(
        name, [PYTHON, "-c", BACKEND, str(port), name], health=lambda: http_ok(f"{url}/health/readiness")
    )
    process.start()
    return process, url


@pytest.fixture
def two_backends() -> Iterator[list[tuple[ManagedProcess, str]]]:
    started = [_backend("one"), _backend("two")]
    yield started
    for process, _ in started:
        process.stop()


def test_private_redis_answers_with_its_password_only_and_keeps_it_out_of_argv() -> None:
    instance = start_redis()
    try:
        assert redis_ok(instance.url) is None
        wrong = instance.url.replace(instance.server.password(), "wrong")
        assert redis_ok(wrong) is not None
        assert instance.server.password() not in " ".join(instance.process.argv)
        assert instance.server.password() not in (redacted(instance.url) + (redis_ok(wrong) or ""))
        for path in (instance.server.config_path, instance.server.password_path):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        instance.kill()
        assert redis_ok(instance.url) is not None
        instance.start()  # the same password from its file, the same port
        assert redis_ok(instance.url) is None
    finally:
        instance.remove()
    assert not instance.server.base_dir.exists()


def test_redis_password_is_made_once_and_kept(tmp_path: Path) -> None:
    server = RedisServer(base_dir=tmp_path / "redis", port=6399)
    server.ensure_config()
    first = server.password()
    server.ensure_config()
    assert RedisServer(base_dir=tmp_path / "redis", port=6399).password() == first
    assert f"requirepass {first}" in server.config_path.read_text()


def test_balancer_config_is_valid_for_several_frontends(tmp_path: Path) -> None:
    import subprocess

    config = tmp_path / "haproxy.cfg"
    config.write_text(
        render_config(
            [
                Frontend("proxy", free_port(), ["http://127.0.0.1:4101", "http://127.0.0.1:4102"]),
                Frontend("agent_host", free_port(), ["127.0.0.1:8001"], "/health", replay_only_reads=True),
            ],
            tmp_path / "stats.sock",
        )
    )
    result = subprocess.run(check_argv(config), capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    text = config.read_text()
    assert "option httpchk GET /health/readiness" in text and "option httpchk GET /health" in text
    assert "retry-on conn-failure empty-response response-timeout" in text and "option redispatch" in text
    agent_backend = text.split("backend agent_host", 1)[1]
    # A write that reached a host is never replayed; the proxies replay anything.
    assert "http-request disable-l7-retry unless METH_GET\n" in agent_backend
    assert "disable-l7-retry" not in text.split("backend agent_host", 1)[0]


def test_balancer_spreads_requests_and_a_killed_backend_loses_none(
    two_backends: list[tuple[ManagedProcess, str]],
) -> None:
    balancer, url = start_balancer([backend_url for _, backend_url in two_backends])
    try:
        with httpx.Client(timeout=scaled(30)) as client:
            names = {client.get(f"{url}/who").text for _ in range(8)}
            assert names == {"one", "two"}

            # Slow POSTs in flight on both; one backend dies before answering: HAProxy sends its
            # requests again to the other (retry-on empty-response, redispatch).
            def post(_: int) -> tuple[int, str]:
                reply = client.post(f"{url}/slow/1.5", json={"hello": "world"})
                return reply.status_code, reply.text

            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                futures = [pool.submit(post, i) for i in range(8)]
                time.sleep(0.5)
                two_backends[0][0].kill()
                answers = [future.result() for future in futures]
            assert all(status == 200 for status, _ in answers), (answers, balancer.log_tail())
            assert {text for _, text in answers} <= {"one", "two"}

            statuses = [client.get(f"{url}/who") for _ in range(10)]
            assert [reply.text for reply in statuses] == ["two"] * 10
        stats = balancer.argv[-1].replace("haproxy.cfg", "stats.sock")
        deadline = time.monotonic() + scaled(10)
        while server_states(Path(stats))["balanced"]["balanced1"].split()[0] != "DOWN":
            assert time.monotonic() < deadline, server_states(Path(stats))
            time.sleep(0.2)
    finally:
        balancer.stop()


def test_in_front_of_agent_hosts_a_lost_read_is_sent_again_and_a_lost_write_never(
    two_backends: list[tuple[ManagedProcess, str]],
) -> None:
    """GETs and POSTs in flight on both backends when one dies: the GETs are answered by the other backend, a POST
    that reached the dead one ends in HAProxy's 502 (the host may have stored it), the others succeed. leastconn
    deals the 16 requests out alternately, so the 8 POSTs all on one backend is a 1 in 6435 chance."""
    balancer, url = start_balancer([backend_url for _, backend_url in two_backends], replay_only_reads=True)
    try:
        with httpx.Client(timeout=scaled(30)) as client:

            def call(method: str) -> int:
                body = {"turn": 1} if method == "POST" else None
                return client.request(method, f"{url}/slow/2", json=body).status_code

            with concurrent.futures.ThreadPoolExecutor(16) as pool:
                gets = [pool.submit(call, "GET") for _ in range(8)]
                posts = [pool.submit(call, "POST") for _ in range(8)]
                time.sleep(1)  # all sixteen are on a backend, half on each
                two_backends[0][0].kill()
                get_statuses = [future.result() for future in gets]
                post_statuses = [future.result() for future in posts]
        assert get_statuses == [200] * 8, (get_statuses, balancer.log_tail())
        assert sorted(set(post_statuses)) == [200, 502], (post_statuses, balancer.log_tail())
    finally:
        balancer.stop()
