"""How often supervisord restarted each program since the stack started: a supervisord event listener.

supervisord keeps no restart counter, so `python -m devstack.restarts FILE` runs as an
`[eventlistener:restarts]` and counts, per program, every exit it did not ask for (PROCESS_STATE_EXITED:
the program died and autorestart brings it back) and every start that failed (PROCESS_STATE_BACKOFF: it
will be tried again). The counts live in FILE (JSON), which `make status` reads.
"""

import json
import os
import sys
from pathlib import Path

from supervisor import childutils

COUNTED_EVENTS = ("PROCESS_STATE_EXITED", "PROCESS_STATE_BACKOFF")


def load_restarts(path: Path) -> dict[str, int]:
    try:
        counts = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {str(name): int(count) for name, count in counts.items()} if isinstance(counts, dict) else {}


def _save(path: Path, counts: dict[str, int]) -> None:
    # Written whole and renamed into place: `make status` never reads half a file.
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(counts, sort_keys=True))
    os.replace(partial, path)


def count_event(counts: dict[str, int], event: str, payload: str) -> bool:
    """Adds one restart for the event's program when the event is one; True when it counted."""
    if event not in COUNTED_EVENTS:
        return False
    name = childutils.get_headers(payload.split("\n", 1)[0]).get("processname", "")
    if not name:
        return False
    counts[name] = counts.get(name, 0) + 1
    return True


def listen(path: Path) -> None:
    # The listener itself may be restarted: it carries on from the file, which `up` clears per stack start.
    counts = load_restarts(path)
    while True:
        headers, payload = childutils.listener.wait(sys.stdin, sys.stdout)
        try:
            if count_event(counts, headers.get("eventname", ""), payload):
                _save(path, counts)
        except Exception as exc:  # a full disk must not stall supervisord's event queue
            print(f"restarts: cannot record {headers.get('eventname')}: {exc}", file=sys.stderr, flush=True)
        childutils.listener.ok(sys.stdout)


if __name__ == "__main__":
    listen(Path(sys.argv[1]))
