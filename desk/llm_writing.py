"""What the LLM tier writes for the desk's learning, with the offline text as the fallback.

* :func:`article`: an article draft rewritten from the offline assembly (the question, the
  person's answer, a resolution's cause and steps) by ``prompts/article_system.md``;
* :func:`cluster_name`: a top-questions cluster named by one plain question
  (``prompts/cluster_name_system.md``) instead of its most central member.

Both are structured output (a title and a body; a name), so a reply that is not that shape is
not used. On the offline tier, or when the model fails in any way (timeout, refusal, a
malformed or empty answer), the offline text stands: a draft still gets made, a cluster still
gets a name, and a person reviews every draft before it is published.
"""

from __future__ import annotations

import logging

from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from graph.services import Services
from helpdesk.profile import BusinessProfile

log = logging.getLogger(__name__)


class LlmArticle(BaseModel):
    """A help article: a plain title and a Markdown body."""

    title: str = Field(min_length=3, max_length=300)
    body: str = Field(min_length=20, max_length=50_000)


class LlmClusterName(BaseModel):
    """One short question naming what a group of questions asks."""

    name: str = Field(min_length=3, max_length=120)


async def article(
    services: Services, business: BusinessProfile | None, title: str, body: str
) -> tuple[str, str, bool]:
    """``(title, body, written_by_llm)``: the LLM's article, or the offline one."""
    chat = services.models.chat
    if chat is None or business is None:
        return title, body, False
    system = services.prompts.article_system.format(**services.prompts.business_values(business))
    try:
        got = await chat.with_structured_output(LlmArticle).ainvoke(
            [SystemMessage(system), HumanMessage(f"# {title}\n\n{body}")]
        )
        written = LlmArticle.model_validate(got)
    except Exception as exc:  # any failure of the provider: the offline draft stands
        log.warning("article draft: the LLM failed (%s); the offline draft is kept", exc)
        return title, body, False
    return " ".join(written.title.split()), written.body.strip(), True


async def cluster_name(
    services: Services, business: BusinessProfile | None, central: str, examples: list[str]
) -> str:
    """The LLM's name for a cluster of questions, or its most central question."""
    chat = services.models.chat
    if chat is None or business is None:
        return central
    system = services.prompts.cluster_name_system.format(
        **services.prompts.business_values(business)
    )
    questions = "\n".join(f"- {q}" for q in [central, *[e for e in examples if e != central]])
    try:
        got = await chat.with_structured_output(LlmClusterName).ainvoke(
            [SystemMessage(system), HumanMessage(questions)]
        )
        name = " ".join(LlmClusterName.model_validate(got).name.split())
    except Exception as exc:
        log.warning("cluster name: the LLM failed (%s); the central question is kept", exc)
        return central
    return name or central
