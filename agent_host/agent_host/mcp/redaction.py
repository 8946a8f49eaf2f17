"""Secrets out of what `/mcp/servers` shows: tokens in arguments and URLs, every env and header value."""

import math
import re
from collections import Counter
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
# A flag or parameter whose value is a secret: --token, --api-key, password=, client_secret, auth ...
SECRET_NAME = re.compile(r"(token|secret|passw(or)?d|pwd|api[-_]?key|apikey|auth|credential|private[-_]?key)", re.I)
# Well-known credential shapes: OpenAI/LiteLLM keys, GitHub, Slack, AWS, Google, JWTs, bearer values.
SECRET_SHAPE = re.compile(
    r"^(sk-|sk_|pk_|rk_|ghp_|gho_|ghs_|ghu_|github_pat_|glpat-|xox[abpors]-|AKIA|ASIA|AIza|eyJ|Bearer\s|Basic\s)"
)
# Long runs of token characters, mixed case and digits, high entropy; paths, module names and URLs have separators.
TOKEN_CHARS = re.compile(r"^[A-Za-z0-9_\-+=]{20,}$")
MIN_ENTROPY_BITS = 3.5


def looks_secret(value: str) -> bool:
    if SECRET_SHAPE.match(value):
        return True
    if not TOKEN_CHARS.match(value):
        return False
    if re.fullmatch(r"[0-9a-fA-F]{32,}", value):
        return True  # hex digests and keys
    if not (re.search(r"\d", value) and re.search(r"[a-z]", value) and re.search(r"[A-Z]", value)):
        return False  # snake_case names and the like: a random token mixes all three
    counts = Counter(value)
    entropy = -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())
    return entropy >= MIN_ENTROPY_BITS


def mask_url(url: str) -> str:
    """The URL with its password and secret-looking query values masked."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = netloc.replace(f":{parts.password}@", f":{MASK}@", 1)
    query = [
        (name, MASK if SECRET_NAME.search(name) or looks_secret(value) else value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(netloc=netloc, query=urlencode(query, safe="*")))


def mask_args(args: list[str]) -> list[str]:
    """Command-line arguments with secret values masked: `--token=x`, the value after `--api-key`, `sk-...`."""
    masked: list[str] = []
    secret_next = False
    for arg in args:
        if secret_next and not arg.startswith("-"):
            masked.append(MASK)
            secret_next = False
            continue
        secret_next = False
        name, equals, value = arg.partition("=")
        if arg.startswith("-") and SECRET_NAME.search(name):
            if equals:
                masked.append(f"{name}={MASK}")
            else:
                masked.append(arg)
                secret_next = True
        elif equals and SECRET_NAME.search(name) and re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            masked.append(f"{name}={MASK}")  # KEY=value pairs, as `env` commands take them
        elif re.match(r"^[a-z]+://", arg):
            masked.append(mask_url(arg))
        elif looks_secret(arg) or (equals and looks_secret(value)):
            masked.append(MASK if not equals else f"{name}={MASK}")
        else:
            masked.append(arg)
    return masked


def mask_values(values: dict[str, str]) -> dict[str, str]:
    """Env variables and headers: the names stay (they tell what is configured), every value is masked."""
    return {name: MASK for name in values}
