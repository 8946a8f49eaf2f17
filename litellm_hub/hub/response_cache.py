"""Which requests LiteLLM's Redis response cache may answer: the deterministic ones, per key.

`litellm_config.yaml` runs the cache in `default_off` mode, so LiteLLM caches only a request whose `cache`
control says `use-cache`. The hub's pre-call hook sets it for a chat or text completion at temperature 0 or
with a fixed seed, and for a client that asks for it itself. LiteLLM's own per-request opt-outs stay the
client's: `"cache": {"no-cache": true}` (do not answer from the cache) and `{"no-store": true}`.
"""

import hashlib
from typing import Any

CACHED_CALL_TYPES = frozenset({"completion", "acompletion", "text_completion", "atext_completion"})
# The per-request controls LiteLLM reads (litellm.types.caching.DynamicCacheControl) a client may set.
CLIENT_CONTROLS = ("no-cache", "no-store", "ttl", "s-maxage", "s-max-age", "use-cache")


def is_deterministic(body: dict[str, Any]) -> bool:
    """Temperature 0 or a fixed seed: the same request gets the same answer, so a cached one is as good."""
    temperature = body.get("temperature")
    seed = body.get("seed")
    at_zero = isinstance(temperature, int | float) and not isinstance(temperature, bool) and temperature == 0
    seeded = isinstance(seed, int) and not isinstance(seed, bool)
    return at_zero or seeded


def namespace_of(key_hash: str) -> str:
    """The cache's namespace for one key: one person's cached answers are never served to, or timed by, another."""
    return "hub:" + hashlib.sha256(key_hash.encode()).hexdigest()[:16]


def cache_control(body: dict[str, Any], key_hash: str, ttl_seconds: int) -> dict[str, Any] | None:
    """The `cache` field to send on to LiteLLM, or None to leave the request uncached."""
    sent = body.get("cache")
    client = {name: sent[name] for name in CLIENT_CONTROLS if name in sent} if isinstance(sent, dict) else {}
    if not (is_deterministic(body) or client.get("use-cache") is True):
        return None
    ttl = client.get("ttl")
    bounded = min(int(ttl), ttl_seconds) if isinstance(ttl, int | float) and not isinstance(ttl, bool) else ttl_seconds
    return {**client, "use-cache": True, "ttl": max(1, bounded), "namespace": namespace_of(key_hash)}
