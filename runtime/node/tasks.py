"""Background work of a node (downloads, training, evaluation) off the chain loop.

The chain loop must keep ticking while a worker trains (it still has bids to reveal on other
jobs), so long work runs in a small thread pool. Tasks are keyed by (job id, name): asking for a
running or finished key again returns the same task, so a reconcile step can call ``ensure`` on
every tick without starting the work twice. A task's outcome lives only in memory; what must
survive a crash is written to the store by the task itself before it returns.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

log = logging.getLogger(__name__)


class Stopped(RuntimeError):
    """Raised inside background work when the node is shutting down."""


class NotReady(RuntimeError):
    """A task that cannot finish yet (a peer has not published what it needs); the caller
    resets and retries it on a later tick."""


class TaskRunner:
    """A keyed thread pool: at most one task per (job id, name) at a time."""

    def __init__(self, workers: int = 2, name: str = "node") -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"{name}-task")
        self._tasks: dict[tuple[int, str], Future[Any]] = {}
        self._lock = threading.Lock()
        self.finished = 0
        """How many tasks have ended so far: the daemon ticks its roles when this moves."""

    def ensure(self, job_id: int, name: str, fn: Callable[[], Any]) -> Future[Any]:
        """The task for (job_id, name), started now if it never ran (or failed and was reset).
        It counts its chain calls under the caller's RPC labels."""
        from morphware.contracts.rpc import current_labels, with_labels

        key = (job_id, name)
        with self._lock:
            fut = self._tasks.get(key)
            if fut is None:
                fut = self._pool.submit(self._run, key, with_labels(current_labels(), fn))
                self._tasks[key] = fut
            return fut

    def _run(self, key: tuple[int, str], fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except (NotReady, Stopped) as e:
            log.debug("task %s of job %d: %s", key[1], key[0], e)
            raise
        except Exception:
            log.exception("task %s of job %d failed", key[1], key[0])
            raise
        finally:
            with self._lock:
                self.finished += 1

    def running(self, name: str) -> list[int]:
        """Job ids whose task ``name`` is running (or waiting for a thread)."""
        with self._lock:
            return [j for (j, n), f in self._tasks.items() if n == name and not f.done()]

    def get(self, job_id: int, name: str) -> Future[Any] | None:
        with self._lock:
            return self._tasks.get((job_id, name))

    def reset(self, job_id: int, name: str) -> None:
        """Forget a finished task so that ``ensure`` starts it again (a retry)."""
        with self._lock:
            fut = self._tasks.get((job_id, name))
            if fut is not None and fut.done():
                del self._tasks[(job_id, name)]

    def busy(self) -> int:
        with self._lock:
            return sum(1 for f in self._tasks.values() if not f.done())

    def shutdown(self, wait: bool = False) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=True)

    def wait_idle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the running tasks to end (they check the node's stop
        event at every step); whether none is left running."""
        from concurrent.futures import wait

        with self._lock:
            running = [f for f in self._tasks.values() if not f.done()]
        return not wait(running, timeout=timeout).not_done
