"""The repository's root, for tests that run its commands or read its files (one place, so a
test module can move between folders without its paths breaking)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
"""The repository root (the folder holding ``pyproject.toml``)."""
