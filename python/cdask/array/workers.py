"""What cdask sets on each worker of a distributed cluster.

``CdaskSetup`` is registered once per Client by ``schedulers.py`` (so it
also reaches workers that join or restart later).  On each worker it makes
the worker's ``memory_limit`` cdask's ``memory_limit``, and the worker's
thread count cdask's ``num_workers``: a cdask compute made inside a task
(or ``chunks="auto"`` there) plans within what the worker may use.
Imports distributed, so it is imported only when a Client is used.
"""

from distributed.diagnostics.plugin import WorkerPlugin

from .. import config

__all__ = ["CdaskSetup"]


class CdaskSetup(WorkerPlugin):
    """Sets cdask's config on a worker from the worker's limits."""

    name = "cdask-setup"

    def setup(self, worker):
        values = {"num_workers": max(1, int(worker.state.nthreads))}
        limit = worker.memory_manager.memory_limit
        if limit:
            values["memory_limit"] = int(limit)
        config.set(values)
