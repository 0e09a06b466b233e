"""Customers in danger (issue 19, item 1) without a model or a database: detecting a hazard,
the labelled phrasings, and sentence splitting that does not cut a quoted title."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evals.benchmarks.safety import DATA, load, score
from nlp.hazards import detect_hazard
from nlp.text import sentences
from tests.support.safety import SAFETY_PHRASINGS

# --- detection (no model, nothing started) ------------------------------------------------


@pytest.mark.parametrize(("text", "hazard"), SAFETY_PHRASINGS)
def test_reports_of_danger_are_recognised(text: str, hazard: str) -> None:
    alert = detect_hazard(text)
    assert alert is not None and alert["hazard"] == hazard


@pytest.mark.parametrize(
    "text",
    [
        "how much is a gas line repair?",
        "do you install CO detectors?",
        "what's your flood warranty?",
        "do you fix burst pipes?",
        "is there a charge for gas leak repairs after the utility has been?",
        "my furnace is not heating, no gas smell though",
        "I don't smell gas but the burner won't light",
        "how often should I test my carbon monoxide alarm?",
        "How much is your call-out fee?",
    ],
)
def test_look_alike_questions_are_not_emergencies(text: str) -> None:
    assert detect_hazard(text) is None


def test_labelled_phrasings_dev_exact_and_heldout_within_bounds() -> None:
    rows = load(DATA)
    dev = score([r for r in rows if r["split"] == "dev"])
    assert (dev["precision"], dev["recall"], dev["hazard_accuracy"]) == (1.0, 1.0, 1.0), dev
    held = score([r for r in rows if r["split"] == "heldout"])
    assert held["rows"] >= 40 and held["recall"] >= 0.9 and held["precision"] >= 0.9, held


# --- sentence splitting --------------------------------------------------------------------


def test_a_question_mark_inside_a_quoted_title_ends_no_sentence() -> None:
    text = 'If you smell gas, stop and follow "Smell gas? What to do". Then call us.'
    assert sentences(text) == [
        'If you smell gas, stop and follow "Smell gas? What to do".',
        "Then call us.",
    ]
    assert sentences("See \u201cSmell gas? What to do\u201d for details. Ok.") == [
        "See \u201cSmell gas? What to do\u201d for details.",
        "Ok.",
    ]


def test_sentences_end_after_a_closing_quote_but_not_after_abbreviations() -> None:
    assert sentences('He said "Stop." Then he left.') == ['He said "Stop."', "Then he left."]
    assert sentences("Tell dispatch (ext. 240) now. Use a plunger, e.g. A flanged one.") == [
        "Tell dispatch (ext. 240) now.",
        "Use a plunger, e.g. A flanged one.",
    ]
    assert sentences("Is it open? No. We close at 5.") == ["Is it open?", "No.", "We close at 5."]


def test_dataset_rows_are_well_formed() -> None:
    for line in Path(DATA).read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        assert set(row) == {"id", "text", "hazard", "split"}
