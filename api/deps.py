"""Dependencies: what the lifespan owns, handed to routes as ``Annotated`` aliases."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from api.errors import ApiError
from api.ratelimit import RateLimits
from desk.actions import AgentDesk
from desk.runner import TurnRunner
from graph.services import Services
from helpdesk.config import Settings
from helpdesk.notify import EventHub
from helpdesk.text_policy import find_bad_text


def get_services(request: Request) -> Services:
    """The process's services (pool, KB, models)."""
    services: Services = request.app.state.services
    return services


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
SettingsDep = Annotated[Settings, Depends(get_settings)]
RunnerDep = Annotated[TurnRunner, Depends(get_runner)]
DeskDep = Annotated[AgentDesk, Depends(get_desk)]
EventHubDep = Annotated[EventHub, Depends(get_hub)]
LimitsDep = Annotated[RateLimits, Depends(get_limits)]


def accepted_parameters(request: Request) -> None:
    """Refuse a query or path parameter holding text the desk does not accept
    (:mod:`helpdesk.text_policy`) with 422 ``invalid_input``, before any route runs.

    Installed on the whole app, so every route (and every route added later) gets it; request
    bodies are checked by their models (``api.schemas._In``). Query parameters a route does not
    declare are ignored, as FastAPI ignores them.
    """
    route = request.scope.get("route")
    declared = _query_names(route.dependant) if isinstance(route, APIRoute) else set()
    query = [(n, v) for n, v in request.query_params.multi_items() if n in declared]
    for kind, items in (("query", query), ("path", list(request.path_params.items()))):
        for name, value in items:
            bad = find_bad_text({name: value})
            if bad is not None:
                raise ApiError(422, "invalid_input", f"{kind}.{bad[0]}: {bad[1]}")


def _query_names(dependant: Dependant) -> set[str]:
    """The query parameters a route declares, its dependencies' included."""
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names
