"""docs/metrics.md shows the metrics as the code computes them."""

from __future__ import annotations

from helpdesk import metrics
from tests.support.paths import ROOT

DOC = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")


def test_the_docs_show_every_metric_with_its_sql():
    assert metrics.markdown() in DOC


def test_the_docs_show_the_facts_query_and_flags_as_they_are():
    assert metrics.SOURCE_FACTS_SQL.strip() in DOC
    assert metrics.FACTS_SQL.strip() in DOC
    assert metrics.FLAGS_SQL.strip() in DOC


def test_every_breakdown_and_metric_name_is_a_plain_sql_identifier():
    # they are interpolated into SQL: only names from these tables ever are
    for name in [*metrics.METRICS, *metrics.DIMENSIONS]:
        assert name.isidentifier() and name.islower(), name


def test_the_docs_show_every_ticket_metric_and_the_ticket_facts():
    from helpdesk import ticket_metrics

    assert ticket_metrics.markdown() in DOC
    assert ticket_metrics.TICKET_FACTS_SQL.strip() in DOC
    for name in [*ticket_metrics.TICKET_METRICS, *ticket_metrics.TICKET_DIMENSIONS]:
        assert name.isidentifier() and name.islower(), name


def test_the_docs_show_the_sla_compliance_query_as_it_is():
    from helpdesk import sla

    assert sla.COMPLIANCE_SQL.strip() in DOC
