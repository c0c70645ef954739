"""The reports benchmark runs end to end and closes with the CONTRACT.md result line.

It checks the shape of the output and the correctness side of the run (Attest's fairness numbers
equal bare fairlearn MetricFrame's to 1e-9 at every group count), never a speed: figures belong
in docs/BENCHMARKS.md. The benchmark needs no database (it configures Django on an unused temp
SQLite path only to import registry.demo's model builder).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH = REPO_ROOT / "bench" / "reports.py"


def test_reports_bench_quick_prints_the_contract_result_line():
    # given
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    # when
    done = subprocess.run([sys.executable, str(BENCH), "--quick"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    # then
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(result) == {"bench", "figures", "peer", "ratio", "goal", "met"}
    assert result["bench"] == "reports"
    assert result["peer"] == "fairlearn MetricFrame"
    assert isinstance(result["ratio"], float) and result["ratio"] > 0
    assert result["goal"] == 100.0
    figures = result["figures"]
    assert figures["quick"] is True and figures["rows"] == 10_000
    assert result["ratio"] == figures["fairness_10g_ratio"]
    for groups in (2, 10, 100):
        assert figures[f"fairness_{groups}g_equal"] is True
        assert figures[f"fairness_{groups}g_max_abs_difference"] <= 1e-9
        assert figures[f"fairness_{groups}g_attest_ms"] > 0 and figures[f"fairness_{groups}g_metricframe_ms"] > 0
    for groups in (10, 100):
        assert figures[f"bootstrap_{groups}g_s"] > 0
    for model in ("logistic_regression", "gradient_boosting"):
        for rows in (200, 1000):
            assert figures[f"explain_{model}_{rows}_s"] > 0
    goals = figures["goals"]
    assert set(goals) == {"ratio_ge_100", "equal_1e9", "bootstrap_1000_lt_10s", "explain_lt_10s"}
    assert goals["equal_1e9"] is True
    assert result["met"] is all(value is True for value in goals.values())
    assert "| data" in done.stdout and "| model" in done.stdout  # the readable tables came before the JSON line
