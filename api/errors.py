"""Errors as JSON ``{"code", "message"}`` with stable codes; bad input is a 4xx, never a 500.

The codes are part of the HTTP contract (``docs/http-api.md``); :data:`ERROR_CODES` lists them
with their status so OpenAPI can document them.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from helpdesk.errors import DeskError
from helpdesk.text_policy import shown

log = logging.getLogger(__name__)

ERROR_CODES: dict[str, tuple[int, str]] = {
    "invalid_json": (400, "The body is not valid JSON (or not UTF-8)."),
    "invalid_multipart": (400, "The body is not a well-formed multipart/form-data upload."),
    "invalid_request": (422, "A field, parameter or header has the wrong type or value."),
    "invalid_input": (
        422,
        "Well-formed values that are not acceptable here (e.g. text with a NUL, a lone"
        " surrogate or a control character).",
    ),
    "invalid_profile": (422, "A business profile value is not valid; the message names the field."),
    "invalid_period": (
        422,
        "A metrics parameter is not valid (a date, the time zone, the range, a metric or a"
        " breakdown name); the message names it.",
    ),
    "idempotency_key_reused": (422, "The Idempotency-Key was used with another body."),
    "unauthenticated": (401, "No credential was sent."),
    "invalid_key": (401, "The API key is unknown or revoked."),
    "invalid_token": (401, "The customer token is malformed or badly signed."),
    "token_expired": (401, "The customer token has expired."),
    "invalid_session": (401, "The session is unknown, expired or signed out."),
    "invalid_credentials": (401, "The tenant, email or password is wrong."),
    "invalid_reset_token": (400, "The reset link is unknown, already used or expired."),
    "forbidden": (
        403,
        "The credential may not do this (wrong kind or conversation, or a role the role table"
        " does not allow).",
    ),
    "origin_not_allowed": (403, "The widget key does not allow this Origin."),
    "invalid_identity": (
        401,
        "The signed identity is malformed, its signature does not match, or the business has"
        " no identity secret.",
    ),
    "identity_expired": (401, "The signed identity's iat is too old, or in the future."),
    "not_found": (404, "No such thing for this tenant."),
    "method_not_allowed": (405, "The path does not take this method."),
    "conflict": (409, "The request conflicts with the current state."),
    "conversation_closed": (409, "The conversation is closed."),
    "turn_in_progress": (409, "Another turn of this conversation is running."),
    "idempotency_key_in_progress": (409, "The first request with this key is still running."),
    "interrupt_conflict": (409, "The action's interrupt is no longer pending."),
    "conversation_busy": (409, "Another action on this conversation is running."),
    "conversation_owned": (409, "Another agent owns the conversation."),
    "version_conflict": (409, "The profile was saved by someone else since the version edited."),
    "invalid_transition": (
        409,
        "The thing cannot move to that state from the one it is in; the message names the"
        " states it may move to.",
    ),
    "no_agent_online": (
        409,
        "Nobody of the team is online to take the ticket; assign someone by hand or try later.",
    ),
    "body_too_large": (413, "The body is over the configured limit."),
    "unsupported_media_type": (415, "The body has an unsupported content type."),
    "rate_limited": (429, "Too many requests from this address; wait for Retry-After seconds."),
    "too_many_attempts": (
        429,
        "Too many failed sign-ins for this account or address; wait for Retry-After seconds.",
    ),
    "database_unavailable": (503, "The database is unreachable for a moment; see Retry-After."),
    "internal": (500, "A bug: reported in the server log."),
}


class ErrorBody(BaseModel):
    """Every error response."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"code": "not_found", "message": "no conversation 0b6c... for this tenant"}
            ]
        }
    )
    code: str
    message: str


class ApiError(DeskError):
    """An error raised by a route, with its own status and code."""

    def __init__(
        self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.headers = headers


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    """The JSON body of every error response."""
    return {"code": code, "message": message, **extra}


def responses(*codes: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the given error codes (grouped by status).

    A route that validates its input (``invalid_request``) also refuses text the desk does
    not accept (``invalid_input``, :mod:`helpdesk.text_policy`), so that code comes with it.
    """
    out: dict[int | str, dict[str, Any]] = {}
    if "invalid_request" in codes and "invalid_input" not in codes:
        codes = (*codes, "invalid_input")
    for code in codes:
        status, meaning = ERROR_CODES[code]
        entry = out.setdefault(
            status, {"model": ErrorBody, "description": "", "content": {"application/json": {}}}
        )
        entry["description"] = "; ".join(
            p for p in (entry["description"], f"`{code}`: {meaning}") if p
        )
        examples = entry["content"]["application/json"].setdefault("examples", {})
        examples[code] = {"value": {"code": code, "message": meaning}}
    return out


_HTTP_CODES = {
    400: "invalid_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def _unparsable_body_code(request: Request) -> str:
    """FastAPI answers 400 when it cannot parse a body (a JSON body that is not UTF-8, a
    malformed multipart upload): name what was wrong with a documented code."""
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith(("multipart/", "application/x-www-form-urlencoded")):
        return "invalid_multipart"
    return "invalid_json"


def install(app: FastAPI) -> None:
    """Register the exception handlers."""

    @app.exception_handler(DeskError)
    async def desk_error(_: Request, exc: DeskError) -> JSONResponse:
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return JSONResponse(
            error_body(exc.code, shown(exc.message)), status_code=exc.status, headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        # ``shown``: a refused character in a dict key (part of ``loc``) or a message would
        # otherwise be echoed back, and a lone surrogate cannot even be encoded as a response.
        details = [
            {
                "loc": [shown(str(p)) for p in e.get("loc", ())],
                "msg": shown(e.get("msg", "")),
                "type": e.get("type", ""),
            }
            for e in exc.errors()
        ]
        if any(d["type"] == "json_invalid" for d in details):
            return JSONResponse(
                error_body("invalid_json", "the body is not valid JSON", details=details),
                status_code=400,
            )
        # Text the desk refuses (helpdesk.text_policy) is invalid_input, wherever it was.
        refused = [d for d in details if d["type"] == "invalid_input"]
        code = "invalid_input" if refused else "invalid_request"
        first = (refused or details or [{"loc": [], "msg": "invalid request"}])[0]
        where = ".".join(str(p) for p in first["loc"])
        return JSONResponse(
            error_body(code, f"{where}: {first['msg']}", details=details), status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        if exc.status_code == 400:
            code = _unparsable_body_code(request)
        return JSONResponse(
            error_body(code, str(exc.detail)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return JSONResponse(error_body("internal", "internal error"), status_code=500)
