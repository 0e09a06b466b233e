"""The answerability signals and model (graph/answerability.py) and the heading that states a
fact (graph/nodes/draft.py), on hand-made chunks: nothing started."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from graph.answerability import FEATURES, Model, signals, stems
from graph.nodes.draft import chunk_units, heading_fact
from kb_pipeline.index import Retrieved


@dataclass(frozen=True)
class _S:
    text: str
    chunk: int
    score: float
    relevance: float


def _chunk(article: str, text: str, section: str = "", score: float = 1.0) -> Retrieved:
    return Retrieved(
        chunk_id=f"{article}-0",
        article_id=article,
        source_id=article,
        title=article.replace("-", " ").title(),
        section=section or article,
        text=text,
        score=score,
    )


def test_stems_meet_across_word_forms():
    assert stems("opening hours") == stems("open hour")


def test_signals_read_entities_types_margins_and_agreement():
    chunks = [
        _chunk("hours", "We open Monday to Friday at 7:30 am.", "Hours > Office", 1.0),
        _chunk("prices", "A call-out costs $89.", "Prices", 0.4),
    ]
    scored = [_S("We open Monday to Friday at 7:30 am.", 0, 0.7, 0.7), _S("x", 1, 0.3, 0.3)]
    s = signals("When do you open on Monday?", "", chunks, scored, [0.6, 0.1], 0.8, 0.75, 2)
    assert set(s) == set(FEATURES)
    assert s["best"] == 0.7 and s["best_headed"] == 0.8 and s["best_subheaded"] == 0.75
    assert s["article_margin"] == pytest.approx(0.4)
    assert s["has_entities"] == 1.0 and s["entity_coverage"] == 1.0  # "monday" is there
    assert s["type_missing"] == 0.0  # a "when" question, and the text has a time
    assert s["sides_agree"] == 1.0 and s["rank_of_best"] == 0.0
    assert s["fused_margin"] == pytest.approx(0.6)
    assert s["heading_match"] == 0.6 and s["has_previous"] == 0.0
    words = [_chunk("hours", "We are open on weekdays.")]
    missing = signals("How much is Sunday service?", "", words, scored[:1], [0.2], 0.5, 0.5, 0)
    assert missing["type_missing"] == 1.0  # no amount in the text
    assert missing["entity_coverage"] == 0.0  # no "Sunday" either


def test_signals_without_chunks_are_all_low():
    s = signals("anything at all?", "before", [], [], [], 0.0, 0.0, 1)
    assert s["best"] == 0.0 and s["type_missing"] == 1.0 and s["has_previous"] == 1.0


def test_model_is_a_probability_and_round_trips():
    n = len(FEATURES)
    m = Model(np.zeros(n), np.ones(n), np.eye(n)[0] * 4.0, -2.0)
    assert m.probability({"best": 0.5}) == pytest.approx(0.5)
    assert m.probability({"best": 1.0}) > 0.8 > 0.2 > m.probability({"best": 0.0})
    assert Model.from_json(m.to_json()).probability({"best": 0.9}) == m.probability({"best": 0.9})
    with pytest.raises(ValueError):
        Model.from_json({**m.to_json(), "features": ["best"]})


def test_a_heading_that_states_a_fact_is_a_sentence_of_its_chunk():
    phone = _chunk(
        "contact-us", "One number for everything.", "How to contact us > Phone: 555-0142"
    )
    assert heading_fact(phone) == "Phone: 555-0142"
    assert chunk_units(phone)[0].text == "Phone: 555-0142"
    topic = _chunk("contact-us", "We reply within a day.", "How to contact us > Text messages")
    assert heading_fact(topic) is None
    assert heading_fact(_chunk("faq", "Plain passage.", "Some title: with a colon")) is None
