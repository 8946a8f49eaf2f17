"""Benchmark the chat UI in a real browser: what the UI adds to time to first token, and a big sidebar.

1. Enter-to-first-token-painted in headless chromium vs the proxy's own TTFT (same prompt, direct SSE).
2. 1,000 stored conversations: page load until the sidebar is painted, and switch time to another chat.

Runs against the `make up` stack (UI :8501, proxy :4100, Postgres :5433); prints one table; stops by
itself and deletes the conversations it stored (their titles start with "bench-").

    .venv/bin/python bench/ui_bench.py [--ui http://localhost:8501] [--proxy http://localhost:4100] [--runs 5]
"""

import argparse
import contextlib
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import httpx
import psycopg
from playwright.sync_api import Page, sync_playwright

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
from devstack.config import get_settings  # noqa: E402  (run as a script from the repo root)

MODEL = "smollm2:135m"
PROMPT = "Name one colour."
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
# Stamps Enter (keydown, capture phase) and the first paint of answer text, both on the page's clock.
WATCH_JS = """
() => {
  window.__enter = null; window.__painted = null;
  const before = document.querySelectorAll('[data-testid=stChatMessage]').length;
  document.addEventListener('keydown', (e) => { if (e.key === 'Enter' && window.__enter === null)
    window.__enter = performance.now(); }, {capture: true, once: true});
  const observer = new MutationObserver(() => {
    const messages = document.querySelectorAll('[data-testid=stChatMessage]');
    if (messages.length < before + 2) return;
    const body = messages[before + 1].querySelector('[data-testid=stMarkdownContainer]');
    const text = body ? body.innerText.trim() : '';
    if (text && !text.includes('waiting for the model')) {
      window.__painted = performance.now(); observer.disconnect();
    }
  });
  observer.observe(document.body, {subtree: true, childList: true, characterData: true});
}
"""


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError, StopIteration):
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} CPUs, {mem:.0f} GiB RAM"


def proxy_ttft(proxy: str, key: str) -> float:
    body = {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 16, "stream": True}
    started = time.perf_counter()
    with httpx.stream("POST", f"{proxy}/v1/chat/completions", json=body, timeout=120,
                      headers={"Authorization": f"Bearer {key}"}) as reply:  # fmt: skip
        reply.raise_for_status()
        for line in reply.iter_lines():
            if line.startswith("data: {") and '"content":"' in line.replace(" ", "") and '"content":""' not in line:
                return (time.perf_counter() - started) * 1000
    raise RuntimeError("the proxy streamed no text")


def set_max_tokens(page: Page, value: int) -> None:
    page.get_by_text("Settings for this chat").click()
    field = page.get_by_label("Max tokens")
    field.fill(str(value))
    field.press("Enter")
    page.get_by_text("Settings for this chat").click()


def ui_ttft(page: Page, database_url: str) -> tuple[float, float]:
    """Enter-to-paint, and the part of it the UI added: minus the TTFT its server saw for that request."""
    page.get_by_role("button", name="New chat").click()
    page.wait_for_function("document.querySelectorAll('[data-testid=stChatMessage]').length === 0")
    page.evaluate(WATCH_JS)
    box = page.locator("[data-testid=stChatInput] textarea")
    box.fill(PROMPT)
    box.press("Enter")
    page.wait_for_function("window.__painted !== null", timeout=120_000)
    elapsed = float(page.evaluate("window.__painted - window.__enter"))
    page.get_by_role("button", name="Regenerate").wait_for(timeout=120_000)  # let the answer finish
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT (facts->>'ttft_ms')::float FROM ui_messages WHERE role = 'assistant' ORDER BY id DESC LIMIT 1"
        ).fetchone()
    backend = float(row[0]) if row and row[0] is not None else float("nan")
    return elapsed, elapsed - backend


def seed_conversations(url: str, count: int) -> None:
    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT 1 FROM ui_conversations LIMIT 1")  # the UI created the schema on start
        for i in range(count):
            cursor.execute(
                "INSERT INTO ui_conversations (title, model, temperature, max_tokens, top_p) "
                "VALUES (%s, %s, 0.7, 64, 1.0) RETURNING id",
                (f"bench-{i:04d}", MODEL),
            )
            row = cursor.fetchone()
            assert row is not None
            cursor.executemany(
                "INSERT INTO ui_messages (conversation_id, role, content) VALUES (%s, %s, %s)",
                [(row[0], "user", f"bench question {i}"), (row[0], "assistant", f"bench answer {i} " * 20)],
            )


def last_conversation_id(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT COALESCE(max(id), 0) FROM ui_conversations").fetchone()
    return int(row[0]) if row else 0


def delete_bench_rows(url: str, after_id: int) -> None:
    """Deletes only what this run stored: the seeded chats and the chats that asked PROMPT."""
    with psycopg.connect(url) as conn:
        conn.execute(
            "DELETE FROM ui_conversations c WHERE c.id > %s AND (c.title LIKE 'bench-%%' OR EXISTS "
            "(SELECT 1 FROM ui_messages m WHERE m.conversation_id = c.id AND m.role = 'user' AND m.content = %s))",
            (after_id, PROMPT),
        )


def page_load(page: Page, ui: str, newest: str | None) -> float:
    """From navigation to the chat input and (when given) the newest chat's sidebar button painted."""
    started = time.perf_counter()
    page.goto(ui)
    if newest:
        page.locator("[data-testid=stSidebar]").get_by_role("button", name=newest).wait_for()
    page.locator("[data-testid=stChatInput] textarea").wait_for()
    return (time.perf_counter() - started) * 1000


def switch(page: Page, title: str, number: int) -> float:
    started = time.perf_counter()
    page.locator("[data-testid=stSidebar]").get_by_role("button", name=title).click()
    page.locator("[data-testid=stChatMessage] p", has_text=f"bench question {number}").first.wait_for()
    return (time.perf_counter() - started) * 1000


def main() -> int:
    stack = get_settings()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ui", default=f"http://localhost:{stack.ui_port}")
    parser.add_argument("--proxy", default=stack.proxy_url)
    parser.add_argument("--key", default=os.environ.get("LITELLM_API_KEY", stack.litellm_master_key))
    parser.add_argument("--database-url", default=stack.database_url.rsplit("/", 1)[0] + "/genailabs")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--conversations", type=int, default=1000)
    args = parser.parse_args()

    rows: list[tuple[str, str, str]] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.set_default_timeout(60_000)
        after_id = 0
        try:
            page.goto(args.ui)
            after_id = last_conversation_id(args.database_url)  # the page created the schema
            page.locator("[data-testid=stChatInput] textarea").wait_for()
            set_max_tokens(page, 16)
            proxy_ttft(args.proxy, args.key)  # warm-up: model loaded on both paths
            ui_ttft(page, args.database_url)
            proxies, uis, added = [], [], []
            for _ in range(args.runs):
                proxies.append(proxy_ttft(args.proxy, args.key))
                painted, overhead = ui_ttft(page, args.database_url)
                uis.append(painted)
                added.append(overhead)
            rows += [
                ("proxy TTFT (direct SSE), median", f"{statistics.median(proxies):.0f} ms", f"{args.runs} runs"),
                ("Enter → first token painted, median", f"{statistics.median(uis):.0f} ms", f"{args.runs} runs"),
                ("added by the UI (painted − its request's TTFT)", f"{statistics.median(added):.0f} ms",
                 f"median; max {max(added):.0f} ms; target < 100 ms"),
            ]  # fmt: skip
            empty_loads = [page_load(page, args.ui, None) for _ in range(args.runs)]
            seed_conversations(args.database_url, args.conversations)
            loads = [page_load(page, args.ui, "bench-0999") for _ in range(args.runs)]
            switches = [switch(page, f"bench-{n:04d}", n) for n in range(999, 999 - args.runs, -1)]
            rows += [
                ("page load, before seeding, median", f"{statistics.median(empty_loads):.0f} ms", "baseline"),
                (f"page load, {args.conversations} chats stored, median", f"{statistics.median(loads):.0f} ms",
                 "target < 1000 ms"),
                ("switch conversation, median", f"{statistics.median(switches):.0f} ms", "target < 1000 ms"),
            ]  # fmt: skip
        finally:
            delete_bench_rows(args.database_url, after_id)
            browser.close()

    print(f"UI benchmark on {machine()}; model {MODEL}; headless chromium")
    width = max(len(row[0]) for row in rows)
    print(f"{'measure':<{width}}  {'value':>9}  note")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>9}  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
