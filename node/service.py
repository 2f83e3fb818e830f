"""Services with a lifecycle, run on one `asyncio.TaskGroup`.

A node is an ordered list of services. `start()` prepares each in order (open stores, listen) and may fail
loudly before anything runs; `run()` is the service's background work, supervised by the task group, so a
crash in one stops the node instead of dying silently; `stop()` runs in reverse order and must not raise.
(Pattern: ethereum/async-service's run_daemon_task; CometBFT's ordered OnStart/OnStop.)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

log = logging.getLogger(__name__)

SLOW_STOP_S = 1.0


class Service:
    """Base class: override what the service needs."""

    name = "service"

    async def start(self) -> None:
        """Acquire resources. Called in order before any service runs."""

    async def run(self) -> None:
        """Background work until cancelled. Returning early is fine; raising stops the node."""

    async def stop(self) -> None:
        """Release resources. Called in reverse order; must not raise."""


class ServiceCrashed(RuntimeError):
    """A service's background task raised; the node stopped because of it."""


async def run_services(services: Sequence[Service], stop: asyncio.Event) -> None:
    """Start `services` in order, run them until `stop` is set or one crashes, then stop them in reverse."""
    started: list[Service] = []
    crashed: BaseException | None = None
    try:
        for service in services:
            log.debug("starting %s", service.name)
            await service.start()
            started.append(service)
        try:
            async with asyncio.TaskGroup() as group:
                for service in started:
                    group.create_task(_supervised(service), name=f"service:{service.name}")
                waiter = group.create_task(stop.wait(), name="stop-signal")
                await waiter
                raise _StopRequested
        except* _StopRequested:
            pass
        except* Exception as errors:
            crashed = errors.exceptions[0]
    finally:
        for service in reversed(started):
            began = time.monotonic()
            try:
                await service.stop()
            except Exception:  # stop() must not raise; if it does, log and keep stopping the rest
                log.exception("stopping %s failed", service.name)
            took = time.monotonic() - began
            # A slow stop is what makes an operator reach for SIGKILL; name it so it can be fixed.
            if took > SLOW_STOP_S:
                log.warning("stopping %s took %.1f s", service.name, took)
    if crashed is not None:
        raise ServiceCrashed(f"a service crashed: {crashed!r}") from crashed


class _StopRequested(Exception):
    """Internal: cancels the task group when the node is asked to stop."""


async def _supervised(service: Service) -> None:
    try:
        await service.run()
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("service %s crashed", service.name)
        raise
    # A service whose run() returns has no background work; keep its slot open until the node stops.
    await asyncio.Event().wait()
