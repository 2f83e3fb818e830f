"""Views as a node service: the worker pool (node/views/worker.py) and the per-source gas budget
(node/views/budget.py), with the rules the HTTP route applies (default gas, who a caller is).

It stops before the HTTP service does (it comes after it in the node's service list), so a view still running
at shutdown is cut short with a 503 instead of holding the HTTP service's graceful stop.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aiohttp import web

from node.service import Service
from node.views.budget import GasBudget
from node.views.worker import DEFAULT_WORKERS, VIEW_TIMEOUT_S, ViewAnswer, ViewJob, ViewWorkers

# A view's gas limit when the caller names none: ~50 ms of interpreter time at the assumed 100 ns per gas, ample
# for the EHR contract's reads (its largest read uses well under 100,000 gas).
DEFAULT_VIEW_GAS = 500_000
# Each source may hold this many maximum-gas views at once, and gets one maximum-gas view's worth back every
# REFILL_S seconds.
BURST_VIEWS = 4
REFILL_S = 10.0


class ViewService(Service):
    name = "views"

    def __init__(
        self,
        max_tx_gas: int,
        is_operator: Callable[[web.Request], bool] | None = None,
        *,
        workers: int = DEFAULT_WORKERS,
        timeout_s: float = VIEW_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_tx_gas = max_tx_gas
        self.default_gas = min(DEFAULT_VIEW_GAS, max_tx_gas)
        self.workers = ViewWorkers(workers, timeout_s)
        self.budget = GasBudget(BURST_VIEWS * max_tx_gas, max_tx_gas / REFILL_S, clock)
        self._is_operator = is_operator
        self.refused = 0

    def source_of(self, request: web.Request) -> str:
        """Whose budget a request spends: the operator's (a valid token) or its remote address's."""
        if self._is_operator is not None and self._is_operator(request):
            return "operator"
        return f"address {request.remote or 'unknown'}"

    async def run_view(self, source: str, job: ViewJob) -> ViewAnswer | float:
        """The view's answer, or the seconds to wait when `source`'s budget cannot cover `job.gas_limit`."""
        wait_s = self.budget.reserve(source, job.gas_limit)
        if wait_s is not None:
            self.refused += 1
            return wait_s
        used = job.gas_limit  # a view that fails to finish is charged its whole limit
        try:
            answer = await self.workers.run(job)
            used = answer.gas_used
            return answer
        finally:
            self.budget.refund(source, job.gas_limit - used)

    async def stop(self) -> None:
        self.workers.close()
