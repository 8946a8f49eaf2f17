"""Benchmark people: sign-in to the chat page, what per-person auth adds on the agent host, and a big database.

1. Sign-in to first paint: submit the /signin form in headless chromium until the chat input is painted.
2. Per-person auth on the host: GET /sessions?limit=1 with the operator key (the shared key of before),
   a sign-in token, a personal API key (both warm in the host's credential cache) and never-seen sign-in
   tokens (each used once: the database lookup), beside GET /health (no auth at all); p50 of each.
3. One person with 1,000 chats among 10,000 in the database: the host's session list for them, and the
   chat page load (navigation to the sidebar's newest chat and the chat input painted), beside a person
   with 10 chats.

Runs against the `make up` stack (UI :8501, agent host :8000, Postgres :5433) with the UI in agent-host mode;
makes its own accounts (logins starting "bench-") and deletes them, their chats and their proxy keys at the end.

    .venv/bin/python bench/users_bench.py [--runs 20] [--page-runs 5]
"""

import argparse
import os
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg
from playwright.sync_api import Browser, sync_playwright

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from benchlib import (  # noqa: E402
    machine,
    percentile,
    print_table,
    remove_accounts,
    seed_sessions,
    sign_in_context,
)

from devstack.config import get_settings  # noqa: E402  (run as a script from the repo root)
from devstack.hostkeys import load_keys  # noqa: E402
from genailabs_accounts.store import AccountStore  # noqa: E402

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
PASSWORD = "bench-" + secrets.token_urlsafe(12)


def timed(call: Callable[[], httpx.Response]) -> float:
    started = time.perf_counter()
    call().raise_for_status()
    return (time.perf_counter() - started) * 1000


def first_paint_after_sign_in(browser: Browser, ui: str, login: str, runs: int) -> tuple[float, list[float]]:
    """Submit → chat input painted: once with a cold browser cache, then `runs` times signed out and in again."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(120_000)

    def sign_in() -> float:
        page.goto(f"{ui}/signin")
        page.fill("#login", login)
        page.fill("#password", PASSWORD)
        started = time.perf_counter()
        page.click("button[type=submit]")
        page.locator("[data-testid=stChatInput] textarea").wait_for()
        return (time.perf_counter() - started) * 1000

    cold = sign_in()
    warm = []
    for _ in range(runs):
        context.clear_cookies()  # signed out; the browser keeps its cache, as a returning person's does
        warm.append(sign_in())
    context.close()
    return cold, warm


def page_loads(browser: Browser, ui: str, login: str, newest: str, runs: int) -> list[float]:
    """Navigation → the sidebar's newest chat and the chat input painted, signed in, the browser cache warm."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    sign_in_context(context, ui, login, PASSWORD)
    page = context.new_page()
    page.set_default_timeout(120_000)
    loads = []
    for _ in range(runs + 1):  # the first one fills the cache
        started = time.perf_counter()
        page.goto(ui)
        page.locator("[data-testid=stSidebar]").get_by_role("button", name=newest).wait_for()
        page.locator("[data-testid=stChatInput] textarea").wait_for()
        loads.append((time.perf_counter() - started) * 1000)
    context.close()
    return loads[1:]


def main() -> int:
    stack = get_settings()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ui", default=f"http://localhost:{stack.ui_port}")
    parser.add_argument("--host", default=f"http://localhost:{stack.agent_host_port}")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--page-runs", type=int, default=5)
    args = parser.parse_args()
    hub_url = stack.database_url
    genailabs_url = stack.database_url.rsplit("/", 1)[0] + "/genailabs"
    keys = load_keys(stack)
    if keys is None:
        print("users_bench: no .stack/agent_host.keys: run `make up` first", file=sys.stderr)
        return 1

    store = AccountStore(genailabs_url, hub_url)
    tag = secrets.token_hex(3)
    heavy, crowd, light = (store.create_account(f"bench-{name}-{tag}", PASSWORD) for name in ("heavy", "crowd", "lite"))
    ids = [str(account.id) for account in (heavy, crowd, light)]
    rows: list[tuple[str, str, str]] = []
    try:
        with httpx.Client(base_url=args.host, timeout=60) as client:
            token = store.sign_in(heavy.login, PASSWORD).token
            api_key, _ = store.create_api_key(str(heavy.id), "bench")
            fresh = [store.sign_in(heavy.login, PASSWORD).token for _ in range(args.runs)]

            def sessions(credential: str, limit: int = 1) -> Callable[[], httpx.Response]:
                headers = {"Authorization": f"Bearer {credential}"}
                return lambda: client.get("/sessions", params={"limit": limit}, headers=headers)

            cases = {
                "no auth (GET /health)": lambda: client.get("/health"),
                "operator key (the shared key of before)": sessions(keys["AGENT_HOST_API_KEY"]),
                "sign-in token, cached": sessions(token),
                "personal API key, cached": sessions(api_key),
            }
            for call in cases.values():
                timed(call)  # warm-up: connections and the credential cache
            samples: dict[str, list[float]] = {name: [] for name in cases}
            samples["sign-in token, first use (database)"] = []
            for i in range(args.runs):  # interleaved, so every case sees the same machine load
                for name, call in cases.items():
                    samples[name].append(timed(call))
                samples["sign-in token, first use (database)"].append(timed(sessions(fresh[i])))
            base = statistics.median(samples["operator key (the shared key of before)"])
            for name, values in samples.items():
                p50 = statistics.median(values)
                rows.append((f"host {name}, p50", f"{p50:.1f} ms", f"p95 {percentile(values, 0.95):.1f} ms; "
                             f"{p50 / base:.2f}x the operator key"))  # fmt: skip

            seed_sessions(genailabs_url, str(crowd.id), 9000, "crowd")
            seed_sessions(genailabs_url, str(heavy.id), 1000, "heavy")
            seed_sessions(genailabs_url, str(light.id), 10, "light")
            with psycopg.connect(genailabs_url) as conn:
                total = conn.execute("SELECT count(*) FROM agent_sessions").fetchone()
            for account, count in ((light, 10), (heavy, 1000)):
                credential = store.sign_in(account.login, PASSWORD).token
                lists = [timed(sessions(credential, limit=100)) for _ in range(args.runs)]
                in_db = f"{total[0] if total else '?'} sessions in the database"
                rows.append((f"host session list (100 newest), {count} chats of theirs, p50",
                             f"{statistics.median(lists):.1f} ms", in_db))  # fmt: skip

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            try:
                cold, warm = first_paint_after_sign_in(browser, args.ui, light.login, args.page_runs)
                rows.append(("sign-in → chat page painted, cold browser cache", f"{cold:.0f} ms", "first sign-in"))
                rows.append(("sign-in → chat page painted, warm cache, median", f"{statistics.median(warm):.0f} ms",
                             f"{args.page_runs} runs, max {max(warm):.0f} ms"))  # fmt: skip
                for account, count, newest in ((light, 10, "light-0009"), (heavy, 1000, "heavy-0999")):
                    loads = page_loads(browser, args.ui, account.login, newest, args.page_runs)
                    name = f"chat page load, {count} chats of theirs among 10,000, median"
                    rows.append((name, f"{statistics.median(loads):.0f} ms", f"{args.page_runs} runs, warm cache"))
            finally:
                browser.close()
    finally:
        store.close()
        remove_accounts(genailabs_url, hub_url, ids)

    print_table(f"People benchmark on {machine()}; headless chromium; {args.runs} requests per host case", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
