"""The dossier benchmark runs end to end and closes with the CONTRACT.md result line.

It checks the shape of the output and the correctness side of the run (every event accounted
for, the naive rendering lists every event, the summarised one stays short), never a speed:
figures belong in docs/BENCHMARKS.md. SQLite scratch database, a few hundred events.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH = REPO_ROOT / "bench" / "dossier.py"


def test_dossier_bench_quick_prints_the_contract_result_line():
    # given
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    # when
    done = subprocess.run([sys.executable, str(BENCH), "--quick", "--no-postgres", "--events", "400"], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=600, check=False)
    # then
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(result) == {"bench", "figures", "peer", "ratio", "goal", "met"}
    assert (result["bench"], result["peer"], result["goal"]) == ("dossier", "naive render (every event one row)", 10.0)
    figures = result["figures"]
    assert figures["database"] == "sqlite" and figures["events"] == 400
    attest, naive = figures["attest"], figures["naive"]
    assert attest["events"] == naive["events"] == 400
    assert naive["rows_in_full"] == 400 and naive["summary_rows"] == 0
    assert attest["rows_in_full"] < 400 and attest["summary_rows"] >= 1
    assert 0 < attest["pages"] < naive["pages"] < 200
    for side in (attest, naive):
        assert side["seconds"] > 0 and side["peak_rss_growth_mib"] >= 0 and side["bytes"] > 10_000
    assert result["ratio"] == round(naive["seconds"] / attest["seconds"], 4)
    assert figures["goals"]["pages_lt_200"] is True
    assert result["met"] == (attest["seconds"] < 10 and attest["pages"] < 200)
    assert "| rendering" in done.stdout  # the readable table came before the JSON line
