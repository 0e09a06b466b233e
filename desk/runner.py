"""Running customer turns: one at a time per conversation, detached from whoever asked.

* **One run per thread.** :class:`desk.gate.ConversationGate` serialises graph runs of a
  conversation, in the process and across processes.
* **Detached.** A turn runs in its own task and feeds the response through a queue. A client
  that disconnects mid-stream does not cancel the turn: the answer is still stored, logged
  (``GET .../events`` delivers it) and kept for an idempotent retry.
* **Idempotent.** With an ``Idempotency-Key`` the first request claims the key
  (:mod:`helpdesk.idempotency`); a retry replays the stored events, waits for a running first
  request, or is refused when its body differs. The customer's message id is derived from the
  key, so even a turn re-run after a crash stores the message once.
* **After a crash** (the process killed mid-turn): the dead process's lease blocks the
  conversation until it expires (``turn_lease_s``, 20 s by default), then the next request
  takes over. A retry with the same key takes over the dead claim and gets the answer of the
  turn resumed from its checkpoint; a new message first finishes the cut-off turn, so the
  unanswered question is answered before the new one (:func:`desk.turns.run_turn`).
* **Waiting on a person.** A message to a conversation that waits on a human needs no graph run:
  it is stored for the agent at once, without the lease, so an agent working on the
  conversation never makes the customer's message bounce. One stored during a draft review is
  owed an AI turn after the review (:mod:`desk.after_review`): a turn first answers the messages
  owed before it, and a message whose review ended while it was stored is answered at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from desk.after_review import answer_pending, review_ended
from desk.errors import ConversationClosed, IdempotencyKeyInProgress, TurnInProgress
from desk.gate import ConversationGate
from desk.stream import Graph
from desk.turns import run_turn
from desk.waiting import danger_while_waiting, store_while_waiting, waiting_status
from graph.events import Event
from graph.services import Services
from helpdesk import conversations, idempotency
from helpdesk.tenancy import tenant_scope
from helpdesk.tenants import Tenant
from helpdesk.text_policy import check_text

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TurnRequest:
    """A customer message to run as a turn."""

    tenant: Tenant
    conversation_id: uuid.UUID
    channel: str
    text: str
    waiting_human: bool
    idempotency_key: str | None = None


@dataclass
class TurnStream:
    """The events of a turn as they come (``None`` ends the stream), or a replay."""

    queue: asyncio.Queue[Event | None]
    replayed: bool = False

    async def events(self) -> AsyncIterator[Event]:
        """Yield the turn's events until it ends."""
        while True:
            item = await self.queue.get()
            if item is None:
                return
            yield item


def replay_stream(stored: dict[str, Any]) -> TurnStream:
    """A stream that replays a stored response."""
    queue: asyncio.Queue[Event | None] = asyncio.Queue()
    for item in stored.get("events", []):
        queue.put_nowait((item["event"], item["data"]))
    queue.put_nowait(None)
    return TurnStream(queue, replayed=True)


class TurnRunner:
    """Starts customer turns as tasks and keeps track of them until they finish."""

    def __init__(
        self,
        graph: Graph,
        services: Services,
        gate: ConversationGate,
        *,
        turn_wait_s: float = 3.0,
        replay_wait_s: float = 120.0,
    ) -> None:
        self.graph = graph
        self.services = services
        self.gate = gate
        self.turn_wait_s = turn_wait_s
        self.replay_wait_s = replay_wait_s
        self._tasks: set[asyncio.Task[None]] = set()

    async def say(
        self,
        tenant: Tenant,
        conversation_id: uuid.UUID,
        text: str,
        *,
        idempotency_key: str | None = None,
    ) -> TurnStream:
        """A customer message to the conversation: start its turn (or keep it for the person
        the conversation waits on). Raises ``not_found`` for another tenant's conversation and
        ``conversation_closed`` for a closed one, besides what :meth:`start` raises."""
        async with tenant_scope(self.services.pool, tenant.id) as conn:
            conv = await conversations.get_conversation(conn, tenant.id, conversation_id)
        if conv["status"] == "closed":
            raise ConversationClosed(f"conversation {conversation_id} is closed")
        return await self.start(
            TurnRequest(
                tenant=tenant,
                conversation_id=conversation_id,
                channel=conv["channel"],
                text=text,
                waiting_human=conv["status"] == "waiting_human",
                idempotency_key=idempotency_key,
            )
        )

    async def start(self, req: TurnRequest) -> TurnStream:
        """Start the turn (or find its replay); raise a :class:`helpdesk.errors.DeskError`
        (``turn_in_progress``, ``idempotency_key_in_progress``, ...) when refused."""
        check_text(req.text, "text")  # refused before anything is claimed, stored or run
        pool = self.services.pool
        key = req.idempotency_key
        if key is not None:
            body_hash = idempotency.request_hash({"text": req.text})
            async with tenant_scope(pool, req.tenant.id) as conn:
                claim = await idempotency.claim(
                    conn, req.tenant.id, req.conversation_id, key, body_hash
                )
            if claim.state == "running":
                claim = await self._wait_for_first(req, key, body_hash, claim)
            if claim.state == "done":
                return replay_stream(claim.response or {})
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(self._run(req, queue, started))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        await started  # raises when the turn was refused (turn_in_progress)
        return TurnStream(queue)

    async def _wait_for_first(
        self, req: TurnRequest, key: str, body_hash: str, claim: idempotency.Claim
    ) -> idempotency.Claim:
        deadline = time.monotonic() + self.replay_wait_s
        while claim.state == "running" and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            async with tenant_scope(self.services.pool, req.tenant.id) as conn:
                claim = await idempotency.claim(
                    conn, req.tenant.id, req.conversation_id, key, body_hash
                )
        if claim.state == "running":
            raise IdempotencyKeyInProgress(
                f"the first request with Idempotency-Key {key!r} is still running; retry later"
            )
        return claim

    async def _run(
        self, req: TurnRequest, queue: asyncio.Queue[Event | None], started: asyncio.Future[None]
    ) -> None:
        collected: list[dict[str, Any]] = []

        def emit(event: Event) -> None:
            queue.put_nowait(event)
            collected.append({"event": event[0], "data": event[1]})

        message_id = (
            str(uuid.uuid5(req.conversation_id, f"idempotency:{req.idempotency_key}"))
            if req.idempotency_key
            else None
        )
        try:
            if req.waiting_human:
                started.set_result(None)
                stored = await store_while_waiting(
                    self.services, req.tenant, req.conversation_id, req.text, message_id=message_id
                )
                emit(stored)
                if danger := await danger_while_waiting(
                    self.services, req.tenant, req.conversation_id, stored
                ):
                    emit(danger)
                emit(waiting_status(stored))
                if stored[1]["after_review"]:
                    await self._answer_if_review_ended(req, emit)
                emit(("done", {}))
                await self._complete(req, collected)
            else:
                busy = TurnInProgress(
                    "another message of this conversation is being answered; retry shortly"
                )
                async with self.gate.hold(
                    req.tenant.id, req.conversation_id, wait_s=self.turn_wait_s, busy=busy
                ):
                    started.set_result(None)
                    async for event in answer_pending(
                        self.graph,
                        self.services,
                        req.tenant,
                        req.conversation_id,
                        channel=req.channel,
                    ):
                        emit(event)
                    async for event in run_turn(
                        self.graph,
                        self.services,
                        req.tenant,
                        req.conversation_id,
                        req.text,
                        channel=req.channel,
                        message_id=message_id,
                    ):
                        emit(event)
                    # Still holding the lease: a claim is only taken over once the lease is
                    # free (helpdesk.idempotency), so a finished turn never looks dead.
                    await self._complete(req, collected)
        except Exception as exc:
            if not started.done():
                # Refused before anything ran: free the key so that a retry can run the turn.
                if req.idempotency_key:
                    async with tenant_scope(self.services.pool, req.tenant.id) as conn:
                        await idempotency.abandon(
                            conn, req.tenant.id, req.conversation_id, req.idempotency_key
                        )
                started.set_exception(exc)
                return
            log.exception("turn of conversation %s failed", req.conversation_id)
            if not collected or collected[-1]["event"] != "done":
                queue.put_nowait(("error", {"code": "turn_failed", "message": "the turn failed"}))
                queue.put_nowait(("done", {}))
        except BaseException:
            if not started.done():
                started.cancel()
            raise
        finally:
            queue.put_nowait(None)

    async def _complete(self, req: TurnRequest, collected: list[dict[str, Any]]) -> None:
        """Store the turn's events as the response of its Idempotency-Key (if it has one)."""
        if req.idempotency_key:
            async with tenant_scope(self.services.pool, req.tenant.id) as conn:
                await idempotency.complete(
                    conn,
                    req.tenant.id,
                    req.conversation_id,
                    req.idempotency_key,
                    {"events": collected},
                )

    async def _answer_if_review_ended(self, req: TurnRequest, emit: Any) -> None:
        """The review may have ended while the message was being stored, after the reviewer's
        action had answered what was owed: then answer it here rather than leave it owed."""
        if not await review_ended(self.services, req.tenant, req.conversation_id):
            return  # the reviewer's action answers it
        busy = TurnInProgress("the conversation is busy")
        try:
            async with self.gate.hold(
                req.tenant.id, req.conversation_id, wait_s=self.replay_wait_s, busy=busy
            ):
                async for event in answer_pending(
                    self.graph, self.services, req.tenant, req.conversation_id, channel=req.channel
                ):
                    emit(event)
        except TurnInProgress:
            # Whoever holds it that long is running a turn, which answers what is owed first.
            log.warning("owed turns of %s left to the next turn", req.conversation_id)

    async def drain(self, timeout_s: float) -> None:
        """Wait for running turns to finish (at shutdown); cancel what is left after that."""
        tasks = list(self._tasks)
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=timeout_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=5)
