"""What every suite's run records the same way: the models it used and the rows it kept."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from graph.services import Services


def model_info(services: Services) -> dict[str, Any]:
    """Which models a run used (for the record's configuration)."""
    models = services.models

    def name(model: Any) -> str | None:
        if model is None:
            return None
        return str(getattr(model, "model_name", None) or getattr(model, "model", None) or model)

    return {
        "embeddings": models.embedding_key,
        "chat": name(models.chat),
        "judge": name(models.judge),
    }


def limit_rows(rows: Sequence[Any], limit: int | None) -> list[Any]:
    """The first ``limit`` rows (``--limit``), or all of them when ``limit`` is None.

    Raises:
        ValueError: ``limit`` is below 1.
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    return list(rows[:limit] if limit else rows)
