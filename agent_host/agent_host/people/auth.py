"""Who a credential belongs to: a sign-in token or personal key through AccountStore, or an operator key.

Resolving costs a database round trip (and a thread hop, the store is sync), so a resolved credential is
kept for a few seconds, keyed by its sha256: a revoked key or ended session made here is forgotten at once,
one revoked elsewhere (the UI, the CLI) stops working within the cache's TTL.
"""

import hashlib
import logging
import secrets
import time
from collections import OrderedDict
from datetime import UTC, datetime

from anyio import to_thread
from pydantic import SecretStr

from agent_host.errors import AccountsUnreachable, Unauthorized
from genailabs_accounts.errors import AccountsUnavailable, NotSignedIn
from genailabs_accounts.models import Account
from genailabs_accounts.store import AccountStore

log = logging.getLogger(__name__)
PERSON_PREFIXES = ("gls_", "glk_")
NO_ADMIN_YET = "no admin account yet: run `python -m genailabs_accounts users create ...`"
# Stands for the operator when the accounts database cannot be reached and no admin was seen yet: the
# operator's key still chats (as the host's own proxy key, no person named), owned data is down with the DB.
OPERATOR = Account(
    id="00000000-0000-0000-0000-000000000000",
    login="operator",
    name="operator (accounts database unavailable)",
    role="admin",
    disabled=False,
    created_at=datetime(2026, 1, 1, tzinfo=UTC),
)


def credential_hash(credential: str) -> str:
    return hashlib.sha256(credential.encode()).hexdigest()


def is_operator(account: Account) -> bool:
    """The stand-in of an unreachable accounts database: no proxy key of its own, nothing it owns."""
    return account.id == OPERATOR.id


class CredentialCache:
    """Resolved credentials for `ttl` seconds, at most `size` of them (the oldest go first)."""

    def __init__(self, ttl: float, size: int = 10_000) -> None:
        self.ttl = ttl
        self.size = size
        self._entries: OrderedDict[str, tuple[float, Account]] = OrderedDict()

    def get(self, digest: str) -> Account | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if entry[0] < time.monotonic():
            del self._entries[digest]
            return None
        return entry[1]

    def put(self, digest: str, account: Account) -> None:
        self._entries[digest] = (time.monotonic() + self.ttl, account)
        self._entries.move_to_end(digest)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def forget(self, digest: str) -> None:
        self._entries.pop(digest, None)

    def forget_account(self, account_id: str) -> None:
        for digest in [d for d, (_, account) in self._entries.items() if account.id == account_id]:
            del self._entries[digest]


class Authenticator:
    def __init__(
        self,
        accounts: AccountStore,
        api_key: SecretStr,
        admin_key: SecretStr | None,
        cache_seconds: float,
    ) -> None:
        self.accounts = accounts
        self._api_key = api_key.get_secret_value().encode()
        self._admin_key = admin_key.get_secret_value().encode() if admin_key is not None else b""
        self.cache = CredentialCache(cache_seconds)
        self._last_admin: Account | None = None

    async def resolve(self, credential: str) -> Account:
        """The person behind a credential; Unauthorized (or AccountsUnavailable) otherwise."""
        digest = credential_hash(credential)
        cached = self.cache.get(digest)
        if cached is not None:
            return cached
        if credential.startswith(PERSON_PREFIXES):
            try:
                account = await to_thread.run_sync(self.accounts.resolve, credential)
            except NotSignedIn as exc:
                raise Unauthorized(str(exc)) from None
            except AccountsUnavailable as exc:
                raise AccountsUnreachable(str(exc)) from None
        else:
            account = await self._operator(credential)
        self.cache.put(digest, account)
        return account

    async def _operator(self, credential: str) -> Account:
        """AGENT_HOST_ADMIN_KEY is the first admin; AGENT_HOST_API_KEY is the first admin's person, not an admin."""
        given = credential.encode()
        is_admin_key = bool(self._admin_key) and secrets.compare_digest(given, self._admin_key)
        if not is_admin_key and not secrets.compare_digest(given, self._api_key):
            raise Unauthorized("missing or wrong credential: send Authorization: Bearer <token or API key>")
        try:
            admin = await to_thread.run_sync(self.accounts.first_admin)
        except AccountsUnavailable:
            admin = self._last_admin or OPERATOR
            log.warning("accounts database unavailable: the operator's key stands for %s", admin.login)
        if admin is None:
            raise Unauthorized(NO_ADMIN_YET)
        self._last_admin = admin if not is_operator(admin) else self._last_admin
        return admin if is_admin_key else admin.model_copy(update={"role": "user"})

    def forget(self, credential: str) -> None:
        self.cache.forget(credential_hash(credential))

    def forget_account(self, account_id: str) -> None:
        self.cache.forget_account(account_id)
