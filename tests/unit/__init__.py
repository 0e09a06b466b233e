"""Unit tests: each starts nothing (no database, no server, no browser, no process of the
app) and runs in this process; ``pytest tests/unit`` runs them alone, in under a minute."""
