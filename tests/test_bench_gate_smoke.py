"""The gate benchmark runs end to end (gunicorn, load, audit check) and closes with the CONTRACT.md result line.

It only checks the shape of the output and the correctness side of the run, never a speed:
figures belong in docs/BENCHMARKS.md. `--no-mlflow` keeps it offline (peer and ratio null).
The benchmark builds its own scratch database (PostgreSQL when reachable, else a temp SQLite
file) and serves it on a free loopback port, so it never touches the test database.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH = REPO_ROOT / "bench" / "gate.py"


def test_gate_bench_quick_without_mlflow_prints_the_contract_result_line():
    # given
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    # when
    done = subprocess.run([sys.executable, str(BENCH), "--quick", "--no-mlflow"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    # then
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(result) == {"bench", "figures", "peer", "ratio", "goal", "met"}
    assert result["bench"] == "gate"
    assert result["peer"] is None
    assert result["ratio"] is None
    assert result["goal"] == 5.0
    assert result["met"] is False  # no peer, so the ratio goal cannot be met
    figures = result["figures"]
    db = figures["main_database"]
    assert db in ("postgresql", "sqlite")
    for concurrency in (1, 8, 32):
        for figure in ("rps", "p50_ms", "p99_ms", "requests"):
            assert isinstance(figures[f"attest_{db}_c{concurrency}_{figure}"], int | float)
        assert figures[f"attest_{db}_c{concurrency}_errors"] == 0
    # where the machine's CPU went: the server, the load generator and the machine spent some (the
    # per-process and whole-machine counters are sampled differently, so they are not compared)
    for concurrency in (8, 32):
        prefix = f"attest_{db}_c{concurrency}"
        assert figures[f"{prefix}_cpu_server_ms"] > 0
        assert figures[f"{prefix}_cpu_client_ms"] > 0
        assert figures[f"{prefix}_cpu_machine_ms"] > 0
        assert 0 <= figures[f"{prefix}_idle_pct"] <= 100
        assert (figures[f"{prefix}_cpu_database_ms"] is None) == (db == "sqlite")
    # every answered gate request wrote exactly one audit event, and the log verifies
    assert figures[f"attest_{db}_gate_events"] == figures[f"attest_{db}_answered"]
    assert figures[f"attest_{db}_allowed_decisions"] == figures[f"attest_{db}_answered"]
    assert figures[f"attest_{db}_queued"] == 0
    assert figures[f"attest_{db}_verify_ok"] is True
    assert set(figures["goals"]) == {"gate_p99_8_postgresql_le_10ms", "ratio_32_ge_5",
                                     "zero_errors_one_event_per_answer_verified"}
    assert figures["goals"]["ratio_32_ge_5"] is None
    assert figures["goals"]["zero_errors_one_event_per_answer_verified"] is True
    assert "| database: concurrency" in done.stdout  # the readable table came before the JSON line
    assert "| server: request" in done.stdout and "capacity rps" in done.stdout
