"""What the accounts tests share besides fixtures: cheap hashing and a tight policy."""

import uuid

from argon2 import PasswordHasher

from genailabs_accounts.store import AccountPolicy

# Cheap argon2 parameters keep the suite fast on two shared cores; the real defaults are tested on their own.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
POLICY = AccountPolicy(session_idle_minutes=30, login_max_failures=6, login_lock_minutes=5, login_free_failures=3)
PASSWORD = "correct horse battery"


def unique_login(prefix: str = "user") -> str:
    """Logins differ per test: every test's people share the session's hub database (litellm)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
