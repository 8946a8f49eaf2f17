"""The model runtimes' own API (Ollama's: /api/tags, /api/ps, /api/pull, /api/delete), called from the UI's server
side only, with bounded timeouts; and the pure helpers that read its answers. Nothing here imports Streamlit."""

import json
from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

# One progress line of Ollama's pull is ~150 bytes; anything far longer is not a progress line.
MAX_LINE = 64 * 1024
MAX_NAME = 256


class RuntimeProblem(Exception):
    """A runtime refused or could not be reached; the message is for the person (the runtime's own text)."""


@dataclass(frozen=True)
class InstalledModel:
    name: str
    size: int
    family: str
    parameter_size: str
    quantization: str
    modified_at: datetime | None
    loaded: bool | None  # None: the runtime's /api/ps did not answer


@dataclass(frozen=True)
class RuntimeModels:
    """What one runtime has installed, or why that could not be read (`problem`)."""

    url: str
    models: list[InstalledModel] = field(default_factory=list)
    problem: str = ""


def human_size(size: int) -> str:
    """Bytes in decimal units, as `ollama list` shows them (270 MB, 1.2 GB)."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000:
            return f"{value:.0f} {unit}" if unit in ("B", "KB", "MB") or value >= 100 else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def _when(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def loaded_names(payload: object) -> set[str]:
    """The model names of an /api/ps answer."""
    models = payload.get("models") if isinstance(payload, dict) else None
    return {str(m.get("name") or m.get("model")) for m in models or [] if isinstance(m, dict)}


def parse_tags(payload: object, loaded: set[str] | None) -> list[InstalledModel]:
    """An /api/tags answer as rows, sorted by name; `loaded` is /api/ps's names (None: unknown)."""
    models = payload.get("models") if isinstance(payload, dict) else None
    if not isinstance(models, list):
        raise RuntimeProblem("its /api/tags answer has no model list")
    rows = []
    for entry in models:
        if not isinstance(entry, dict):
            continue
        name = str(entry.get("name") or entry.get("model") or "")
        details = entry.get("details")
        details = details if isinstance(details, dict) else {}
        size = entry.get("size")
        rows.append(
            InstalledModel(
                name=name,
                size=size if isinstance(size, int) else 0,
                family=str(details.get("family") or ""),
                parameter_size=str(details.get("parameter_size") or ""),
                quantization=str(details.get("quantization_level") or ""),
                modified_at=_when(entry.get("modified_at")),
                loaded=None if loaded is None else name in loaded,
            )
        )
    return sorted(rows, key=lambda row: row.name)


def error_text(reply: httpx.Response) -> str:
    """The runtime's `{"error": ...}` text, else its status line."""
    try:
        body = json.loads(reply.read())
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("error"):
        return str(body["error"])
    return f"{reply.status_code} {reply.reason_phrase}".strip()


def _unreachable(url: str, exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"{url} did not answer in time ({type(exc).__name__})"
    return f"no answer from {url} ({type(exc).__name__})"


def installed(url: str, timeout: float) -> RuntimeModels:
    """The models one runtime has, each marked loaded or not; never raises."""
    try:
        tags = httpx.get(f"{url}/api/tags", timeout=timeout)
    except httpx.HTTPError as exc:
        return RuntimeModels(url=url, problem=_unreachable(url, exc))
    if tags.status_code != 200:
        return RuntimeModels(url=url, problem=f"{url} answers /api/tags with {error_text(tags)}")
    try:
        ps = httpx.get(f"{url}/api/ps", timeout=timeout)
        loaded: set[str] | None = loaded_names(ps.json()) if ps.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        loaded = None
    try:
        return RuntimeModels(url=url, models=parse_tags(tags.json(), loaded))
    except (ValueError, RuntimeProblem) as exc:
        return RuntimeModels(url=url, problem=f"{url}: {exc}")


def installed_everywhere(urls: list[str], timeout: float) -> list[RuntimeModels]:
    """Every runtime at once, so a dead one costs one timeout, not one each."""
    if not urls:
        return []
    with ThreadPoolExecutor(max_workers=min(len(urls), 4)) as pool:
        return list(pool.map(lambda url: installed(url, timeout), urls))


def check_name(name: str) -> str:
    """The model name as typed, trimmed; RuntimeProblem when it cannot be one."""
    name = name.strip()
    if not name:
        raise RuntimeProblem("type a model name, such as qwen2.5:0.5b")
    if len(name) > MAX_NAME or any(ch.isspace() for ch in name):
        raise RuntimeProblem(f"“{name[:60]}” is not a model name (no spaces, at most {MAX_NAME} characters)")
    return name


@dataclass
class PullProgress:
    """Reads Ollama's pull lines: the layers seen so far with their sizes, and what to show."""

    layers: dict[str, tuple[int, int]] = field(default_factory=dict)  # digest -> (completed, total)
    status: str = ""
    done: bool = False

    def update(self, line: dict[str, Any]) -> None:
        """Takes one line; RuntimeProblem with the runtime's text when the line is an error."""
        if line.get("error"):
            raise RuntimeProblem(str(line["error"]))
        self.status = str(line.get("status") or self.status)
        digest, total = line.get("digest"), line.get("total")
        if isinstance(digest, str) and isinstance(total, int) and total > 0:
            completed = line.get("completed")
            self.layers[digest] = (min(completed if isinstance(completed, int) else 0, total), total)
        if self.status == "success":
            self.done = True

    @property
    def fraction(self) -> float:
        """Bytes completed over bytes known, across layers (1.0 once the runtime says success)."""
        if self.done:
            return 1.0
        total = sum(total for _, total in self.layers.values())
        if not total:
            return 0.0
        return min(sum(completed for completed, _ in self.layers.values()) / total, 1.0)

    def text(self) -> str:
        """The runtime's status, with bytes when it is downloading a layer (pulling 4c5e: 120 MB of 270 MB)."""
        if self.status.startswith("pulling ") and self.status != "pulling manifest":
            digest = next((d for d in self.layers if d.removeprefix("sha256:").startswith(self.status[8:])), None)
            if digest is not None:
                completed, total = self.layers[digest]
                return f"{self.status}: {human_size(completed)} of {human_size(total)}"
        return self.status or "starting"


def pull_lines(
    url: str, name: str, connect_timeout: float, read_timeout: float
) -> Generator[dict[str, Any], None, None]:
    """POSTs /api/pull and yields its NDJSON lines as they come. A stalled stream ends after `read_timeout`
    without a byte; closing the generator closes the connection, which stops the runtime's pull (a pull again
    resumes it). RuntimeProblem on refusal, a bad line or a lost connection."""
    timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
    try:
        with httpx.stream("POST", f"{url}/api/pull", json={"model": name, "stream": True}, timeout=timeout) as reply:
            if reply.status_code != 200:
                raise RuntimeProblem(error_text(reply))
            for raw in reply.iter_lines():
                if not raw.strip():
                    continue
                if len(raw) > MAX_LINE:
                    raise RuntimeProblem(f"{url} sent a pull line of {len(raw)} characters: not Ollama's API")
                try:
                    line = json.loads(raw)
                except ValueError:
                    raise RuntimeProblem(f"{url} sent a line that is not JSON: {raw[:80]!r}") from None
                if isinstance(line, dict):
                    yield line
    except httpx.ConnectError as exc:
        raise RuntimeProblem(_unreachable(url, exc)) from exc
    except httpx.TimeoutException as exc:
        raise RuntimeProblem(f"{url} sent nothing for too long ({type(exc).__name__}); pull again to resume") from exc
    except httpx.HTTPError as exc:
        raise RuntimeProblem(f"lost {url} ({type(exc).__name__}); pull again to resume") from exc


def delete_model(url: str, name: str, timeout: float) -> None:
    """DELETE /api/delete; RuntimeProblem with the runtime's text when it refuses (unknown, in use, built in)."""
    try:
        reply = httpx.request("DELETE", f"{url}/api/delete", json={"model": name}, timeout=timeout)
    except httpx.HTTPError as exc:
        raise RuntimeProblem(_unreachable(url, exc)) from exc
    if reply.status_code != 200:
        raise RuntimeProblem(error_text(reply))
