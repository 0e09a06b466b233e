"""Dependencies: what the lifespan owns, handed to routes as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from langgraph.graph.state import CompiledStateGraph

from graph.services import Services


def get_services(request: Request) -> Services:
    """The process's services (pool, KB, models)."""
    return request.app.state.services


def get_graph(request: Request) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The compiled, checkpointed support graph."""
    return request.app.state.graph


ServicesDep = Annotated[Services, Depends(get_services)]
GraphDep = Annotated[CompiledStateGraph[Any, Any, Any, Any], Depends(get_graph)]
