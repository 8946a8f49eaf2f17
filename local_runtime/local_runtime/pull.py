"""`python -m local_runtime.pull MODEL` (`make pull MODEL=qwen2.5:0.5b`): pull a model with a progress bar.

Through the running runtime's POST /api/pull when it answers (so its in-flight pulls and this one share a
download), else straight into RUNTIME_MODELS_DIR with the same code; either way the runtime lists the model
at once. Exit status 0 on success, 1 with Ollama's error text otherwise.
"""

import argparse
import asyncio
import json
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from tqdm import tqdm  # a dependency of gguf (llama.cpp's reader), which the runtime pins

from local_runtime.catalog import Catalog, shipped_models
from local_runtime.config import RuntimeSettings, get_settings
from local_runtime.errors import RuntimeServiceError
from local_runtime.registry import Puller, read_bounded

MAX_LINE_BYTES = 64 * 1024


def runtime_url(settings: RuntimeSettings) -> str:
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    return f"http://{host}:{settings.port}"


async def via_runtime(url: str, model: str, insecure: bool) -> AsyncIterator[dict[str, Any]]:
    """The runtime's progress lines; raises ConnectionError when no runtime answers at `url`."""
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=5)
    async with aiohttp.ClientSession(timeout=timeout, read_bufsize=MAX_LINE_BYTES) as session:
        try:
            response = await session.post(f"{url}/api/pull", json={"model": model, "insecure": insecure})
        except aiohttp.ClientConnectorError as exc:
            raise ConnectionError(str(exc)) from exc
        async with response:
            if response.status != 200:
                body = await read_bounded(response, MAX_LINE_BYTES)
                try:
                    yield {"error": json.loads(body)["error"]}
                except (ValueError, KeyError, TypeError):
                    yield {"error": f"{response.status}: {body.decode(errors='replace')}"}
                return
            async for line in response.content:
                if line.strip():
                    yield json.loads(line)


async def in_process(settings: RuntimeSettings, model: str, insecure: bool) -> AsyncIterator[dict[str, Any]]:
    catalog = Catalog(settings.models_dir, shipped_models(settings.default_model), settings.registry)
    store = catalog.store
    puller = Puller(store, settings.insecure_registries, settings.registry_timeout, settings.pull_free_margin)
    try:
        name = store.parse_name(model)
        catalog.refuse_shadowing(name)  # as the runtime refuses it
        async for step in puller.pull(name, insecure=insecure):
            yield step.body()
    except RuntimeServiceError as exc:
        yield {"error": str(exc)}


class Bars:
    """One tqdm bar per layer, as `ollama pull` shows them; status lines in between."""

    def __init__(self) -> None:
        self.bars: dict[str, tqdm] = {}
        self.status = ""

    def show(self, line: dict[str, Any]) -> None:
        digest, status = line.get("digest"), str(line.get("status", ""))
        if digest and line.get("total"):
            bar = self.bars.get(digest)
            if bar is None:
                bar = self.bars[digest] = tqdm(
                    total=int(line["total"]), desc=status, unit="B", unit_scale=True, unit_divisor=1024, leave=True
                )
            bar.update(int(line.get("completed") or 0) - bar.n)
        elif status and status != self.status:
            self.close()
            print(status, flush=True)
        self.status = status

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()


async def pull(model: str, insecure: bool, settings: RuntimeSettings) -> int:
    bars = Bars()
    lines = via_runtime(runtime_url(settings), model, insecure)
    try:
        first = await anext(lines)
    except ConnectionError:
        print(f"no runtime answers at {runtime_url(settings)}: pulling into {settings.models_dir}", flush=True)
        lines = in_process(settings, model, insecure)
        first = await anext(lines)
    try:
        line = first
        while True:
            if "error" in line:
                bars.close()
                print(f"Error: {line['error']}", file=sys.stderr)
                return 1
            bars.show(line)
            try:
                line = await anext(lines)
            except StopAsyncIteration:
                break
    finally:
        bars.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_runtime.pull", description=__doc__.splitlines()[0])
    parser.add_argument("model", help="name[:tag], namespace/name[:tag] or host[:port]/namespace/name[:tag]")
    parser.add_argument("--insecure", action="store_true", help="reach the registry over plain http")
    args = parser.parse_args(argv)
    try:
        return asyncio.run(pull(args.model, args.insecure, get_settings()))
    except KeyboardInterrupt:
        print("interrupted: the partial download is kept; pull again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
