"""Ingestion jobs' contract without a database: every failure code a job can end with is
documented in ``docs/ingestion.md``, and job options are validated."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from helpdesk.policy import TenantPolicy
from kb_pipeline.jobs import JobOptions
from tests.support.paths import ROOT


def test_every_job_failure_code_is_documented() -> None:
    from kb_pipeline import jobs

    package = Path(jobs.__file__).parent
    source = "\n".join(f.read_text(encoding="utf-8") for f in sorted(package.glob("*.py")))
    used = set(re.findall(r'_JobFailed\(\s*"([a-z_]+)"', source))
    used |= set(re.findall(r'job_id,\s*"([a-z_]+)",', source))  # _fail(pool, tenant, job, code
    used |= {"worker_lost"}
    assert used <= set(jobs.JOB_FAILURE_CODES), used - set(jobs.JOB_FAILURE_CODES)
    doc = ROOT / "docs" / "ingestion.md"
    documented = doc.read_text(encoding="utf-8")
    assert all(f"`{code}`" in documented for code in jobs.JOB_FAILURE_CODES)


def test_job_options_validate() -> None:
    with pytest.raises(ValueError, match="overlap"):
        JobOptions(max_tokens=32, overlap=32)
    with pytest.raises(ValueError):
        JobOptions(max_tokens=8)
    with pytest.raises(ValueError):
        JobOptions.model_validate({"visibility": "public"})
    # An inherited overlap that does not fit a small chunk size is scaled down, not an error.
    assert JobOptions(max_tokens=40).chunking(TenantPolicy()) == (40, 5)
    assert JobOptions().chunking(TenantPolicy(chunk_max_tokens=200, chunk_overlap=10)) == (200, 10)
