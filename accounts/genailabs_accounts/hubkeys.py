"""Each person's proxy key, kept in the hub's database through `hub.keystore` (never shown, never stored here)."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from genailabs_accounts.errors import AccountsUnavailable
from hub.errors import AliasTaken, DatabaseUnavailable, HubError
from hub.keystore import KeyListing, KeyStore, PersonUsageLine, connect
from hub.records import KeyRecord

ALIAS_PREFIX = "user:"


def person_alias(login: str) -> str:
    return f"{ALIAS_PREFIX}{login}"


class HubKeys:
    """One short connection per operation: people's keys change rarely, and the hub may restart in between."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self._url = url
        self._timeout = timeout

    @contextmanager
    def _store(self) -> Iterator[KeyStore]:
        try:
            conn = connect(self._url, self._timeout)
        except DatabaseUnavailable as exc:
            raise AccountsUnavailable(f"the proxy's key store is unreachable: {exc}") from None
        try:
            with conn:
                yield KeyStore(conn)
        except HubError as exc:
            if exc.status_code >= 500:
                raise AccountsUnavailable(f"the proxy's key store failed: {exc}") from None
            raise

    def create(
        self, user_id: str, login: str, models: list[str], rpm: int | None, max_budget: float | None
    ) -> KeyRecord:
        """The person's new active key; the raw key is dropped at once (the service keys act for them)."""
        metadata = {"user_id": user_id, "login": login}
        alias = person_alias(login)
        with self._store() as store:
            try:
                _, record = store.create(alias, models, max_budget=max_budget, rpm_limit=rpm, metadata=metadata)
            except AliasTaken:
                # Left by an account whose creation did not commit: no account holds that login, so it goes.
                store.revoke(alias)
                _, record = store.create(alias, models, max_budget=max_budget, rpm_limit=rpm, metadata=metadata)
        return record

    def active(self, user_id: str) -> KeyListing | None:
        with self._store() as store:
            return store.for_user(user_id)

    def latest(self, user_id: str) -> KeyListing | None:
        """The person's active key, else their most recently made one (a disabled account's limits)."""
        with self._store() as store:
            active = store.for_user(user_id)
            if active is not None:
                return active
            theirs = [listing for listing in store.all_keys() if listing.record.metadata.get("user_id") == user_id]
        return theirs[-1] if theirs else None

    def by_person(self) -> dict[str, KeyListing]:
        """Each person's active key, else their latest one, by account id."""
        with self._store() as store:
            listings = store.all_keys()  # oldest first: a later key of the same person replaces an earlier one
        found: dict[str, KeyListing] = {}
        for listing in listings:
            user_id = listing.record.metadata.get("user_id")
            if isinstance(user_id, str) and (user_id not in found or found[user_id].record.revoked_at is not None):
                found[user_id] = listing
        return found

    def revoke(self, user_id: str) -> None:
        with self._store() as store:
            store.revoke_for_user(user_id)

    def update_limits(self, key_hash: str, models: list[str], rpm: int | None, max_budget: float | None) -> KeyRecord:
        with self._store() as store:
            return store.update_limits(key_hash, models, max_budget, rpm)

    def usage(self, since: datetime, user_id: str | None) -> list[PersonUsageLine]:
        with self._store() as store:
            return store.usage_by_person(since, user_id)
