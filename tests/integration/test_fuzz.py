"""Schemathesis over the live OpenAPI schema: generated requests never get a 5xx, and every
4xx is the JSON error body ``{"code", "message"}``.

Requests carry real credentials chosen per route (widget key, a customer token with its own
conversation, an agent or admin key), so the fuzzer gets past authentication and reaches the
routes' validation and logic. Both valid (positive) and invalid (negative) requests are
generated, a bounded number per operation. The SSE subscriptions, which never end by design,
are left out.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from api.app import create_app
from tests.support.live_api import bearer, start_conversation

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EXAMPLES = 10


def _cases() -> list[tuple[str, GenerationMode]]:
    """(operation, mode) pairs; invalid requests only for operations that take any input."""
    # The schema of an app that is never started: no database, just the routes.
    paths = create_app().openapi()["paths"]
    out = []
    for path, item in paths.items():
        if path.endswith("/events"):
            continue
        for method, op in item.items():
            label = f"{method.upper()} {path}"
            out.append((label, GenerationMode.POSITIVE))
            if op.get("parameters") or op.get("requestBody") or op.get("security"):
                out.append((label, GenerationMode.NEGATIVE))
    return out


@pytest.fixture(scope="module")
def live_schema(live_api: Any) -> Any:
    return schemathesis.openapi.from_url(f"{live_api.base_url}/openapi.json")


@pytest.fixture(scope="module")
def fuzz_conversation(live_api: Any) -> dict[str, Any]:
    with httpx.Client(base_url=live_api.base_url, timeout=60) as client:
        return start_conversation(client, live_api.demo.widget_key)


def _credentials(case: Any, live_api: Any, conv: dict[str, Any]) -> dict[str, str]:
    path: str = case.path
    if path.startswith(("/v1/agent", "/v1/kb/drafts", "/v1/tickets")):
        return bearer(live_api.demo.agent_key)
    if path.startswith(("/v1/kb/ingest", "/v1/kb/jobs", "/v1/admin", "/v1/metrics")):
        return bearer(live_api.demo.admin_key)
    if path in ("/v1/kb/search", "/v1/conversations"):
        return {"X-Widget-Key": live_api.demo.widget_key}
    if path.startswith("/v1/conversations/"):
        # Mostly the fuzzer's own conversation, to reach the route's logic; a quarter of the
        # generated ids are kept, to exercise unknown and foreign conversations too.
        params = dict(case.path_parameters or {})
        generated = params.get("conversation_id")
        if not (isinstance(generated, str) and generated[:1] in "0123"):
            params["conversation_id"] = conv["id"]
            case.path_parameters = params
        return bearer(conv["customer_token"])
    return {}


@pytest.mark.parametrize(("label", "mode"), _cases())
def test_generated_requests_never_get_a_server_error(
    label: str, mode: GenerationMode, live_schema: Any, live_api: Any, fuzz_conversation: Any
) -> None:
    operation = live_schema.find_operation_by_label(label)
    assert operation is not None, f"{label} is not in the live schema"

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        headers = {**(case.headers or {}), **_credentials(case, live_api, fuzz_conversation)}
        response = case.call(headers=headers, timeout=60)
        assert response.status_code < 500, (
            f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:500]}"
        )
        if response.status_code >= 400:
            body = response.json()
            assert isinstance(body, dict) and body.get("code") and body.get("message"), body

    run()


# ------------------------------------------------------------------------------ hostile text
# Every text field of every route (read from the app's own OpenAPI schema, so a new route or
# field is covered without touching this test) gets NUL, a lone surrogate and a control
# character, which are refused with 422 invalid_input, and right-to-left text with bidi marks,
# which is accepted. No 5xx, every answer documented, and a refused agent action changes
# nothing.

REFUSED = {"nul": "a\x00b", "surrogate": "a\ud800b", "control": "a\x1b[31mb"}
ACCEPTED_RTL = "مرحبا \u200fשלום\u202e"


def _schema_of(spec: dict[str, Any], schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The object schemas a body schema stands for (a ``$ref``, or each of an ``anyOf``)."""
    if "$ref" in schema:
        return [spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]]
    return [s for option in schema.get("anyOf", []) for s in _schema_of(spec, option)]


def _is_text(schema: dict[str, Any] | bool) -> bool:
    if not isinstance(schema, dict):  # `true`: any JSON (a free-form object's values)
        return False
    options = schema.get("anyOf", [schema])
    return any(o.get("type") == "string" and "enum" not in o and "format" not in o for o in options)


def _hostile_bodies(spec: dict[str, Any], op: dict[str, Any], value: str) -> list[tuple[str, Any]]:
    """(field, body) pairs: an example body with ``value`` in one text field (or dict key)."""
    content = (op.get("requestBody") or {}).get("content", {}).get("application/json")
    if content is None:
        return []
    out: list[tuple[str, Any]] = []
    for model in _schema_of(spec, content["schema"]):
        base = dict((model.get("examples") or [{}])[0])
        for name, prop in model.get("properties", {}).items():
            if _is_text(prop):
                out.append((name, {**base, name: value}))
            elif prop.get("type") == "object" and _is_text(prop.get("additionalProperties", {})):
                out.append((f"{name}.value", {**base, name: {"name": value}}))
                out.append((f"{name}.key", {**base, name: {value: "x"}}))
    return out


def _hostile_queries(op: dict[str, Any], value: str) -> list[tuple[str, dict[str, str]]]:
    out = []
    for param in op.get("parameters", []):
        schema = param["schema"]
        if param["in"] == "query" and (_is_text(schema) or _is_text(schema.get("items", {}))):
            required = {
                p["name"]: "x" for p in op["parameters"] if p.get("required") and p["in"] == "query"
            }
            out.append((param["name"], {**required, param["name"]: value}))
    return out


def _documented(op: dict[str, Any], r: httpx.Response) -> bool:
    entry = op["responses"].get(str(r.status_code))
    if entry is None:
        return False
    examples = entry.get("content", {}).get("application/json", {}).get("examples")
    return r.status_code < 400 or examples is None or r.json()["code"] in examples


def _agent_state(client: httpx.Client, agent: dict[str, str], cid: str) -> tuple[Any, ...]:
    detail = client.get(f"/v1/agent/conversations/{cid}", headers=agent).json()
    conv = detail["conversation"]
    return (
        conv["status"],
        conv["owner_agent"],
        (detail["pending"] or {}).get("interrupt_id"),
        (detail["ticket"] or {}).get("status"),
        len(detail["messages"]),
    )


def _hostile_requests(spec: dict[str, Any], value: str) -> list[tuple[str, str, str, Any, Any]]:
    """(method, path, field, body, query) for every text field of every route."""
    out = []
    for path, item in spec["paths"].items():
        for method, op in item.items():
            for field, body in _hostile_bodies(spec, op, value):
                out.append((method, path, field, body, None))
            for field, query in _hostile_queries(op, value):
                out.append((method, path, f"query.{field}", None, query))
    return out


def test_hostile_text_in_every_field_of_every_route_is_refused_cleanly(live_api: Any) -> None:
    spec = create_app().openapi()
    widget = {"X-Widget-Key": live_api.demo.widget_key}
    agent = bearer(live_api.demo.agent_key)
    with httpx.Client(base_url=live_api.base_url, timeout=60) as client:
        conv = start_conversation(client, live_api.demo.widget_key)
        handed = start_conversation(client, live_api.demo.widget_key)
        client.post(
            f"/v1/conversations/{handed['id']}/messages",
            json={"text": "I want to talk to a person"},
            headers=bearer(handed["customer_token"]),
        )
        ticket = client.get(f"/v1/agent/conversations/{handed['id']}", headers=agent).json()
        ids = {
            "conversation_id": conv["id"],
            "ticket_id": ticket["ticket"]["id"],
            "job_id": "00000000-0000-0000-0000-000000000000",
            "user_id": "00000000-0000-0000-0000-000000000000",
            "team_id": "00000000-0000-0000-0000-000000000000",
            "contact_id": "00000000-0000-0000-0000-000000000000",
            "lead_id": "00000000-0000-0000-0000-000000000000",
            "draft_id": "00000000-0000-0000-0000-000000000000",
            "webhook_id": "00000000-0000-0000-0000-000000000000",
            "delivery_id": "00000000-0000-0000-0000-000000000000",
        }
        before = _agent_state(client, agent, handed["id"])

        def send(method: str, path: str, body: Any, query: Any) -> httpx.Response:
            url = (
                path.format(**{**ids, "conversation_id": handed["id"]})
                if "/agent/" in path
                else path.format(**ids)
            )
            if path.startswith(("/v1/agent", "/v1/kb/jobs", "/v1/kb/drafts", "/v1/tickets")):
                headers = agent
            elif path.startswith(("/v1/admin", "/v1/metrics")):
                headers = bearer(live_api.demo.admin_key)
            elif path.startswith("/v1/auth"):
                headers = {}
            elif path in ("/v1/conversations", "/v1/kb/search"):
                headers = widget
            else:
                headers = bearer(conv["customer_token"])
            content = json.dumps(body).encode() if body is not None else None
            return client.request(
                method.upper(),
                url,
                params=query,
                content=content,
                headers={**headers, "Content-Type": "application/json"},
            )

        covered = set()
        for kind, value in REFUSED.items():
            for method, path, field, body, query in _hostile_requests(spec, value):
                if query is not None and kind == "surrogate":
                    continue  # a URL carries UTF-8 bytes: no lone surrogate can be sent
                r = send(method, path, body, query)
                label = (
                    f"{method.upper()} {path} {field} ({kind}) -> {r.status_code} {r.text[:300]}"
                )
                assert r.status_code == 422 and r.json()["code"] == "invalid_input", label
                assert _documented(spec["paths"][path][method], r), label
                covered.add((method, path))
        assert _agent_state(client, agent, handed["id"]) == before, "a refused action wrote"
        for method, path, field, body, query in _hostile_requests(spec, ACCEPTED_RTL):
            r = send(method, path, body, query)
            label = f"{method.upper()} {path} {field} (rtl) -> {r.status_code} {r.text[:300]}"
            assert r.status_code < 500, label
            assert r.status_code < 400 or r.json()["code"] != "invalid_input", label
            assert _documented(spec["paths"][path][method], r), label
    # Every route that takes text was reached (a schema change that hid fields would show).
    assert {p for _, p in covered} >= {
        "/v1/conversations",
        "/v1/conversations/{conversation_id}/messages",
        "/v1/conversations/{conversation_id}/feedback",
        "/v1/agent/conversations/{conversation_id}/reply",
        "/v1/agent/conversations/{conversation_id}/close",
        "/v1/kb/search",
        "/v1/tickets",
        "/v1/tickets/{ticket_id}",
        "/v1/tickets/{ticket_id}/notes",
        "/v1/tickets/commands",
        "/v1/conversations/{conversation_id}/csat",
    }, covered
