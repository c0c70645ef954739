"""The load benchmark runs end to end (gunicorn, the mix, the audit check) and closes with the CONTRACT.md line.

A short run (4 s at 4 connections) on its own scratch database (PostgreSQL when reachable, else a
temporary SQLite file): no errors, the log verifies, and every gate answer, registration and
signature has exactly its event and its row. Speed is not checked here; figures are in docs/BENCHMARKS.md.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_load_bench_quick_accounts_for_every_event():
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run([sys.executable, str(REPO_ROOT / "bench" / "load.py"), "--quick", "--seconds", "4",
                           "--concurrency", "4", "--workers", "2"], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(result) == {"bench", "figures", "peer", "ratio", "goal", "met"}
    assert (result["bench"], result["peer"], result["ratio"], result["met"]) == ("load", None, None, True)
    figures = result["figures"]
    assert figures["errors"] == 0 and figures["requests"] > 0
    assert figures["audit_verify_ok"] is True
    assert figures["accounted"] == {"gate": True, "register": True, "sign": True, "queue_empty": True}
    assert set(figures["endpoints"]) == {"gate", "register", "lists", "sign"}
