"""Questions one short article answers are answered at once, citing that article.

Issue 13 item 5: "what are your opening hours?" must not be held for review or declined when
the demo knowledge base has an article on exactly that. The phrasings are written for this test
(none is taken from the demo question set, which the answerability model is fitted on); each
names the articles a right answer may cite (at least one of them must be cited).
"""

from __future__ import annotations

import pytest

from evals.answering import answer_one

OBVIOUS = [
    ("What are your opening hours?", {"opening-hours"}),
    ("When are you open?", {"opening-hours"}),
    ("What are your business hours?", {"opening-hours"}),
    ("Are you open on Sundays?", {"opening-hours"}),
    ("What time does your office close on weekdays?", {"opening-hours"}),
    ("What's your phone number?", {"contact-us"}),
    ("How can I reach you?", {"contact-us"}),
    ("How do I get in touch with you?", {"contact-us"}),
    ("What number should I call?", {"contact-us"}),
    ("Can I send you an email?", {"contact-us"}),
    ("Where are you located?", {"contact-us", "about-brightwater"}),
    ("What is your street address?", {"contact-us", "about-brightwater"}),
    ("Do you accept American Express?", {"payment-methods"}),
    ("Which payment methods do you accept?", {"payment-methods"}),
    ("Can I pay with Apple Pay?", {"payment-methods"}),
    ("Do you take personal checks?", {"payment-methods"}),
    ("Which towns do you serve?", {"service-area"}),
    ("Are your plumbers licensed?", {"licensing-and-insurance"}),
    ("Do you have 24/7 emergency service?", {"emergency-service"}),
    ("Are your estimates free?", {"free-estimates"}),
    ("Do you offer financing?", {"financing"}),
    ("Is there a warranty on your labor?", {"labor-warranty"}),
]

_HELD = "best sentence scores 0.55-0.60: held"
_DECLINED = "best sentence under 0.50: declined"
NOT_YET: dict[str, pytest.MarkDecorator] = {
    question: pytest.mark.xfail(strict=True, reason=reason)
    for reason, questions in (
        (_HELD, ["Do you accept American Express?"]),
        (_DECLINED, ["Do you take personal checks?", "Do you offer financing?"]),
    )
    for question in questions
}
"""Phrasings the offline tier does not answer at once yet: the confidence is still the best
sentence's score, and no signal tried lifted these without costing held-out MTRAG turns
(docs/decisions/answerability-model.md). Strict: one that starts passing must be moved out.

The hours, contact and location phrasings that were here are answered from the demo tenant's
business profile (graph/facts.py), citing the article the profile names as its source; the
answerability score did not change for them."""


def test_there_are_at_least_twenty_phrasings():
    assert len(OBVIOUS) >= 20


@pytest.mark.integration
@pytest.mark.parametrize(
    ("question", "articles"),
    [
        pytest.param(q, a, marks=NOT_YET[q]) if q in NOT_YET else pytest.param(q, a)
        for q, a in OBVIOUS
    ],
)
async def test_obvious_question_is_answered_citing_its_article(
    graph, services, demo, question, articles
):
    r = await answer_one(graph, services, demo, question)
    assert not r.handoff and not r.declined, r
    assert not r.held_for_review, f"held for review at confidence {r.confidence}"
    assert articles & set(r.citations), r.citations
