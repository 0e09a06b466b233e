"""Safety detector benchmark: precision and recall of :func:`nlp.hazards.detect_hazard`.

Reads ``evals/datasets/safety_phrasings.jsonl`` (phrasings written for this project: reports
of danger, and look-alike questions about services; ``hazard`` null for the latter) and prints
one JSON document with, per split (``dev``: the rules were tuned on it; ``heldout``: written
with it, before the rules, and never tuned on), the binary precision / recall of "this is a
safety message", the share of true positives given the right hazard, and the rows it got wrong.

Usage: ``python evals/benchmarks/safety.py [--data FILE]``
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from nlp.hazards import detect_hazard  # noqa: E402

DATA = ROOT / "evals" / "datasets" / "safety_phrasings.jsonl"


def load(path: Path) -> list[dict[str, Any]]:
    """The labelled rows; a row without ``text`` or ``split`` stops the run, naming its line."""
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        if not isinstance(row.get("text"), str) or row.get("split") not in ("dev", "heldout"):
            raise ValueError(f"{path}:{n}: expected text and split dev|heldout, got {row}")
        rows.append(row)
    return rows


def score(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Precision, recall, hazard accuracy and the errors of ``rows``."""
    tp = fp = fn = right_hazard = 0
    errors = []
    for row in rows:
        alert = detect_hazard(row["text"])
        got = alert["hazard"] if alert else None
        want = row.get("hazard")
        if got and want:
            tp += 1
            right_hazard += got == want
            if got != want:
                errors.append({"id": row["id"], "text": row["text"], "want": want, "got": got})
        elif got or want:
            fp += bool(got)
            fn += bool(want)
            errors.append({"id": row["id"], "text": row["text"], "want": want, "got": got})
    return {
        "rows": len(rows),
        "safety": sum(1 for r in rows if r.get("hazard")),
        "precision": round(tp / (tp + fp), 3) if tp + fp else None,
        "recall": round(tp / (tp + fn), 3) if tp + fn else None,
        "hazard_accuracy": round(right_hazard / tp, 3) if tp else None,
        "errors": errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()
    rows = load(args.data)
    out = {split: score([r for r in rows if r["split"] == split]) for split in ("dev", "heldout")}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
