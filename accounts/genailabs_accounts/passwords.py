"""Password hashing with argon2-cffi (argon2id); no hashing of our own."""

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from genailabs_accounts.errors import BadAccountInput

MIN_PASSWORD = 8
# Bounded before hashing: argon2 reads the whole input, so a megabyte password is work an attacker chooses.
MAX_PASSWORD = 1024


def check_password_rules(password: str) -> None:
    """Raises BadAccountInput unless the password is 8 to 1024 characters."""
    if len(password) < MIN_PASSWORD:
        raise BadAccountInput(f"the password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise BadAccountInput(f"the password may have at most {MAX_PASSWORD} characters")


def generate_password() -> str:
    """A one-time password: 24 URL-safe characters (144 bits)."""
    return secrets.token_urlsafe(18)


class Passwords:
    """Hashes and verifies with one PasswordHasher; verifies unknown logins against a dummy hash."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self.hasher = hasher or PasswordHasher()
        self._dummy: str | None = None

    def hash(self, password: str) -> str:
        check_password_rules(password)
        return self.hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        """True when it matches; with no stored hash it still spends an argon2 verification, then False."""
        # Made before any answer, for known and unknown logins alike: its one-off cost tells nothing either.
        dummy = self._dummy_hash()
        if len(password) > MAX_PASSWORD:
            return False
        if stored_hash is None:
            # Same work as for a real account, so the time taken does not tell whether the login exists.
            self._verify(dummy, password)
            return False
        return self._verify(stored_hash, password)

    def _dummy_hash(self) -> str:
        if self._dummy is None:
            self._dummy = self.hasher.hash(secrets.token_urlsafe(16))
        return self._dummy

    def _verify(self, stored_hash: str, password: str) -> bool:
        try:
            return self.hasher.verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        return self.hasher.check_needs_rehash(stored_hash)
