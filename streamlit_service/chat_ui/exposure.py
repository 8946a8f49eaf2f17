"""`python -m chat_ui.exposure HOST`: refuses to serve the UI beyond loopback with an .env.example secret.

Streamlit offers no start-up hook, so the image runs this before `streamlit run` (Dockerfile). In a
container the UI binds 0.0.0.0; where compose publishes it (PUBLISHED_ADDRESS) is what counts.
"""

import ipaddress
import os
import sys
from urllib.parse import unquote, urlsplit

from pydantic import SecretStr, ValidationError

from chat_ui.config import Settings

# The secrets the committed .env.example files ship with (tests/stack/test_example_secrets.py keeps them in step).
EXAMPLE_KEYS = frozenset({"sk-litellm-hub-local-123", "change-me-agent-host-key"})
# Secrets that are not keys: whoever knows the cookie secret can sign anyone's sign-in cookie.
EXAMPLE_SECRETS = frozenset({"change-me-ui-cookie-secret"})
EXAMPLE_DB_PASSWORDS = frozenset({"litellm"})


def is_loopback(address: str) -> bool:
    if address.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def example_secrets_in_use(settings: Settings) -> list[str]:
    names = ["LITELLM_API_KEY"] if settings.litellm_api_key.get_secret_value() in EXAMPLE_KEYS else []
    secret = settings.ui_cookie_secret
    if secret is not None and secret.get_secret_value() in EXAMPLE_SECRETS:
        names.append("UI_COOKIE_SECRET")
    urls: tuple[tuple[str, SecretStr], ...] = (
        ("DATABASE_URL", settings.database_url),
        ("HUB_DATABASE_URL", settings.hub_database_url),
    )
    for name, url in urls:
        password = urlsplit(url.get_secret_value()).password
        if password is not None and unquote(password) in EXAMPLE_DB_PASSWORDS:
            names.append(name)
    return names


def exposure_problem(settings: Settings, host: str) -> str | None:
    address = os.environ.get("PUBLISHED_ADDRESS") or host
    names = [] if is_loopback(address) else example_secrets_in_use(settings)
    if not names:
        return None
    return (
        f"ui: refusing to serve on {address} with the example value of {', '.join(names)} from .env.example: "
        "set a secret of your own, or bind to 127.0.0.1"
    )


def main(argv: list[str]) -> int:
    try:
        settings = Settings()  # type: ignore[call-arg]  # LITELLM_API_KEY comes from the environment
    except ValidationError:
        return 0  # the page itself reports missing settings
    problem = exposure_problem(settings, argv[0] if argv else "127.0.0.1")
    if problem is not None:
        print(problem, file=sys.stderr)
        return 78  # EX_CONFIG
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
