"""The desk of one process: its conversation gate, and the turns and actions that share it."""

from __future__ import annotations

from dataclasses import dataclass

from desk.actions import AgentDesk
from desk.gate import ConversationGate
from desk.runner import TurnRunner
from desk.stream import Graph
from graph.services import Services


@dataclass(frozen=True)
class Desk:
    """What the API, the CLI and later email run conversations through."""

    gate: ConversationGate
    turns: TurnRunner
    actions: AgentDesk

    @classmethod
    def build(cls, graph: Graph, services: Services, *, lease_ttl_s: float = 20.0) -> Desk:
        """One gate for both: a turn and an agent action on one conversation never overlap."""
        gate = ConversationGate(services.pool, lease_ttl_s=lease_ttl_s)
        return cls(gate, TurnRunner(graph, services, gate), AgentDesk(graph, services, gate))
