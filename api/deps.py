"""Dependencies: what the lifespan owns, handed to routes as ``Annotated`` aliases."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request
from langgraph.graph.state import CompiledStateGraph

from api.actions import AgentDesk
from api.ratelimit import RateLimits
from api.turns import TurnRunner
from graph.services import Services
from helpdesk.config import Settings
from helpdesk.notify import EventHub


def get_services(request: Request) -> Services:
    """The process's services (pool, KB, models)."""
    services: Services = request.app.state.services
    return services


def get_graph(request: Request) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The compiled, checkpointed support graph."""
    graph: CompiledStateGraph[Any, Any, Any, Any] = request.app.state.graph
    return graph


def get_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    settings: Settings = request.app.state.settings
    return settings


def get_runner(request: Request) -> TurnRunner:
    """Runs customer turns (one per conversation at a time, detached from the request)."""
    runner: TurnRunner = request.app.state.runner
    return runner


def get_desk(request: Request) -> AgentDesk:
    """Applies agent actions exactly once."""
    desk: AgentDesk = request.app.state.desk
    return desk


def get_hub(request: Request) -> EventHub:
    """The process's LISTEN/NOTIFY fan-out."""
    hub: EventHub = request.app.state.hub
    return hub


def run_in_background(app: Any, work: Coroutine[Any, Any, None], name: str) -> None:
    """Run ``work`` as a task of the app's lifespan, which cancels (and awaits) it at shutdown."""
    tasks: set[asyncio.Task[None]] = app.state.background_tasks
    task = asyncio.create_task(work, name=name)
    tasks.add(task)
    task.add_done_callback(tasks.discard)


def get_limits(request: Request) -> RateLimits:
    """The process's rate limits on widget and customer calls."""
    limits: RateLimits = request.app.state.limits
    return limits


ServicesDep = Annotated[Services, Depends(get_services)]
GraphDep = Annotated[CompiledStateGraph[Any, Any, Any, Any], Depends(get_graph)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
RunnerDep = Annotated[TurnRunner, Depends(get_runner)]
DeskDep = Annotated[AgentDesk, Depends(get_desk)]
EventHubDep = Annotated[EventHub, Depends(get_hub)]
LimitsDep = Annotated[RateLimits, Depends(get_limits)]
