"""Pipeline steps that later issues fill in: retrieval (RAG, issue 5) and tool choice (agents, issue 6)."""

from typing import Any

from agent_host.schemas import ChatCompletionRequest


async def retrieve(request: ChatCompletionRequest) -> list[dict[str, Any]]:
    """Context messages for the prompt; none until RAG collections exist."""
    return []


async def decide_tools(request: ChatCompletionRequest) -> list[dict[str, Any]]:
    """Tool results to put before the model's turn; none until agents exist."""
    return []
