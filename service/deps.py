"""Typed dependencies: settings, the served model, the store and the runtime (all on app.state), and the guards.

All are `async def`: FastAPI runs a plain `def` dependency in its thread pool, and that hop (with the
GIL handed back and forth) cost more than classifying the text.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, NamedTuple

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials

from service.metrics import Metrics
from service.runtime import Runtime
from service.security import bearer_scheme, check_key, client_identity, header_scheme, key_from_headers
from service.settings import Settings
from service.store import Store


async def get_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    settings: Settings = request.app.state.settings
    return settings


async def get_runtime(request: Request) -> Runtime:
    """The model, store and batcher set up at startup."""
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_store(request: Request) -> Store:
    """The database of predictions and corrections."""
    runtime: Runtime = request.app.state.runtime
    return runtime.store


async def get_metrics(request: Request) -> Metrics:
    """The app's metrics."""
    metrics: Metrics = request.app.state.metrics
    return metrics


SettingsDep = Annotated[Settings, Depends(get_settings)]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
StoreDep = Annotated[Store, Depends(get_store)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]
HeaderKeyDep = Annotated[str | None, Depends(header_scheme)]


def _admit(request: Request, needs_key: bool) -> None:
    """Check the API key where one is needed, then count the request against the client's rate."""
    state = request.app.state
    key = key_from_headers(request)
    if needs_key:
        check_key(state.keys, key)
    if state.rate_limiter.items:
        # Only a valid key names the client: made-up keys must not dodge the per-address limit.
        valid = key if key is not None and state.keys.configured and state.keys.valid(key) else None
        state.rate_limiter.hit(client_identity(request, valid))


def guard(needs_key: Callable[[Settings], bool]) -> Callable[[Request, BearerDep, HeaderKeyDep], Awaitable[None]]:
    """A dependency that checks the API key where the endpoint needs one, then the client's rate."""

    async def check(request: Request, bearer: BearerDep, header: HeaderKeyDep) -> None:
        # The two schemes are declared so the OpenAPI schema documents them; _admit reads the key.
        del bearer, header
        _admit(request, needs_key(request.app.state.settings))

    return check


class ClassifyContext(NamedTuple):
    """What classify needs, from one dependency: each dependency costs FastAPI several microseconds
    per request, and on this endpoint they added up to a quarter of the CPU."""

    runtime: Runtime
    settings: Settings


async def classify_context(request: Request) -> ClassifyContext:
    """Check the key (when classify needs one) and the client's rate; hand over runtime and settings."""
    settings: Settings = request.app.state.settings
    _admit(request, settings.classify_needs_key)
    return ClassifyContext(request.app.state.runtime, settings)


ClassifyDep = Annotated[ClassifyContext, Depends(classify_context)]
StatsGuard = Depends(guard(lambda s: s.stats_needs_key))
WriteGuard = Depends(guard(lambda s: True))
