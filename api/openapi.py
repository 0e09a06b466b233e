"""The OpenAPI schema, made to say what the API accepts.

FastAPI writes an optional query or form parameter (``status: Literal[...] | None = None``) as
``anyOf: [..., {"type": "null"}]``, but a query string or a form field cannot carry a null:
``?status=null`` is the string ``"null"``, which is refused (422). Absent is how a client says
"no filter", so the schema does not advertise null for them. Request and response bodies (JSON,
where null exists) are left as they are.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

_NULL = {"type": "null"}


def _without_null(schema: dict[str, Any]) -> None:
    options = schema.get("anyOf")
    if not isinstance(options, list) or _NULL not in options:
        return
    rest = [o for o in options if o != _NULL]
    del schema["anyOf"]
    if len(rest) == 1:
        schema.update(rest[0])
    else:
        schema["anyOf"] = rest


def _form_schemas(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The component schemas of multipart and urlencoded form bodies."""
    components = spec.get("components", {}).get("schemas", {})
    out = []
    for item in spec.get("paths", {}).values():
        for op in item.values():
            content = (op.get("requestBody") or {}).get("content", {})
            for media, body in content.items():
                ref = body.get("schema", {}).get("$ref", "")
                if media.startswith(("multipart/", "application/x-www-form")) and ref:
                    out.append(components[ref.rsplit("/", 1)[-1]])
    return out


def honest_schema(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` with null dropped from query, path and form parameters (in place)."""
    for item in spec.get("paths", {}).values():
        for op in item.values():
            for param in op.get("parameters", []):
                _without_null(param.get("schema", {}))
    for form in _form_schemas(spec):
        for prop in form.get("properties", {}).values():
            _without_null(prop)
    return spec


def install(app: FastAPI) -> None:
    """Serve the corrected schema at ``/openapi.json`` (built once, like FastAPI's own)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = honest_schema(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
