"""Benchmark runs in child processes: a pool of spawned children (TensorFlow's threads do not
survive a fork), each exiting when the benchmark process is gone, and a failure or Ctrl-C
starting no more runs."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

PARENT_CHECK_SECONDS = 2.0


def _say(line: str) -> None:
    """A child process's echo: its lines go straight to the shared stdout."""
    print(line, flush=True)


def _exit_with_parent(parent_pid: int) -> None:
    """A child process's watchdog: exit as soon as the benchmark process is gone. Ctrl-C reaches
    the children too, but a SIGTERM or SIGKILL reaches the parent alone, and its children would
    go on training for nothing."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def run_in_children(jobs: int, todo: list, keep, task, shared: tuple, echo) -> None:
    """Run ``task(work, strategy, seed, pool, test, opts, echo)`` for ``todo``'s (strategy, seed)
    pairs ``jobs`` at a time, each in a fresh child process
    (spawn, not fork: TensorFlow's threads do not survive a fork), and ``keep`` each finished
    curve. Only ``jobs`` runs are ever handed to the pool, so after a failure (or Ctrl-C) no
    new run starts; the runs already going are kept, then the failure is raised."""
    work, pool, test, opts = shared
    waiting, running, failure = list(todo), {}, None
    context = multiprocessing.get_context("spawn")
    options = dict(mp_context=context, max_tasks_per_child=1, initializer=_exit_with_parent)
    with ProcessPoolExecutor(jobs, **options, initargs=(os.getpid(),)) as children:
        try:
            while running or (waiting and failure is None):
                while waiting and failure is None and len(running) < jobs:
                    strategy, seed = waiting.pop(0)
                    args = (work, strategy, seed, pool, test, opts, _say)
                    running[children.submit(task, *args)] = (strategy, seed)
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    strategy, seed = running.pop(future)
                    error = future.exception()
                    if error is None:
                        keep(strategy, seed, future.result())
                    else:
                        echo(f"{strategy} seed {seed}: failed: {error!r}")
                        failure = failure or error
        except BaseException:
            children.shutdown(wait=False, cancel_futures=True)
            raise
    if failure is not None:
        raise failure
