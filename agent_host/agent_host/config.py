"""Agent host settings, read from the environment and agent_host/.env."""

from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from genailabs_accounts.secret_files import secrets_from_files

SERVICE_DIR = Path(__file__).resolve().parent.parent
# The repository root: .stack/ there holds the embedded stack's data (Chroma, exported models).
STACK_DIR = SERVICE_DIR.parent / ".stack"


class Settings(BaseSettings):
    # Errors never echo the input: it holds the keys.
    model_config = SettingsConfigDict(env_file=SERVICE_DIR / ".env", extra="ignore", hide_input_in_errors=True)

    # The operator's keys, for scripts and for the first start: sent as `Authorization: Bearer ...` they stand
    # for the first admin (the oldest active admin account); the API key as that person without admin rights.
    # People send their sign-in token (gls_...) or a personal API key (glk_...) instead.
    agent_host_api_key: SecretStr
    agent_host_admin_key: SecretStr | None = None
    litellm_base_url: str = "http://localhost:4100/v1"
    # The host's own virtual key on the proxy (python -m hub.keys create --alias agent-host --service), or a file
    # holding it (AGENT_HOST_PROXY_KEY_FILE: compose's keys-init service writes one); the variable wins.
    agent_host_proxy_key: SecretStr
    agent_host_proxy_key_file: Path | None = None
    database_url: SecretStr = SecretStr("postgresql://litellm:litellm@localhost:5433/genailabs")
    # The hub's database (its keys and request log): each person's proxy key and usage live there.
    hub_database_url: SecretStr = SecretStr("postgresql://litellm:litellm@localhost:5433/litellm")
    # People: a sign-in token unused this long expires; failed sign-ins for one login are slowed after a few,
    # and after LOGIN_MAX_FAILURES the login is locked for LOGIN_LOCK_MINUTES.
    session_idle_minutes: int = Field(default=120, ge=1)
    login_max_failures: int = Field(default=10, ge=1)
    login_lock_minutes: int = Field(default=15, ge=1)
    # A resolved credential is trusted this long without asking the database again (0: ask every time).
    auth_cache_seconds: float = Field(default=5.0, ge=0)
    host: str = "127.0.0.1"
    port: int = 8000

    max_body_bytes: int = Field(default=1_000_000, ge=1024)
    proxy_timeout: float = Field(default=120.0, gt=0)
    db_timeout: float = Field(default=2.0, gt=0)
    # Context windows by model, overriding what the proxy and runtime report, e.g. {"smollm2:135m": 512}.
    context_windows: dict[str, int] = Field(default_factory=dict)
    # Ollama-style runtimes serve num_ctx tokens, not the model's trained length: the window when nothing says less.
    default_context_window: int = Field(default=2048, ge=128)
    # Tokens of the window left unplanned: chat templates and a runtime's default system prompt add some.
    context_margin: int = Field(default=40, ge=0)
    # Tokens kept free for the reply when the client does not set max_tokens.
    reply_tokens: int = Field(default=256, ge=8)
    # Recent messages kept verbatim when older ones are folded into the summary.
    recent_messages: int = Field(default=4, ge=0)
    summary_tokens: int = Field(default=128, ge=16)
    log_level: str = "INFO"
    # /ws/chat: chat messages waiting behind the running turn; one more closes the socket (1008).
    ws_max_queued_messages: int = Field(default=8, ge=1)

    # RAG. Chroma persists under chroma_path unless CHROMA_URL points at a `chroma run` server.
    chroma_path: Path = STACK_DIR / "chroma"
    chroma_url: str | None = None
    # Default embedding model for new collections (a collection keeps the one it was created with): MiniLM's
    # own weights exported to ONNX int8, 4x less CPU per chunk than the fp32 sentence-transformers model
    # ("all-MiniLM-L6-v2", also available) with the same recall on bench/rag_eval.py.
    embedding_model: str = "all-MiniLM-L6-v2-int8"
    # Where derived model files (the ONNX export of the embedding model) are cached.
    model_cache_dir: Path = STACK_DIR / "models"
    rag_max_file_bytes: int = Field(default=20_000_000, ge=1024)
    rag_max_upload_bytes: int = Field(default=200_000_000, ge=1024)
    rag_max_files: int = Field(default=200, ge=1)
    # Parsing runs in worker processes; one that takes longer than this is killed and its file rejected.
    rag_parse_timeout: float = Field(default=60.0, gt=0)
    rag_parse_workers: int = Field(default=2, ge=1)
    # Address space a parser process may use (a PDF stream can be a decompression bomb too).
    rag_parse_memory_bytes: int = Field(default=2_000_000_000, ge=200_000_000)
    # DOCX (a zip): refused when its members would unpack to more than this, or at a higher compression ratio.
    rag_max_unzipped_bytes: int = Field(default=100_000_000, ge=1024)
    rag_max_zip_ratio: float = Field(default=100.0, gt=1.0)
    # Chunk size in embedding-model tokens: MiniLM was trained on passages of up to 128 tokens.
    rag_chunk_tokens: int = Field(default=100, ge=16, le=512)
    rag_chunk_overlap: int = Field(default=15, ge=0)
    rag_top_k: int = Field(default=4, ge=1, le=50)
    # Cosine similarity a chunk needs to count as relevant at all: irrelevant questions retrieve nothing.
    rag_min_score: float = Field(default=0.3, ge=-1.0, le=1.0)
    rag_vector_weight: float = Field(default=1.0, ge=0.0)
    rag_bm25_weight: float = Field(default=1.0, ge=0.0)
    rag_rrf_k: int = Field(default=60, ge=1)
    # Share of the prompt budget retrieved chunks may take.
    rag_context_share: float = Field(default=0.5, gt=0.0, le=0.9)
    # Ingestion runs on a job queue in PostgreSQL (procrastinate). With RAG_INLINE_WORKER the host runs a worker
    # itself (a host started alone still indexes); scaled out, `python -m agent_host.worker` processes do it.
    rag_inline_worker: bool = True
    rag_worker_host: str = "127.0.0.1"
    rag_worker_port: int = Field(default=8090, ge=0, le=65535)
    rag_worker_concurrency: int = Field(default=1, ge=1, le=16)
    # Workers beat this often; a job whose worker has been silent RAG_WORKER_STALLED_SECONDS goes back to the
    # queue for another worker (a killed worker's job is retried, its half-written chunks removed first).
    rag_worker_heartbeat_seconds: float = Field(default=5.0, gt=0)
    rag_worker_stalled_seconds: float = Field(default=20.0, gt=0)
    # A stopping worker lets its running jobs finish this long, then hands them back to the queue.
    rag_worker_shutdown_seconds: float = Field(default=10.0, ge=0)
    # A host taking an upload in holds its job under a lease this long past each file; if it dies, the job and
    # its documents are reclaimed once the lease has run out (never while another host is still uploading).
    rag_accept_lease_seconds: float = Field(default=120.0, gt=0)

    # MCP servers in the mcpServers format (Claude Desktop's), read at start.
    mcp_servers_file: Path = SERVICE_DIR / "mcp_servers.json"
    # Where hosts before the mcp_servers table kept the servers added through the API: imported into the
    # database once (by the first replica to start), then never read or written again.
    mcp_runtime_servers_file: Path = STACK_DIR / "mcp_servers.runtime.json"
    # Hosts a server added through the API may use although they are loopback, private or link-local
    # (comma-separated names or addresses, e.g. "127.0.0.1,mcp.internal"); all others must be public.
    mcp_allowed_hosts: str = ""
    mcp_connect_timeout: float = Field(default=15.0, gt=0)
    mcp_call_timeout: float = Field(default=20.0, gt=0)
    # Seconds between reconnection attempts to a server marked down.
    mcp_retry_interval: float = Field(default=15.0, gt=0)

    # Agents: named agents, and the limits every run is held to.
    agents_file: Path = SERVICE_DIR / "agents.yaml"
    agent_max_steps: int = Field(default=6, ge=1)
    agent_max_tool_calls: int = Field(default=8, ge=0)
    agent_tool_timeout: float = Field(default=20.0, gt=0)
    agent_total_timeout: float = Field(default=180.0, gt=0)
    # A tool result longer than this is cut before it enters the context.
    tool_result_max_chars: int = Field(default=4000, ge=100)

    @model_validator(mode="after")
    def _stalled_after_heartbeats(self) -> "Settings":
        if self.rag_worker_stalled_seconds < 2 * self.rag_worker_heartbeat_seconds:
            raise ValueError("RAG_WORKER_STALLED_SECONDS must be at least twice RAG_WORKER_HEARTBEAT_SECONDS")
        return self

    @model_validator(mode="before")
    @classmethod
    def _proxy_key_from_file(cls, data: Any) -> Any:
        return secrets_from_files(data, "agent_host_proxy_key")

    @field_validator("chroma_path", "model_cache_dir", "mcp_runtime_servers_file")
    @classmethod
    def _from_repo_root(cls, path: Path) -> Path:
        """Relative data dirs (.stack/chroma) mean the repository's, wherever the host is started from."""
        return path if path.is_absolute() else SERVICE_DIR.parent / path

    @field_validator("mcp_servers_file", "agents_file")
    @classmethod
    def _from_service_dir(cls, path: Path) -> Path:
        return path if path.is_absolute() else SERVICE_DIR / path


@lru_cache
def get_settings() -> Settings:
    return Settings()  # type: ignore[call-arg]  # required values come from the environment
