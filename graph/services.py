"""What the nodes depend on, built once per process and handed to ``build_graph``."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from langchain_core.runnables import RunnableConfig
from langgraph.runtime import Runtime

from graph.context import Context
from graph.llm.gate import LlmGate
from helpdesk.db import DictPool
from helpdesk.intents import TenantIntents, load_intents
from helpdesk.profile import BusinessProfile
from helpdesk.tenants import Tenant, get_tenant
from kb_pipeline.index import KnowledgeBase
from nlp.classifier import IntentClassifier, read_examples
from nlp.models import Models
from nlp.text import EmbeddingCache

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Prompts:
    """Prompt templates and canned replies, read from the ``prompts/`` folder."""

    root: Path
    draft_system: str
    judge_system: str
    classify_system: str
    summary_system: str
    article_system: str
    cluster_name_system: str
    replies: dict[str, str]
    next_steps: dict[str, list[str]]

    @classmethod
    def load(cls, root: Path) -> Prompts:
        """Read every prompt file; a missing file is an error naming it."""

        def read(name: str) -> str:
            path = root / name
            if not path.is_file():
                raise FileNotFoundError(f"prompt file {path} is missing")
            return path.read_text(encoding="utf-8").strip()

        return cls(
            root=root,
            draft_system=read("draft_system.md"),
            judge_system=read("judge_system.md"),
            classify_system=read("classify_system.md"),
            summary_system=read("summary_system.md"),
            article_system=read("article_system.md"),
            cluster_name_system=read("cluster_name_system.md"),
            replies=json.loads(read("replies.json")),
            next_steps=json.loads(read("next_steps.json")),
        )

    @staticmethod
    def business_values(business: BusinessProfile) -> dict[str, str]:
        """What the system prompts name: the business, its trade and its topics."""
        return {
            **business.template_values(),
            "industry": business.industry or "a small service business",
        }

    def reply(self, key: str, business: BusinessProfile, **values: Any) -> str:
        """A canned reply in ``business``'s words: the tenant's own text for ``key`` if its
        profile overrides it, else the shared template, filled from the profile (``{business}``,
        ``{short_name}``, ``{topics}``, ``{phone}``, ``{email}``) and ``values``."""
        template = business.replies.get(key) or self.replies[key]
        return template.format(**{**business.template_values(), **values})


@dataclass
class Services:
    """Pool, knowledge base, models, prompts and classifier shared by the nodes."""

    pool: DictPool
    kb: KnowledgeBase
    models: Models
    prompts: Prompts
    classifier: IntentClassifier
    sentence_cache: EmbeddingCache
    tenant_ttl_s: float = 5.0
    presence_away_after_s: int = 5 * 60
    """Settings.presence_away_after_s: an online person silent this long reads as away."""
    presence_idle_s: int = 4 * 3600
    """Settings.session_idle_s: a session this idle no longer counts anyone as present."""
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    """What "now" is for answers that depend on it (open now?); tests fix it."""
    _tenants: dict[str, tuple[float, Tenant]] = field(default_factory=dict)
    _classifiers: dict[uuid.UUID, tuple[datetime, IntentClassifier]] = field(default_factory=dict)
    _fitting: asyncio.Lock = field(default_factory=asyncio.Lock)
    llm: LlmGate = field(init=False)
    """Every LLM call goes through it (graph.llm.gate): budget, breaker, deadline, usage."""

    def __post_init__(self) -> None:
        self.llm = LlmGate(self.pool, self.models.llm)

    async def ask_llm(
        self,
        scope: RunScope,
        state: Mapping[str, Any],
        node: str,
        fn: Callable[[RunnableConfig], Awaitable[T]],
    ) -> T | None:
        """``fn(config)`` through the gate for this run; None: take the offline step."""
        return await self.llm.call(
            scope.tenant,
            node,
            fn,
            conversation_id=scope.conversation_id,
            turn=int(state.get("turn", 0)),
        )

    async def classifier_for(self, tenant: Tenant) -> IntentClassifier:
        """The intent classifier of ``tenant``: the shared one, or one trained on the tenant's
        own examples (``helpdesk.intents``) the first time they are needed after a change.

        One fit at a time per process (each takes a few seconds of CPU, in a thread); a set
        that cannot be trained is logged and the shared classifier answers meanwhile.
        """
        if tenant.intents_saved_at is None:
            return self.classifier
        hit = self._classifiers.get(tenant.id)
        if hit is not None and hit[0] == tenant.intents_saved_at:
            return hit[1]
        async with self._fitting:
            hit = self._classifiers.get(tenant.id)
            if hit is not None and hit[0] == tenant.intents_saved_at:
                return hit[1]
            own = await load_intents(self.pool, tenant.id)
            if own is None:
                return self.classifier
            try:
                fitted = await asyncio.to_thread(
                    train_classifier, self.models, self.prompts.root, own
                )
            except ValueError:
                log.exception("tenant %s: its intent examples cannot be trained", tenant.slug)
                return self.classifier
            self._classifiers[tenant.id] = (own.saved_at, fitted)
            return fitted

    async def tenant(self, slug: str) -> Tenant:
        """The tenant (and its policy), cached for a few seconds."""
        hit = self._tenants.get(slug)
        now = time.monotonic()
        if hit and now - hit[0] < self.tenant_ttl_s:
            return hit[1]
        tenant = await get_tenant(self.pool, slug)
        self._tenants[slug] = (now, tenant)
        return tenant

    async def scope(self, state: Mapping[str, Any], runtime: Runtime[Context]) -> RunScope:
        """The run's tenant and conversation: from the context the desk filled, else (Studio)
        the thread's bound tenant, or the context's slug, and the thread id."""
        ctx = runtime.context or Context()
        bound = state.get("tenant")
        if ctx.resolved is not None:
            if bound and bound != ctx.resolved.slug:
                raise PermissionError(
                    f"thread belongs to tenant {bound!r}, not {ctx.resolved.slug!r}"
                )
            tenant = ctx.resolved
        else:
            tenant = await self.tenant(bound or ctx.tenant)
        conversation = ctx.conversation_id
        if conversation is None:
            thread = runtime.execution_info.thread_id if runtime.execution_info else None
            if thread is None:
                raise RuntimeError("a run needs a conversation: a thread id or the context's")
            conversation = thread_conversation(thread)
        return RunScope(tenant, conversation)

    def forget_tenant(self, slug: str) -> None:
        """Drop a cached tenant (after its policy changed)."""
        self._tenants.pop(slug, None)


def train_classifier(
    models: Models, prompts_dir: Path, own: TenantIntents | None = None
) -> IntentClassifier:
    """Fit the offline intent classifier on the examples kept in ``prompts/``, plus (or, when
    its mode is ``replace``, instead of the shared intents) a tenant's ``own``.

    Trained at every start, not cached: it takes a few seconds (measured 2-3 s on two cores),
    and its fitted parts (a TF-IDF vocabulary, scikit-learn models) would need pickles.
    """
    texts, labels = read_examples(prompts_dir / "intents.csv")
    if own is not None:
        if own.mode == "replace":
            texts, labels = [], []
        texts += [text for text, _ in own.examples]
        labels += [intent for _, intent in own.examples]
    oos = prompts_dir / "out_of_scope.csv"
    if oos.is_file():
        more_texts, more_labels = read_examples(oos)
        texts += more_texts
        labels += more_labels
    log.info("training the intent classifier on %d examples…", len(texts))
    return IntentClassifier(models.embeddings).fit(texts, labels)


def thread_conversation(thread_id: str) -> uuid.UUID:
    """The conversation of a thread (thread id = conversation id). Threads started outside the
    desk (Studio) may use any string; those map to a stable UUID."""
    try:
        return uuid.UUID(thread_id)
    except ValueError:
        return uuid.uuid5(uuid.NAMESPACE_URL, f"deskgraph-thread:{thread_id}")


@dataclass(frozen=True)
class RunScope:
    """The tenant and the conversation a run acts for."""

    tenant: Tenant
    conversation_id: uuid.UUID
