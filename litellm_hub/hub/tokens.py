"""Virtual keys: how they are made, stored (only as a hash) and shown (masked)."""

import hashlib
import re
import secrets

KEY_PREFIX = "sk-"
# Enough of the key to tell keys apart in a listing; the rest never leaves the `create` output.
DISPLAY_CHARS = 8
_KEY_PATTERN = re.compile(r"sk-[A-Za-z0-9_\-]{6,}")


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """The sha256 hex digest LiteLLM also uses for `user_api_key_hash`, so log rows and keys join."""
    return hashlib.sha256(key.encode()).hexdigest()


def display_prefix(key: str) -> str:
    return key[: len(KEY_PREFIX) + DISPLAY_CHARS]


def mask_key(key: str) -> str:
    """sk-...abcd: enough to recognise a key, useless to an attacker."""
    if not key:
        return "(none)"
    return f"sk-...{key[-4:]}" if len(key) > 8 else "sk-..."


def mask_secrets(text: str) -> str:
    """Masks anything that looks like an API key inside free text (error messages, exceptions)."""
    return _KEY_PATTERN.sub(lambda match: mask_key(match.group(0)), text)
