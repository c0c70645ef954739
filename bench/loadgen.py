"""A loopback HTTP load generator for the benchmarks: closed loop, keep-alive, bounded, stops by itself.

`load_run(url_host, port, request, concurrency=C, total=N, seconds=S)` opens C connections,
each in its own thread with its own `http.client.HTTPConnection` (keep-alive when the server
allows it, transparently reconnecting when it answers `Connection: close`). The threads are
spread over a few OS processes so that the client's own Python (the GIL) does not become the
bottleneck or a source of latency. Every connection sends its next request as soon as the last
answer is read (a closed loop: the offered load is exactly C requests in flight).

The run stops when N requests were answered in total or S seconds passed, whichever comes
first. Each connection first sends `warmup` requests that are not measured (connect, the
server's first-request costs), then all wait on one barrier and start together. Latency is
measured per request, from just before the request is written to just after the body is read.

An answer counts as an error when the status differs from `expect_status`, when reading
fails, or when `expect_body` (bytes) is not in the body. Every answered request, warm-up
included, is counted in `answered`, so callers can compare it with what the server wrote.
"""

from __future__ import annotations

import dataclasses
import http.client
import math
import multiprocessing
import os
import threading
import time
from typing import Any

# Above ~8 threads per process the client's GIL starts to show in the latencies on a small machine.
THREADS_PER_PROCESS = 8


@dataclasses.dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    body: bytes | None = None
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    expect_status: int = 200
    expect_body: bytes | None = None


@dataclasses.dataclass
class LoadResult:
    concurrency: int
    requests: int            # measured answers, errors included
    errors: int
    answered: int            # every answer with the expected status, warm-up included
    seconds: float
    latencies_ms: list[float]
    first_error: str | None

    @property
    def rps(self) -> float:
        ok = self.requests - self.errors
        return ok / self.seconds if self.seconds > 0 else math.inf

    def percentile(self, p: float) -> float | None:
        """Nearest-rank percentile of the measured latencies, in ms."""
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        rank = max(1, math.ceil(p / 100 * len(ordered)))
        return ordered[rank - 1]

    @property
    def p50(self) -> float | None:
        return self.percentile(50)

    @property
    def p99(self) -> float | None:
        return self.percentile(99)

    def summary(self) -> dict[str, Any]:
        return {"concurrency": self.concurrency, "requests": self.requests, "errors": self.errors,
                "answered": self.answered, "seconds": round(self.seconds, 3), "rps": round(self.rps, 1),
                "p50_ms": _round(self.p50), "p99_ms": _round(self.p99),
                "max_ms": _round(max(self.latencies_ms) if self.latencies_ms else None),
                "first_error": self.first_error}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _connection_loop(host: str, port: int, request: HttpRequest, quota: int, deadline_s: float, warmup: int,
                     barrier: Any, out: list, timeout: float) -> None:
    """One connection: warm up, wait for everyone, then request until the quota or the deadline."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    latencies: list[float] = []
    errors = answered = 0
    first_error: str | None = None

    def once() -> tuple[float, str | None]:
        start = time.perf_counter()
        try:
            conn.request(request.method, request.path, body=request.body, headers=request.headers)
            response = conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()  # a fresh connection for the next request
            return time.perf_counter() - start, f"{type(exc).__name__}: {exc}"
        elapsed = time.perf_counter() - start
        if response.status != request.expect_status:
            return elapsed, f"HTTP {response.status}: {body[:300]!r}"
        if request.expect_body is not None and request.expect_body not in body:
            return elapsed, f"unexpected body: {body[:300]!r}"
        return elapsed, None

    for _ in range(warmup):
        _, error = once()
        answered += error is None
    barrier.wait()
    start = time.perf_counter()
    deadline = start + deadline_s
    end = start
    while len(latencies) < quota and time.perf_counter() < deadline:
        elapsed, error = once()
        end = time.perf_counter()
        latencies.append(elapsed * 1000)
        if error is None:
            answered += 1
        else:
            errors += 1
            first_error = first_error or error
    conn.close()
    out.append((start, end, latencies, errors, answered, first_error))


def _process_main(host: str, port: int, request: HttpRequest, quotas: list[int], deadline_s: float, warmup: int,
                  barrier: Any, results: Any, timeout: float) -> None:
    out: list = []
    threads = [threading.Thread(target=_connection_loop,
                                args=(host, port, request, quota, deadline_s, warmup, barrier, out, timeout))
               for quota in quotas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.put(out)


def load_run(host: str, port: int, request: HttpRequest, *, concurrency: int, total: int, seconds: float,
             warmup: int = 3, timeout: float = 30.0) -> LoadResult:
    """Run `concurrency` closed-loop connections until `total` answers or `seconds` elapsed; see the module doc."""
    processes = max(1, min(os.cpu_count() or 1, math.ceil(concurrency / THREADS_PER_PROCESS), concurrency))
    base, extra = divmod(total, concurrency)
    quotas = [base + (1 if i < extra else 0) for i in range(concurrency)]
    groups = [quotas[p::processes] for p in range(processes)]
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(concurrency)
    results = ctx.Queue()
    procs = [ctx.Process(target=_process_main,
                         args=(host, port, request, group, seconds, warmup, barrier, results, timeout), daemon=True)
             for group in groups]
    for proc in procs:
        proc.start()
    # Generous bound: warm-up plus the run plus one request timeout; a stuck server fails the run.
    wait = warmup * timeout + seconds + timeout + 30
    rows = [row for _ in procs for row in results.get(timeout=wait)]
    for proc in procs:
        proc.join(timeout=30)
    latencies = [ms for row in rows for ms in row[2]]
    errors = sum(row[3] for row in rows)
    first_error = next((row[5] for row in rows if row[5]), None)
    return LoadResult(concurrency=concurrency, requests=len(latencies), errors=errors,
                      answered=sum(row[4] for row in rows),
                      seconds=max(row[1] for row in rows) - min(row[0] for row in rows),
                      latencies_ms=latencies, first_error=first_error)
