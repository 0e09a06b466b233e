"""The business profile over HTTP: admin read and edit, versions, conflicts, the widget's view."""

from __future__ import annotations

import pytest

from tests.support.live_api import bearer, sse_turn, start_conversation

pytestmark = pytest.mark.integration


def test_admin_reads_the_demo_profile_and_an_agent_may_not(live_api):
    with live_api.client() as client:
        r = client.get("/v1/admin/profile", headers=bearer(live_api.demo.admin_key))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["version"] >= 1
        assert body["profile"]["display_name"] == "Brightwater Home Services"
        assert body["profile"]["timezone"] == "America/Chicago"
        refused = client.get("/v1/admin/profile", headers=bearer(live_api.demo.agent_key))
        assert refused.status_code == 403 and refused.json()["code"] == "forbidden"


def test_edit_patch_conflict_and_bad_values_on_another_tenant(live_api):
    admin = bearer(live_api.other.admin_key)
    with live_api.client() as client:
        start = client.get("/v1/admin/profile", headers=admin).json()
        version = start["version"]
        profile = {**start["profile"], "display_name": "Other Plumbing Co", "short_name": "Other"}
        saved = client.put(
            "/v1/admin/profile",
            json={"profile": profile, "based_on_version": version},
            headers=admin,
        )
        assert saved.status_code == 200, saved.text
        assert saved.json()["version"] == version + 1

        # an editor who started from the old version loses, and nothing is saved
        stale = client.patch(
            "/v1/admin/profile",
            json={"set": {"contact.phone": "555-0199"}, "based_on_version": version},
            headers=admin,
        )
        assert stale.status_code == 409 and stale.json()["code"] == "version_conflict"

        bad = client.patch(
            "/v1/admin/profile",
            json={
                "set": {"timezone": "Moon/Tranquility", "contact.phone": "555-0199"},
                "based_on_version": version + 1,
            },
            headers=admin,
        )
        assert bad.status_code == 422 and bad.json()["code"] == "invalid_profile"
        assert "timezone" in bad.json()["message"]
        now = client.get("/v1/admin/profile", headers=admin).json()
        assert now["version"] == version + 1 and now["profile"]["contact"]["phone"] is None

        good = client.patch(
            "/v1/admin/profile",
            json={"set": {"contact.phone": "555-0199"}, "based_on_version": version + 1},
            headers=admin,
        )
        assert good.status_code == 200 and good.json()["profile"]["contact"]["phone"] == "555-0199"
        versions = client.get("/v1/admin/profile/versions", headers=admin).json()
        assert [v["version"] for v in versions[:2]] == [version + 2, version + 1]
        assert versions[0]["saved_by"]

        # the widget and the assistant speak with the new name, never the demo's
        widget = client.get("/v1/widget", headers={"X-Widget-Key": live_api.other.widget_key})
        assert widget.status_code == 200
        assert widget.json()["greeting"].startswith("Hi! I'm Other's virtual assistant")
        conv = start_conversation(client, live_api.other.widget_key)
        events = dict(sse_turn(client, conv, "hello"))
        text = events["message.completed"]["text"]
        assert "Other's virtual assistant" in text and "Brightwater" not in text


def test_a_body_that_is_not_a_profile_is_refused(live_api):
    admin = bearer(live_api.other.admin_key)
    with live_api.client() as client:
        r = client.put("/v1/admin/profile", json={"profile": {"display_name": ""}}, headers=admin)
        assert r.status_code == 422 and r.json()["code"] == "invalid_request"
        r = client.put(
            "/v1/admin/profile",
            json={
                "profile": {"display_name": "X", "hours": {"monday": "all day"}},
                "based_on_version": 0,
            },
            headers=admin,
        )
        assert r.status_code == 422 and r.json()["code"] == "invalid_profile"
        assert "hours.monday" in r.json()["message"]
