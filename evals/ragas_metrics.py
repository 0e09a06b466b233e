"""ragas metrics for the suites: offline ones always, LLM ones only with a judge model.

Offline (no model, no network): ``IDBasedContextRecall`` / ``IDBasedContextPrecision`` (ids of
the retrieved articles against the gold ids), ``NonLLMContextRecall`` (gold passages against the
retrieved text, Levenshtein similarity > 0.5), ``NonLLMStringSimilarity`` and ``RougeScore``
(rouge-L F1) of an answer against a reference answer.

With a judge model (``nlp/models.py`` builds it from ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL`` /
``DESKGRAPH_JUDGE_MODEL``): ``Faithfulness``, ``ResponseRelevancy``, ``FactualCorrectness`` and
``LLMContextPrecisionWithReference``. They take the LangChain chat model of the model factory
through ragas' LangChain wrapper, so an OpenAI-compatible server works like OpenAI and tests
can pass a fake chat model.

ragas 0.4 keeps these metrics (the id-based and non-LLM context ones exist only there) in its
``ragas.metrics._*`` modules, which is where they are imported from; the public re-exports
warn on every access. ragas' usage telemetry is switched off (``RAGAS_DO_NOT_TRACK=true``)
before ragas is first imported, and again before each use in case something imported it
earlier.
"""

from __future__ import annotations

import asyncio
import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from evals.core import finite

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings
    from langchain_core.language_models import BaseChatModel

log = logging.getLogger(__name__)

LLM_METRICS = (
    "faithfulness",
    "response_relevancy",
    "factual_correctness",
    "llm_context_precision_with_reference",
)
"""Names (in the run record) of the metrics that need a judge model."""


def no_telemetry() -> None:
    """Make sure ragas sends nothing anywhere (its usage analytics are opt-out)."""
    os.environ["RAGAS_DO_NOT_TRACK"] = "true"
    from ragas import _analytics

    # ``do_not_track`` is cached on first call; a call made before the variable was set would
    # otherwise stick.
    _analytics.do_not_track.cache_clear()


def _sample(**fields: Any) -> Any:
    no_telemetry()
    from ragas import SingleTurnSample

    return SingleTurnSample(**fields)


async def _score(metric: Any, sample: Any) -> float | None:
    return finite(await metric.single_turn_ascore(sample))


class OfflineScorers:
    """The ragas metrics that need no model: built once, reused for every example."""

    def __init__(self) -> None:
        no_telemetry()
        from ragas.metrics._context_precision import IDBasedContextPrecision
        from ragas.metrics._context_recall import IDBasedContextRecall, NonLLMContextRecall
        from ragas.metrics._rouge_score import RougeScore
        from ragas.metrics._string import NonLLMStringSimilarity

        self.id_recall = IDBasedContextRecall()
        self.id_precision = IDBasedContextPrecision()
        self.context_recall = NonLLMContextRecall()
        self.string_similarity = NonLLMStringSimilarity()
        self.rouge = RougeScore(rouge_type="rougeL", mode="fmeasure")

    async def retrieval(
        self,
        retrieved_ids: Sequence[str],
        gold_ids: Sequence[str],
        retrieved_texts: Sequence[str],
        gold_texts: Sequence[str],
    ) -> dict[str, float | None]:
        """Id-based recall / precision and non-LLM context recall of one retrieval.

        Args:
            retrieved_ids: ids of the retrieved articles (duplicates count once).
            gold_ids: ids of the articles that answer the question.
            retrieved_texts: the retrieved passages (one per retrieved article is best).
            gold_texts: the gold passages; empty skips ``non_llm_context_recall``.
        """
        out: dict[str, float | None] = {
            "id_context_recall": None,
            "id_context_precision": None,
            "non_llm_context_recall": None,
        }
        if not gold_ids:
            return out
        if retrieved_ids:
            ids = _sample(
                retrieved_context_ids=list(retrieved_ids), reference_context_ids=list(gold_ids)
            )
            out["id_context_recall"] = await _score(self.id_recall, ids)
            out["id_context_precision"] = await _score(self.id_precision, ids)
        else:
            out["id_context_recall"] = out["id_context_precision"] = 0.0
        if gold_texts:
            if retrieved_texts:
                texts = _sample(
                    retrieved_contexts=list(retrieved_texts), reference_contexts=list(gold_texts)
                )
                out["non_llm_context_recall"] = await _score(self.context_recall, texts)
            else:
                out["non_llm_context_recall"] = 0.0
        return out

    async def answer(self, response: str, reference: str) -> dict[str, float | None]:
        """String similarity and rouge-L of an answer against the reference answer."""
        if not reference.strip():
            return {"string_similarity": None, "rouge_l": None}
        sample = _sample(response=response, reference=reference)
        return {
            "string_similarity": await _score(self.string_similarity, sample),
            "rouge_l": await _score(self.rouge, sample),
        }


@dataclass
class LlmScorers:
    """The ragas metrics that ask a judge model; only built when one is configured."""

    faithfulness: Any
    response_relevancy: Any
    factual_correctness: Any
    context_precision: Any
    timeout_s: float = 120.0

    @classmethod
    def build(cls, judge: BaseChatModel, embeddings: Embeddings) -> LlmScorers:
        """Wrap the judge chat model and the embeddings of the model factory for ragas."""
        no_telemetry()
        from ragas.embeddings.base import LangchainEmbeddingsWrapper
        from ragas.llms.base import LangchainLLMWrapper
        from ragas.metrics._answer_relevance import ResponseRelevancy
        from ragas.metrics._context_precision import LLMContextPrecisionWithReference
        from ragas.metrics._factual_correctness import FactualCorrectness
        from ragas.metrics._faithfulness import Faithfulness

        with warnings.catch_warnings():
            # The LangChain wrappers are marked deprecated in favour of ragas' own OpenAI
            # client factory, which would bypass nlp/models.py (and fake models in tests).
            warnings.simplefilter("ignore", DeprecationWarning)
            llm = LangchainLLMWrapper(judge)
            emb = LangchainEmbeddingsWrapper(embeddings)
        return cls(
            faithfulness=Faithfulness(llm=llm),
            response_relevancy=ResponseRelevancy(llm=llm, embeddings=emb),
            factual_correctness=FactualCorrectness(llm=llm),
            context_precision=LLMContextPrecisionWithReference(llm=llm),
        )

    async def score(
        self, question: str, response: str, contexts: Sequence[str], reference: str
    ) -> tuple[dict[str, float | None], list[str]]:
        """Score one answer; a metric that fails is None, with the error in the list."""
        sample = _sample(
            user_input=question,
            response=response,
            retrieved_contexts=list(contexts) or [""],
            reference=reference,
        )
        pairs: list[tuple[str, Any, bool]] = [
            ("faithfulness", self.faithfulness, bool(contexts)),
            ("response_relevancy", self.response_relevancy, True),
            ("factual_correctness", self.factual_correctness, bool(reference.strip())),
            ("llm_context_precision_with_reference", self.context_precision, bool(reference)),
        ]
        out: dict[str, float | None] = {}
        errors: list[str] = []
        for name, metric, applies in pairs:
            if not applies:
                out[name] = None
                continue
            try:
                out[name] = await asyncio.wait_for(_score(metric, sample), self.timeout_s)
            except Exception as exc:  # a judge failure loses one value, not the run
                log.warning("ragas %s failed: %s", name, exc)
                out[name] = None
                errors.append(f"{name}: {type(exc).__name__}: {exc}")
        return out, errors
