"""Escalation benchmark: does the desk answer what its knowledge base answers, and only that?

Prints one JSON document. Every conversation runs through the real support graph
(``evals.answering``) on a throwaway database on the embedded Postgres (or the server of
``DATABASE_URL``), dropped at the end, with the offline models unless an LLM is configured.

* ``mtrag``: one tenant per MTRAG collection whose knowledge base is every passage of that
  collection in the file (``evals.mtrag``), ingested through the normal pipeline; each task's
  conversation is answered (earlier turns as history). Per answerability label: the share
  answered, declined and handed off; over ANSWERABLE (should answer) against UNANSWERABLE
  (should not): precision, recall and F1 of "should not answer" (declined or handed off), and
  whether the target holds (>= 0.8 of UNANSWERABLE not answered while >= 0.8 of ANSWERABLE are
  answered). The same per collection.
* ``demo``: the demo tenant's question set (``evals/datasets/demo_questions.jsonl``), answerable
  against unanswerable, the same figures.

What is right for the other MTRAG labels: PARTIAL (the knowledge base holds part of the answer)
should be answered with what is there, so its answered rate is reported as a should-answer
figure; UNDERSPECIFIED (the right move is a clarifying question, which the desk does not ask)
has no right outcome among answer / decline / hand off, so only its rates are reported. Neither
enters precision / recall.

``--sweep`` adds the threshold curve from the same run: for each ``escalate_below`` on a grid,
the outcome each conversation would get (drafted ones answer at or above it and decline below;
hand-offs before drafting are unchanged; the approximation ignores the judge for drafts that
were declined), the threshold that maximises the mean of the four rates (answerable answered and
unanswerable not answered, on MTRAG and on the demo set), and a split-half check: chosen on the
demo set plus a random half of the MTRAG conversations, measured on the other half, 200 times.
``graph/nodes/draft.py`` records how the default ``escalate_below`` follows from it.

``--mtrag-policy kb-only`` gives the MTRAG tenants a policy with no always-human intents (the
demo's billing / cancellation / complaint / legal intents have no meaning for a documentation
desk, and the offline classifier trained on the demo's examples tags questions such as "What is
a limited civil case?" as ``legal``); the default keeps the product's default policy.

``--features FILE`` writes every case's answerability signals (``graph.answerability``, measured
by ``graph.answerability.assess`` on the chunks the retrieve node would fetch) for
``answerability_fit.py``, which fits and measures a model over them leave-one-collection-out.

Usage: ``python evals/benchmarks/escalation.py [--mtrag PATH] [--sweep] [--items FILE]
[--features FILE]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from evals import mtrag  # noqa: E402
from evals.answering import AnswerResult, answer_many  # noqa: E402
from evals.loaders import DEMO_QUESTIONS, load_questions  # noqa: E402
from helpdesk.policy import TenantPolicy  # noqa: E402

log = logging.getLogger("escalation_benchmark")

TARGET = 0.8
"""Both rates the target asks for: ANSWERABLE answered and UNANSWERABLE not answered."""
SHOULD_ANSWER = {"ANSWERABLE": True, "UNANSWERABLE": False}
OUTCOMES = ("answered", "declined", "handoff")
GRID = [round(0.30 + 0.01 * i, 2) for i in range(51)]
SPLITS = 200
KB_ONLY_POLICY = TenantPolicy(always_human_intents=[])
"""``--mtrag-policy kb-only``: every other hand-off trigger of the default policy stays."""


@dataclass(frozen=True)
class Outcome:
    """One conversation's result, reduced to what the benchmark counts."""

    dataset: str
    id: str
    conversation: str
    collection: str
    label: str
    handoff: bool
    declined: bool
    confidence: float | None
    handoff_reason: str | None
    question: str

    @property
    def kind(self) -> str:
        """``handoff``, ``declined`` or ``answered``."""
        return "handoff" if self.handoff else "declined" if self.declined else "answered"

    def kind_at(self, threshold: float) -> str:
        """The outcome with ``escalate_below`` at ``threshold`` (see the module docstring)."""
        drafted = self.confidence is not None and (
            not self.handoff or self.handoff_reason in ("low_confidence", "judge_failed")
        )
        if not drafted:
            return self.kind
        assert self.confidence is not None
        return "answered" if self.confidence >= threshold else "declined"


def outcome(dataset: str, case: Mapping[str, Any], result: AnswerResult) -> Outcome:
    """An :class:`Outcome` from a case description and its answer."""
    return Outcome(
        dataset=dataset,
        id=str(case["id"]),
        conversation=str(case.get("conversation", case["id"])),
        collection=str(case.get("collection", dataset)),
        label=str(case["label"]),
        handoff=result.handoff,
        declined=result.declined,
        confidence=result.confidence,
        handoff_reason=result.handoff_reason,
        question=result.input,
    )


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def summarise(outcomes: Sequence[Outcome], kind_of: Any = None) -> dict[str, Any]:
    """Counts, rates and should-not-answer precision / recall of a group of outcomes.

    Args:
        outcomes: the group.
        kind_of: maps an outcome to its kind (default: what actually happened).
    """
    kind = kind_of or (lambda o: o.kind)
    by_label: dict[str, Counter[str]] = {}
    for o in outcomes:
        by_label.setdefault(o.label, Counter())[kind(o)] += 1
    labels: dict[str, Any] = {}
    for label in sorted(by_label):
        c = by_label[label]
        n = sum(c.values())
        labels[label] = {"n": n, **{k: c[k] for k in OUTCOMES}} | {
            f"{k}_rate": _rate(c[k], n) for k in OUTCOMES
        }
    scored = [o for o in outcomes if o.label in SHOULD_ANSWER]
    tp = sum(1 for o in scored if not SHOULD_ANSWER[o.label] and kind(o) != "answered")
    fp = sum(1 for o in scored if SHOULD_ANSWER[o.label] and kind(o) != "answered")
    fn = sum(1 for o in scored if not SHOULD_ANSWER[o.label] and kind(o) == "answered")
    tn = sum(1 for o in scored if SHOULD_ANSWER[o.label] and kind(o) == "answered")
    precision = _rate(tp, tp + fp)
    recall = _rate(tp, tp + fn)
    f1 = (
        round(2 * precision * recall / (precision + recall), 4)
        if precision is not None and recall is not None and precision + recall > 0
        else None
    )
    answered = _rate(tn, tn + fp)
    return {
        "n": len(outcomes),
        "by_label": labels,
        "answerable_answered": answered,
        "unanswerable_not_answered": recall,
        "should_not_answer": {"precision": precision, "recall": recall, "f1": f1},
    }


def _four_rates(outcomes: Iterable[Outcome], threshold: float) -> list[float]:
    """Answerable answered and unanswerable not answered, per dataset present."""
    rates: list[float] = []
    groups: dict[tuple[str, bool], list[bool]] = {}
    for o in outcomes:
        if o.label in SHOULD_ANSWER:
            answered = o.kind_at(threshold) == "answered"
            should = SHOULD_ANSWER[o.label]
            groups.setdefault((o.dataset, should), []).append(answered == should)
    for hits in groups.values():
        rates.append(sum(hits) / len(hits))
    return rates


def choose_threshold(outcomes: Sequence[Outcome], grid: Sequence[float] = GRID) -> float:
    """The grid value maximising the mean of the four rates (the lowest such value on ties)."""
    best, best_score = grid[0], -1.0
    for t in grid:
        rates = _four_rates(outcomes, t)
        score = sum(rates) / len(rates) if rates else 0.0
        if score > best_score + 1e-12:
            best, best_score = t, score
    return best


def sweep(outcomes: Sequence[Outcome], *, splits: int = SPLITS, seed: int = 0) -> dict[str, Any]:
    """The threshold curve, the chosen threshold and the split-half check (module docstring)."""
    curve = []
    for t in GRID:
        row: dict[str, Any] = {"escalate_below": t}
        for dataset in sorted({o.dataset for o in outcomes}):
            s = summarise(
                [o for o in outcomes if o.dataset == dataset], lambda o, t=t: o.kind_at(t)
            )
            row[dataset] = [s["answerable_answered"], s["unanswerable_not_answered"]]
        curve.append(row)
    chosen = choose_threshold(outcomes)
    mtrag_convs = sorted({o.conversation for o in outcomes if o.dataset == "mtrag"})
    rng = random.Random(seed)
    held: list[tuple[float, float]] = []
    picks: list[float] = []
    for _ in range(splits if mtrag_convs else 0):
        half = set(rng.sample(mtrag_convs, len(mtrag_convs) // 2))
        train = [o for o in outcomes if o.dataset != "mtrag" or o.conversation in half]
        test = [o for o in outcomes if o.dataset == "mtrag" and o.conversation not in half]
        t = choose_threshold(train)
        picks.append(t)
        s = summarise(test, lambda o, t=t: o.kind_at(t))
        if s["answerable_answered"] is not None and s["unanswerable_not_answered"] is not None:
            held.append((s["answerable_answered"], s["unanswerable_not_answered"]))
    split_half = None
    if held:
        split_half = {
            "splits": len(held),
            "chosen_median": statistics.median(picks),
            "chosen_range": [min(picks), max(picks)],
            "heldout_answerable_answered": round(statistics.mean(a for a, _ in held), 4),
            "heldout_unanswerable_not_answered": round(statistics.mean(u for _, u in held), 4),
            "share_meeting_target": round(
                sum(1 for a, u in held if a >= TARGET and u >= TARGET) / len(held), 4
            ),
        }
    return {
        "columns": "per dataset: [answerable answered, unanswerable not answered]",
        "curve": curve,
        "chosen": chosen,
        "split_half": split_half,
    }


def report(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """The per-dataset (and, for MTRAG, per-collection) summaries."""
    out: dict[str, Any] = {}
    for dataset in sorted({o.dataset for o in outcomes}):
        group = [o for o in outcomes if o.dataset == dataset]
        section = summarise(group)
        collections = sorted({o.collection for o in group})
        if len(collections) > 1:
            section["by_collection"] = {
                c: summarise([o for o in group if o.collection == c]) for c in collections
            }
        section["handoff_reasons"] = dict(
            Counter(o.handoff_reason or "?" for o in group if o.handoff).most_common()
        )
        if dataset == "mtrag":
            rates = (section["answerable_answered"], section["unanswerable_not_answered"])
            section["target_met"] = all(r is not None and r >= TARGET for r in rates)
        out[dataset] = section
    return out


# ---------------------------------------------------------------------------- running


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    from evals.workspace import ensure_demo_tenant, ensure_kb_tenant
    from graph.graph import build_graph
    from graph.runtime import open_checkpointer, open_services
    from helpdesk import db
    from helpdesk.config import Settings
    from helpdesk.tenants import set_policy

    settings = Settings()
    tasks = mtrag.load_tasks(args.mtrag) if not args.skip_mtrag else []
    questions = load_questions(args.demo) if not args.skip_demo else []
    url = args.database_url
    throwaway = url is None
    if url is None:
        server = await asyncio.to_thread(db.server_url, settings)
        url = db.with_database(server, f"deskgraph_escalation_{uuid.uuid4().hex[:8]}")
        await asyncio.to_thread(db.ensure_database, url)
    started = time.perf_counter()
    try:
        async with open_services(settings, database_url=url) as services:
            graph = build_graph(services, await open_checkpointer(services))
            ingest_started = time.perf_counter()
            cases: dict[str, list[dict[str, Any]]] = {}
            tenants: dict[str, Any] = {}
            for collection, articles in mtrag.collection_articles(tasks).items():
                slug = mtrag.tenant_slug(collection)
                tenant, stats = await ensure_kb_tenant(
                    services, slug, f"MTRAG {collection}", articles
                )
                tenants[slug] = tenant
                policy = KB_ONLY_POLICY if args.mtrag_policy == "kb-only" else TenantPolicy()
                await set_policy(services.pool, tenant.id, policy)
                services.forget_tenant(slug)
                log.info("%s: %s", slug, stats)
            for t in tasks:
                cases.setdefault(t.tenant, []).append(
                    {
                        "dataset": "mtrag",
                        "id": t.task_id,
                        "conversation": t.conversation_id,
                        "collection": t.collection,
                        "label": t.answerability,
                        "item": t.item,
                    }
                )
            if questions:
                demo, stats = await ensure_demo_tenant(services)
                tenants[demo.slug] = demo
                log.info("demo: %s", stats)
                cases[demo.slug] = [
                    {
                        "dataset": "demo",
                        "id": q.id,
                        "label": "ANSWERABLE" if q.answerable else "UNANSWERABLE",
                        "item": q.question,
                    }
                    for q in questions
                ]
            ingest_s = time.perf_counter() - ingest_started
            outcomes: list[Outcome] = []
            latencies: list[float] = []
            for slug, group in cases.items():
                log.info("answering %d conversations of %s", len(group), slug)
                results = await answer_many(
                    graph, services, slug, [c["item"] for c in group], concurrency=args.concurrency
                )
                latencies += [r.latency_s for r in results]
                outcomes += [
                    outcome(c["dataset"], c, r) for c, r in zip(group, results, strict=True)
                ]
            default = TenantPolicy()
            doc: dict[str, Any] = {
                "config": {
                    "escalate_below": default.escalate_below,
                    "auto_send_above": default.auto_send_above,
                    "mtrag_policy": args.mtrag_policy,
                    "model_tier": services.models.tier,
                    "mtrag": str(args.mtrag) if tasks else None,
                    "demo": str(args.demo) if questions else None,
                    "concurrency": args.concurrency,
                },
                **report(outcomes),
                "latency_s": {
                    "p50": round(statistics.median(latencies), 3) if latencies else None,
                    "p95": (
                        round(sorted(latencies)[int(0.95 * (len(latencies) - 1))], 3)
                        if latencies
                        else None
                    ),
                },
                "ingest_s": round(ingest_s, 1),
            }
            if args.sweep:
                doc["sweep"] = sweep(outcomes)
            if args.items:
                with args.items.open("w", encoding="utf-8") as fh:
                    for o in outcomes:
                        fh.write(json.dumps({**o.__dict__, "kind": o.kind}) + "\n")
            if args.features:
                with args.features.open("w", encoding="utf-8") as fh:
                    for slug, group in cases.items():
                        for c in group:
                            row = await turn_signals(services, tenants[slug].id, c["item"])
                            fh.write(json.dumps({**_case_key(c), **row}) + "\n")
    finally:
        if throwaway:
            await asyncio.to_thread(db.drop_database, url)
    doc["elapsed_s"] = round(time.perf_counter() - started, 1)
    return doc


def _case_key(case: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "dataset": case["dataset"],
        "id": str(case["id"]),
        "conversation": str(case.get("conversation", case["id"])),
        "collection": str(case.get("collection", case["dataset"])),
        "label": case["label"],
    }


async def turn_signals(services: Any, tenant_id: Any, item: Any) -> dict[str, Any]:
    """The answerability signals of one case's last turn, as the draft node computes them
    (retrieval as the retrieve node does it), for ``answerability_fit.py``."""
    from langchain_core.messages import HumanMessage

    from evals.answering import history_messages, parse_item
    from graph import answerability
    from graph.nodes import retrieve

    question, turns = parse_item(item)
    messages = [*history_messages(turns), HumanMessage(content=question)]
    previous = retrieve.previous_question(messages)
    chunks = await retrieve.search(services, tenant_id, question, previous)
    turns_before = sum(isinstance(m, HumanMessage) for m in messages) - 1
    _, features, confidence = await answerability.assess(
        services, question, chunks, previous, turns_before
    )
    return {"signals": features, "confidence": confidence}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    doc = __doc__ or ""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--mtrag", type=Path, default=mtrag.DEFAULT_PATH, help="MTRAG JSONL file")
    p.add_argument("--demo", type=Path, default=DEMO_QUESTIONS, help="demo question set")
    p.add_argument("--skip-mtrag", action="store_true")
    p.add_argument("--skip-demo", action="store_true")
    p.add_argument("--mtrag-policy", choices=("default", "kb-only"), default="default")
    p.add_argument("--concurrency", type=int, default=2)
    p.add_argument("--sweep", action="store_true", help="add the threshold curve")
    p.add_argument("--items", type=Path, help="write each conversation's outcome here (JSONL)")
    p.add_argument(
        "--features",
        type=Path,
        help="write each case's answerability signals here (JSONL, for answerability_fit.py)",
    )
    p.add_argument(
        "--database-url",
        help="run in this existing database (kept) instead of a throwaway one",
    )
    args = p.parse_args(argv)
    if args.concurrency < 1:
        p.error("--concurrency must be at least 1")
    if args.skip_mtrag and args.skip_demo:
        p.error("nothing to run: both --skip-mtrag and --skip-demo")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print its JSON."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
    args = parse_args(argv)
    doc = asyncio.run(_run(args))
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
