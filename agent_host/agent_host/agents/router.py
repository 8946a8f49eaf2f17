"""Picks the agent for a request: the one it names, else the agent whose description and examples it resembles.

Resemblance is first keyword overlap (words weighted by how rare they are among the agents): an agent's own
vocabulary in the request is precise evidence and costs nothing. A request sharing no such word is compared
by cosine similarity of embeddings (RAG's embedding model, when the host has RAG), which catches paraphrases
("is it morning in Sydney" → clock). Nothing close enough: the default agent. A request whose parts need
different agents goes to the planner. Measured with `bench/agent_bench.py --routing` (28 labelled requests,
none of them an agents.yaml example): keywords 27/28 in 0.02 ms, embeddings 26/28 in ~15 ms, both 28/28.
"""

import asyncio
import logging
import math
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Literal, Protocol

import numpy as np

from agent_host.agents.events import RouteInfo
from agent_host.agents.registry import AgentRegistry, AgentSpec

log = logging.getLogger(__name__)
# Below these, a request resembles no agent more than chance and goes to the default agent.
MIN_COSINE = 0.3
MIN_KEYWORD_SCORE = 0.5
WORD = re.compile(r"[a-z0-9]+")
STEM = 6
NUMBER = "#"
# Numbers hint at arithmetic but appear in any request (codes, dates, times): they count for less.
NUMBER_WEIGHT = 0.5
# Where a request with several tasks splits: "what time is it, and then compute 2*3".
# Not at commas: "according to my files, when is the deadline" is one question.
CLAUSE = re.compile(r"\b(?:and then|then|and also|and|also|after that)\b|[;?!]|\.(?!\d)", re.IGNORECASE)
STOPWORDS = frozenset(
    " ".join(
        [
            "a an and are as at be by can could do does did for from had has have how i in is it its me my of on or",
            "please tell that the their them then there these this to was we what when where which who why will",
            "with would you your",
        ]
    ).split()
)


class Embedder(Protocol):
    def embed_documents(self, texts: Sequence[str]) -> np.ndarray: ...


EmbedderSource = Callable[[], Awaitable[Embedder]]
# "both": keywords, then embeddings for requests without a keyword match; the others exist to measure.
RouteMode = Literal["both", "keywords", "embeddings"]


def words(text: str) -> set[str]:
    """Content words cut to their first STEM letters (`calculate` meets `calculation`); any number is `#`.

    A plural `s` goes only from longer words: `times` (multiplication) must not become `time` (the clock).
    """
    found = set()
    for word in WORD.findall(text.lower()):
        if word.isdigit():
            found.add(NUMBER)
        elif len(word) > 1 and word not in STOPWORDS:
            found.add((word.removesuffix("s") if len(word) > 5 else word)[:STEM])
    return found


class Router:
    def __init__(
        self, registry: AgentRegistry, embedder: EmbedderSource | None = None, mode: RouteMode = "both"
    ) -> None:
        self.registry = registry
        self.embedder = embedder
        self.mode = mode
        # A planner is chosen for a request whose parts go to different agents, never by resemblance.
        self._candidates = [agent for agent in registry.all() if agent.kind == "tools"]
        self._planner = next((agent for agent in registry.all() if agent.kind == "planner"), None)
        profiles = [set().union(*(words(text) for text in agent.routing_texts())) for agent in self._candidates]
        self._profiles = profiles
        document_frequency: dict[str, int] = {}
        for profile in profiles:
            for word in profile:
                document_frequency[word] = document_frequency.get(word, 0) + 1
        count = len(profiles)
        self._idf = {word: math.log(1 + count / df) for word, df in document_frequency.items()}
        self._vectors: list[np.ndarray] | None = None
        self._lock = asyncio.Lock()

    async def route(self, text: str, explicit: str | None = None) -> tuple[AgentSpec, RouteInfo]:
        if explicit:
            return self.registry.get(explicit), RouteInfo(method="explicit")
        agent, info = await self._classify(text)
        if self._planner is not None:
            parts = [part for part in CLAUSE.split(text) if words(part)]
            if len(parts) > 1:
                picked = {(await self._classify(part))[0].name for part in parts}
                delegates = {delegate.name for delegate in self.registry.delegates(self._planner)}
                specialists = picked - {self.registry.config.default_agent}
                if len(specialists) > 1 and specialists <= delegates:
                    return self._planner, RouteInfo(method=info.method, scores=info.scores, parts=len(parts))
        return agent, info

    async def _classify(self, text: str) -> tuple[AgentSpec, RouteInfo]:
        keyword = self._pick(self.keyword_scores(text), MIN_KEYWORD_SCORE, "keywords")
        if self.mode == "keywords" or self.embedder is None or (self.mode == "both" and keyword[1].method != "default"):
            return keyword
        try:
            scores = await self._embedding_scores(text)
        except Exception:  # no embedding model right now: keywords still route
            log.warning("routing without embeddings", exc_info=True)
            return keyword
        return self._pick(scores, MIN_COSINE, "embedding")

    def keyword_scores(self, text: str) -> dict[str, float]:
        asked = words(text)
        return {
            agent.name: round(sum(self._weight(word) for word in asked & profile), 4)
            for agent, profile in zip(self._candidates, self._profiles, strict=True)
        }

    def _weight(self, word: str) -> float:
        return self._idf.get(word, 0.0) * (NUMBER_WEIGHT if word == NUMBER else 1.0)

    async def _embedding_scores(self, text: str) -> dict[str, float]:
        assert self.embedder is not None
        embedder = await self.embedder()
        async with self._lock:
            if self._vectors is None:
                texts = [agent.routing_texts() for agent in self._candidates]
                flat = [item for group in texts for item in group]
                matrix = await asyncio.to_thread(embedder.embed_documents, flat)
                bounds = np.cumsum([0, *(len(group) for group in texts)])
                self._vectors = [matrix[bounds[i] : bounds[i + 1]] for i in range(len(texts))]
        query = (await asyncio.to_thread(embedder.embed_documents, [text]))[0]
        # Normalised vectors: the dot product is the cosine; an agent scores its closest text.
        return {
            agent.name: round(float(np.max(vectors @ query)), 4)
            for agent, vectors in zip(self._candidates, self._vectors, strict=True)
        }

    def _pick(self, scores: dict[str, float], minimum: float, method: str) -> tuple[AgentSpec, RouteInfo]:
        best = max(scores, key=lambda name: scores[name])
        if scores[best] < minimum:
            default = self.registry.config.default_agent
            return self.registry.get(default), RouteInfo(method="default", scores=scores)
        return self.registry.get(best), RouteInfo(method=method, scores=scores)  # type: ignore[arg-type]
