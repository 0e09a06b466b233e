"""Integration tests: the real Postgres (embedded, or the server of ``DATABASE_URL``), the API
over HTTP and SSE, headless Chromium, and processes of the app (``deskgraph serve``,
``langgraph dev``, killed workers). Their fixtures are in ``conftest.py`` here."""
