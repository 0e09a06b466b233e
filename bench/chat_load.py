"""Chat load benchmark: many concurrent conversations streaming over real HTTP and SSE.

Prints one JSON document. By default it starts one API server process on the offline tier
against its own database (``deskgraph_bench`` on the embedded Postgres, or the server of
``DATABASE_URL``), loads the demo tenant, and drives it with ``--concurrency`` conversations
(default 20) until ``--turns`` turns (default 1000) have run. ``--url`` targets a running server
instead (its keys from ``--keys``, default ``.data/demo.json``).

Each simulated customer starts a conversation with the widget key, holds its ``GET /events``
subscription open as the widget does, and sends questions from
``evals/datasets/demo_questions.jsonl`` (a fixed-seed mix: answerable, unanswerable, hand-off
phrasing), one at a time, reading each turn as SSE. Before each message the customer "types"
for ``--think-s`` seconds on average (default 3; ``--think-s 0`` fires turns back to back,
which measures saturation: with N customers and no pause, latency is N / throughput whatever
the server does). A conversation that is handed off or whose answer is held for review ends
there (a person takes it over in real life) and the customer starts a new one; otherwise a
conversation lasts up to ``--turns-per-conversation`` turns.

Measured per turn: time to the first ``token`` event (TTFT; only turns that stream an answer
have one) and to the end of the stream (full turn), as p50/p95/p99; turns per second; errors
(non-200 responses, ``error`` events, streams that end without ``done``, exceptions). After the
run every conversation's transcript is fetched and every message sent must be in it exactly
once (``lost_messages``, ``duplicated_messages``), and every answer must have reached the
conversation's subscription (``answers_missed_by_events_subscription``). ``approve_race``
fires 50 concurrent approves at one held draft: exactly one must be applied.

``--mix PATH[:WEIGHT]`` (repeatable) draws each message from several sources instead, e.g. the
demo questions and ordinary support messages they do not share (Bitext's ``dev.csv``), and
``by_kind`` then reports TTFT and full-turn percentiles per outcome, first or later turn of a
conversation, and source: where the time of a mix goes.

Usage: ``python bench/chat_load.py [--turns 1000] [--concurrency 20] [--profile out.txt]
[--mix evals/datasets/demo_questions.jsonl:1 --mix ../shared/datasets/intents/bitext/dev.csv:1]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import io
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = ROOT / "evals" / "datasets" / "demo_questions.jsonl"
TARGETS = {"ttft_p50_ms": 150.0, "ttft_p95_ms": 400.0}

SERVER = textwrap.dedent(
    """
    import asyncio, json, os, sys
    import uvicorn
    from api.app import create_app
    from cli.demo import ensure_demo, ensure_demo_keys
    from helpdesk.auth import load_secret
    from helpdesk.config import Settings

    url, port, keys_path, profile = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    # every simulated customer shares this machine's address: the per-address limits are off
    settings = Settings(
        openai_api_key=None,
        openai_base_url=None,
        DESKGRAPH_RATE_CONVERSATIONS_PER_MINUTE=0,
        DESKGRAPH_RATE_MESSAGES_PER_MINUTE=0,
    )

    async def on_ready(services):
        tenant, _ = await ensure_demo(services)
        keys = await ensure_demo_keys(services, tenant, load_secret(settings))
        with open(keys_path, "w") as f:
            json.dump(keys, f)

    app = create_app(settings, database_url=url, on_ready=on_ready)
    if profile:
        # uvicorn re-raises the SIGTERM it caught once it has shut down, with the handler
        # that was there before it started: this one, which writes the profile.
        import signal
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.001)

        def write_profile(signum, frame):
            profiler.stop()
            with open(profile, "w") as f:
                f.write(profiler.output_text(unicode=True, color=False))
            sys.exit(0)

        signal.signal(signal.SIGTERM, write_profile)
        profiler.start()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning",
                timeout_graceful_shutdown=5)
    """
)


@dataclass
class Turn:
    """One measured turn."""

    conversation: str
    text: str
    ttft_ms: float | None = None
    total_ms: float | None = None
    outcome: str = "unknown"
    error: str | None = None
    answer_id: str | None = None
    source: str = ""
    """Which question source of the mix the message came from."""
    first: bool = False
    """The first turn of its conversation (it pays for a new thread)."""


@dataclass
class Conversation:
    """A simulated customer's conversation."""

    id: str
    token: str
    sent: list[str] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)
    seen_on_events: set[str] = field(default_factory=set)
    seen_changed: asyncio.Event = field(default_factory=asyncio.Event)
    subscription: asyncio.Task[None] | None = None


async def _subscribe(client: httpx.AsyncClient, conv: Conversation) -> None:
    """Follow the conversation's /events like the widget does, noting the messages seen."""
    last = 0
    while True:
        headers = {"Authorization": f"Bearer {conv.token}", "Last-Event-ID": str(last)}
        try:
            async with client.stream(
                "GET", f"/v1/conversations/{conv.id}/events", headers=headers
            ) as response:
                name = None
                async for line in response.aiter_lines():
                    if line.startswith("id:"):
                        last = int(line[3:].strip())
                    elif line.startswith("event:"):
                        name = line[6:].strip()
                    elif line.startswith("data:") and name:
                        data = json.loads(line[5:])
                        if "message_id" in data:
                            conv.seen_on_events.add(data["message_id"])
                            conv.seen_changed.set()
                        name = None
        except httpx.HTTPError:
            await asyncio.sleep(0.5)  # reconnect and resume after the last event seen


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _percentiles(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "p50": None, "p95": None, "p99": None, "mean": None, "max": None}
    ordered = sorted(values)

    def pct(p: float) -> float:
        # Nearest-rank percentile: a value that was actually observed.
        index = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
        return round(ordered[index], 1)

    return {
        "n": len(ordered),
        "p50": pct(50),
        "p95": pct(95),
        "p99": pct(99),
        "mean": round(statistics.fmean(ordered), 1),
        "max": round(ordered[-1], 1),
    }


def bench_database_url(keep: bool = False) -> str:
    """``deskgraph_bench`` on the configured server, made afresh unless ``keep``: every run
    starts from the same state (runs used to pile ~400 conversations each onto what the last
    ones left; at 5,000 the figures were not comparable to a first run's). ``keep`` continues
    on what the last run left, to measure a desk with history."""
    from helpdesk import db
    from helpdesk.config import get_settings

    settings = get_settings()
    if settings.database_url:
        return settings.database_url
    url = db.with_database(db.server_url(settings), "deskgraph_bench")
    if not keep:
        db.drop_database(url)
    db.ensure_database(url)
    return url


@contextlib.contextmanager
def server_process(database_url: str, profile: str | None) -> Any:
    """Start one API process; yield ``(base_url, keys)``; stop it afterwards."""
    port = _free_port()
    keys_path = Path(tempfile.mkdtemp(prefix="deskgraph-bench-")) / "keys.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, database_url, str(port), str(keys_path), profile or ""],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=sys.stderr,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the API process exited with {proc.returncode}")
            with contextlib.suppress(httpx.HTTPError, ValueError):
                if (
                    httpx.get(base + "/healthz", timeout=2).status_code == 200
                    and keys_path.exists()
                ):
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("the API process did not start in 10 minutes")
            time.sleep(0.5)
        yield base, json.loads(keys_path.read_text())
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


async def _start(client: httpx.AsyncClient, widget_key: str, channel: str = "web") -> Conversation:
    r = await client.post(
        "/v1/conversations", json={"channel": channel}, headers={"X-Widget-Key": widget_key}
    )
    r.raise_for_status()
    body = r.json()
    return Conversation(body["id"], body["customer_token"])


async def _turn(client: httpx.AsyncClient, conv: Conversation, text: str) -> Turn:
    turn = Turn(conv.id, text)
    conv.sent.append(text)
    started = time.perf_counter()
    events: list[str] = []
    try:
        async with client.stream(
            "POST",
            f"/v1/conversations/{conv.id}/messages",
            json={"text": text},
            headers={"Authorization": f"Bearer {conv.token}", "Accept": "text/event-stream"},
        ) as response:
            if response.status_code != 200:
                turn.error = f"HTTP {response.status_code}: {(await response.aread())[:200]!r}"
                return turn
            name = None
            async for line in response.aiter_lines():
                if line.startswith("event:"):
                    name = line[6:].strip()
                elif line.startswith("data:") and name:
                    events.append(name)
                    if name == "token" and turn.ttft_ms is None:
                        turn.ttft_ms = (time.perf_counter() - started) * 1000
                    elif name in ("message.completed", "agent.message"):
                        turn.answer_id = json.loads(line[5:])["message_id"]
                    elif name == "error":
                        turn.error = f"error event: {line[5:].strip()[:200]}"
                    name = None
    except (httpx.HTTPError, ValueError) as exc:
        turn.error = f"{type(exc).__name__}: {exc}"
        return turn
    turn.total_ms = (time.perf_counter() - started) * 1000
    if "done" not in events and turn.error is None:
        turn.error = "stream ended without done"
    if "handoff" in events:
        turn.outcome = "handoff"
    elif "approval.pending" in events:
        turn.outcome = "held_for_review"
    elif "message.completed" in events:
        turn.outcome = "answered"
    elif "status" in events and "message.created" in events:
        turn.outcome = "queued_for_agent"
    if turn.answer_id:
        conv.answers.append(turn.answer_id)
    return turn


async def run_load(
    base_url: str,
    widget_key: str,
    questions: list[Source],
    *,
    turns: int,
    concurrency: int,
    per_conversation: int,
    warmup: int,
    seed: int,
    think_s: float,
    subscribe: bool,
) -> dict[str, Any]:
    """Drive the server and return the measurements."""
    rng = random.Random(seed)
    slots = 2 * concurrency + 8  # a turn and an /events subscription per customer
    limits = httpx.Limits(max_connections=slots, max_keepalive_connections=slots)
    # No read timeout: subscriptions are quiet between events (the server pings every 15 s).
    timeout = httpx.Timeout(120, connect=10, read=None, pool=30)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout) as client:
        # Warm-up: first turns pay for lazy initialisation; they are not measured.
        for i in range(warmup):
            conv = await _start(client, widget_key)
            source = questions[i % len(questions)]
            await _turn(client, conv, source.texts[i % len(source.texts)])

        remaining = turns
        results: list[Turn] = []
        conversations: list[Conversation] = []
        lock = asyncio.Lock()

        weights = [q.weight for q in questions]

        async def take() -> tuple[str, str] | None:
            nonlocal remaining
            async with lock:
                if remaining <= 0:
                    return None
                remaining -= 1
                source = rng.choices(questions, weights)[0]
                return source.name, rng.choice(source.texts)

        async def leave(conv: Conversation | None) -> None:
            # The customer closes the chat: their subscription must have delivered every
            # answer by now (give it a moment), then it ends, freeing its connection.
            if conv is None or conv.subscription is None:
                return
            deadline = time.monotonic() + 10
            while not set(conv.answers) <= conv.seen_on_events:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                conv.seen_changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(conv.seen_changed.wait(), remaining)
            conv.subscription.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await conv.subscription

        async def customer() -> None:
            conv: Conversation | None = None
            while True:
                taken = await take()
                if taken is None:
                    await leave(conv)
                    return
                source, text = taken
                first = conv is None or len(conv.sent) >= per_conversation
                if conv is None or len(conv.sent) >= per_conversation:
                    await leave(conv)
                    try:
                        conv = await _start(client, widget_key)
                    except httpx.HTTPError as exc:
                        results.append(Turn("", text, error=f"start failed: {exc}"))
                        conv = None
                        continue
                    conversations.append(conv)
                    if subscribe:
                        conv.subscription = asyncio.create_task(_subscribe(client, conv))
                if think_s > 0:
                    # The customer types the message (after reading the last answer).
                    await asyncio.sleep(rng.uniform(0.5 * think_s, 1.5 * think_s))
                turn = await _turn(client, conv, text)
                turn.source, turn.first = source, first
                results.append(turn)
                if turn.outcome in ("handoff", "held_for_review", "queued_for_agent"):
                    await leave(conv)  # a person takes it from here; this customer starts anew
                    conv = None

        started = time.perf_counter()
        await asyncio.gather(*(customer() for _ in range(concurrency)))
        duration = time.perf_counter() - started

        missed_on_events = (
            sum(len(set(c.answers) - c.seen_on_events) for c in conversations)
            if subscribe
            else None
        )

        lost = duplicated = missing_answers = 0
        for conv in conversations:
            r = await client.get(
                f"/v1/conversations/{conv.id}/messages",
                headers={"Authorization": f"Bearer {conv.token}"},
            )
            r.raise_for_status()
            messages = r.json()["messages"]
            stored = Counter(m["text"] for m in messages if m["sender"] == "customer")
            for text, count in Counter(conv.sent).items():
                lost += max(0, count - stored.get(text, 0))
                duplicated += max(0, stored.get(text, 0) - count)
            ids = {m["id"] for m in messages}
            missing_answers += sum(answer not in ids for answer in conv.answers)

    errors = [t for t in results if t.error]
    streamed = [t.ttft_ms for t in results if t.ttft_ms is not None and not t.error]
    return {
        "turns": len(results),
        "conversations": len(conversations),
        "duration_s": round(duration, 2),
        "turns_per_s": round(len(results) / duration, 2) if duration else None,
        "ttft_ms": _percentiles(streamed),
        "turn_ms": _percentiles([t.total_ms for t in results if t.total_ms and not t.error]),
        "outcomes": dict(Counter(t.outcome for t in results)),
        "by_kind": _by_kind(results),
        "errors": len(errors),
        "error_samples": sorted({t.error or "" for t in errors})[:5],
        "lost_messages": lost,
        "duplicated_messages": duplicated,
        "answers_missing_from_transcript": missing_answers,
        "answers_missed_by_events_subscription": missed_on_events,
    }


def _by_kind(results: list[Turn]) -> dict[str, dict[str, Any]]:
    """TTFT and full-turn percentiles per kind of turn: by outcome, first or later turn of a
    conversation, and question source (where a mix's time goes)."""
    kinds: dict[str, list[Turn]] = {}
    for t in results:
        if t.error:
            continue
        for kind in (f"outcome:{t.outcome}", "first_turn" if t.first else "later_turn"):
            kinds.setdefault(kind, []).append(t)
        if t.source:
            kinds.setdefault(f"source:{t.source}", []).append(t)
    return {
        kind: {
            "n": len(turns),
            "ttft_ms": _percentiles([t.ttft_ms for t in turns if t.ttft_ms is not None]),
            "turn_ms": _percentiles([t.total_ms for t in turns if t.total_ms]),
        }
        for kind, turns in sorted(kinds.items())
    }


@dataclass(frozen=True)
class Source:
    """Questions of one source of the mix, drawn with ``weight``."""

    name: str
    texts: list[str]
    weight: float = 1.0


def read_source(spec: str) -> Source:
    """``PATH[:WEIGHT]``: a ``.jsonl`` file (each row's ``question`` or ``text``), a ``.csv``
    with a ``text`` column (e.g. Bitext's ordinary support messages), or one message a line."""
    path_text, weight = spec, 1.0
    head, sep, tail = spec.rpartition(":")
    if sep and re.fullmatch(r"\d+(\.\d+)?", tail):
        path_text, weight = head, float(tail)
    path = Path(path_text)
    if not path.is_file():
        raise SystemExit(f"--mix: no such file {path}")
    raw = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        rows = [json.loads(line) for line in raw.splitlines() if line.strip()]
        texts = [str(r.get("question") or r.get("text") or "") for r in rows]
    elif path.suffix == ".csv":
        texts = [row.get("text", "") for row in csv.DictReader(io.StringIO(raw))]
    else:
        texts = raw.splitlines()
    texts = [t for t in texts if t.strip()]
    if not texts:
        raise SystemExit(f"--mix: {path} holds no messages")
    # "bitext/dev.csv" is named "bitext": split names say little about the source
    name = path.parent.name if path.stem in ("dev", "train", "test", "val") else path.stem
    return Source(name, texts, weight)


async def approve_race(
    base_url: str, keys: dict[str, str], question: str, n: int = 50
) -> dict[str, Any]:
    """``n`` concurrent approves of one held draft (email channel: answers are reviewed)."""
    async with httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(120),
        limits=httpx.Limits(max_connections=n + 4),
    ) as client:
        conv = await _start(client, keys["widget_key"], channel="email")
        turn = await _turn(client, conv, question)
        if turn.outcome != "held_for_review":
            return {"skipped": f"the draft was not held (outcome {turn.outcome})"}
        agent = {"Authorization": f"Bearer {keys['agent_key']}"}
        path = f"/v1/agent/conversations/{conv.id}/approve"
        started = time.perf_counter()
        responses = await asyncio.gather(
            *(client.post(path, json={}, headers=agent) for _ in range(n))
        )
        elapsed = time.perf_counter() - started
        detail = (await client.get(f"/v1/agent/conversations/{conv.id}", headers=agent)).json()
    codes = Counter(r.json().get("code", "ok") if r.status_code != 200 else "ok" for r in responses)
    sent = sum(m["sender"] == "ai" for m in detail["messages"])
    return {
        "approvers": n,
        "applied": codes.pop("ok", 0),
        "refused": dict(codes),
        "answers_sent": sent,
        "exactly_once": sent == 1 and sum(r.status_code == 200 for r in responses) == 1,
        "elapsed_ms": round(elapsed * 1000, 1),
    }


def main() -> None:
    """Parse the arguments, run the benchmark, print JSON."""
    # Stopped from outside: unwind normally, so the server process is stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--turns-per-conversation", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--think-s",
        type=float,
        default=3.0,
        help="mean time a customer takes to type each message (uniform 0.5x-1.5x); 0 fires"
        " turns back to back, which measures saturation rather than latency",
    )
    parser.add_argument(
        "--no-subscribe",
        action="store_true",
        help="do not hold a GET /events subscription per conversation",
    )
    parser.add_argument("--url", help="target a running server instead of starting one")
    parser.add_argument("--keys", type=Path, default=ROOT / ".data" / "demo.json")
    parser.add_argument("--questions", type=Path, default=QUESTIONS)
    parser.add_argument(
        "--mix",
        action="append",
        metavar="PATH[:WEIGHT]",
        help="draw messages from these sources instead of --questions (repeatable; .jsonl"
        " question/text, .csv text column, or one message a line), each with its weight",
    )
    parser.add_argument("--profile", help="write a pyinstrument profile of the server here")
    parser.add_argument("--skip-race", action="store_true")
    parser.add_argument(
        "--keep-db",
        action="store_true",
        help="continue on the database the last run left (default: a fresh one each run)",
    )
    args = parser.parse_args()

    questions = [read_source(spec) for spec in args.mix or [str(args.questions)]]

    async def go(base_url: str, keys: dict[str, str]) -> dict[str, Any]:
        load = await run_load(
            base_url,
            keys["widget_key"],
            questions,
            turns=args.turns,
            concurrency=args.concurrency,
            per_conversation=args.turns_per_conversation,
            warmup=args.warmup,
            seed=args.seed,
            think_s=args.think_s,
            subscribe=not args.no_subscribe,
        )
        race = (
            None
            if args.skip_race
            else await approve_race(base_url, keys, "How much is the call-out fee?")
        )
        return {"load": load, "approve_race": race}

    if args.url:
        keys = json.loads(args.keys.read_text())
        result = asyncio.run(go(args.url, keys))
    else:
        with server_process(bench_database_url(args.keep_db), args.profile) as (base_url, keys):
            result = asyncio.run(go(base_url, keys))

    load = result["load"]
    report = {
        "benchmark": "chat_load",
        "tier": "offline",
        "server": args.url or "one local process (uvicorn, 1 worker)",
        "cpus": os.cpu_count(),
        "config": {
            "turns": args.turns,
            "concurrency": args.concurrency,
            "turns_per_conversation": args.turns_per_conversation,
            "warmup": args.warmup,
            "seed": args.seed,
            "think_s": args.think_s,
            "events_subscriptions": not args.no_subscribe,
            "questions": [
                {"source": q.name, "messages": len(q.texts), "weight": q.weight} for q in questions
            ],
        },
        **result,
        "targets": {
            "ttft_p50_ms<=150": (load["ttft_ms"]["p50"] or 1e9) <= TARGETS["ttft_p50_ms"],
            "ttft_p95_ms<=400": (load["ttft_ms"]["p95"] or 1e9) <= TARGETS["ttft_p95_ms"],
            "errors==0": load["errors"] == 0,
            "lost_messages==0": load["lost_messages"] == 0
            and not load["answers_missing_from_transcript"]
            and not load["answers_missed_by_events_subscription"],
            "approve_race_exactly_once": bool(
                result["approve_race"] and result["approve_race"].get("exactly_once")
            ),
        },
    }
    if args.profile:
        report["profile"] = args.profile
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
