"""What /auth, /users and /usage do, over the sync AccountStore (run in worker threads) and the auth cache."""

from contextlib import suppress
from datetime import datetime
from typing import Any

from anyio import to_thread

from agent_host.people.auth import Authenticator
from agent_host.people.schemas import ApiKeyCreated, UsageReport, UserCreate, UserUpdate
from genailabs_accounts.errors import AccountNotFound, AccountsUnavailable
from genailabs_accounts.models import Account, AccountListing, ApiKeyPublic, SignIn
from genailabs_accounts.store import AccountStore

LIMIT_FIELDS = ("models", "rpm", "max_budget")


class People:
    def __init__(self, store: AccountStore, auth: Authenticator) -> None:
        self.store = store
        self.auth = auth

    async def warm_up(self) -> None:
        """Opens the accounts pool (and checks the migrations) before the first request has to wait for it."""
        with suppress(AccountsUnavailable):  # the first request will say so
            await self._run(self.store.first_admin)

    async def _run(self, function: Any, *args: Any) -> Any:
        return await to_thread.run_sync(function, *args)

    # Signing in and one's own credentials

    async def sign_in(self, login: str, password: str) -> SignIn:
        signed_in: SignIn = await self._run(self.store.sign_in, login, password)
        return signed_in

    async def sign_out(self, credential: str) -> None:
        """Ends a sign-in token at once (an API key or operator key has nothing to end)."""
        self.auth.forget(credential)
        if credential.startswith("gls_"):
            await self._run(self.store.sign_out, credential)

    async def api_keys(self, account: Account) -> list[ApiKeyPublic]:
        keys: list[ApiKeyPublic] = await self._run(self.store.list_api_keys, account.id)
        return keys

    async def create_api_key(self, account: Account, name: str) -> ApiKeyCreated:
        key, public = await self._run(self.store.create_api_key, account.id, name)
        return ApiKeyCreated(key=key, api_key=public)

    async def revoke_api_key(self, account: Account, key_id: str) -> None:
        await self._run(self.store.revoke_api_key, account.id, key_id)
        # The cache knows credentials by hash, not by key id: the person's other credentials resolve again.
        self.auth.forget_account(account.id)

    # Administration

    async def accounts(self) -> list[AccountListing]:
        listings: list[AccountListing] = await self._run(self.store.list_accounts)
        return listings

    async def listing(self, account_id: str) -> AccountListing:
        for listing in await self.accounts():
            if listing.id == account_id:
                return listing
        raise AccountNotFound(f"no account {account_id}")

    async def create(self, body: UserCreate) -> AccountListing:
        account: Account = await self._run(
            lambda: self.store.create_account(
                body.login, body.password, body.name, body.role, body.models, body.rpm, body.max_budget
            )
        )
        return await self.listing(account.id)

    async def update(self, account_id: str, body: UserUpdate) -> AccountListing:
        """Applies the fields sent; enabling comes before new limits, disabling after them."""
        account: Account = await self._run(self.store.get, account_id)
        sent = body.model_fields_set
        if body.role is not None:
            await self._run(self.store.set_role, account.id, body.role)
        if body.disabled is False:
            await self._run(self.store.set_disabled, account.id, False)
        if sent & set(LIMIT_FIELDS):
            current = await self.listing(account.id)
            models = body.models if "models" in sent and body.models is not None else current.models
            rpm = body.rpm if "rpm" in sent else current.rpm
            budget = body.max_budget if "max_budget" in sent else current.max_budget
            await self._run(self.store.set_limits, account.id, models, rpm, budget)
        if body.disabled is True:
            await self._run(self.store.set_disabled, account.id, True)
        self.auth.forget_account(account.id)
        return await self.listing(account.id)

    async def reset_password(self, account_id: str, password: str) -> None:
        account: Account = await self._run(self.store.reset_password, account_id, password)
        self.auth.forget_account(account.id)

    async def usage(self, since: datetime, account: Account | None) -> UsageReport:
        """One person's use per model, or everyone's (account None) per person and model."""
        lines = await self._run(self.store.usage, since, account.id if account is not None else None)
        return UsageReport(since=since, usage=lines)
