"""The Modelfile parser against the cases of Ollama's own parser tests (parser/parser_test.go), and the typing
of PARAMETER values as Ollama's api.FormatParams does; what counts as a model in use."""

from pathlib import Path

import pytest
from runtime_support import smollm2_gguf

from local_runtime.catalog import Catalog
from local_runtime.creation import check_template
from local_runtime.details import MetadataCache
from local_runtime.errors import InvalidRequest
from local_runtime.management import ModelInUse, ModelManager, blob_digest
from local_runtime.modelfile import Command, ModelfileError, check_parameters, modelfile_request, parse_modelfile
from local_runtime.pool import ModelPool
from local_runtime.registry import Puller


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('FROM "FOO  BAR  "', [Command("model", "FOO  BAR  ")]),
        ('FROM "FOO BAR"\nPARAMETER param1 value1', [Command("model", "FOO BAR"), Command("param1", "value1")]),
        ("FROM     FOOO BAR    ", [Command("model", "FOOO BAR")]),
        ("FROM /what/is/the path ", [Command("model", "/what/is/the path")]),
        ("FROM llama3:7b-instruct-q4_K_M", [Command("model", "llama3:7b-instruct-q4_K_M")]),
        ("PARAMETER param1 value1\nFROM foo", [Command("param1", "value1"), Command("model", "foo")]),
        (
            "PARAMETER what the \nFROM lemons make lemonade ",
            [Command("what", "the"), Command("model", "lemons make lemonade")],
        ),
        ("\n# comment\nFROM foo\n\t", [Command("model", "foo")]),
        ("from foo\nsystem hi", [Command("model", "foo"), Command("system", "hi")]),
        (
            'FROM foo\nSYSTEM """\nThis is a\nmultiline system.\n"""\n',
            [Command("model", "foo"), Command("system", "\nThis is a\nmultiline system.\n")],
        ),
        (
            'FROM foo\nSYSTEM """This is a\nmultiline system."""',
            [Command("model", "foo"), Command("system", "This is a\nmultiline system.")],
        ),
        ('FROM foo\nTEMPLATE "{{ .Prompt }}"', [Command("model", "foo"), Command("template", "{{ .Prompt }}")]),
        (
            "FROM foo\nMESSAGE user Hey there!\nMESSAGE assistant Hello, I want to parse all the things!",
            [
                Command("model", "foo"),
                Command("message", "user: Hey there!"),
                Command("message", "assistant: Hello, I want to parse all the things!"),
            ],
        ),
        ("\ufeffFROM foo", [Command("model", "foo")]),
        ("FROM foo\nSYSTEM 你好 👋", [Command("model", "foo"), Command("system", "你好 👋")]),
    ],
)
def test_the_parser_reads_what_ollamas_reads(text: str, expected: list[Command]) -> None:
    assert parse_modelfile(text) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("### User:", "### User:"),
        ("### User: ", "### User:"),
        ('"### User:"', "### User:"),
        ('"### User: "', "### User: "),
        ('"""### User:"""', "### User:"),
        ('"""### User:\n"""', "### User:\n"),
        ("<|eot_id|>", "<|eot_id|>"),
    ],
)
def test_a_stop_parameter_is_unquoted_as_ollama_does(value: str, expected: str) -> None:
    assert parse_modelfile(f"FROM foo\nPARAMETER stop {value}\n")[-1] == Command("stop", expected)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "no FROM line"),
        ("PARAMETER param1 value1", "no FROM line"),
        ("\nFROM foo\nPARAMETER param1\n", "unexpected EOF: param1"),
        (
            "\nFROM foo\nBADCOMMAND param1 value1\n",
            '(line 3): command must be one of "from", "license", "template", "system", "adapter", "draft", '
            '"renderer", "parser", "parameter", "message", or "requires"',
        ),
        ("FROM foo\nMESSAGE badguy I'm a bad guy!", '(line 2): message role must be one of "system", "user", or'),
        ('FROM foo\nSYSTEM """This is a multiline system.""', "unexpected EOF"),
        ('FROM foo\nSYSTEM "unterminated', "unexpected EOF"),
    ],
)
def test_the_parser_refuses_what_ollamas_refuses_with_its_text(text: str, error: str) -> None:
    with pytest.raises(ModelfileError) as refused:
        parse_modelfile(text)
    assert str(refused.value).startswith(error)


def test_parameters_are_typed_and_stops_add_up() -> None:
    request = modelfile_request(
        "FROM foo\nPARAMETER temperature 0.5\nPARAMETER num_ctx 4096\nPARAMETER use_mmap true\n"
        "PARAMETER stop <|im_end|>\nPARAMETER stop User:\nPARAMETER mirostat 1\nSYSTEM hi\nLICENSE MIT\n"
    )
    assert request.source == "foo" and request.system == "hi" and request.licenses == ["MIT"]
    assert request.parameters == {
        "temperature": 0.5,
        "num_ctx": 4096,
        "use_mmap": True,
        "stop": ["<|im_end|>", "User:"],
    }


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("PARAMETER num_ctx lots", "invalid int value [lots]"),
        ("PARAMETER temperature warm", "invalid float value [warm]"),
        ("PARAMETER temperature nan", "invalid float value [nan]"),
        ("PARAMETER use_mmap maybe", "invalid bool value [maybe]"),
        ("PARAMETER colour blue", "unknown parameter 'colour'"),
        ("DRAFT ./draft.gguf", "DRAFT is not supported"),
    ],
)
def test_bad_parameter_values_get_ollamas_errors(line: str, error: str) -> None:
    with pytest.raises(ModelfileError, match=error.replace("[", r"\[").replace("]", r"\]")):
        modelfile_request(f"FROM foo\n{line}\n")


def test_json_parameters_are_checked_against_the_same_types() -> None:
    assert check_parameters({"stop": "END", "top_k": 5, "temperature": 1, "penalize_newline": True}) == {
        "stop": ["END"],
        "top_k": 5,
        "temperature": 1,
    }
    for bad in ({"top_k": 1.5}, {"temperature": "hot"}, {"stop": [1]}, {"use_mmap": 1}, {"nope": 1}):
        with pytest.raises(InvalidRequest):
            check_parameters(bad)


def test_blob_digests_in_either_spelling_and_templates_with_closed_actions() -> None:
    hex64 = "ab" * 32
    assert blob_digest(f"sha256-{hex64}") == blob_digest(f"SHA256:{hex64.upper()}") == f"sha256:{hex64}"
    check_template("{{ if .System }}{{ .System }}{{ end }}{{ .Prompt }}")
    with pytest.raises(InvalidRequest, match="template error: template: :2: unclosed action"):
        check_template("ok\n{{ .Prompt ")


def test_a_model_whose_runner_is_still_loading_is_in_use(tmp_path: Path) -> None:
    """An admitted request counts before its runner exists (the first request loads it): a delete waits for it."""
    (tmp_path / "loading.gguf").symlink_to(smollm2_gguf())
    catalog = Catalog(tmp_path, {})
    metadata = MetadataCache()
    pool = ModelPool(catalog, metadata, tmp_path / "no-llama-server", 1, 1, 0.0, 1, 10.0)
    manager = ModelManager(catalog.store, catalog, metadata, pool, Puller(catalog.store, [], 5.0, 0), 0)
    model = catalog.resolve("loading")
    admission = pool.admit(model)
    assert pool.loaded() == [] and pool.busy(model.name) == 1
    with pytest.raises(ModelInUse, match="in use by 1 request"):
        manager.refuse_busy(model.name)
    admission.release()
    manager.refuse_busy(model.name)
