"""A private PostgreSQL cluster run from the system's binaries, with data kept inside the repo."""

import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

SERVER_USER = "postgres"


class PostgresError(RuntimeError):
    """The cluster cannot be created or reached; the message says why in one line."""


def find_bin_dir() -> Path:
    """The newest installed server's bin dir (Debian keeps them under /usr/lib/postgresql/N/bin)."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if candidates:
        return candidates[-1].parent
    on_path = shutil.which("postgres")
    if on_path:
        return Path(on_path).parent
    raise PostgresError("PostgreSQL server binaries not found: run `make setup` (installs Debian's postgresql)")


def _is_root() -> bool:
    return os.geteuid() == 0


def as_server_user(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root; as root we run it as the existing `postgres` user."""
    if not _is_root():
        return argv
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError as exc:
        raise PostgresError(
            "running as root but there is no `postgres` system user: install Debian's postgresql package"
        ) from exc
    return ["runuser", "-u", SERVER_USER, "--", *argv]


@dataclass(frozen=True)
class Cluster:
    data_dir: Path
    port: int

    @property
    def socket_dir(self) -> Path:
        return self.data_dir.parent / "pgsock"

    def server_argv(self) -> list[str]:
        """The foreground server command (supervisor and the tests run exactly this)."""
        return as_server_user(
            [
                str(find_bin_dir() / "postgres"),
                "-D",
                str(self.data_dir),
                "-p",
                str(self.port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"unix_socket_directories={self.socket_dir}",
                "-c",
                "unix_socket_permissions=0700",
                "-c",
                "max_connections=200",
                "-c",
                "fsync=off" if os.environ.get("GENAILABS_PG_FAST") else "fsync=on",
            ]
        )

    def ensure_initialised(self) -> None:
        """Runs initdb once; the socket is private to the server user, TCP needs a password."""
        self._check_reachable_by_server_user()
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self._own(self.socket_dir)
        if (self.data_dir / "PG_VERSION").exists():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._own(self.data_dir)
        os.chmod(self.data_dir, 0o700)
        result = subprocess.run(
            as_server_user(
                [
                    str(find_bin_dir() / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "--encoding=UTF8",
                    "--no-instructions",
                ]
            ),
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise PostgresError(f"initdb failed: {_last_line(result.stderr)}")

    def accepting_connections(self) -> str | None:
        """None once the server accepts connections on its socket, else pg_isready's answer."""
        result = subprocess.run(
            [str(find_bin_dir() / "pg_isready"), "-h", str(self.socket_dir), "-p", str(self.port), "-q"],
            capture_output=True,
            text=True,
        )
        return None if result.returncode == 0 else f"not accepting connections on port {self.port} yet"

    def bootstrap(self, user: str, password: str, databases: list[str]) -> None:
        """Creates the role and databases if they are missing; safe to run on every start."""
        quoted_password = password.replace("'", "''")
        statements = [
            f"SELECT format('CREATE ROLE %I LOGIN', '{user}') WHERE NOT EXISTS "
            f"(SELECT 1 FROM pg_roles WHERE rolname = '{user}') \\gexec",
            f"ALTER ROLE \"{user}\" WITH LOGIN PASSWORD '{quoted_password}';",
        ]
        for database in databases:
            statements.append(
                f"SELECT format('CREATE DATABASE %I OWNER %I', '{database}', '{user}') WHERE NOT EXISTS "
                f"(SELECT 1 FROM pg_database WHERE datname = '{database}') \\gexec"
            )
        result = subprocess.run(
            as_server_user(
                [
                    str(find_bin_dir() / "psql"),
                    "-h",
                    str(self.socket_dir),
                    "-p",
                    str(self.port),
                    "-U",
                    "postgres",
                    "-d",
                    "postgres",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-q",
                ]
            ),
            input="\n".join(statements) + "\n",
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise PostgresError(f"creating role/databases failed: {_last_line(result.stderr)}")

    def _own(self, path: Path) -> None:
        if _is_root():
            shutil.chown(path, SERVER_USER, SERVER_USER)

    def _check_reachable_by_server_user(self) -> None:
        if not _is_root():
            return
        parent = self.data_dir.parent
        parent.mkdir(parents=True, exist_ok=True)
        probe = subprocess.run(["runuser", "-u", SERVER_USER, "--", "test", "-x", str(parent)])
        if probe.returncode != 0:
            raise PostgresError(
                f"the `postgres` user cannot reach {parent}: move the checkout somewhere world-readable "
                "(e.g. /work or /srv) or set DATABASE_URL to a running server"
            )


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"
