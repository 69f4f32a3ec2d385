"""Engines that run independent units of work (parts of episodes, `PartJob`): a local process
pool (default) or a Ray cluster.

Both return each part's result (a JSON-able dict) to the driver, which merges an episode's parts
and writes its result atomically; episodes whose result file already exists are not run again,
so a killed run resumes. On a Ray cluster the workers must see the video and subtitle paths
(a shared file system).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any

from dramasr.errors import DramaError
from dramasr.extract.episode import PartJob, extract_part

ENGINES = ("local", "ray")


def _run_local(jobs: Sequence[PartJob], workers: int) -> Iterator[tuple[PartJob, dict[str, Any]]]:
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            yield job, extract_part(job)
        return
    # spawn: torch and dlib hold threads that a forked child would inherit half-initialised
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=context) as pool:
        pending = {pool.submit(extract_part, job): job for job in jobs}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                job = pending.pop(future)
                yield job, future.result()


def _run_ray(jobs: Sequence[PartJob], address: str | None) -> Iterator[tuple[PartJob, dict[str, Any]]]:
    try:
        import ray
    except ImportError as exc:
        raise DramaError("the ray engine needs the ray package", field="--engine",
                         hint='pip install -e ".[media]" or use --engine local') from exc
    if not address:
        raise DramaError("--engine ray needs --address HOST:PORT of a running Ray head", field="--address",
                         hint="start one with `ray start --head`, or use --engine local")
    started_here = not ray.is_initialized()
    if started_here:
        try:
            ray.init(address=address, log_to_driver=False, logging_level="ERROR")
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise DramaError(f"cannot reach the Ray cluster at {address}: {exc}", field="--address",
                             hint="check the address printed by `ray start --head`") from exc
    try:
        remote = ray.remote(num_cpus=1, max_retries=2)(extract_part)
        refs = {remote.remote(job): job for job in jobs}
        while refs:
            done, _ = ray.wait(list(refs), num_returns=1)
            for ref in done:
                job = refs.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:
                    cause = exc.as_instanceof_cause()
                    if isinstance(cause, DramaError):
                        raise DramaError(cause.reason, file=cause.file, episode=cause.episode, line=cause.line,
                                         field=cause.field, hint=cause.hint) from None
                    raise
                yield job, result
    finally:
        if started_here:
            ray.shutdown()


def run_jobs(jobs: Sequence[PartJob], *, engine: str = "local", workers: int | None = None,
             address: str | None = None,
             on_done: Callable[[PartJob, dict[str, Any]], None] | None = None) -> None:
    """Run every part on the engine; `on_done(part, result)` is called in the driver as each finishes."""
    if engine not in ENGINES:
        raise DramaError(f"unknown engine {engine!r}", field="--engine", hint="use local or ray")
    workers = workers or max(1, min(len(jobs), os.cpu_count() or 1))
    results = _run_local(jobs, workers) if engine == "local" else _run_ray(jobs, address)
    for job, result in results:
        if on_done is not None:
            on_done(job, result)
