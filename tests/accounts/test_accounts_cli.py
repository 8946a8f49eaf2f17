"""The `python -m genailabs_accounts users ...` command line, run as a real process."""

import os
import subprocess
import sys
from typing import Any

import pytest
from accounts_support import PASSWORD, unique_login

from procs import scaled


def _run(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "genailabs_accounts", *args],
        env={**os.environ, **env},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=scaled(120),
    )


@pytest.fixture
def env(accounts_url: str, hub_url: str) -> dict[str, str]:
    return {"DATABASE_URL": accounts_url, "HUB_DATABASE_URL": hub_url}


def test_ensure_admin_prints_a_one_time_password_once(env: dict[str, str]) -> None:
    login = unique_login("admin")
    first = _run(env, "users", "ensure-admin", "--login", login)
    assert first.returncode == 0, first.stderr
    assert "one-time password (shown only now): " in first.stdout
    password = first.stdout.rsplit(": ", 1)[1].strip()
    assert len(password) >= 16
    second = _run(env, "users", "ensure-admin", "--login", login)
    assert second.returncode == 0 and password not in second.stdout and "admin account" in second.stdout


def test_create_list_limits_role_and_disable(env: dict[str, str], db: Any, hub_db: Any) -> None:
    admin, person = unique_login("admin"), unique_login()
    assert (
        _run(env, "users", "create", admin, "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n").returncode
        == 0
    )
    made = _run(env, "users", "create", person, "--name", "Ada", "--models", "m1,m2", "--rpm", "5",
                "--password-stdin", stdin=PASSWORD + "\n")  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert f"created {person} (user, active" in made.stdout
    limits = _run(env, "users", "set-limits", person, "--rpm", "none", "--max-budget", "2")
    assert limits.returncode == 0, limits.stderr
    assert "models m1,m2; rpm -; budget 2" in limits.stdout
    listed = _run(env, "users", "list")
    assert admin in listed.stdout and f"{person} (user, active" in listed.stdout
    assert _run(env, "users", "set-role", person, "admin").returncode == 0
    assert _run(env, "users", "disable", person).returncode == 0
    assert _run(env, "users", "list", "--json").stdout.count('"disabled": true') == 1
    assert _run(env, "users", "enable", person).returncode == 0
    key = hub_db.execute(
        "SELECT models, rpm_limit, max_budget FROM hub_keys WHERE alias = %s AND revoked_at IS NULL",
        (f"user:{person}",),
    ).fetchone()
    assert key == {"models": ["m1", "m2"], "rpm_limit": None, "max_budget": 2.0}
    assert db.execute("SELECT role FROM accounts WHERE login = %s", (person,)).fetchone() == {"role": "admin"}


def test_reset_password_reads_stdin_and_errors_are_one_line(env: dict[str, str]) -> None:
    person = unique_login()
    _run(env, "users", "create", person, "--password-stdin", stdin=PASSWORD + "\n")
    reset = _run(env, "users", "reset-password", person, "--password-stdin", stdin="another password\n")
    assert reset.returncode == 0, reset.stderr
    short = _run(env, "users", "create", unique_login(), "--password-stdin", stdin="short\n")
    assert short.returncode == 1
    assert short.stderr.strip().count("\n") == 0 and "at least 8" in short.stderr
    missing = _run(env, "users", "disable", "nobody-at-all")
    assert missing.returncode == 1 and "no account with login 'nobody-at-all'" in missing.stderr
    taken = _run(env, "users", "create", person.upper(), "--password-stdin", stdin=PASSWORD + "\n")
    assert taken.returncode == 1 and "taken" in taken.stderr


def test_without_a_terminal_or_password_stdin_it_refuses(env: dict[str, str]) -> None:
    result = _run(env, "users", "create", unique_login(), stdin="")
    assert result.returncode == 1 and "--password-stdin" in result.stderr


def test_a_database_that_is_down_is_one_line_and_a_failure(env: dict[str, str]) -> None:
    down = {**env, "DATABASE_URL": "postgresql://litellm:secret-pw@127.0.0.1:1/genailabs"}
    result = _run(down, "users", "list")
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "unreachable" in result.stderr and "secret-pw" not in result.stderr
