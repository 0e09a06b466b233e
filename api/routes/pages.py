"""The pages the API serves: the chat widget script, the agent console and a demo page.

They are plain files under ``api/static`` (no framework, no build step), read from disk and kept
in memory until the file changes, so editing a page needs no restart. Every response carries a
strong ``ETag`` and answers ``If-None-Match`` with 304. The routes are plain ``def``: FastAPI runs
them in its thread pool, so the ``stat``/read never blocks the event loop that streams SSE.

Caching: ``/widget.js`` is embedded by other sites under a fixed, unversioned URL, so it may be
cached for five minutes and is revalidated after that; a fix reaches every site within minutes.
The console and its assets are ``no-cache`` (always revalidated: an agent never runs a stale
console against a newer API). The pages are not part of the OpenAPI schema: they are not API.

The demo page needs a widget key to embed the widget. Keys are stored hashed, so the server
cannot recover one: it takes ``?key=wk_...`` from the URL, else the ``widget_key`` of
``<data_dir>/demo.json`` (written when the demo tenant is set up), else it shows how to get one.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from api.errors import ApiError
from helpdesk.config import get_settings

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
WIDGET_KEY_PATTERN = r"^wk_[A-Za-z0-9_\-]{8,200}$"

_JS = "text/javascript; charset=utf-8"
_CSS = "text/css; charset=utf-8"
_HTML = "text/html; charset=utf-8"
_REVALIDATE = "no-cache"
_WIDGET_CACHE = "public, max-age=300, stale-while-revalidate=3600"

# The console holds an agent key: it may run only its own scripts, talk only to this origin and
# never be framed (clickjacking of the take-over / close buttons).
_CONSOLE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# The demo page is a stand-in for a customer's site; the widget styles itself through a
# constructed stylesheet, which CSP does not treat as inline style.
_DEMO_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; base-uri 'none'; form-action 'self'"
)
_COMMON_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}

router = APIRouter(tags=["pages"], include_in_schema=False)


@dataclass(frozen=True)
class _Asset:
    body: bytes
    gzipped: bytes
    etag: str
    mtime_ns: int


_assets: dict[str, _Asset] = {}


def _asset(name: str) -> _Asset:
    """The file's bytes and ETag, re-read only when its modification time changes."""
    path = STATIC_DIR / name
    try:
        mtime_ns = path.stat().st_mtime_ns
    except FileNotFoundError as exc:  # a packaging mistake, not a client error
        raise ApiError(404, "not_found", f"page asset {name} is not installed") from exc
    cached = _assets.get(name)
    if cached is not None and cached.mtime_ns == mtime_ns:
        return cached
    body = path.read_bytes()
    asset = _Asset(body, _gzip(body), _etag(body), mtime_ns)
    _assets[name] = asset
    return asset


def _etag(body: bytes) -> str:
    return f'"{hashlib.sha256(body).hexdigest()[:32]}"'


def _gzip(body: bytes) -> bytes:
    # mtime=0: the same file always compresses to the same bytes.
    return gzip.compress(body, compresslevel=9, mtime=0)


def _accepts_gzip(request: Request) -> bool:
    for part in request.headers.get("accept-encoding", "").split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() in ("gzip", "*") and params.replace(" ", "") != "q=0":
            return True
    return False


def _not_modified(request: Request, etag: str) -> bool:
    header = request.headers.get("if-none-match", "")
    if header.strip() == "*":
        return True
    # Weak comparison (RFC 9110 13.1.2): a proxy may have weakened our strong tag.
    return any(tag.strip().removeprefix("W/") == etag for tag in header.split(","))


def _respond(
    request: Request,
    asset: _Asset,
    media_type: str,
    cache_control: str,
    extra_headers: dict[str, str] | None = None,
) -> Response:
    headers = {
        "ETag": asset.etag,
        "Cache-Control": cache_control,
        "Vary": "Accept-Encoding",
        **_COMMON_HEADERS,
    }
    headers.update(extra_headers or {})
    if _not_modified(request, asset.etag):
        return Response(status_code=304, headers=headers)
    # The widget is ~4x smaller gzipped; compressed once per file version, not per request.
    if _accepts_gzip(request):
        headers["Content-Encoding"] = "gzip"
        return Response(content=asset.gzipped, media_type=media_type, headers=headers)
    return Response(content=asset.body, media_type=media_type, headers=headers)


def _file(
    request: Request,
    name: str,
    media_type: str,
    cache_control: str = _REVALIDATE,
    extra_headers: dict[str, str] | None = None,
) -> Response:
    return _respond(request, _asset(name), media_type, cache_control, extra_headers)


@router.get("/widget.js")
def widget_js(request: Request) -> Response:
    """The embeddable chat widget: ``<script src=".../widget.js" data-key="wk_...">``."""
    # Sites with Cross-Origin-Embedder-Policy can only load scripts that opt in.
    return _file(
        request, "widget.js", _JS, _WIDGET_CACHE, {"Cross-Origin-Resource-Policy": "cross-origin"}
    )


@router.get("/console")
def console(request: Request) -> Response:
    """The agent console (the agent key is entered once and kept in the browser)."""
    return _file(
        request,
        "console.html",
        _HTML,
        extra_headers={"Content-Security-Policy": _CONSOLE_CSP, "X-Frame-Options": "DENY"},
    )


_CONSOLE_ASSETS = {
    "console.js": _JS,
    "settings.js": _JS,
    "dashboard.js": _JS,
    "articles.js": _JS,
    "tickets.js": _JS,
    "console.css": _CSS,
    "demo.css": _CSS,
    "favicon.svg": "image/svg+xml",
}


@router.get("/static/{name}")
def static_asset(name: str, request: Request) -> Response:
    """The console's script and styles, the demo page's styles and the pages' icon (a fixed
    list, no paths)."""
    media_type = _CONSOLE_ASSETS.get(name)
    if media_type is None:
        raise ApiError(404, "not_found", f"no static asset {name!r}")
    return _file(request, name, media_type)


def _demo_key_from_data_dir(request: Request) -> str | None:
    # The app's own settings when it has them (tests pass theirs), else the process's.
    settings = getattr(request.app.state, "settings", None) or get_settings()
    path = settings.data_dir / "demo.json"
    try:
        key = json.loads(path.read_text(encoding="utf-8")).get("widget_key")
    except FileNotFoundError:
        return None
    except (OSError, ValueError, AttributeError) as exc:
        log.warning("ignoring unreadable %s: %s", path, exc)
        return None
    return key if isinstance(key, str) and key.startswith("wk_") else None


_NO_KEY_NOTICE = (
    '<p class="notice" role="note">The chat widget needs a widget key. Create one with'
    " <code>deskgraph keys create --tenant demo --kind widget</code> and open"
    " <code>/demo?key=wk_...</code> (<code>make run</code> does this for you).</p>"
)


@router.get("/demo")
def demo(
    request: Request,
    key: Annotated[
        str | None,
        Query(pattern=WIDGET_KEY_PATTERN, description="Widget key to embed (wk_...)."),
    ] = None,
) -> Response:
    """A page of the demo business with the widget embedded, as a customer's site would."""
    template = _asset("demo.html")
    key = key or _demo_key_from_data_dir(request)
    if key is None:
        embed = _NO_KEY_NOTICE
    else:
        embed = (
            f'<script src="/widget.js" data-key="{html.escape(key, quote=True)}" async></script>'
        )
    body = template.body.replace(b"<!--WIDGET-->", embed.encode())
    page = _Asset(body, _gzip(body), _etag(body), template.mtime_ns)
    return _respond(request, page, _HTML, _REVALIDATE, {"Content-Security-Policy": _DEMO_CSP})
