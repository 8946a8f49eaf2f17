"""Health of the proxy, the model runtimes and where the chats live, for the sidebar panel."""

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Literal

import httpx
from pydantic import BaseModel

from chat_ui.config import Settings
from chat_ui.history import History, HistoryUnavailable

Level = Literal["green", "amber", "red"]


class ServiceStatus(BaseModel):
    name: str
    level: Level
    checked_at: datetime
    reason: str = ""  # one line, on amber or red
    action: str = ""  # what to do about it

    @property
    def icon(self) -> str:
        color = {"green": "green", "amber": "orange", "red": "red"}[self.level]
        return f":{color}[:material/radio_button_checked:] :{color}[{self.level}]"


def _now() -> datetime:
    return datetime.now().astimezone()


def check_proxy(settings: Settings) -> ServiceStatus:
    root = settings.proxy_root
    headers = {"Authorization": f"Bearer {settings.litellm_api_key.get_secret_value()}"}
    try:
        reply = httpx.get(f"{root}/v1/models", headers=headers, timeout=settings.probe_timeout)
    except httpx.HTTPError as exc:
        return ServiceStatus(
            name="proxy",
            level="red",
            checked_at=_now(),
            reason=f"no answer from {root} ({type(exc).__name__})",
            action="start it with `make up`; see `make logs` if it keeps failing",
        )
    if reply.status_code in (401, 403):
        return ServiceStatus(
            name="proxy",
            level="amber",
            checked_at=_now(),
            reason=f"up, but it rejects the UI's API key ({reply.status_code})",
            action="set a valid LITELLM_API_KEY in streamlit_service/.env",
        )
    if reply.status_code != 200:
        return ServiceStatus(
            name="proxy",
            level="amber",
            checked_at=_now(),
            reason=f"up, but /v1/models answers {reply.status_code}",
            action="see the proxy log (`make logs`)",
        )
    if not reply.json().get("data"):
        return ServiceStatus(
            name="proxy",
            level="amber",
            checked_at=_now(),
            reason="up, but it lists no models",
            action="check model_list in litellm_hub/litellm_config.yaml",
        )
    return ServiceStatus(name="proxy", level="green", checked_at=_now())


def check_runtimes(settings: Settings) -> ServiceStatus:
    down: list[str] = []
    empty: list[str] = []
    for url in settings.runtime_urls:
        try:
            reply = httpx.get(f"{url}/api/tags", timeout=settings.probe_timeout)
            reply.raise_for_status()
        except httpx.HTTPError:
            down.append(url)
            continue
        if not reply.json().get("models"):
            empty.append(url)
    total = len(settings.runtime_urls)
    if total == 0:
        return ServiceStatus(name="model runtime", level="green", checked_at=_now(), reason="not probed")
    if len(down) == total:
        return ServiceStatus(
            name="model runtime",
            level="red",
            checked_at=_now(),
            reason=f"no runtime answers ({', '.join(down)})",
            action="start it with `make up`; if a model is missing, `ollama pull` it",
        )
    if down or empty:
        what = f"{len(down)} of {total} down" if down else f"{', '.join(empty)} has no models"
        return ServiceStatus(
            name="model runtime",
            level="amber",
            checked_at=_now(),
            reason=what + "; the proxy routes around it",
            action="`make status` shows which; `make logs` why",
        )
    return ServiceStatus(name="model runtime", level="green", checked_at=_now())


def check_history(history: History) -> ServiceStatus:
    """Where the chats live: the UI's database, or the agent host in agent-host mode."""
    try:
        history.ping()
    except HistoryUnavailable as exc:
        where = "AGENT_HOST_URL" if history.keeps_turns else "DATABASE_URL"
        return ServiceStatus(
            name=history.name,
            level="red",
            checked_at=_now(),
            reason=f"{exc}; history is read-only until it returns",
            action=f"start it with `make up`; check {where} in streamlit_service/.env",
        )
    return ServiceStatus(name=history.name, level="green", checked_at=_now())


def check_all(settings: Settings, history: History) -> list[ServiceStatus]:
    """All three checks at once, so a dead service costs one probe timeout, not three."""
    with ThreadPoolExecutor(max_workers=3) as pool:
        proxy = pool.submit(check_proxy, settings)
        runtimes = pool.submit(check_runtimes, settings)
        database = pool.submit(check_history, history)
        return [proxy.result(), runtimes.result(), database.result()]
