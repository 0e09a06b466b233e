"""The page routes on their own: content types, caching, compression, CSP, the demo key.

No database and no server: the pages router is mounted on a bare app.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api import errors
from api.routes import pages
from helpdesk.config import get_settings

STATIC = Path(pages.__file__).resolve().parent.parent / "static"


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    # A data dir of our own: the demo page must not find a developer's .data/demo.json.
    monkeypatch.setenv("DESKGRAPH_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    app = FastAPI()
    errors.install(app)
    app.include_router(pages.router)
    with TestClient(app) as c:
        yield c
    get_settings.cache_clear()


def test_widget_script_is_javascript_cached_briefly_and_revalidated(client: TestClient) -> None:
    r = client.get("/widget.js", headers={"accept-encoding": "identity"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/javascript")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "max-age=300" in r.headers["cache-control"]
    assert r.headers["cross-origin-resource-policy"] == "cross-origin"
    assert r.content == (STATIC / "widget.js").read_bytes()
    etag = r.headers["etag"]
    again = client.get("/widget.js", headers={"if-none-match": etag})
    assert again.status_code == 304 and again.content == b""
    weak = client.get("/widget.js", headers={"if-none-match": f'"other", W/{etag}'})
    assert weak.status_code == 304
    stale = client.get("/widget.js", headers={"if-none-match": '"not-the-tag"'})
    assert stale.status_code == 200


def test_assets_are_gzipped_when_the_client_accepts_it(client: TestClient) -> None:
    raw = client.get("/widget.js", headers={"accept-encoding": "gzip"}, follow_redirects=False)
    # httpx decodes transparently; the header and the smaller wire size are what matter.
    assert raw.headers["content-encoding"] == "gzip"
    assert raw.headers["vary"] == "Accept-Encoding"
    assert raw.content == (STATIC / "widget.js").read_bytes()
    wire = int(raw.headers["content-length"])
    assert wire < len(raw.content) / 2
    refused = client.get("/widget.js", headers={"accept-encoding": "gzip;q=0"})
    assert "content-encoding" not in refused.headers


def test_console_page_is_locked_down(client: TestClient) -> None:
    r = client.get("/console")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["cache-control"] == "no-cache"
    csp = r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert r.headers["x-frame-options"] == "DENY"
    assert '<script src="/static/console.js"' in r.text
    for name, kind in (("console.js", "text/javascript"), ("console.css", "text/css")):
        asset = client.get(f"/static/{name}")
        assert asset.status_code == 200 and asset.headers["content-type"].startswith(kind)


@pytest.mark.parametrize("name", ["pages.py", "..%2Froutes%2Fpages.py", "widget.js", "nope.css"])
def test_only_listed_static_assets_are_served(client: TestClient, name: str) -> None:
    r = client.get(f"/static/{name}")
    assert r.status_code == 404
    assert r.json()["code"] == "not_found" and r.json()["message"]


def test_demo_page_embeds_the_widget_with_the_given_key(client: TestClient) -> None:
    r = client.get("/demo", params={"key": "wk_Abc-123_xyzXYZ"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert '<script src="/widget.js" data-key="wk_Abc-123_xyzXYZ" async></script>' in r.text
    assert "Brightwater" in r.text


@pytest.mark.parametrize("key", ['wk_"><script>alert(1)</script>', "ak_secretagentkey", "wk_x"])
def test_demo_page_refuses_anything_but_a_widget_key(client: TestClient, key: str) -> None:
    r = client.get("/demo", params={"key": key})
    assert r.status_code == 422
    assert r.json()["code"] == "invalid_request"


def test_demo_page_falls_back_to_the_demo_file_then_to_instructions(
    client: TestClient, tmp_path: Path
) -> None:
    r = client.get("/demo")
    assert r.status_code == 200
    assert "data-key" not in r.text and "deskgraph keys create" in r.text
    (tmp_path / "demo.json").write_text(json.dumps({"widget_key": "wk_fromthedemofile1"}))
    r = client.get("/demo")
    assert 'data-key="wk_fromthedemofile1"' in r.text
    (tmp_path / "demo.json").write_text("{not json")
    assert "deskgraph keys create" in client.get("/demo").text


def test_pages_are_not_in_the_api_schema(client: TestClient) -> None:
    app = FastAPI()
    app.include_router(pages.router)
    assert app.openapi()["paths"] == {}
