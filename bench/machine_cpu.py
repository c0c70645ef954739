"""Where a load run's CPU went, per answered request: the server, its database, the load generator, the machine.

On a machine that serves, stores and loads at once, a request's throughput at saturation is
cores / (CPU of every part per request), not the server's share alone, and idle CPU under load
means the parts wait on each other (locks, commits) rather than compute. `CpuMeter` reads the
kernel's counters (Linux /proc, clock ticks) before and after a run; elsewhere every figure is 0.
The per-process counters and the whole machine's are kept differently by the kernel (and a VM's
steal time is in the machine's), so the parts need not add up to the machine exactly: seen here
within ~15% either way.
"""

from __future__ import annotations

import dataclasses
import os
import resource
from collections.abc import Callable
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
CORES = os.cpu_count() or 1


def processes_cpu_seconds(select: Callable[[str, int], bool]) -> float:
    """User + system CPU of every live process for which select(command name, process group id) holds."""
    total = 0
    proc = Path("/proc")
    if not proc.is_dir():
        return 0.0
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            head, tail = (entry / "stat").read_text().rsplit(")", 1)
        except OSError:
            continue  # the process ended meanwhile
        fields = tail.split()
        if select(head.split("(", 1)[1], int(fields[2])):  # fields[2]: the process group id
            total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / _TICK


def postgres_cpu_seconds() -> float:
    """Every PostgreSQL server process on this machine (the benchmarks run nothing else against it)."""
    return processes_cpu_seconds(lambda name, _group: name.startswith("postgres"))


def _machine_seconds() -> tuple[float, float]:
    """(all CPU time, idle + I/O-wait time) since boot, summed over the cores."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except OSError:
        return 0.0, 0.0
    return sum(values) / _TICK, (values[3] + values[4]) / _TICK


def _client_seconds() -> float:
    """This process and its reaped children: the load generator's processes once they are joined."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


@dataclasses.dataclass(frozen=True)
class CpuSplit:
    """Milliseconds of CPU per answered request, by part, and the share of the machine left idle."""

    server_ms: float
    database_ms: float | None  # None: the server keeps its data in-process (SQLite), counted as server
    client_ms: float
    machine_ms: float          # every busy core of the machine, the parts above and anything else
    idle_pct: float

    @property
    def capacity_rps(self) -> float:
        """What this machine could answer per second if it did only this, with no core idle."""
        return CORES * 1000 / self.machine_ms if self.machine_ms > 0 else 0.0


class CpuMeter:
    """Counters around one load run: `with CpuMeter(server_cpu, database_cpu) as meter: ...; meter.split(n)`."""

    def __init__(self, server_cpu: Callable[[], float], database_cpu: Callable[[], float] | None) -> None:
        self.server_cpu, self.database_cpu = server_cpu, database_cpu

    def _read(self) -> tuple[float, float, float, float, float]:
        machine, idle = _machine_seconds()
        return (self.server_cpu(), self.database_cpu() if self.database_cpu else 0.0, _client_seconds(),
                machine, idle)

    def __enter__(self) -> CpuMeter:
        self._before = self._read()
        return self

    def __exit__(self, *exc: object) -> None:
        self._after = self._read()

    def split(self, requests: int) -> CpuSplit:
        server, database, client, machine, idle = (after - before for before, after in zip(self._before, self._after,
                                                                                              strict=True))
        per = 1000 / max(1, requests)
        return CpuSplit(server_ms=server * per, database_ms=database * per if self.database_cpu else None,
                        client_ms=client * per, machine_ms=(machine - idle) * per,
                        idle_pct=100 * idle / machine if machine > 0 else 0.0)
