"""Token counts: the model's own GGUF tokenizer when there is one, LiteLLM's counter otherwise."""

from agent_host.context.tokens import TokenCounter


def test_the_embedded_model_is_counted_with_its_own_tokenizer() -> None:
    counter = TokenCounter()
    assert counter.source("smollm2:135m") == "gguf"
    assert 0 < counter.count("smollm2:135m", "Hello there, how are you?") < 12


def test_other_models_are_counted_with_litellms_counter() -> None:
    counter = TokenCounter(gguf_files={})
    assert counter.source("qwen2.5:0.5b") == "litellm"
    assert 0 < counter.count("qwen2.5:0.5b", "Hello there, how are you?") < 15


def test_a_message_costs_its_content_plus_the_template_markers() -> None:
    counter = TokenCounter()
    content = counter.count("smollm2:135m", "Hi")
    assert counter.count_message("smollm2:135m", {"role": "user", "content": "Hi"}) > content
