"""A JSONL file for request-log rows that could not stay in memory while PostgreSQL was down."""

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path

from hub.records import UsageRow

log = logging.getLogger("hub.spool")


class Spool:
    """Append-only until drained. Rows are upserted by request id, so reading one twice is harmless."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, rows: Iterable[UsageRow]) -> int:
        lines = [json.dumps(row.to_json()) + "\n" for row in rows]
        if not lines:
            return 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as spool:
            spool.writelines(lines)
            spool.flush()
            os.fsync(spool.fileno())
        return len(lines)

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
