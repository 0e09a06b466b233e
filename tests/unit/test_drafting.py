"""Drafting rules that need no database: the yes/no lead, one sentence once, the rejected
sentences left out, and a quoted threshold that is not a price promise (issue 19, items 8,
10, 11)."""

from __future__ import annotations

from graph import money
from graph.nodes.draft import _extractive_draft, _Sentence, extractive_answer
from graph.nodes.judge import policy_findings
from graph.state import Draft
from helpdesk.policy import TenantPolicy
from kb_pipeline.index import Retrieved
from nlp import yes_no
from nlp.text import Unit, sentences, units

TOWNS = (
    "We serve homes in Millbrook and six neighboring towns. If your address is in one of "
    "these ZIP codes, we can come to you:\n\n| Town | ZIP code(s) |\n| --- | --- |\n"
    "| Millbrook | 56310 |\n| Pine Ridge | 56314 |\n| Fenwick | 56325 |\n"
)
HOLIDAYS = "The office is closed on these holidays:\n\n- Labor Day\n- Thanksgiving Day\n"


def _chunk(text: str, source: str = "service-area") -> Retrieved:
    return Retrieved(
        chunk_id=source,
        article_id=source,
        source_id=source,
        title=source,
        section="",
        text=text,
        score=1.0,
        url=None,
    )


def test_yes_no_lead_only_where_a_positive_list_settles_it() -> None:
    assert yes_no.lead("Do you serve Oakdale?", [TOWNS]) == "No"
    assert yes_no.lead("do you serve Pine Ridge?", [TOWNS]) == "Yes"
    # a name the text mentions outside the list is not a no
    assert yes_no.lead("Do you serve Oakdale?", [TOWNS + "\nOakdale is next door."]) is None
    # the list is about something else than the question asks (no shared word)
    assert yes_no.lead("Do you repair Oakdale boilers?", [TOWNS]) is None
    # a negated list: "closed on these holidays" never makes "open on Labor Day" a yes
    assert yes_no.lead("Are you open on Labor Day?", [HOLIDAYS]) is None
    assert yes_no.lead("Is the office closed on Labor Day?", [HOLIDAYS]) is None
    # not a yes/no question, or no single name
    assert yes_no.lead("Which towns do you serve besides Oakdale?", [TOWNS]) is None
    assert yes_no.lead("Do you serve Oakdale or Fenwick?", [TOWNS]) is None
    assert yes_no.lead("Do you serve my town?", [TOWNS]) is None


def _s(text: str, relevance: float, position: int) -> _Sentence:
    return _Sentence(text, 0, position, relevance, relevance)


def test_an_answer_says_each_sentence_once() -> None:
    scored = [_s("We serve Millbrook.", 0.8, 0), _s("We serve Millbrook", 0.8, 5)]
    text, cited = extractive_answer([_chunk(TOWNS)], scored)
    assert text == "We serve Millbrook. [service-area]" and cited == ["service-area"]


def test_relevance_to_the_question_chooses_not_the_context() -> None:
    # in context the carried-over sentence scores best; on its own question it does not count
    scored = [
        _Sentence("Water heater replacement: 3-5 hours.", 0, 0, 0.57, 0.23),
        _Sentence("Book a visit if it still isn't cooling.", 0, 1, 0.65, 0.65),
    ]
    text, _ = extractive_answer([_chunk("x", "ac")], scored)
    assert text == "Book a visit if it still isn't cooling. [ac]"


def test_a_redraft_leaves_out_the_rejected_sentences_or_gives_up() -> None:
    chunks = [_chunk(TOWNS)]
    scored = [_s("We serve Millbrook.", 0.8, 0), _s("There is no travel fee.", 0.6, 1)]
    rejected = ["We serve Millbrook. [service-area]"]
    redraft = _extractive_draft("Do you charge travel?", chunks, scored, 0.8, rejected, 0.5)
    assert redraft is not None and redraft["text"] == "There is no travel fee. [service-area]"
    # nothing left that is relevant enough: None, and the node hands off
    assert _extractive_draft("q?", chunks, scored, 0.8, rejected, 0.7) is None
    both = [*rejected, "There is no travel fee. [service-area]"]
    assert _extractive_draft("q?", chunks, scored, 0.8, both, 0.5) is None


def _findings(text: str, kb: str) -> tuple[list[str], list[str]]:
    draft = Draft(text=text, citations=[], confidence=0.9, declined=False)
    return policy_findings(draft, [_chunk(kb, "financing")], TenantPolicy(max_price_promise=500))


def test_a_quoted_threshold_is_not_a_price_promise_but_a_price_range_is() -> None:
    kb = (
        "Through our partner you can spread the cost of any job of $1,000 or more. "
        "Financing can't be used for jobs under $1,000. AC recharge: $250–$450. "
        "Electric water heater, installed: $1,400–$2,100. "
        "Water heater replacement: $1,400."
    )
    cite = " [financing]"
    for quoted in (
        "You can spread the cost of any job of $1,000 or more.",
        "Financing can't be used for jobs under $1,000.",
        "AC recharge: $250–$450.",
    ):
        violations, review = _findings(quoted + cite, kb)
        assert violations == [] and review == [], quoted
    # a single price above the limit is still held, quoted from the KB or not
    _, review = _findings("Water heater replacement: $1,400." + cite, kb)
    assert review == ["price_above_limit: $1,400.00 > $500.00"]
    # a price range quoted from the price list is what the job will cost: above the limit, held
    _, review = _findings("Electric water heater, installed: $1,400–$2,100." + cite, kb)
    assert review == [
        "price_above_limit: $1,400.00 > $500.00",
        "price_above_limit: $2,100.00 > $500.00",
    ]
    # a bound the knowledge base does not state as a bound is not "quoted"
    _, review = _findings("Jobs of $1,400 or more are financed." + cite, kb)
    assert review == ["price_above_limit: $1,400.00 > $500.00"]


def test_amounts_in_euros_and_pounds_are_checked_as_dollars_are() -> None:
    kb = "Boiler service: €120. Jobs of 1.000 EUR or more can be financed. Call-out: £89."
    cite = " [financing]"
    # a price the knowledge base does not give is refused, whatever the currency
    violations, _ = _findings("A new boiler is €500, installed." + cite, kb)
    assert violations == ["ungrounded_amount: €500 is not in the knowledge base"]
    violations, _ = _findings("That costs 450 euros." + cite, kb)
    assert violations == ["ungrounded_amount: 450 euros is not in the knowledge base"]
    assert _findings("Boiler service: €120. Call-out: £89." + cite, kb) == ([], [])
    # above the limit: held, named in the currency it was quoted in
    _, review = _findings("Installed: €1,400." + cite, "Installed: 1,400 €.")
    assert review == ["price_above_limit: €1,400.00 > €500.00"]
    assert money.amounts("€1,400, 89,50 €, EUR 12, CA$ 45.5, 300 dollars") == [
        1400.0, 89.5, 12.0, 45.5, 300.0,
    ]  # fmt: skip
    assert money.amounts("3 plumbers, 1,400 customers, version 2.50, 4.5 stars") == []


HOURS = (
    "Our office answers the phone during these hours:\n\n- Monday to Friday: 7:30 am – 6:00 pm\n"
    "- Sunday: closed\n\nEmails are answered the next day.\n\n**Saturday**\n\n- 8:00 am – 2:00 pm\n"
)


def test_list_items_know_their_list_and_what_introduces_it() -> None:
    lead = "Our office answers the phone during these hours:"
    assert units(HOURS) == [
        Unit(lead),
        Unit("Monday to Friday: 7:30 am – 6:00 pm", 1, lead),
        Unit("Sunday: closed", 1, lead),
        Unit("Emails are answered the next day."),
        # a bold-only line is a heading: the lead of the list under it, not a sentence
        Unit("8:00 am – 2:00 pm", 2, "Saturday:"),
    ]
    assert "Saturday" not in sentences(HOURS)


def _item(text: str, relevance: float, position: int, *, by_lead: bool) -> _Sentence:
    lead = "Our office answers the phone during these hours:"
    return _Sentence(text, 0, position, relevance, relevance, 1, lead, by_lead)


def test_an_item_relevant_through_its_lead_brings_the_whole_list() -> None:
    scored = [
        _item("Sunday: closed", 0.7, 2, by_lead=True),
        _item("Monday to Friday: 7:30 am – 6:00 pm", 0.68, 1, by_lead=True),
        _s("Emails are answered the next day.", 0.3, 3),
    ]
    text, _ = extractive_answer([_chunk(HOURS, "opening-hours")], scored)
    assert text == (
        "Our office answers the phone during these hours:\n"
        "- Monday to Friday: 7:30 am – 6:00 pm\n- Sunday: closed [opening-hours]"
    )


def test_an_item_relevant_on_its_own_is_said_alone() -> None:
    scored = [_item("Sunday: closed", 0.7, 2, by_lead=False), _s("Emails are late.", 0.2, 3)]
    text, _ = extractive_answer([_chunk(HOURS, "opening-hours")], scored)
    assert text == "Sunday: closed. [opening-hours]"
