"""``deskgraph demo load`` (what ``make run`` runs) creates the demo admin and agent and writes
their sign-in to ``demo.json``; a second run keeps the same passwords, which still sign in."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cli.main import app
from helpdesk.config import get_settings
from tests.support.staff import sign_in

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_demo_load_writes_the_demo_staff_and_keeps_them(
    cli_database, demo, live_api, tmp_path, monkeypatch
):
    monkeypatch.setenv("DESKGRAPH_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DESKGRAPH_SECRET_KEY", "a-test-secret-of-enough-length")
    get_settings.cache_clear()
    first = CliRunner().invoke(app, ["demo", "load"], catch_exceptions=False)
    assert first.exit_code == 0, first.output
    written = json.loads((tmp_path / "demo.json").read_text())
    assert (tmp_path / "demo.json").stat().st_mode & 0o077 == 0  # it holds passwords
    staff = written["users"]
    assert {staff["admin"]["role"], staff["agent"]["role"]} == {"admin", "agent"}
    assert written["agent_key"].startswith("ak_")

    second = CliRunner().invoke(app, ["demo", "load"], catch_exceptions=False)
    assert second.exit_code == 0, second.output
    assert json.loads((tmp_path / "demo.json").read_text()) == written

    with live_api.client() as client:
        for role in ("admin", "agent"):
            r = sign_in(client, "demo", staff[role]["email"], staff[role]["password"])
            assert r.status_code == 200 and r.json()["user"]["role"] == role
