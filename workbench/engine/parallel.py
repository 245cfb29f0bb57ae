"""Several independent trainings at once, in one-thread worker processes.

On a CPU, small 3D networks gain almost nothing from a second thread (measured for the truth table:
52 ms a step with 2 threads, 54 with 1), so ``N`` trainings side by side in ``N`` one-thread
processes finish close to ``N`` times sooner than one after another. Each job must be a picklable
call of a module-level function; its results land on disk (run folders), so a worker that dies
loses only its own job, and a rerun resumes it. With ``workers <= 1`` the jobs run here, in order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

__all__ = ["run_jobs"]


def _init(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def run_jobs(fn: Callable, jobs: Sequence, workers: int, *, threads: int = 1, progress: bool = False,
             desc: str = "trainings") -> list:
    """``[fn(job) for job in jobs]``, in ``workers`` spawned processes of ``threads`` torch threads
    each when ``workers > 1`` (results in the order of ``jobs``)."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    from tqdm.auto import tqdm

    if workers == 1 or len(jobs) <= 1:
        return [fn(j) for j in tqdm(jobs, desc=desc, unit="training", disable=not progress)]
    import multiprocessing as mp

    ctx = mp.get_context("spawn")  # no fork of a process that may hold threads and open files
    with ctx.Pool(min(workers, len(jobs)), initializer=_init, initargs=(threads,)) as pool:
        it = pool.imap(fn, jobs)
        return list(tqdm(it, total=len(jobs), desc=f"{desc} ({workers} at once)", unit="training",
                         disable=not progress))
