"""How many jobs per second RQ's workers run here: the forking Worker against SimpleWorker.

This is the measurement behind the pipeline's design (workers/queue.py): a job per event cannot
keep up, so jobs drain the inbox in batches and ``questline worker`` runs a SimpleWorker.

    python bench/rq_workers.py [--jobs 500] [--redis redis://127.0.0.1:6379/13]
"""

from __future__ import annotations

import argparse
import statistics
import time

import redis
from rq import Queue, SimpleWorker, Worker


def run(worker_class: type[Worker], connection: redis.Redis, jobs: int) -> float:
    """Jobs/s for one burst of ``jobs`` trivial jobs (math.sqrt) through ``worker_class``."""
    queue = Queue("bench-rq-workers", connection=connection)
    queue.empty()
    for i in range(jobs):
        queue.enqueue("math.sqrt", i, result_ttl=0)
    started = time.perf_counter()
    worker_class([queue], connection=connection).work(burst=True, logging_level="WARNING")
    elapsed = time.perf_counter() - started
    if len(queue) or queue.failed_job_registry.count:
        raise RuntimeError("not every job ran")
    return jobs / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    args = parser.parse_args()
    connection = redis.Redis.from_url(args.redis)
    connection.flushdb()
    for cls in (Worker, SimpleWorker):
        rates = []
        for round_ in range(args.rounds):
            rates.append(run(cls, connection, args.jobs))
            print(f"  {cls.__name__:<12} round {round_ + 1}: {rates[-1]:,.0f} jobs/s", flush=True)
        print(
            f"{cls.__name__:<12} median {statistics.median(rates):,.0f} jobs/s "
            f"({args.jobs} jobs x {args.rounds} rounds)"
        )
    connection.flushdb()


if __name__ == "__main__":
    main()
