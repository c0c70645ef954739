"""bench/machine_cpu.py: the CPU a load run cost, per request, read from the kernel's counters."""

import hashlib
import os
import time

from bench.machine_cpu import CpuMeter, processes_cpu_seconds


def _burn(seconds: float) -> None:
    block, until = b"x" * 4096, time.process_time() + seconds
    while time.process_time() < until:
        hashlib.sha256(block).digest()


def test_processes_cpu_seconds_counts_the_selected_processes_only():
    # given: this process's group (pytest and nothing it does not wait for)
    group = os.getpgrp()
    before = processes_cpu_seconds(lambda _name, g: g == group)
    # when
    _burn(0.3)
    # then
    assert processes_cpu_seconds(lambda _name, g: g == group) - before >= 0.25
    assert processes_cpu_seconds(lambda _name, _g: False) == 0


def test_cpu_meter_splits_a_run_per_request():
    # given: the "server" is this process too, no database
    with CpuMeter(lambda: processes_cpu_seconds(lambda _name, g: g == os.getpgrp()), None) as meter:
        # when: 0.3 s of CPU for ten requests
        _burn(0.3)
    split = meter.split(10)
    # then: ~30 ms each, counted as the client's (this process) and the server's, and the machine was busy for it
    assert split.client_ms >= 25
    assert split.server_ms >= 25
    assert split.database_ms is None
    assert split.machine_ms >= 20  # the machine's counters tick per core, at 10 ms
    assert 0 <= split.idle_pct <= 100
    assert split.capacity_rps > 0
