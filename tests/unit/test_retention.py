"""A tenant's retention setting is validated: a positive whole number of days."""

from __future__ import annotations

import pytest

from helpdesk.policy import TenantPolicy


def test_retention_days_must_be_a_positive_whole_number_of_days() -> None:
    for bad in (0, -3, 1.5, "soon"):
        with pytest.raises(ValueError):
            TenantPolicy(retention_days=bad)  # type: ignore[arg-type]
