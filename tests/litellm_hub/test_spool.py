"""The spool file: private to its owner and capped in size, so an outage can neither leak nor fill the disk."""

import json
import logging
from pathlib import Path

import pytest
from hub_support import usage_row

from hub.spool import Spool


def test_the_spool_file_is_created_readable_by_its_owner_only(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.jsonl")
    assert spool.append([usage_row()]) == 1
    assert spool.path.stat().st_mode & 0o777 == 0o600


def test_a_spool_file_left_wider_by_an_older_version_is_narrowed(tmp_path: Path) -> None:
    path = tmp_path / "spool.jsonl"
    path.write_text("")
    path.chmod(0o644)
    Spool(path).append([usage_row()])
    assert path.stat().st_mode & 0o777 == 0o600


def test_rows_past_the_size_cap_are_dropped_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    one_row = len(json.dumps(usage_row(request_id="req-0").to_json()) + "\n")
    spool = Spool(tmp_path / "spool.jsonl", max_bytes=3 * one_row)
    rows = [usage_row(request_id=f"req-{n}") for n in range(10)]
    with caplog.at_level(logging.WARNING, logger="hub.spool"):
        written = spool.append(rows[:5]) + spool.append(rows[5:])
    assert 0 < written < 10
    assert spool.path.stat().st_size <= spool.max_bytes
    assert [row.request_id for row in spool.read()] == [f"req-{n}" for n in range(written)]  # oldest kept
    assert "is full" in caplog.text and "rows dropped" in caplog.text
    assert spool.append(rows[:1]) == 0  # full stays full until the rows are written and the file removed
    spool.remove()
    assert spool.append(rows[:1]) == 1
