"""A concurrent HTTP load driver: threads, one requests.Session each, latencies recorded."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import requests

# (method, url, json body or None, extra headers); the driver adds nothing else.
Job = tuple[str, str, dict | None, dict[str, str]]


@dataclass
class Stats:
    count: int
    seconds: float
    latencies: list[float] = field(repr=False)
    errors: list[str] = field(default_factory=list, repr=False)

    @property
    def rate(self) -> float:
        """Requests answered per second."""
        return self.count / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        """The p-th percentile of the latencies, in milliseconds."""
        ordered = sorted(self.latencies)
        if not ordered:
            return 0.0
        index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
        return ordered[index] * 1000

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies) * 1000 if self.latencies else 0.0


def drive(
    jobs: Iterable[Job],
    *,
    clients: int,
    expect: Callable[[requests.Response], bool] = lambda r: r.ok,
) -> Stats:
    """Send ``jobs`` from ``clients`` threads at once (each takes the next job when free) and
    return how long they took. A response ``expect`` refuses is an error, kept for the report."""
    shared = iter(list(jobs))
    take = threading.Lock()

    def next_job(_: int) -> Job | None:
        with take:
            return next(shared, None)

    return _run(next_job, clients=clients, expect=expect)


def drive_each(
    jobs_per_client: list[list[Job]],
    *,
    expect: Callable[[requests.Response], bool] = lambda r: r.ok,
) -> Stats:
    """Like ``drive``, but client i sends exactly ``jobs_per_client[i]``, in order (a poller
    asking about its own payment)."""
    queues = [iter(jobs) for jobs in jobs_per_client]
    return _run(lambda i: next(queues[i], None), clients=len(queues), expect=expect)


def _run(next_job: Callable[[int], Job | None], *, clients: int, expect) -> Stats:
    latencies: list[float] = []
    errors: list[str] = []
    start_together = threading.Barrier(clients + 1)

    def client(number: int) -> None:
        session = requests.Session()
        start_together.wait()
        while (job := next_job(number)) is not None:
            method, url, body, headers = job
            began = time.perf_counter()
            try:
                response = session.request(method, url, json=body, headers=headers, timeout=120)
            except requests.RequestException as exc:
                errors.append(f"{method} {url}: {exc}")
                continue
            took = time.perf_counter() - began
            if expect(response):
                latencies.append(took)
            else:
                errors.append(f"{method} {url}: {response.status_code} {response.text[:200]}")

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    start_together.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    return Stats(len(latencies), time.perf_counter() - began, latencies, errors)


def combined(runs: list[Stats]) -> Stats:
    """Several runs of one side as one: their requests, time and latencies added up."""
    return Stats(
        sum(r.count for r in runs),
        sum(r.seconds for r in runs),
        [latency for r in runs for latency in r.latencies],
        [error for r in runs for error in r.errors],
    )


def alternate(sides: dict[str, Callable[[int], Stats]], rounds: int) -> dict[str, Stats]:
    """Run each side's round ``n`` (0 to rounds-1) in turn, side after side, round after round,
    so that a slow moment of the machine falls on both sides alike."""
    runs: dict[str, list[Stats]] = {name: [] for name in sides}
    for n in range(rounds):
        for name, side in sides.items():
            runs[name].append(side(n))
    return {name: combined(stats) for name, stats in runs.items()}
