"""draft: a grounded answer with citations, or an honest "not in our knowledge base".

Confidence (both tiers) is how well the knowledge base answers the question: the best score of
a retrieved sentence, where a sentence's score is its cosine similarity (MiniLM) to the query
vector plus ``OVERLAP_BONUS`` times the share of the question's content words it contains. The
query vector is the question's, with the customer's previous message mixed in at
``retrieve.CONTEXT_WEIGHT`` so an elliptical follow-up ("how does it work?") is scored in the
context it was asked in; a first message is scored on its own. Below the tenant's
``escalate_below`` the draft declines (``Draft.declined``; the reply says the knowledge base
does not cover it) instead of extracting or generating anything.

How the threshold was chosen: docs/decisions/escalate-below-threshold.md; the richer
answerability signals measured against it (not adopted): docs/decisions/answerability-model.md.

A section heading that states a fact ("Phone: 555-0142") counts as a sentence of its chunk
(:func:`heading_fact`): the drafter can quote it and the judge counts it as evidence.

Offline: extractive. The best sentence and the close runners-up from the best articles form
the answer, in article order, each article cited as ``[source-id]``.

LLM: the chat model answers from the same chunks (and sees the previous question), told to cite
``[source-id]`` and to reply ``NO_ANSWER`` when the chunks do not answer; confidence is the same
retrieval relevance, since a model's self-reported confidence is not calibrated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig
from langgraph.runtime import Runtime

from graph import facts
from graph.context import Context
from graph.llm.transfer import promises_transfer
from graph.nodes.retrieve import previous_question, query_vector
from graph.services import RunScope, Services
from graph.state import Citation, Draft, SupportState
from graph.tools.loop import draft_with_tools
from graph.tools.run import ToolRun
from kb_pipeline.index import Retrieved
from nlp import yes_no
from nlp.text import Unit, content_words, sentences, units

MAX_SENTENCES = 3
MAX_LIST_ITEMS = 8
"""A chosen list item brings its whole list into the answer up to this length."""
RUNNER_UP = 0.85
OVERLAP_BONUS = 0.15
"""Weight of the share of the question's content words a sentence contains."""
NO_ANSWER = "NO_ANSWER"
CITATION = re.compile(r"\[([a-z0-9][a-z0-9._-]*)\]", re.IGNORECASE)


@dataclass(frozen=True)
class _Sentence:
    text: str
    chunk: int
    position: int
    score: float
    """Relevance to the question in context (the confidence reads the best one)."""
    relevance: float
    """What the answer is chosen by: ``score``, but never more than the sentence's relevance
    to the question alone, so the context can rule a sentence out but never in."""
    group: int | None = None
    """The list the sentence is an item of, within its chunk (:class:`nlp.text.Unit`)."""
    lead: str = ""
    by_lead: bool = False
    """A list item that is relevant read with its list's lead, not on its own: the question
    is about the list ("when are you open?"), so the answer gives the whole list."""


_VALUE_HEADING = re.compile(r"^[A-Za-z][\w /&'-]{0,30}:\s*\S")
"""A heading that states a fact ("Phone: 555-0142", "Email: help@..."), not a topic."""


def heading_fact(chunk: Retrieved) -> str | None:
    """The chunk's own heading when it states a fact; it is part of what the article says
    (the phone number of contact-us.md is only in its heading), so the drafter may quote it
    and the judge counts it as evidence."""
    last = chunk["section"].rsplit(" > ", 1)[-1].strip() if " > " in chunk["section"] else ""
    return last if _VALUE_HEADING.match(last) else None


def chunk_units(chunk: Retrieved) -> list[Unit]:
    """The chunk's sentences, led by its heading when the heading states a fact."""
    fact = heading_fact(chunk)
    return ([Unit(fact)] if fact else []) + units(chunk["text"])


async def score_sentences(
    svc: Services, question: str, chunks: list[Retrieved], previous: str = ""
) -> list[_Sentence]:
    """Every sentence of the chunks, scored against the question in context (best first).

    Args:
        svc: services (the sentence embedding cache).
        question: this turn's question.
        chunks: the retrieved chunks.
        previous: the customer's previous message ("" for none), mixed into the query vector.
    """
    items = [(u, ci, pi) for ci, c in enumerate(chunks) for pi, u in enumerate(chunk_units(c), -1)]
    if not items or not question.strip():
        return []
    # A list item is also read with what introduces its list ("Sunday: closed" alone says
    # nothing about opening hours). That reading helps choose what the answer says, never
    # whether to answer: the score (the confidence) is the item's own, as calibrated.
    plain = [u.text for u, _, _ in items]
    led = [f"{u.lead} {u.text}" for u, _, _ in items if u.lead]
    vectors = await svc.sentence_cache.embed(plain + led)
    question_vec = await query_vector(svc, question, previous)
    alone_vec = await query_vector(svc, question, "") if previous else question_vec
    in_context, alone = vectors @ question_vec, vectors @ alone_vec
    # word overlap with the question itself: the previous message only sets the topic
    q_words = content_words(question)

    def reading(row: int, text: str) -> tuple[float, float]:
        words = content_words(text)
        bonus = OVERLAP_BONUS * (len(q_words & words) / len(q_words) if q_words else 0.0)
        score = float(in_context[row]) + bonus
        return score, min(score, float(alone[row]) + bonus)

    scored = []
    led_row = len(plain)
    for row, (unit, ci, pi) in enumerate(items):
        score, relevance = reading(row, unit.text)
        by_lead = False
        if unit.lead:
            _, led_relevance = reading(led_row, f"{unit.lead} {unit.text}")
            led_row += 1
            by_lead = led_relevance > relevance
            relevance = max(relevance, led_relevance)
        scored.append(
            _Sentence(unit.text, ci, pi, score, relevance, unit.group, unit.lead, by_lead)
        )
    scored.sort(key=lambda s: s.score, reverse=True)
    return scored


def confidence_of(scored: list[_Sentence]) -> float:
    """The best sentence score clipped to 0-1 (one signal of :mod:`graph.answerability`)."""
    return float(np.clip(scored[0].score, 0.0, 1.0)) if scored else 0.0


def citations_for(chunks: list[Retrieved], source_ids: list[str]) -> list[Citation]:
    """Citations for the given source ids, in order, each once (with the article's url, or
    None, so a client can link to the source page)."""
    by_source = {c["source_id"]: c for c in chunks}
    out: list[Citation] = []
    for sid in dict.fromkeys(source_ids):
        if sid in by_source:
            c = by_source[sid]
            out.append(
                Citation(
                    source_id=sid,
                    title=c["title"],
                    article_id=c["article_id"],
                    url=c.get("url"),
                )
            )
    return out


def sentence_key(text: str) -> str:
    """A sentence compared loosely: case, spacing, citations and end punctuation aside."""
    return " ".join(CITATION.sub("", text).lower().split()).rstrip(" .!?")


def extractive_answer(
    chunks: list[Retrieved], scored: list[_Sentence], exclude: frozenset[str] = frozenset()
) -> tuple[str, list[str]]:
    """Compose an answer from the sentences most relevant to the question; return (text,
    cited source ids), ("", []) when no sentence is left.

    Args:
        chunks: the retrieved chunks.
        scored: their sentences, from :func:`score_sentences`.
        exclude: ``sentence_key`` of sentences not to use (those of a rejected draft).
    """
    # a sentence ending in ":" only introduces a list; on its own it tells the customer nothing
    usable = [s for s in scored if sentence_key(s.text) not in exclude]
    usable = [s for s in usable if not s.text.rstrip().endswith(":")] or usable
    if not usable:
        return "", []
    usable.sort(key=lambda s: s.relevance, reverse=True)
    best = usable[0].relevance
    chosen: list[_Sentence] = []
    seen: set[str | tuple[int, int]] = set()
    # overlapping chunks repeat a sentence; an answer says each thing once, and a list once
    for s in usable[: MAX_SENTENCES * 3]:
        key = (s.chunk, s.group) if s.by_lead and s.group is not None else sentence_key(s.text)
        if s.relevance >= best * RUNNER_UP and key not in seen and sentence_key(s.text) not in seen:
            seen.update({key, sentence_key(s.text)})
            chosen.append(s)
    chosen = chosen[:MAX_SENTENCES]
    # keep the answer's articles together and in reading order
    article_rank = {c: i for i, c in enumerate(dict.fromkeys(s.chunk for s in chosen))}
    chosen.sort(key=lambda s: (article_rank[s.chunk], s.position))
    parts: list[str] = []
    cited: list[str] = []
    for chunk_index in dict.fromkeys(s.chunk for s in chosen):
        source = chunks[chunk_index]["source_id"]
        said: list[str] = []
        for s in chosen:
            if s.chunk != chunk_index:
                continue
            if not s.by_lead:
                said.append(s.text if s.text.endswith((".", "!", "?")) else s.text + ".")
            else:
                said.append(_whole_list(s, scored, exclude, said))
        parts.append(f"{_join(said)} [{source}]")
        cited.append(source)
    return _join(parts), cited


def _join(pieces: list[str]) -> str:
    """Sentences joined by a space; a list, and what follows one, start on a line of their own."""
    out = ""
    for prev, piece in zip(["", *pieces], pieces, strict=False):
        if out:
            listy = any(p.startswith("- ") or "\n- " in p for p in (prev, piece))
            out += "\n" if listy else " "
        out += piece
    return out


def _whole_list(
    item: _Sentence, scored: list[_Sentence], exclude: frozenset[str], said: list[str]
) -> str:
    """A chosen list item as its whole list, under its lead: one item of "Monday to Friday:
    7:30-6; Saturday: 8-2; Sunday: closed" answers "when are you open?" only in part. One item
    per line, as written, so the judge finds each in the article; a long list keeps the item."""
    items = sorted(
        (s for s in scored if s.chunk == item.chunk and s.group == item.group),
        key=lambda s: s.position,
    )
    items = [s for s in items if sentence_key(s.text) not in exclude] or [item]
    if len(items) > MAX_LIST_ITEMS:
        items = [item]
    lead = item.lead
    if lead and said and sentence_key(said[-1]) == sentence_key(lead):
        lead = ""  # the lead sentence was chosen too: say it once
    lines = [lead] if lead else []
    lines += [f"- {s.text}" for s in items]
    return "\n".join(lines)


def make(svc: Services) -> Any:
    """Build the node."""

    async def draft(state: SupportState, runtime: Runtime[Context]) -> dict[str, Any]:
        scope = await svc.scope(state, runtime)
        tenant = scope.tenant
        question = state.get("question", "")
        previous = previous_question(state.get("messages") or [])
        chunks = state.get("retrieved") or []
        rejected = list(state.get("rejected") or [])
        scored = await score_sentences(svc, question, chunks, previous)
        confidence = confidence_of(scored)
        attempts = int(state.get("attempts", 0)) + 1
        extra: dict[str, Any] = {}
        decline = Draft(
            text=svc.prompts.reply("decline", tenant.business),
            citations=[],
            confidence=confidence,
            declined=True,
        )
        if chunks and facts.is_profile_fact(chunks[0]) and not rejected:
            # A fact of the business's own profile (open now, hours, contact, area): both tiers
            # send it as computed, since it depends on the clock an LLM does not know.
            fact = chunks[0]
            result = Draft(
                text=f"{fact['text']} [{fact['source_id']}]",
                citations=citations_for(chunks, [fact["source_id"]]),
                confidence=1.0,
                declined=False,
            )
        elif confidence < tenant.rules.escalate_below:
            result = decline
        elif svc.models.chat is not None and (
            llm := await _llm_draft(svc, scope, state, chunks, confidence, previous, rejected)
        ):
            # None: the call failed or said nothing, and the offline draft below answers
            result, found, reason = llm
            if reason:
                return {"draft": decline, "attempts": attempts, "handoff_reason": reason}
            if found:  # what the tools read: the judge checks the draft against it too
                extra["retrieved"] = [*chunks, *found]
        else:
            result = (
                _extractive_draft(
                    question, chunks, scored, confidence, rejected, tenant.rules.escalate_below
                )
                or decline
            )
        if rejected and (result["declined"] or _repeats(result["text"], rejected)):
            # a reviewer turned the draft down and there is nothing better: a person answers
            return {"draft": decline, "attempts": attempts, "handoff_reason": "draft_rejected"}
        return {"draft": result, "attempts": attempts, "handoff_reason": None, **extra}

    return draft


def _rejected_keys(rejected: list[str]) -> frozenset[str]:
    return frozenset(
        sentence_key(s) for text in rejected for s in sentences(CITATION.sub("", text))
    )


def _repeats(text: str, rejected: list[str]) -> bool:
    return sentence_key(text) in {sentence_key(t) for t in rejected}


def _extractive_draft(
    question: str,
    chunks: list[Retrieved],
    scored: list[_Sentence],
    confidence: float,
    rejected: list[str],
    floor: float,
) -> Draft | None:
    """The offline draft, or None when a redraft after a rejection has nothing good left.

    A reviewer's rejection is feedback on the sentences shown: the redraft leaves them out and
    answers from the rest, if the best of the rest is still relevant enough (``floor``, the
    tenant's ``escalate_below``) to be worth a reviewer's time.
    """
    exclude = _rejected_keys(rejected)
    if rejected:
        rest = [s.relevance for s in scored if sentence_key(s.text) not in exclude]
        if not rest or max(rest) < floor:
            return None
    text, cited = extractive_answer(chunks, scored, exclude)
    if not text:
        return None
    if answer := yes_no.lead(question, [c["text"] for c in chunks]):
        text = f"{answer}. {text}"
    return Draft(
        text=text, citations=citations_for(chunks, cited), confidence=confidence, declined=False
    )


def context_block(chunks: list[Retrieved]) -> str:
    """The chunks as the prompt context both the drafter and the judge read, ids in brackets."""
    return "\n\n".join(
        f"[{c['source_id']}] {c['title']} — {c['section']}\n{c['text']}" for c in chunks
    )


async def _llm_draft(
    svc: Services,
    scope: RunScope,
    state: SupportState,
    chunks: list[Retrieved],
    confidence: float,
    previous: str = "",
    rejected: list[str] | None = None,
) -> tuple[Draft, list[Retrieved], str | None] | None:
    """The model's draft, the chunks its tools read and a hand-off reason (the model asked
    for a person, by ``request_handoff`` or in so many words); None when the call failed or
    the model said nothing, so that the offline draft answers instead."""
    chat = svc.models.chat
    assert chat is not None
    business = scope.tenant.business
    system = svc.prompts.draft_system.format(
        context=context_block(chunks), no_answer=NO_ANSWER, **svc.prompts.business_values(business)
    )
    question = state.get("question", "")
    messages: list[BaseMessage] = [
        SystemMessage(system),
        HumanMessage(llm_request(question, previous, state.get("feedback", ""), rejected)),
    ]
    run = ToolRun(svc, scope.tenant, scope.conversation_id, state.get("audience", "customer"))

    async def ask(config: RunnableConfig) -> str:
        return await draft_with_tools(
            chat, messages, run, max_calls=svc.models.llm.tool_calls, config=config
        )

    text = await svc.ask_llm(scope, state, "draft", ask)
    decline = Draft(
        text=svc.prompts.reply("decline", business),
        citations=[],
        confidence=confidence,
        declined=True,
    )
    if run.handoff_reason:
        return decline, run.found, run.handoff_reason
    if not text:
        return None
    if promises_transfer(text):
        return decline, run.found, "transfer_in_text"
    if NO_ANSWER in text:
        return decline, run.found, None
    cited = [m.group(1) for m in CITATION.finditer(text)]
    draft = Draft(
        text=text,
        citations=citations_for([*chunks, *run.found], cited),
        confidence=confidence,
        declined=False,
    )
    return draft, run.found, None


def llm_request(
    question: str, previous: str, feedback: str, rejected: list[str] | None = None
) -> str:
    """The drafter's user message: the latest question to answer, the previous message as
    context only, and on a redraft what was wrong (the judge's findings, or the draft a reviewer
    rejected and their reason)."""
    parts = []
    if previous:
        parts.append(f"(The customer's previous message, for context only: {previous})")
    parts.append(f"The customer's latest question, the one to answer:\n{question}")
    for text in rejected or []:
        parts.append(f"(A reviewer rejected this draft answer; do not send it again: {text})")
    if feedback and rejected:
        parts.append(f"(The reviewer's reason, which your new answer must address: {feedback})")
    elif feedback:
        parts.append(f"(Reviewer feedback on your last draft: {feedback})")
    return "\n\n".join(parts)
