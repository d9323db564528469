"""Where the Dask work runs: a ``LocalCluster`` started here (the default, no set-up), or an
existing scheduler named by a ``scheduler`` parameter or ``$PPDL_DASK_SCHEDULER``.

Workers are processes with one thread each: Paillier arithmetic is pure-Python gmpy2 calls that
hold the GIL, so threads would not run in parallel.
"""
from __future__ import annotations

import asyncio
import os
import socket
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator

from ppdl_utils.errors import PPDLError

if TYPE_CHECKING:  # distributed is imported lazily: importing this module stays cheap
    from distributed import Client

SCHEDULER_ENV = "PPDL_DASK_SCHEDULER"
CONNECT_TIMEOUT_S = 10.0


class SchedulerUnreachableError(PPDLError, ConnectionError):
    """A Dask scheduler address cannot be reached (or does not answer as a scheduler) in time."""


class SchedulerParameterError(PPDLError, ValueError):
    """A scheduler parameter is neither an address string, a ``distributed.Client`` nor None."""


def check_scheduler(scheduler: object, parameter: str = "scheduler") -> None:
    """Refuse anything but None, an address string ("" = None) or a ``distributed.Client``."""
    if scheduler is None or isinstance(scheduler, str):
        return
    from distributed import Client

    if not isinstance(scheduler, Client):
        raise SchedulerParameterError(f"{parameter}={scheduler!r:.60} must be a Dask scheduler address such as "
                                      "'tcp://host:8786', a distributed.Client, or None (a LocalCluster)")


def scheduler_address(scheduler: "str | None" = None, env: str = SCHEDULER_ENV) -> "tuple[str | None, str]":
    """(address, where it came from): the parameter, else the environment variable `env`
    (``$PPDL_DASK_SCHEDULER``), else (None, "local") meaning "start a LocalCluster"."""
    if scheduler:
        return str(scheduler), "scheduler parameter"
    value = os.environ.get(env, "").strip()
    return (value, f"${env}") if value else (None, "local")


def _unreachable(address: str, source: str, timeout: float, why: object) -> SchedulerUnreachableError:
    return SchedulerUnreachableError(
        f"Dask scheduler {address} (from the {source}) cannot be reached within {timeout:g} s: {why}. "
        f"Start it (`dask scheduler`), correct the address, or leave both the parameter and "
        f"${SCHEDULER_ENV} unset to run on a LocalCluster started here.")


def _probe(address: str, source: str, timeout: float) -> None:
    """Fail fast with a clear message when nothing listens at a tcp/tls address (Dask itself
    retries until its time-out, then raises a bare OSError)."""
    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        scheme, location = parse_address(address)
        if scheme not in ("tcp", "tls"):
            return  # inproc:// or ucx://: let Dask decide
        host, port = parse_host_port(location)
    except ValueError as exc:
        raise _unreachable(address, source, timeout, f"not a scheduler address ({exc})") from None
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        raise _unreachable(address, source, timeout, exc) from None


async def _handshake(address: str, timeout: float) -> None:
    from distributed.comm import connect

    comm = await asyncio.wait_for(connect(address, timeout=timeout), timeout)
    await comm.close()


def _check_handshake(address: str, source: str, timeout: float) -> None:
    """Dask's handshake waits forever on a port that accepts but never answers (a firewall, another
    service): do it once under a deadline, in a thread of its own so that it also works inside a
    running event loop (Jupyter)."""
    with ThreadPoolExecutor(1) as pool:
        try:
            pool.submit(asyncio.run, _handshake(address, timeout)).result(timeout + 1)
        except Exception as exc:
            silent = isinstance(exc, (TimeoutError, asyncio.TimeoutError))
            why = "no Dask handshake (is it a Dask scheduler?)" if silent else exc
            raise _unreachable(address, source, timeout, why) from None


def _connect(address: str, source: str, timeout: float) -> "Client":
    from distributed import Client

    _probe(address, source, timeout)
    _check_handshake(address, source, timeout)
    try:
        client = Client(address, timeout=timeout, set_as_default=False)
    except Exception as exc:  # a listening port that is not a Dask scheduler fails in many ways
        raise _unreachable(address, source, timeout, f"{type(exc).__name__}: {exc}") from None
    try:
        client.wait_for_workers(1, timeout=timeout)
    except Exception:
        client.close()
        raise PPDLError(f"Dask scheduler {address} (from the {source}) answered but has no worker after "
                        f"{timeout:g} s: start workers with `dask worker {address}`") from None
    return client


@contextmanager
def dask_client(scheduler: "str | Client | None" = None, n_workers: int | None = None,
                timeout: float = CONNECT_TIMEOUT_S, env: str = SCHEDULER_ENV) -> "Iterator[Client]":
    """A ``distributed.Client`` for the duration of a ``with`` block.

    Args:
        scheduler: an address (``tcp://host:8786``), an existing ``Client`` (used as is, left
            open), or None: the variable `env` (``$PPDL_DASK_SCHEDULER``) if set, else a
            LocalCluster of `n_workers` single-threaded worker processes (default: all cores),
            closed on exit.
        timeout: seconds to wait for a scheduler address to answer and to have a worker.

    Raises:
        SchedulerUnreachableError: naming the address and where it came from.
    """
    from distributed import Client, LocalCluster

    check_scheduler(scheduler)
    if n_workers is not None and (isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1):
        raise SchedulerParameterError(f"n_workers={n_workers!r:.40} must be a positive int or None (every core)")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < 3600:
        raise SchedulerParameterError(f"timeout={timeout!r:.40} must be a number of seconds in (0, 3600)")
    if scheduler is not None and not isinstance(scheduler, str):
        yield scheduler  # a Client the caller manages
        return
    address, source = scheduler_address(scheduler, env)
    if address is not None:
        client = _connect(address, source, timeout)
        try:
            yield client
        finally:
            client.close()
        return
    workers = int(n_workers or os.cpu_count() or 1)
    # ":0": any free port (None still binds 8787 for the HTTP endpoints and warns when it is taken)
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        with Client(cluster, set_as_default=False) as client:
            yield client


def resolved_address(address: str) -> "tuple[str, frozenset[str], int] | None":
    """(scheme, every IP the host resolves to, port) of a tcp/tls address, so that
    ``tcp://localhost:8786`` and ``tcp://127.0.0.1:8786`` compare equal; None when it cannot be
    resolved (then only :func:`scheduler_id` can tell)."""
    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        scheme, location = parse_address(address)
        host, port = parse_host_port(location)
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (ValueError, OSError, TypeError):
        return None
    ips = {info[4][0] for info in infos}
    if ips & {"127.0.0.1", "::1"} or any(ip.startswith("127.") for ip in ips):
        ips |= {"loopback"}
    return scheme, frozenset(ips), int(port)


def same_address(a: str, b: str) -> bool:
    """Whether two scheduler addresses name one scheduler: equal strings, or the same scheme and
    port on hosts that resolve to a common IP (both on loopback counts as common)."""
    if a == b:
        return True
    ra, rb = resolved_address(a), resolved_address(b)
    return ra is not None and rb is not None and ra[0] == rb[0] and ra[2] == rb[2] and bool(ra[1] & rb[1])


def scheduler_id(client: "Client") -> str:
    """The scheduler's own identifier (unique per scheduler process): two clients of one cluster
    share it whatever address each was given."""
    return str(client.scheduler_info(n_workers=0)["id"])


def worker_count(client: "Client") -> int:
    """Worker processes currently attached to `client`'s scheduler."""
    return len(client.scheduler_info(n_workers=-1)["workers"])
