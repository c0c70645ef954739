"""The audit-log benchmark runs end to end and closes with the CONTRACT.md result line.

It only checks the shape of the output, never a speed: figures belong in docs/BENCHMARKS.md.
The benchmark builds its own scratch databases (a temp SQLite file; a scratch PostgreSQL
database when one is reachable), so it never touches the test database.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH = REPO_ROOT / "bench" / "audit_log.py"


def test_audit_log_bench_quick_prints_the_contract_result_line():
    # given
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    # when
    done = subprocess.run([sys.executable, str(BENCH), "--quick"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    # then
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    assert set(result) == {"bench", "figures", "peer", "ratio", "goal", "met"}
    assert result["bench"] == "audit_log"
    assert isinstance(result["figures"], dict)
    assert isinstance(result["peer"], str)
    assert isinstance(result["ratio"], float)
    assert result["ratio"] > 0
    assert result["goal"] == 0.5
    assert isinstance(result["met"], bool)
    goals = result["figures"]["goals"]
    assert set(goals) == {"append_1w_sqlite", "append_1w_postgresql", "append_8w_postgresql", "verify",
                          "proof_size", "proof_time", "proofs_valid"}
    assert result["met"] is all(value is True for value in goals.values())
    # the correctness side of the run, which the benchmark checks as it goes
    assert result["figures"]["sqlite_append_8w_gapless"] is True
    assert result["figures"]["merkle_proofs_valid"] == result["figures"]["merkle_proofs"]
    assert "| measure" in done.stdout  # the readable table came before the JSON line
