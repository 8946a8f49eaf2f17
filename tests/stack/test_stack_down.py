"""`make down` stops everything the session's stack ran, in every configuration it was switched to.

Last of the stack modules (by name): after it, a test that needs the stack starts it again from nothing.
"""

import json

from stack_support import SINGLE, Stack, make

from devstack.probe import port_in_use


def test_make_down_stops_every_program_and_frees_every_port(stack: Stack) -> None:
    if stack.running is None:
        result = stack.up(SINGLE)
        assert result.returncode == 0, result.stdout + result.stderr
    scale = dict(stack.running or {})
    log_path = stack.dir / "logs" / "supervisord.log"
    before = log_path.stat().st_size
    result = stack.down()
    assert result.returncode == 0, result.stderr
    named = (
        "POSTGRES_PORT",
        "LITELLM_PORT",
        "RUNTIME2_PORT",
        "UI_PORT",
        "AGENT_HOST_PORT",
        "REDIS_PORT",
        "CHROMA_PORT",
    )
    for port in sorted({int(stack.env[name]) for name in named} | stack.ports):
        assert not port_in_use(port), port
    assert make("status", stack.env).returncode != 0
    # Stopped in reverse start order: nothing waited for a service already gone until it had to be killed.
    with log_path.open() as log:
        log.seek(before)
        stop = log.read()
    assert "stopped: postgres" in stop and "with SIGKILL" not in stop, stop
    saved = json.loads((stack.dir / "plan.json").read_text())  # what `status` will say once it is up again
    assert {name.upper(): str(saved[name.lower()]) for name in scale} == scale
