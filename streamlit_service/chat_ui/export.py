"""One conversation as Markdown or JSON, for download."""

import json
import re

from chat_ui.schemas import Conversation, Message


def to_markdown(conversation: Conversation, messages: list[Message]) -> str:
    lines = [f"# {conversation.title}", "", f"*Model: {conversation.params.model}*", ""]
    if conversation.params.system_prompt:
        lines += ["**System prompt:**", "", conversation.params.system_prompt, ""]
    for message in messages:
        who = "You" if message.role == "user" else "Assistant"
        lines += [f"## {who}", "", message.content, ""]
        if message.facts:
            lines += [f"<sub>{message.facts.line()}</sub>", ""]
    return "\n".join(lines)


def to_json(conversation: Conversation, messages: list[Message]) -> str:
    document = {
        "id": conversation.id,
        "title": conversation.title,
        "params": conversation.params.model_dump(),
        "created_at": conversation.created_at.isoformat(),
        "messages": [message.model_dump(mode="json") for message in messages],
    }
    return json.dumps(document, indent=2, ensure_ascii=False)


def file_stem(conversation: Conversation) -> str:
    slug = re.sub(r"[^a-zA-Z0-9]+", "-", conversation.title).strip("-").lower()[:40]
    return f"chat-{conversation.id}-{slug or 'untitled'}"
