"""A worker's jobs use the CPU threads it was given (``leadpilot worker --threads``).

procrastinate runs each job in a thread of its own and OpenMP's thread count is per thread,
so the limit must hold inside the job's thread, for OpenMP/BLAS and for torch alike.
"""

from __future__ import annotations

import threading

import torch
from threadpoolctl import threadpool_info

from sync.ops.workers import WorkerOptions, cpu_threads


def _in_a_thread(threads: int | None) -> dict[str, object]:
    seen: dict[str, object] = {}

    def job() -> None:
        with cpu_threads(threads):
            seen["pools"] = {(p["user_api"], p["num_threads"]) for p in threadpool_info()}
            seen["torch"] = torch.get_num_threads()
            seen["matmul"] = float((torch.ones(64, 64) @ torch.ones(64, 64)).sum())

    t = threading.Thread(target=job)
    t.start()
    t.join()
    return seen


def test_one_thread_per_job_by_default_in_the_jobs_thread():
    before = torch.get_num_threads()
    try:
        assert WorkerOptions().threads == 1
        seen = _in_a_thread(WorkerOptions().threads)
        assert seen["torch"] == 1
        assert seen["pools"] and all(n == 1 for _, n in seen["pools"])  # type: ignore[union-attr]
        assert seen["matmul"] == 64.0 ** 3
    finally:
        torch.set_num_threads(before)


def test_none_leaves_the_libraries_defaults():
    before = torch.get_num_threads()
    seen = _in_a_thread(None)
    assert seen["torch"] == before
