"""Schemathesis over the live OpenAPI schema: generated requests never get a 5xx, and every
4xx is the JSON error body ``{"code", "message"}``.

Requests carry real credentials chosen per route (widget key, a customer token with its own
conversation, an agent or admin key), so the fuzzer gets past authentication and reaches the
routes' validation and logic. Both valid (positive) and invalid (negative) requests are
generated, a bounded number per operation. The SSE subscriptions, which never end by design,
are left out.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from api.app import create_app
from tests.api_support import bearer, start_conversation

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
    if path.startswith("/v1/agent"):
        return bearer(live_api.demo.agent_key)
    if path.startswith(("/v1/kb/ingest", "/v1/kb/jobs")):
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
