"""People of a GenAILabs: accounts, sign-in sessions, personal API keys, and the `genailabs` database's schema."""

# The header a service key sends to the proxy to act for a person (hub/access.py defines the same string).
USER_HEADER = "X-GenAILabs-User"

__all__ = ["USER_HEADER"]
