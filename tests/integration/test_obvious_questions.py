"""Questions one short article answers are answered at once, citing that article.

Issue 13 item 5: "what are your opening hours?" must not be held for review or declined when
the demo knowledge base has an article on exactly that. The phrasings are written for this test
(none is taken from the demo question set, which the answerability model is fitted on); each
names the articles a right answer may cite (at least one of them must be cited).
"""

from __future__ import annotations

import pytest

from evals.answering import answer_many

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


@pytest.mark.integration
async def test_obvious_questions_are_answered_citing_their_article(graph, services, demo):
    results = await answer_many(graph, services, demo, [q for q, _ in OBVIOUS], concurrency=2)
    wrong = []
    for (question, articles), r in zip(OBVIOUS, results, strict=True):
        ok = (
            not r.handoff
            and not r.declined
            and not r.held_for_review
            and bool(articles & set(r.citations))
        )
        if not ok:
            wrong.append(
                f"{question!r}: handoff={r.handoff} declined={r.declined} "
                f"held={r.held_for_review} cites={r.citations} confidence={r.confidence}"
            )
    assert len(OBVIOUS) >= 20
    assert not wrong, "\n".join(wrong)
