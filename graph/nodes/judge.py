"""judge: the guardrail between a draft and the customer.

Always (both tiers): tenant policy rules and sentence-level groundedness.
- Every non-declined draft cites at least one retrieved article, and only retrieved ones.
- No banned topic and no hand-off keyword of the tenant appears in the draft.
- Money amounts and discount percentages must appear in the retrieved text; a grounded price
  above the tenant's ``max_price_promise`` is held for approval, and a discount above
  ``max_discount_percent`` that the knowledge base does not state is a violation.
  A threshold quoted from the knowledge base is not a price promised to this customer and is
  not held: an amount that both the draft and the retrieved text use as a bound ("jobs of
  $1,000 or more", "under $1,000", "at least", "up to", "minimum"). A price above the limit, a
  single one or either end of a range ("installed: $1,400–$2,100", "from $1,400"), is still
  held, quoted or not: it reads as what this job will cost the customer.
- Each substantive sentence must be supported by a sentence of the chunks (cosine >=
  ``SUPPORT_SIMILARITY`` or most of its content words present).
With the LLM tier, an LLM judge with structured output also rules on groundedness and policy.

The verdict also lists review reasons (approval policy): the channel, ``review_all``, a
confidence below ``auto_send_above``, a price above the limit.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig
from langgraph.runtime import Runtime
from pydantic import BaseModel, Field, StringConstraints

from graph import money
from graph.context import Context
from graph.llm.structured import structured
from graph.nodes.draft import CITATION, context_block, heading_fact
from graph.policy import decline_trigger
from graph.services import RunScope, Services
from graph.state import Citation, Draft, JudgeVerdict, SupportState
from helpdesk.policy import TenantPolicy
from helpdesk.tenants import Tenant
from kb_pipeline.index import Retrieved
from nlp.text import content_words, sentences

SUPPORT_SIMILARITY = 0.6
MAX_DRAFTS = 2
"""A draft and one redraft; a second failure hands off."""
SUPPORT_WORD_COVERAGE = 0.7
MIN_CONTENT_WORDS = 3
_AMOUNT = f"({money.MONEY_TEXT})"
_BOUND = re.compile(
    r"(?:over|under|above|below|at least|up to|more than|less than|minimum(?: of)?|"
    rf"maximum(?: of)?)\s+{_AMOUNT}"
    rf"|{_AMOUNT}\s*(?:or (?:more|less|over|under|higher|lower|above|below)|and (?:up|over|above)"
    r"|minimum|maximum)",
    re.IGNORECASE,
)
_DISCOUNT = re.compile(
    r"(\d{1,3}(?:\.\d+)?)\s?%\s*(?:off|discount)|discount\s+of\s+(\d{1,3})\s?%", re.I
)


class LlmJudgement(BaseModel):
    """The LLM judge's ruling on a draft answer."""

    grounded: bool = Field(description="Every claim is supported by the context passages.")
    policy_ok: bool = Field(
        description="No promise, price or discount beyond what the context says."
    )
    # Bounded, so a grammar-constrained server (llama.cpp) cannot spend an answer's whole
    # token budget inside one string: the schema's maxLength / maxItems become the grammar's.
    problems: list[Annotated[str, StringConstraints(max_length=300)]] = Field(
        default_factory=list, max_length=5, description="Each unsupported claim or issue."
    )
    feedback: str = Field(
        default="", max_length=600, description="How to fix the draft, for a redraft."
    )


def _bounds(text: str) -> set[float]:
    """Amounts the text uses as a threshold, not as a price."""
    found = [g for m in _BOUND.finditer(text) for g in m.groups() if g]
    return {a for g in found for a in money.amounts(g)}


def policy_findings(
    draft: Draft, chunks: list[Retrieved], policy: TenantPolicy
) -> tuple[list[str], list[str]]:
    """Rule violations and review reasons for a draft."""
    violations: list[str] = []
    review: list[str] = []
    text = draft["text"]
    lowered = text.lower()
    kb_text = " ".join(c["text"] for c in chunks)
    retrieved_ids = {c["source_id"] for c in chunks}
    cited = {m.group(1) for m in CITATION.finditer(text)}
    if not cited:
        violations.append("no_citation: the answer cites no knowledge-base article")
    elif unknown := sorted(cited - retrieved_ids):
        violations.append(f"unknown_citation: {', '.join(unknown)} were not retrieved")
    for topic in policy.banned_topics:
        if re.search(rf"\b{re.escape(topic.lower())}\b", lowered):
            violations.append(f"banned_topic: {topic}")
    for word in policy.handoff_keywords:
        if re.search(rf"\b{re.escape(word.lower())}\b", lowered):
            violations.append(f"handoff_keyword: {word}")
    kb_amounts = set(money.amounts(kb_text))
    quoted = _bounds(text) & _bounds(kb_text)
    for amount, written in money.quoted(text):
        cur = money.symbol_of(written)
        if amount not in kb_amounts:
            violations.append(f"ungrounded_amount: {written} is not in the knowledge base")
        elif amount > policy.max_price_promise and amount not in quoted:
            limit = policy.max_price_promise
            review.append(f"price_above_limit: {cur}{amount:,.2f} > {cur}{limit:,.2f}")
    kb_lower = kb_text.lower()
    for m in _DISCOUNT.finditer(text):
        pct = float(m.group(1) or m.group(2))
        if pct > policy.max_discount_percent and f"{m.group(1) or m.group(2)}%" not in kb_lower:
            violations.append(f"discount_above_limit: {pct:g}% > {policy.max_discount_percent:g}%")
    return violations, review


def quote_over_limit(text: str, tenant: Tenant) -> float | None:
    """The highest price the answer quotes above the profile's ``max_quote_without_handoff``
    (a person gives such quotes: the conversation is handed off), or None."""
    limit = tenant.business.chat.max_quote_without_handoff
    if limit is None:
        return None
    over = [a for a in money.amounts(text) if a > limit and a not in _bounds(text)]
    return max(over) if over else None


async def unsupported_sentences(svc: Services, text: str, chunks: list[Retrieved]) -> list[str]:
    """Sentences of ``text`` that no chunk sentence supports."""
    claims = [
        s for s in sentences(CITATION.sub("", text)) if len(content_words(s)) >= MIN_CONTENT_WORDS
    ]
    evidence = [s for c in chunks for s in sentences(c["text"])]
    evidence += [fact for c in chunks if (fact := heading_fact(c))]
    if not claims:
        return []
    if not evidence:
        return claims
    vectors = await svc.sentence_cache.embed(claims + evidence)
    sims = vectors[: len(claims)] @ vectors[len(claims) :].T
    evidence_words = [content_words(e) for e in evidence]
    out = []
    for i, claim in enumerate(claims):
        words = content_words(claim)
        coverage = max(len(words & ew) / len(words) for ew in evidence_words)
        if float(sims[i].max()) < SUPPORT_SIMILARITY and coverage < SUPPORT_WORD_COVERAGE:
            out.append(claim)
    return out


def make(svc: Services) -> Any:
    """Build the node."""

    async def judge(state: SupportState, runtime: Runtime[Context]) -> dict[str, Any]:
        draft = state.get("draft")
        assert draft is not None, "judge runs after draft"
        scope = await svc.scope(state, runtime)
        tenant = scope.tenant
        policy = tenant.rules
        if draft["declined"]:
            verdict = JudgeVerdict(
                passed=True, grounded=True, violations=[], review_reasons=[], feedback=""
            )
            # the drafter's own hand-off (a rejected draft with nothing better) stands
            reason = state.get("handoff_reason") or decline_trigger(state, policy)
            return {"verdict": verdict, "handoff_reason": reason}
        chunks = state.get("retrieved") or []
        violations, review = policy_findings(draft, chunks, policy)
        unsupported = await unsupported_sentences(svc, draft["text"], chunks)
        violations += [f"unsupported: {s}" for s in unsupported]
        feedback_parts = list(violations)
        grounded = not unsupported
        if svc.models.judge is not None:
            llm = await _llm_judge(svc, scope, state, draft, chunks)
            # a failed call leaves the rules' verdict (the offline judge) standing
            if llm is not None and (not llm.grounded or not llm.policy_ok):
                grounded = grounded and llm.grounded
                violations += [f"llm_judge: {p}" for p in llm.problems] or ["llm_judge: rejected"]
                feedback_parts.append(llm.feedback)
        channel = state["channel"]
        if channel in policy.review_channels:
            review.append(f"channel: {channel} answers are reviewed")
        if policy.review_all:
            review.append("policy: every answer is reviewed")
        if draft["confidence"] < policy.auto_send_above:
            review.append(
                f"confidence: {draft['confidence']:.2f} < auto-send {policy.auto_send_above:.2f}"
            )
        handoff_reason = None
        if violations and int(state.get("attempts", 0)) >= MAX_DRAFTS:
            handoff_reason = "judge_failed"
        elif not violations and (over := quote_over_limit(draft["text"], tenant)):
            handoff_reason = f"quote_over_limit: ${over:,.2f}"
        return {
            "handoff_reason": handoff_reason,
            "verdict": JudgeVerdict(
                passed=not violations,
                grounded=grounded,
                violations=violations,
                review_reasons=review,
                feedback="; ".join(p for p in feedback_parts if p),
            ),
            "feedback": "; ".join(p for p in feedback_parts if p),
        }

    return judge


async def _llm_judge(
    svc: Services, scope: RunScope, state: SupportState, draft: Draft, chunks: list[Retrieved]
) -> LlmJudgement | None:
    judge = svc.models.judge
    assert judge is not None
    messages = [
        SystemMessage(svc.prompts.judge_system.format(context=context_block(chunks))),
        HumanMessage(
            f"Customer question: {state.get('question', '')}\n\nDraft answer:\n{draft['text']}"
        ),
    ]

    async def ask(config: RunnableConfig) -> LlmJudgement:
        return await structured(judge, LlmJudgement, messages, svc.models.llm.structured, config)

    return await svc.ask_llm(scope, state, "judge", ask)


async def citations_for(
    svc: Services, text: str, citations: list[Citation], chunks: list[Retrieved]
) -> list[Citation]:
    """The citations that still apply to ``text`` (a reviewer's edit of a cited draft).

    A source stays cited when the text still carries its ``[source-id]`` marker, or when the
    text makes a claim that source supports by the judge's own groundedness check
    (:func:`unsupported_sentences`); a retrieved source the text newly marks is cited too.
    Text none of them support is sent with no sources rather than with the draft's.
    """
    marked = {m.group(1) for m in CITATION.finditer(text)}
    claims = [
        s for s in sentences(CITATION.sub("", text)) if len(content_words(s)) >= MIN_CONTENT_WORDS
    ]
    known = {c["source_id"]: c for c in citations}
    for chunk in chunks:
        if chunk["source_id"] in marked and chunk["source_id"] not in known:
            known[chunk["source_id"]] = Citation(
                source_id=chunk["source_id"],
                title=chunk["title"],
                article_id=chunk["article_id"],
                url=chunk.get("url"),
            )
    kept = []
    for source_id, citation in known.items():
        if source_id in marked:
            kept.append(citation)
            continue
        evidence = [c for c in chunks if c["source_id"] == source_id]
        if claims and evidence:
            unsupported = await unsupported_sentences(svc, text, evidence)
            if len(unsupported) < len(claims):
                kept.append(citation)
    return kept
