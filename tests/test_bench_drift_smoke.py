"""The drift benchmark runs end to end at its quick size and closes with the CONTRACT.md result line.

It checks the shape of the output and the correctness side of the run, never a speed: figures
belong in docs/BENCHMARKS.md. `--no-peer` keeps it offline (no Evidently; peer and ratio null).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH = REPO_ROOT / "bench" / "drift.py"
SHIFTED = ["n00", "n05", "n10", "n15", "n18", "c1", "c3"]


def test_drift_bench_quick_without_evidently_prints_the_contract_result_line():
    # given
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    # when
    done = subprocess.run([sys.executable, str(BENCH), "--quick", "--no-peer"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    # then
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(result) == {"bench", "figures", "peer", "ratio", "goal", "met"}
    assert (result["bench"], result["peer"], result["ratio"], result["goal"]) == ("drift", None, None, 20.0)
    assert result["met"] is False  # no peer, so the ratio goal cannot be met
    figures = result["figures"]
    assert figures["features"] == 25
    for size in figures["sizes"]:
        assert figures[f"attest_seconds_{size}"] > 0
        assert figures[f"attest_rows_features_per_s_{size}"] > 0
        assert figures[f"attest_peak_mb_{size}"] > 0
        assert figures[f"evidently_seconds_{size}"] is None
        # every column shifted by design is flagged (a p-value test may add a false alarm)
        assert set(SHIFTED) <= set(figures[f"attest_drifted_{size}"])
        assert len(figures[f"attest_drifted_{size}"]) <= len(SHIFTED) + 2
    assert figures["goals"]["shifted_features_detected"] is True
    assert figures["goals"]["ratio_largest_ge_20"] is None
    assert "| rows per side" in done.stdout  # the readable table came before the JSON line
    # each size wrote its Parquet files to a directory of this run's own, removed afterwards
    assert len(set(figures["data_dirs"])) == len(figures["sizes"])
    assert figures["data_kept"] is False
    assert not any(Path(path).exists() for path in figures["data_dirs"])
