"""The Models page's pieces that need no running runtime: reading /api/tags and /api/ps, the pull's progress, sizes,
names, and a runtime that refuses or is not there."""

from datetime import datetime

import httpx
import pytest

from chat_ui.backend import ModelList, ModelOption
from chat_ui.models_view import rows_of
from chat_ui.runtime_client import (
    PullProgress,
    RuntimeProblem,
    check_name,
    delete_model,
    error_text,
    human_size,
    installed,
    loaded_names,
    parse_tags,
    pull_lines,
)
from devstack.probe import free_port

TAGS = {
    "models": [
        {
            "name": "smollm2:135m",
            "model": "smollm2:135m",
            "modified_at": "2026-12-02T21:00:00.123456789Z",
            "size": 270_898_880,
            "digest": "9077fe9d2ae1a4a41a868836b56b8163731a8fe16621397028c2c76f838c6907",
            "details": {"format": "gguf", "family": "llama", "parameter_size": "134.52M", "quantization_level": "F16"},
        },
        {
            "name": "qwen2.5:0.5b",
            "model": "qwen2.5:0.5b",
            "modified_at": "2026-12-02T21:05:00+00:00",
            "size": 397_821_319,
            "digest": "a8b0c51577010a279d933d14c2a8ab4b268079d44c5c8830c0a93900f1827c67",
            "details": {"family": "qwen2", "parameter_size": "494.03M", "quantization_level": "Q4_K_M"},
        },
    ]
}
PS = {"models": [{"name": "smollm2:135m", "model": "smollm2:135m", "size": 300_000_000, "details": {}}]}


def test_tags_become_rows_sorted_by_name_with_what_is_loaded() -> None:
    rows = parse_tags(TAGS, loaded_names(PS))
    assert [row.name for row in rows] == ["qwen2.5:0.5b", "smollm2:135m"]
    qwen, smollm = rows
    assert (qwen.family, qwen.parameter_size, qwen.quantization, qwen.loaded) == ("qwen2", "494.03M", "Q4_K_M", False)
    assert smollm.loaded is True and smollm.size == 270_898_880
    assert qwen.modified_at == datetime.fromisoformat("2026-12-02T21:05:00+00:00")
    assert smollm.modified_at is not None  # Go's nanoseconds do not stop the row


def test_an_unknown_loaded_state_and_missing_details_read_as_such() -> None:
    rows = parse_tags({"models": [{"name": "bare:latest", "size": "big"}]}, None)
    assert rows[0].loaded is None and rows[0].size == 0 and rows[0].family == ""
    table = rows_of(rows)
    assert table.iloc[0].to_dict() == {
        "model": "bare:latest",
        "size": "0 B",
        "family": "—",
        "parameters": "—",
        "quantisation": "—",
        "loaded": "unknown",
        "modified": "—",
    }
    with pytest.raises(RuntimeProblem, match="no model list"):
        parse_tags({"error": "x"}, None)


def test_the_table_shows_sizes_as_ollama_list_does() -> None:
    table = rows_of(parse_tags(TAGS, loaded_names(PS)))
    assert list(table["size"]) == ["398 MB", "271 MB"]
    assert list(table["loaded"]) == ["no", "yes"]
    assert list(table["modified"]) == ["2026-12-02 21:05", "2026-12-02 21:00"]


@pytest.mark.parametrize(
    ("size", "shown"),
    [(0, "0 B"), (999, "999 B"), (1_000, "1 KB"), (270_898_880, "271 MB"), (1_234_567_890, "1.2 GB"),
     (123_400_000_000, "123 GB"), (4_100_000_000_000, "4.1 TB")],
)  # fmt: skip
def test_human_size(size: int, shown: str) -> None:
    assert human_size(size) == shown


def test_a_model_name_is_trimmed_and_nonsense_is_refused_before_the_runtime_is_asked() -> None:
    assert check_name("  qwen2.5:0.5b ") == "qwen2.5:0.5b"
    assert check_name("127.0.0.1:5000/library/qwen2.5:0.5b") == "127.0.0.1:5000/library/qwen2.5:0.5b"
    for bad in ("", "   ", "two words", "x" * 300):
        with pytest.raises(RuntimeProblem):
            check_name(bad)


def pulled(lines: list[dict[str, object]]) -> list[tuple[float, str]]:
    progress = PullProgress()
    seen = []
    for line in lines:
        progress.update(line)
        seen.append((round(progress.fraction, 3), progress.text()))
    return seen


MODEL = "sha256:4c5e6a7b8c9d" + "0" * 52
TEMPLATE = "sha256:aaaabbbbcccc" + "1" * 52


def test_progress_adds_up_across_layers_and_reaches_one_at_success() -> None:
    seen = pulled(
        [
            {"status": "pulling manifest"},
            {"status": "pulling 4c5e6a7b8c9d", "digest": MODEL, "total": 300_000_000},
            {"status": "pulling 4c5e6a7b8c9d", "digest": MODEL, "total": 300_000_000, "completed": 150_000_000},
            {"status": "pulling 4c5e6a7b8c9d", "digest": MODEL, "total": 300_000_000, "completed": 300_000_000},
            {"status": "pulling aaaabbbbcccc", "digest": TEMPLATE, "total": 100, "completed": 100},
            {"status": "verifying sha256 digest"},
            {"status": "writing manifest"},
            {"status": "success"},
        ]
    )
    assert seen == [
        (0.0, "pulling manifest"),
        (0.0, "pulling 4c5e6a7b8c9d: 0 B of 300 MB"),
        (0.5, "pulling 4c5e6a7b8c9d: 150 MB of 300 MB"),
        (1.0, "pulling 4c5e6a7b8c9d: 300 MB of 300 MB"),
        (1.0, "pulling aaaabbbbcccc: 100 B of 100 B"),
        (1.0, "verifying sha256 digest"),
        (1.0, "writing manifest"),
        (1.0, "success"),
    ]


def test_an_error_line_raises_the_runtimes_own_text_and_the_bar_keeps_where_it_was() -> None:
    progress = PullProgress()
    progress.update({"status": "pulling 4c5e6a7b8c9d", "digest": MODEL, "total": 200, "completed": 50})
    with pytest.raises(RuntimeProblem, match=r"^digest mismatch, file must be downloaded again: sha256:4c5e"):
        progress.update({"error": "digest mismatch, file must be downloaded again: sha256:4c5e"})
    assert progress.fraction == 0.25 and not progress.done


def test_a_completed_count_beyond_its_total_does_not_overfill_the_bar() -> None:
    assert pulled([{"status": "pulling 4c5e6a7b8c9d", "digest": MODEL, "total": 10, "completed": 99}])[0][0] == 1.0


def test_the_runtimes_error_text_is_taken_from_its_json_body() -> None:
    reply = httpx.Response(404, json={"error": "model 'nope' not found"})
    assert error_text(reply) == "model 'nope' not found"
    assert error_text(httpx.Response(502, text="<html>bad gateway</html>")) == "502 Bad Gateway"


def test_an_unreachable_runtime_is_a_problem_not_an_exception() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    found = installed(url, timeout=2)
    assert found.models == [] and found.problem == f"no answer from {url} (ConnectError)"
    with pytest.raises(RuntimeProblem, match="no answer from"):
        delete_model(url, "qwen2.5:0.5b", timeout=2)
    with pytest.raises(RuntimeProblem, match=r"^no answer from"):
        list(pull_lines(url, "qwen2.5:0.5b", 2, 2))


def test_the_chat_list_knows_what_is_served_and_whether_something_waits() -> None:
    listing = ModelList(options=[ModelOption(id="a", served=True), ModelOption(id="b", served=False)])
    assert listing.served() == {"a"} and listing.waiting()
    assert not ModelList(options=[ModelOption(id="a", served=True)]).waiting()
