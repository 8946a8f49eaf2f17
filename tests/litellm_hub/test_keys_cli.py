"""`python -m hub.keys` against a real PostgreSQL: what an administrator types and sees."""

import uuid

import psycopg
from hub_support import create_key, run_keys

from devstack.probe import free_port
from hub.keystore import KeyStore, connect
from hub.tokens import hash_key


def unique_alias(prefix: str = "cli") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def listed(database_url: str, alias: str) -> list[str]:
    result = run_keys(database_url, "list")
    assert result.returncode == 0, result.stderr
    return next(line.split() for line in result.stdout.splitlines() if f" {alias} " in f" {line} ")


def test_create_prints_the_key_once_and_stores_only_its_hash(database_url: str) -> None:
    alias = unique_alias()
    result = run_keys(database_url, "create", "--alias", alias, "--models", "smollm2:135m", "--rpm", "5")
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip()
    assert key.startswith("sk-") and "\n" not in key
    assert "not shown again" in result.stderr
    with psycopg.connect(database_url) as conn:
        stored = conn.execute("SELECT hub_keys::text FROM hub_keys WHERE alias = %s", (alias,)).fetchone()
    assert stored is not None
    assert hash_key(key) in stored[0] and key not in stored[0]


def test_list_shows_prefix_limits_and_status_but_never_the_secret(database_url: str) -> None:
    alias = unique_alias()
    key = create_key(database_url, alias, "--models", "smollm2:135m", "--max-budget", "2.5", "--tpm", "1000")
    cells = listed(database_url, alias)
    assert cells[0] == key[:11] and cells[2] == "active"
    assert "smollm2:135m" in cells and "$2.5000" in cells and "1000" in cells
    assert key not in run_keys(database_url, "list").stdout


def test_revoke_by_alias_marks_the_key_revoked(database_url: str) -> None:
    alias = unique_alias()
    create_key(database_url, alias)
    result = run_keys(database_url, "revoke", alias)
    assert result.returncode == 0, result.stderr
    assert listed(database_url, alias)[2] == "revoked"


def test_revoke_by_prefix_works_and_frees_the_alias(database_url: str) -> None:
    alias = unique_alias()
    key = create_key(database_url, alias)
    assert run_keys(database_url, "revoke", key[:11]).returncode == 0
    create_key(database_url, alias)  # a revoked key's alias can be reused


def test_an_active_alias_cannot_be_created_twice(database_url: str) -> None:
    alias = unique_alias()
    create_key(database_url, alias)
    result = run_keys(database_url, "create", "--alias", alias)
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        == f"hub.keys: an active key with alias '{alias}' already exists; revoke it first or pick another alias"
    )


def test_revoking_an_unknown_key_fails_with_one_line(database_url: str) -> None:
    result = run_keys(database_url, "revoke", "nobody-by-this-name")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == ["hub.keys: no active key with alias or prefix 'nobody-by-this-name'"]


def test_an_unreachable_database_gives_one_line_and_no_secret() -> None:
    url = f"postgresql://litellm:secret-password@127.0.0.1:{free_port()}/litellm"
    result = run_keys(url, "list")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hub.keys: cannot reach the hub database at 127.0.0.1:")
    assert "secret-password" not in result.stderr and "Traceback" not in result.stderr


def test_key_administration_requires_the_master_key(database_url: str) -> None:
    result = run_keys(database_url, "list", LITELLM_MASTER_KEY="")  # set but empty, beating any .env
    assert result.returncode == 2
    assert "LITELLM_MASTER_KEY" in result.stderr and "Traceback" not in result.stderr


def test_a_bad_expiry_is_refused_with_an_example(database_url: str) -> None:
    result = run_keys(database_url, "create", "--alias", unique_alias(), "--expires-in", "tomorrow")
    assert result.returncode == 1
    assert "e.g. 45m, 12h, 30d" in result.stderr


def test_create_service_makes_a_key_that_list_shows_as_service(database_url: str) -> None:
    alias = unique_alias("svc")
    result = run_keys(database_url, "create", "--alias", alias, "--service")
    assert result.returncode == 0, result.stderr
    assert f"created service key '{alias}'" in result.stderr
    assert listed(database_url, alias)[3] == "service"


def test_list_names_the_person_a_key_belongs_to(database_url: str) -> None:
    login = unique_alias("person")
    with connect(database_url, 5) as conn:
        KeyStore(conn).create(f"user:{login}", [], metadata={"user_id": str(uuid.uuid4()), "login": login})
    assert listed(database_url, f"user:{login}")[3] == login
    assert listed(database_url, create_team_key(database_url))[3] == "-"


def test_mark_service_turns_an_existing_key_into_a_service_key(database_url: str) -> None:
    alias = create_team_key(database_url)
    result = run_keys(database_url, "mark-service", alias)
    assert result.returncode == 0, result.stderr
    assert "is now a service key" in result.stdout
    assert listed(database_url, alias)[3] == "service"
    assert run_keys(database_url, "mark-service", "nobody-by-this-name").returncode == 1


def create_team_key(database_url: str) -> str:
    alias = unique_alias("team")
    create_key(database_url, alias)
    return alias
