"""Process settings: the one pydantic-settings class of deskgraph.

It lives in ``helpdesk`` (the bottom layer) so that every package can read the same settings
without importing upwards; ``api`` re-exports it as ``api.settings``. Nothing here reads the
environment at import time: call :func:`get_settings`.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Settings read from the environment (and ``.env``), prefix-free names as documented."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="Postgres URL (pgvector required). Unset: embedded Postgres under data_dir.",
    )
    data_dir: Path = Field(
        default=Path(".data"),
        validation_alias="DESKGRAPH_DATA_DIR",
        description="Where the embedded Postgres and local state live.",
    )
    openai_api_key: SecretStr | None = Field(default=None, description="Enables the LLM tier.")
    openai_base_url: str | None = Field(
        default=None, description="OpenAI-compatible server (vLLM, Ollama...); enables LLM tier."
    )
    chat_model: str = Field(default="gpt-4o-mini", validation_alias="DESKGRAPH_CHAT_MODEL")
    judge_model: str | None = Field(
        default=None,
        validation_alias="DESKGRAPH_JUDGE_MODEL",
        description="Model of the LLM judge; defaults to chat_model.",
    )
    embedding_model: str | None = Field(
        default=None,
        validation_alias="DESKGRAPH_EMBEDDING_MODEL",
        description="OpenAI embedding model; unset keeps local MiniLM even in the LLM tier.",
    )
    llm_timeout_s: float = Field(default=30.0, validation_alias="DESKGRAPH_LLM_TIMEOUT_S")
    llm_max_retries: int = Field(
        default=2,
        ge=0,
        validation_alias="DESKGRAPH_LLM_MAX_RETRIES",
        description="Retries of one model request (429 with Retry-After, 5xx, resets, timeouts).",
    )
    llm_call_budget_s: float = Field(
        default=60.0,
        gt=0,
        validation_alias="DESKGRAPH_LLM_CALL_BUDGET_S",
        description="Wall-clock limit of one model call, its retries included; past it the"
        " node takes its offline step.",
    )
    llm_max_tokens: int | None = Field(
        default=None,
        ge=1,
        validation_alias="DESKGRAPH_LLM_MAX_TOKENS",
        description="Most tokens a model answer may have (unset: the provider's default).",
    )
    llm_structured: Literal[
        "auto", "json_schema", "json_mode", "function_calling", "json_object_schema"
    ] = Field(
        default="auto",
        validation_alias="DESKGRAPH_LLM_STRUCTURED",
        description="How classify and judge ask for structured output (docs/providers.md):"
        " auto = langchain's default for the model; json_object_schema = llama.cpp's"
        ' response_format {"type": "json_object", "schema": ...}.',
    )
    llm_tool_calls: int = Field(
        default=4,
        ge=0,
        validation_alias="DESKGRAPH_LLM_TOOL_CALLS",
        description="Most tool calls the drafter may make in one turn; 0 drafts without tools.",
    )
    llm_breaker_failures: int = Field(
        default=3,
        ge=1,
        validation_alias="DESKGRAPH_LLM_BREAKER_FAILURES",
        description="Provider failures in a row that open the circuit breaker.",
    )
    llm_breaker_open_s: float = Field(
        default=30.0,
        gt=0,
        validation_alias="DESKGRAPH_LLM_BREAKER_OPEN_S",
        description="How long an open breaker keeps the offline tier before trying again.",
    )
    prompts_dir: Path = Field(
        default=Path(__file__).resolve().parent.parent / "prompts",
        validation_alias="DESKGRAPH_PROMPTS_DIR",
    )
    pool_max_size: int = Field(default=10, validation_alias="DESKGRAPH_POOL_MAX_SIZE")
    torch_threads: int = Field(
        default=1,
        ge=1,
        validation_alias="DESKGRAPH_TORCH_THREADS",
        description=(
            "CPU threads per local model call. 1 keeps a busy server responsive: on the 2-core"
            " box, 2 threads under load made one query embedding take 0.7-0.9 s instead of"
            " 12-40 ms. Raise it on a machine that only ingests."
        ),
    )
    embedding_runtime: Literal["onnx", "torch"] = Field(
        default="onnx",
        validation_alias="DESKGRAPH_EMBEDDING_RUNTIME",
        description=(
            "What runs the local MiniLM: ONNX Runtime (same vectors, 2-3x faster per query;"
            " exported once into model_cache_dir) or sentence-transformers on PyTorch."
        ),
    )
    model_cache_dir: Path = Field(
        default_factory=lambda: Path(
            os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "deskgraph"
        ),
        validation_alias="DESKGRAPH_MODEL_CACHE",
        description="Where exported local models are kept (shared by every data_dir).",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        validation_alias="DESKGRAPH_SECRET_KEY",
        description="Signs customer tokens. Unset: generated once, kept in data_dir/secret_key.",
    )
    customer_token_ttl_s: int = Field(
        default=7 * 24 * 3600,
        gt=0,
        validation_alias="DESKGRAPH_CUSTOMER_TOKEN_TTL_S",
        description="Lifetime of a customer token (one conversation).",
    )
    max_body_bytes: int = Field(
        default=64 * 1024,
        gt=0,
        validation_alias="DESKGRAPH_MAX_BODY_BYTES",
        description="Largest request body accepted (413 body_too_large above it).",
    )
    max_upload_bytes: int = Field(
        default=20 * 1024 * 1024,
        gt=0,
        validation_alias="DESKGRAPH_MAX_UPLOAD_BYTES",
        description="Largest knowledge-base upload (POST /v1/kb/ingest).",
    )
    sse_ping_s: float = Field(
        default=15.0,
        gt=0,
        validation_alias="DESKGRAPH_SSE_PING_S",
        description="Seconds between SSE keep-alive comments.",
    )
    turn_lease_s: float = Field(
        default=20.0,
        ge=2,
        validation_alias="DESKGRAPH_TURN_LEASE_S",
        description="How long a conversation's lease lasts unless renewed (every third of it):"
        " after a crash mid-turn the conversation is blocked this long, then the next request"
        " resumes the turn. Shorter frees it sooner; too short and a stalled live process loses"
        " it (see api/turns.py).",
    )
    webhook_allow_private: bool = Field(
        default=False,
        validation_alias="DESKGRAPH_WEBHOOK_ALLOW_PRIVATE",
        description=(
            "Let webhooks reach loopback and private addresses (tests, one-machine setups);"
            " off, an endpoint on an internal address is refused at delivery."
        ),
    )
    queue_heartbeat_s: float = Field(
        default=10.0,
        gt=0,
        validation_alias="DESKGRAPH_QUEUE_HEARTBEAT_S",
        description="How often a task-queue worker tells the database it is alive.",
    )
    queue_stalled_after_s: float = Field(
        default=30.0,
        gt=0,
        validation_alias="DESKGRAPH_QUEUE_STALLED_AFTER_S",
        description="A worker silent this long is taken for dead, and its running jobs are"
        " queued again (docs/queue.md). Keep it a few heartbeats long.",
    )
    queue_shutdown_s: float = Field(
        default=30.0,
        ge=0,
        validation_alias="DESKGRAPH_QUEUE_SHUTDOWN_S",
        description="On shutdown, how long a worker waits for its running jobs to finish.",
    )
    rate_conversations_per_minute: float = Field(
        default=10.0,
        ge=0,
        validation_alias="DESKGRAPH_RATE_CONVERSATIONS_PER_MINUTE",
        description="New conversations per minute per client address and tenant (0: no limit;"
        " 429 rate_limited above it). See api/ratelimit.py.",
    )
    rate_messages_per_minute: float = Field(
        default=30.0,
        ge=0,
        validation_alias="DESKGRAPH_RATE_MESSAGES_PER_MINUTE",
        description="Customer messages per minute per client address and tenant (0: no limit).",
    )
    rate_searches_per_minute: float = Field(
        default=30.0,
        ge=0,
        validation_alias="DESKGRAPH_RATE_SEARCHES_PER_MINUTE",
        description="Widget-key knowledge-base searches per minute per client address and"
        " tenant (0: no limit; staff keys are never limited).",
    )

    session_idle_s: int = Field(
        default=4 * 3600,
        gt=0,
        validation_alias="DESKGRAPH_SESSION_IDLE_S",
        description="A console session with no request for this long ends (sign in again).",
    )
    session_absolute_s: int = Field(
        default=24 * 3600,
        gt=0,
        validation_alias="DESKGRAPH_SESSION_ABSOLUTE_S",
        description="A console session ends this long after sign-in, however busy.",
    )
    presence_away_after_s: int = Field(
        default=5 * 60,
        gt=0,
        validation_alias="DESKGRAPH_PRESENCE_AWAY_AFTER_S",
        description="An online agent whose sessions made no request for this long reads as away.",
    )
    sign_in_max_failures: int = Field(
        default=5,
        ge=1,
        validation_alias="DESKGRAPH_SIGN_IN_MAX_FAILURES",
        description="Failed sign-ins for one (tenant, email) before it is locked for a while"
        " (429 too_many_attempts); each failure after that doubles the lock.",
    )
    sign_in_address_max_failures: int = Field(
        default=20,
        ge=1,
        validation_alias="DESKGRAPH_SIGN_IN_ADDRESS_MAX_FAILURES",
        description="Failed sign-ins from one client address (per tenant) before it is locked.",
    )
    sign_in_lock_s: float = Field(
        default=30.0,
        gt=0,
        validation_alias="DESKGRAPH_SIGN_IN_LOCK_S",
        description="The first lock after too many failed sign-ins; it doubles up to 15 minutes.",
    )
    password_reset_ttl_s: int = Field(
        default=24 * 3600,
        gt=0,
        validation_alias="DESKGRAPH_PASSWORD_RESET_TTL_S",
        description="How long a one-time password reset link stays valid.",
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        validation_alias="DESKGRAPH_PUBLIC_URL",
        description="Where people reach the console: the base of printed reset links.",
    )
    password_time_cost: int = Field(
        default=3,
        ge=1,
        validation_alias="DESKGRAPH_PASSWORD_TIME_COST",
        description="argon2id passes; a stored hash made with other parameters is redone at the"
        " next sign-in.",
    )
    password_memory_kib: int = Field(
        default=65536,
        ge=8192,
        validation_alias="DESKGRAPH_PASSWORD_MEMORY_KIB",
        description="argon2id memory per hash (KiB).",
    )

    mail_key: SecretStr | None = Field(
        default=None,
        validation_alias="DESKGRAPH_MAIL_KEY",
        description="Fernet key (urlsafe base64, 32 bytes) that encrypts mailbox passwords at"
        " rest. Unset: generated once, kept in data_dir/mail_key (mode 0600). Losing it means"
        " re-entering every mailbox password.",
    )
    mail_max_message_bytes: int = Field(
        default=25 * 1024 * 1024,
        gt=0,
        validation_alias="DESKGRAPH_MAIL_MAX_MESSAGE_BYTES",
        description="A fetched message larger than this is stored raw, unparsed, flagged for a"
        " person.",
    )
    mail_keep_raw_bytes: int = Field(
        default=100 * 1024 * 1024,
        gt=0,
        validation_alias="DESKGRAPH_MAIL_KEEP_RAW_BYTES",
        description="A message larger than this is not downloaded: only its header is fetched"
        " and kept (flagged oversize, raw_truncated); it stays on the server.",
    )
    mail_max_attachment_bytes: int = Field(
        default=15 * 1024 * 1024,
        gt=0,
        validation_alias="DESKGRAPH_MAIL_MAX_ATTACHMENT_BYTES",
        description="An attachment larger than this is recorded (name, type, size) but not kept.",
    )
    mail_timeout_s: float = Field(
        default=30.0,
        gt=0,
        validation_alias="DESKGRAPH_MAIL_TIMEOUT_S",
        description="Socket timeout of IMAP and SMTP connections.",
    )
    mail_send_claim_s: float = Field(
        default=300.0,
        gt=0,
        validation_alias="DESKGRAPH_MAIL_SEND_CLAIM_S",
        description="An outbox row claimed for sending longer ago than this, and never marked,"
        " is set 'uncertain' for a person (never sent again automatically).",
    )

    @property
    def llm_enabled(self) -> bool:
        """True when an OpenAI key or an OpenAI-compatible base URL is configured."""
        return bool(self.openai_api_key) or bool(self.openai_base_url)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process settings, read once from the environment on first call."""
    return Settings()
