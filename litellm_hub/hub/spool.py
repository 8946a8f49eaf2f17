"""A JSONL file for request-log rows that could not stay in memory while PostgreSQL was down."""

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path

from hub.records import UsageRow

log = logging.getLogger("hub.spool")

DEFAULT_MAX_BYTES = 50_000_000  # about 100k rows


class Spool:
    """Append-only until drained. Rows are upserted by request id, so reading one twice is harmless.

    The file is readable by its owner only (rows name keys and models) and never grows past
    `max_bytes`: a database that stays down must not fill the disk, so rows beyond it are dropped
    with a warning; the ones already spooled, the oldest, are kept.
    """

    def __init__(self, path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.path = path
        self.max_bytes = max_bytes

    def append(self, rows: Iterable[UsageRow]) -> int:
        """Appends what fits under `max_bytes`; returns how many rows were written."""
        lines = [(json.dumps(row.to_json()) + "\n").encode() for row in rows]
        if not lines:
            return 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "ab") as spool:
            os.fchmod(fd, 0o600)  # a file left by an older version may be wider
            size = os.fstat(fd).st_size
            fitting = []
            for line in lines:
                if size + len(line) > self.max_bytes:
                    break
                fitting.append(line)
                size += len(line)
            spool.writelines(fitting)
            spool.flush()
            os.fsync(fd)
        if len(fitting) < len(lines):
            log.warning(
                "hub spool %s is full (HUB_SPOOL_MAX_BYTES=%d): %d request-log rows dropped",
                self.path,
                self.max_bytes,
                len(lines) - len(fitting),
            )
        return len(fitting)

    def read(self) -> list[UsageRow]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            try:
                rows.append(UsageRow.from_json(json.loads(line)))
            except (ValueError, TypeError, KeyError):
                # A line cut short by a crash mid-write: skip it rather than lose the rest.
                log.warning("hub spool %s: skipping unreadable line %d", self.path, number)
        return rows

    def exists(self) -> bool:
        return self.path.exists()

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
