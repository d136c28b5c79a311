"""Run independent chunks of a simulation on this machine's cores or on a Dask cluster.

Power planning, randomisation inference and the Monte Carlo benchmarks split their work into
chunks whose results do not depend on where or in which order they run: the random draws are
made before the split (the placebo and permutation assignments by :mod:`pilotlab.data.assignment`,
one :class:`numpy.random.SeedSequence` stream per placebo pilot), so a chunk carries its own
inputs and the result for a seed is the same on one process, on a pool of local processes or on
any number of Dask workers.

Where the chunks run:

* a Dask scheduler, when :func:`use_scheduler` is active (``--scheduler ADDRESS`` on the command
  line) or the environment variable :data:`SCHEDULER_ENV` names one; ``local`` (or
  ``local:N``) starts a local cluster of ``N`` worker processes for the block;
* otherwise a pool of ``n_jobs`` local processes, or this process when ``n_jobs`` is 1.

The module sits at the bottom of the layers (it imports only :mod:`pilotlab.exceptions`);
``dask.distributed`` is imported only when a scheduler is asked for.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from pilotlab.exceptions import PilotlabError

__all__ = [
    "SCHEDULER_ENV",
    "TIMEOUT_ENV",
    "SchedulerError",
    "map_chunks",
    "scheduler_address",
    "use_scheduler",
    "worker_count",
]

#: Environment variable naming the Dask scheduler (``tcp://host:8786``, or ``local[:N]``).
SCHEDULER_ENV = "PILOTLAB_DASK_SCHEDULER"
#: Seconds to wait for a scheduler before saying it cannot be reached (``TIMEOUT_ENV`` overrides).
CONNECT_TIMEOUT = 10
TIMEOUT_ENV = "PILOTLAB_DASK_TIMEOUT"

R = TypeVar("R")
_client: ContextVar[Any | None] = ContextVar("pilotlab_dask_client", default=None)
_address: ContextVar[str | None] = ContextVar("pilotlab_dask_address", default=None)


class SchedulerError(PilotlabError):
    """The Dask scheduler named by ``--scheduler`` or the environment cannot be used."""


def scheduler_address() -> str | None:
    """The scheduler in use: :func:`use_scheduler`'s, else :data:`SCHEDULER_ENV`'s, else None."""
    return _address.get() or (os.environ.get(SCHEDULER_ENV) or "").strip() or None


def _local_workers(address: str) -> int | None:
    """``N`` of ``local:N`` (``local`` alone: this machine's CPUs); None for a real address."""
    if address != "local" and not address.startswith("local:"):
        return None
    if address == "local":
        return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
    try:
        n = int(address.split(":", 1)[1])
    except ValueError:
        n = 0
    if n < 1:
        raise SchedulerError(
            f"--scheduler: '{address}' is not a local cluster size; write local:N with N the "
            "number of worker processes (e.g. local:2), or a scheduler address such as "
            "tcp://host:8786"
        )
    return n


@contextmanager
def _connect(address: str) -> Iterator[Any]:
    """A Dask client for ``address`` (a local cluster for ``local[:N]``), closed afterwards."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:  # pragma: no cover - the cluster extra is not installed
        raise SchedulerError(
            f"--scheduler: running on a Dask cluster needs dask.distributed; install "
            f"pilotlab[cluster], or leave --scheduler out (and {SCHEDULER_ENV} unset) to run on "
            "this machine's cores"
        ) from None
    n_local = _local_workers(address)
    try:
        timeout = float(os.environ.get(TIMEOUT_ENV) or CONNECT_TIMEOUT)
    except ValueError:
        timeout = CONNECT_TIMEOUT
    cluster = None
    try:
        if n_local is not None:
            cluster = LocalCluster(  # type: ignore[no-untyped-call]
                n_workers=n_local,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=40,
            )
            client = Client(cluster, timeout=timeout)  # type: ignore[no-untyped-call]
        else:
            client = Client(address, timeout=timeout)  # type: ignore[no-untyped-call]
    except (OSError, TimeoutError, ValueError) as exc:
        if cluster is not None:
            cluster.close()
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SchedulerError(
            f"--scheduler: cannot reach a Dask scheduler at '{address}' ({first}); start the "
            "scheduler and its workers (dask scheduler; dask worker ADDRESS), check the "
            f"address, or leave --scheduler out (and {SCHEDULER_ENV} unset) to run on this "
            "machine's cores"
        ) from None
    try:
        yield client
    finally:
        client.close()  # type: ignore[no-untyped-call]
        if cluster is not None:
            cluster.close()


@contextmanager
def use_scheduler(address: str | None) -> Iterator[None]:
    """Run the chunks of this block on the Dask scheduler at ``address`` (``None``: the one in
    :data:`SCHEDULER_ENV`, if any). Connects at once, so an unreachable scheduler is reported
    before any work starts."""
    address = (address or "").strip() or scheduler_address()
    if address is None:
        yield
        return
    with _connect(address) as client:
        t1, t2 = _client.set(client), _address.set(address)
        try:
            yield
        finally:
            _client.reset(t1)
            _address.reset(t2)


def worker_count(n_jobs: int) -> int:
    """How many chunks run at once: the Dask workers' threads, else ``n_jobs``."""
    client = _client.get()
    if client is not None:
        threads: dict[str, int] = client.nthreads()
        return max(1, sum(threads.values()))
    return max(1, n_jobs)


def map_chunks(
    func: Callable[..., R],
    chunks: Sequence[tuple[Any, ...]],
    n_jobs: int = 1,
    on_done: Callable[[int, R], None] | None = None,
) -> list[R]:
    """``[func(*c) for c in chunks]``, run where the module docstring says, in chunk order.

    ``on_done(i, result)`` is called as each chunk finishes (in the order they finish), e.g. to
    move a progress bar. ``func`` must be importable by name (a module-level function) so that
    other processes can run it.
    """
    out: dict[int, R] = {}

    def done(i: int, r: R) -> None:
        out[i] = r
        if on_done is not None:
            on_done(i, r)

    client = _client.get()
    address = scheduler_address()
    if client is None and address is not None:  # named only by the environment: connect now
        with use_scheduler(address):
            return map_chunks(func, chunks, n_jobs, on_done)
    if client is not None:
        from distributed import as_completed as dask_completed

        futures = [client.submit(func, *c, pure=False) for c in chunks]
        index = {f.key: i for i, f in enumerate(futures)}
        for fut in dask_completed(futures):  # type: ignore[no-untyped-call]
            done(index[fut.key], fut.result())
    elif n_jobs <= 1 or len(chunks) <= 1:
        for i, c in enumerate(chunks):
            done(i, func(*c))
    else:
        with ProcessPoolExecutor(max_workers=n_jobs) as pool:
            pending = {pool.submit(func, *c): i for i, c in enumerate(chunks)}
            for fut in as_completed(pending):
                done(pending[fut], fut.result())
    return [out[i] for i in range(len(chunks))]
