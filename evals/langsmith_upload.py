"""Upload an eval run to LangSmith as an experiment, only when ``LANGSMITH_API_KEY`` is set.

Without the key nothing is imported, constructed or sent: :func:`upload_run` returns
``"skipped"``. With it, the run becomes:

* a dataset ``deskgraph-<suite>-<dataset>`` (created on first upload; an example per dataset
  row, matched on the row id kept in the example's metadata, so later runs of the same suite
  and dataset add no duplicates),
* an experiment (a LangSmith project that references the dataset) named after the run id,
  with the run's metrics, commit and configuration as metadata,
* one run per example with its input and output, linked to its dataset example, and one
  feedback per per-example metric (plus ``score`` and ``ok``), which is what LangSmith's
  experiment view compares.

``LANGSMITH_ENDPOINT`` is honoured by the LangSmith client itself (self-hosted LangSmith).
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from evals.core import RunRecord, finite, slug

log = logging.getLogger(__name__)

SKIPPED = "skipped"
ClientFactory = Callable[[str], Any]


def _default_client(api_key: str) -> Any:
    from langsmith import Client

    return Client(api_key=api_key)


def dataset_name(record: RunRecord) -> str:
    """The LangSmith dataset a run's examples belong to."""
    return f"deskgraph-{record.suite}-{slug(str(record.dataset.get('name', 'dataset')))}"


def _as_inputs(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {"input": value}


def _ensure_examples(client: Any, name: str, record: RunRecord) -> tuple[Any, dict[str, Any]]:
    if client.has_dataset(dataset_name=name):
        dataset = client.read_dataset(dataset_name=name)
    else:
        dataset = client.create_dataset(
            name, description=f"deskgraph {record.suite} eval: {record.dataset.get('name', '')}"
        )
    known: dict[str, Any] = {}
    for ex in client.list_examples(dataset_id=dataset.id):
        row_id = (ex.metadata or {}).get("row_id")
        if row_id is not None:
            known[str(row_id)] = ex.id
    missing = [e for e in record.examples if str(e["id"]) not in known]
    if missing:
        ids = [uuid.uuid4() for _ in missing]
        client.create_examples(
            dataset_id=dataset.id,
            examples=[
                {
                    "id": ex_id,
                    "inputs": _as_inputs(e.get("input")),
                    "reference_outputs": {"expected": e.get("expected")},
                    "metadata": {"row_id": str(e["id"])},
                }
                for ex_id, e in zip(ids, missing, strict=True)
            ],
        )
        known.update({str(e["id"]): ex_id for ex_id, e in zip(ids, missing, strict=True)})
    return dataset, known


def upload_run(
    record: RunRecord,
    *,
    api_key: str | None = None,
    client_factory: ClientFactory | None = None,
    environ: Mapping[str, str] | None = None,
) -> str:
    """Upload ``record`` as a LangSmith experiment; return its name, or ``"skipped"``.

    Args:
        record: the finished run.
        api_key: the LangSmith key; defaults to ``LANGSMITH_API_KEY`` from ``environ``.
        client_factory: builds the client from the key (tests pass a recorder).
        environ: where to read the key (defaults to the process environment).

    Returns:
        ``"skipped"`` when there is no key (nothing was constructed or sent), else the
        experiment's name.
    """
    env = os.environ if environ is None else environ
    key = api_key or env.get("LANGSMITH_API_KEY", "").strip()
    if not key:
        return SKIPPED
    client = (client_factory or _default_client)(key)
    name = dataset_name(record)
    dataset, example_ids = _ensure_examples(client, name, record)
    project = client.create_project(
        record.run_id,
        reference_dataset_id=dataset.id,
        description=f"deskgraph {record.suite} eval run",
        metadata={
            "suite": record.suite,
            "git_commit": record.git_commit,
            "model_tier": record.model_tier,
            "config": record.config,
            "metrics": record.metrics,
        },
    )
    started = _parse_time(record.started_at)
    feedback: list[tuple[uuid.UUID, str, float]] = []
    for ex in record.examples:
        run_id = uuid.uuid4()
        latency = finite((ex.get("meta") or {}).get("latency_s")) or 0.0
        client.create_run(
            name=f"{record.suite}:{ex['id']}",
            inputs=_as_inputs(ex.get("input")),
            run_type="chain",
            project_name=record.run_id,
            id=run_id,
            outputs={"output": ex.get("output"), "contexts": ex.get("contexts") or []},
            reference_example_id=example_ids[str(ex["id"])],
            start_time=started,
            end_time=started + timedelta(seconds=latency),
        )
        scores: dict[str, Any] = {**(ex.get("metrics") or {}), "score": ex.get("score")}
        if ex.get("ok") is not None:
            scores["ok"] = 1.0 if ex["ok"] else 0.0
        for metric, raw in scores.items():
            value = finite(raw)
            if value is not None:
                feedback.append((run_id, metric, value))
    # Runs are sent in the background; feedback on a run LangSmith has not received yet can be
    # refused, so the runs are flushed first.
    if hasattr(client, "flush"):
        client.flush()
    for run_id, metric, value in feedback:
        client.create_feedback(run_id, key=metric, score=value)
    client.update_project(project.id, end_time=_parse_time(record.finished_at))
    log.info("uploaded %s to LangSmith dataset %s", record.run_id, name)
    return str(record.run_id)


def _parse_time(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return datetime.now(UTC)
