"""Drift benchmark (issue 6 item 9): Attest's `monitoring.stats` vs Evidently's DataDriftPreset.

    python bench/drift.py                # 100k and 1M rows per side (several minutes; installs Evidently once)
    python bench/drift.py --quick        # 2k and 20k rows (Evidently only if already installed)
    python bench/drift.py --no-peer      # Attest only: peer and ratio are null
    python bench/drift.py --sizes 1000000

The data: 20 numeric + 5 categorical columns, the same seed for every run. Numeric columns cycle
through normal, log-normal, uniform, exponential and rounded-normal (ties) shapes; n18 and n19 are
discrete (0..8, so both sides bin them by value); categorical columns have 3, 4, 6, 10 and 25
categories. The current sample shifts n00, n05, n10, n15 by half a reference std, n18's mean,
and the mix of c1 and c3, so 7 of 25 features drift. Tests are assigned per column, the same on
both sides: numeric columns cycle ks, wasserstein, psi, jensenshannon; categorical columns get
chisquare, psi, jensenshannon, chisquare, jensenshannon.

Both sides read the same Parquet files (written under var/bench/) in their own child process and
are timed from the DataFrames in memory to the per-column results:
* Attest: `reference_profile` + `dataset_drift` in one thread (the profile is built inside the
  timing), run 3 times (once with --quick), the median reported; then, for the record, one
  `dataset_drift` on the last run's warm profile ("cached profile": a monitor profiles its
  reference once) and one fresh run with `workers=2` (2 threads; not used for the ratio);
* Evidently (the peer), installed by this script into var/bench/evidently-venv
  (`pip install 'evidently>=0.7,<0.8' 'pandas<3' pyarrow`, once): `Dataset.from_pandas` for both
  frames with a DataDefinition naming the column types, then
  `Report([DataDriftPreset(per_column_method=...)]).run(...)`.
Peak memory: each child resets its peak RSS (/proc/self/clear_refs) after loading the data and
reports the peak during the timed work, and how far it rose above the loaded data.

Shared statistics are compared value by value (relative 1e-9): KS p-value, Wasserstein normed,
chi-square p-value, categorical PSI and Jensen-Shannon, and numeric PSI / Jensen-Shannon on the
discrete columns (both bin by value there). Numeric PSI and Jensen-Shannon on continuous columns
are defined differently and are printed side by side, not compared: Attest bins by the
reference's deciles, Evidently by Sturges bins over reference + current together.

Throughput = rows per side x 25 features / wall seconds (CPU seconds of each child are printed
too: on a shared machine their ratio is the steadier figure). Closing line (CONTRACT.md): `ratio` = Attest
over Evidently throughput at the largest size (1M rows); `goal` = 20; `met` = ratio >= 20 and
every shared statistic equal.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import REPO_ROOT, peer_venv_install, rate, result_print, table_print  # noqa: E402

BENCH = "drift"
GOAL_RATIO = 20.0
EQUAL_REL = 1e-9
SEED = 20261127
EVIDENTLY_SPECS = ["evidently>=0.7,<0.8", "pandas<3", "pyarrow"]  # evidently 0.7 fails to import on pandas 3
EVIDENTLY_VENV = REPO_ROOT / "var" / "bench" / "evidently-venv"
DATA_ROOT = REPO_ROOT / "var" / "bench" / "drift-data"
FULL_SIZES = (100_000, 1_000_000)
QUICK_SIZES = (2_000, 20_000)
NUMERIC = 20
NUM_TESTS = ("ks", "wasserstein", "psi", "jensenshannon")
CATEGORICAL = ((3, "chisquare"), (4, "psi"), (6, "jensenshannon"), (10, "chisquare"), (25, "jensenshannon"))
DISCRETE_COLUMNS = (18, 19)  # Poisson, capped at 8
SHIFTED_NUMERIC = (0, 5, 10, 15, 18)
SHIFTED_CATEGORICAL = (1, 3)
FEATURES = NUMERIC + len(CATEGORICAL)


def log(message: str) -> None:
    print(f"# {message}", file=sys.stderr, flush=True)


# --- the data -------------------------------------------------------------------------------------

def columns() -> list[dict[str, Any]]:
    """[{"name", "kind", "test"}] in column order: n00..n19, c0..c4."""
    out = [{"name": f"n{i:02d}", "kind": "numeric", "test": NUM_TESTS[i % 4]} for i in range(NUMERIC)]
    out += [{"name": f"c{i}", "kind": "categorical", "test": test} for i, (_, test) in enumerate(CATEGORICAL)]
    return out


def expected_drifted() -> list[str]:
    return [f"n{i:02d}" for i in SHIFTED_NUMERIC] + [f"c{i}" for i in SHIFTED_CATEGORICAL]


def frames(n: int, seed: int = SEED):
    """(reference, current) DataFrames of n rows each."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    ref, cur = {}, {}
    for i in range(NUMERIC):
        name = f"n{i:02d}"
        if i in DISCRETE_COLUMNS:
            lam = 4.0 if i in SHIFTED_NUMERIC else 3.0
            ref[name] = np.minimum(rng.poisson(3.0, n), 8).astype(np.float64)
            cur[name] = np.minimum(rng.poisson(lam, n), 8).astype(np.float64)
            continue
        shape = i % 5

        def draw(size: int, shape: int = shape) -> np.ndarray:
            if shape == 0:
                return rng.normal(0.0, 1.0, size)
            if shape == 1:
                return rng.lognormal(0.0, 0.5, size)
            if shape == 2:
                return rng.uniform(0.0, 10.0, size)
            if shape == 3:
                return rng.exponential(2.0, size)
            return np.round(rng.normal(50.0, 10.0, size))

        ref[name] = draw(n)
        cur[name] = draw(n)
        if i in SHIFTED_NUMERIC:
            cur[name] = cur[name] + 0.5 * float(np.std(ref[name]))
    for i, (k, _) in enumerate(CATEGORICAL):
        name = f"c{i}"
        cats = np.array([f"{name}_{j}" for j in range(k)], dtype=object)
        probs = (np.arange(1, k + 1) ** -0.7)
        probs = probs / probs.sum()
        cur_probs = probs.copy()
        if i in SHIFTED_CATEGORICAL:
            cur_probs[[0, 1]] = cur_probs[[1, 0]]
        ref[name] = pd.Series(cats[rng.choice(k, n, p=probs)])
        cur[name] = pd.Series(cats[rng.choice(k, n, p=cur_probs)])
    return pd.DataFrame(ref), pd.DataFrame(cur)


# --- memory: peak RSS of the timed work (Linux) ---------------------------------------------------

def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def peak_reset() -> int | None:
    """Reset the process's peak RSS to its current RSS; returns that RSS in kB (None off Linux)."""
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
    except OSError:
        return None
    return _status_kb("VmRSS")


def peak_read(base_kb: int | None) -> dict[str, float | None]:
    peak = _status_kb("VmHWM")
    if peak is None or base_kb is None:
        import resource

        return {"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "extra_mb": None}
    return {"peak_mb": peak / 1024, "extra_mb": (peak - base_kb) / 1024}


# --- children: one per side, each in its own interpreter ------------------------------------------

def child_attest(data_dir: Path, config: list[dict[str, Any]], repeats: int) -> dict[str, Any]:
    """`repeats` single-threaded runs (a fresh profile each; the median is reported), then one run
    on the last run's warm profile ("cached profile") and one fresh run in 2 threads."""
    import statistics

    import pandas as pd

    from monitoring.stats import FeatureSpec, dataset_drift, reference_profile

    ref = pd.read_parquet(data_dir / "reference.parquet")
    cur = pd.read_parquet(data_dir / "current.parquet")
    specs = [FeatureSpec(c["name"], c["kind"], c["test"]) for c in config]
    base = peak_reset()
    runs = []
    for _ in range(max(1, repeats)):
        cpu = time.process_time()
        start = time.perf_counter()
        profile = reference_profile(ref, specs)
        profiled = time.perf_counter()
        result = dataset_drift(profile, cur, drift_share=0.5)
        done = time.perf_counter()
        runs.append((done - start, time.process_time() - cpu, profiled - start, done - profiled))
    memory = peak_read(base)
    cached_start = time.perf_counter()
    dataset_drift(profile, cur, drift_share=0.5)
    cached = time.perf_counter() - cached_start
    threaded_start = time.perf_counter()
    threaded = dataset_drift(reference_profile(ref, specs, workers=2), cur, drift_share=0.5, workers=2)
    threaded_seconds = time.perf_counter() - threaded_start
    if threaded != result:
        raise SystemExit("2 threads gave a different result than 1")
    median = sorted(runs)[len(runs) // 2]
    scores = {}
    for feature in result["features"]:
        score = feature["p_value"] if feature["test"] in ("ks", "chisquare") else feature["statistic"]
        details = feature["details"]
        shares = list(details.get("reference_shares", {}).values()) + list(details.get("current_shares", {}).values())
        scores[feature["feature"]] = {"test": feature["test"], "score": score, "statistic": feature["statistic"],
                                      "drifted": feature["drifted"], "binning": details.get("binning"),
                                      "empty_bin": any(share == 0 for share in shares),
                                      "unseen": details.get("unseen_count", details.get("unseen_values", 0))}
    return {"seconds": median[0], "cpu_seconds": median[1], "profile_seconds": median[2],
            "drift_seconds": median[3], "all_seconds": [r[0] for r in runs], "cached_seconds": cached,
            "threads2_seconds": threaded_seconds, "spread": statistics.pstdev([r[0] for r in runs]), **memory,
            "scores": scores,
            "drifted": result["drifted_features"], "share": result["share"], "dataset_drift": result["dataset_drift"],
            "version": "attest " + sys.version.split()[0]}


def child_evidently(data_dir: Path, config: list[dict[str, Any]]) -> dict[str, Any]:
    import warnings

    import evidently
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    warnings.filterwarnings("ignore")
    ref = pd.read_parquet(data_dir / "reference.parquet")
    cur = pd.read_parquet(data_dir / "current.parquet")
    numeric = [c["name"] for c in config if c["kind"] == "numeric"]
    categorical = [c["name"] for c in config if c["kind"] == "categorical"]
    methods = {c["name"]: c["test"] for c in config}
    base = peak_reset()
    cpu = time.process_time()
    start = time.perf_counter()
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    reference = Dataset.from_pandas(ref, data_definition=definition)
    current = Dataset.from_pandas(cur, data_definition=definition)
    snapshot = Report([DataDriftPreset(per_column_method=methods, drift_share=0.5)]).run(
        current_data=current, reference_data=reference)
    done = time.perf_counter()
    cpu = time.process_time() - cpu
    memory = peak_read(base)
    scores, drifted_count = {}, None
    for metric in snapshot.dict()["metrics"]:
        cfg = metric.get("config", {})
        if cfg.get("type", "").endswith("ValueDrift"):
            scores[cfg["column"]] = {"test": cfg.get("method"), "score": metric["value"],
                                     "threshold": cfg.get("threshold")}
        elif cfg.get("type", "").endswith("DriftedColumnsCount"):
            drifted_count = metric["value"]["count"]
    return {"seconds": done - start, "cpu_seconds": cpu, **memory, "scores": scores, "drifted_count": drifted_count,
            "version": f"evidently {evidently.__version__}"}


def run_child(python: Path, side: str, data_dir: Path, config_path: Path, repeats: int = 1) -> dict[str, Any]:
    cmd = [str(python), str(Path(__file__).resolve()), "--child", side, "--data", str(data_dir),
           "--config", str(config_path), "--repeats", str(repeats)]
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "PYTHONPATH")}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False,
                          cwd=REPO_ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"{side} child failed (exit {done.returncode}): {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the peer's virtualenv ------------------------------------------------------------------------

# Without importing Evidently (seconds): the packages are there, and pandas is one it imports on.
EVIDENTLY_CHECK = ("import importlib.util as u, importlib.metadata as m, sys; "
                   "ok = all(u.find_spec(p) for p in ('evidently', 'pyarrow')) "
                   "and int(m.version('pandas').split('.')[0]) < 3; "
                   "sys.exit(0 if ok else 1)")


def evidently_install(venv: Path, quick: bool) -> str | None:
    """Ensure Evidently is installed in its own virtualenv; None when ready, else why not."""
    return peer_venv_install(venv, EVIDENTLY_SPECS, check=EVIDENTLY_CHECK, quick=quick, pip_timeout=1200)


# --- comparison -----------------------------------------------------------------------------------

def shared_definition(column: dict[str, Any], ours: dict[str, Any]) -> str | None:
    """None when both sides define the statistic the same way here, else why not."""
    test = column["test"]
    if column["kind"] == "numeric" and test in ("psi", "jensenshannon") and ours["binning"] != "values":
        return "bins differ (Attest: reference deciles; Evidently: Sturges bins over both samples)"
    if test == "psi" and ours["empty_bin"]:
        return "an empty bin (the two sides' small-count corrections differ)"
    if test == "chisquare" and ours["unseen"]:
        return "unseen categories (Attest pools them; Evidently's expected count is 0)"
    return None


def compare(config: list[dict[str, Any]], ours: dict[str, Any], peer: dict[str, Any]) -> dict[str, Any]:
    rows, compared, equal, worst = [], 0, 0, 0.0
    for column in config:
        name = column["name"]
        a, b = ours["scores"][name], peer["scores"].get(name)
        why_not = "missing in Evidently's output" if b is None else shared_definition(column, a)
        same = None
        if why_not is None:
            compared += 1
            x, y = a["score"], b["score"]
            same = x is not None and y is not None and math.isclose(x, y, rel_tol=EQUAL_REL, abs_tol=1e-12)
            equal += bool(same)
            if x is not None and y is not None:
                worst = max(worst, abs(x - y) / max(abs(y), 1e-300) if y else abs(x - y))
        rows.append((name, column["test"], a["score"], None if b is None else b["score"],
                     "compared" if why_not is None else "not compared", same, why_not or ""))
    return {"rows": rows, "compared": compared, "equal": equal, "max_rel_diff": worst}


# --- main -----------------------------------------------------------------------------------------

def measure(size: int, args: argparse.Namespace, peer_python: Path | None) -> dict[str, Any]:
    config = columns()
    # A directory of this run's own: two runs at once (say, a test suite on two databases) never share files.
    DATA_ROOT.mkdir(parents=True, exist_ok=True)
    data_dir = Path(tempfile.mkdtemp(prefix=f"rows_{size}_", dir=DATA_ROOT))
    try:
        log(f"{size:,} rows per side: generating and writing Parquet to {data_dir}")
        ref, cur = frames(size)
        ref.to_parquet(data_dir / "reference.parquet", index=False)
        cur.to_parquet(data_dir / "current.parquet", index=False)
        del ref, cur
        config_path = data_dir / "config.json"
        config_path.write_text(json.dumps(config))
        repeats = args.repeats if args.repeats is not None else (1 if args.quick else 3)
        ours = run_child(Path(sys.executable), "attest", data_dir, config_path, repeats)
        log(f"{size:,}: Attest {ours['seconds']:.2f} s, median of {', '.join(f'{x:.2f}' for x in ours['all_seconds'])} "
            f"(profile {ours['profile_seconds']:.2f} s; cached profile {ours['cached_seconds']:.2f} s; 2 threads "
            f"{ours['threads2_seconds']:.2f} s), peak {ours['peak_mb']:.0f} MB")
        peer = None
        if peer_python is not None:
            peer = run_child(peer_python, "evidently", data_dir, config_path)
            log(f"{size:,}: Evidently {peer['seconds']:.2f} s, peak {peer['peak_mb']:.0f} MB")
    finally:
        if not args.keep_data:
            shutil.rmtree(data_dir, ignore_errors=True)
    return {"size": size, "config": config, "ours": ours, "peer": peer, "data_dir": str(data_dir),
            "comparison": None if peer is None else compare(config, ours, peer)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2k and 20k rows, under a minute")
    parser.add_argument("--no-peer", action="store_true", help="Attest only (no Evidently): peer and ratio null")
    parser.add_argument("--sizes", default=None, help="comma-separated rows per side (default 100000,1000000)")
    parser.add_argument("--evidently-venv", type=Path, default=EVIDENTLY_VENV)
    parser.add_argument("--repeats", type=int, default=None,
                        help="Attest runs per size, median reported (default 3; 1 with --quick); Evidently runs once")
    parser.add_argument("--keep-data", action="store_true", help="keep the Parquet files under var/bench/drift-data")
    parser.add_argument("--child", choices=("attest", "evidently"), help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        config = json.loads(args.config.read_text())
        out = (child_attest(args.data, config, args.repeats) if args.child == "attest"
               else child_evidently(args.data, config))
        print(json.dumps(out))
        return 0

    sizes = tuple(int(s) for s in args.sizes.split(",")) if args.sizes else (QUICK_SIZES if args.quick
                                                                               else FULL_SIZES)
    peer_python, peer_note = None, "--no-peer"
    if not args.no_peer:
        venv = args.evidently_venv.resolve()
        why_not = evidently_install(venv, args.quick)
        if why_not is None:
            peer_python = venv / "bin" / "python"
        else:
            peer_note = why_not
            log(f"Evidently: {why_not}")
    wall = time.perf_counter()
    # --quick runs the peer at its largest size only (Evidently's start-up alone takes seconds)
    runs = [measure(size, args, peer_python if not args.quick or size == sizes[-1] else None) for size in sizes]
    wall = time.perf_counter() - wall

    figures: dict[str, Any] = {"features": FEATURES, "numeric": NUMERIC, "categorical": len(CATEGORICAL),
                               "sizes": list(sizes), "wall_seconds": round(wall, 1),
                               "data_dirs": [run["data_dir"] for run in runs], "data_kept": args.keep_data}
    rows = []
    for run in runs:
        size, ours, peer = run["size"], run["ours"], run["peer"]
        ours_rate = rate(size * FEATURES, ours["seconds"])
        peer_rate = None if peer is None else rate(size * FEATURES, peer["seconds"])
        ratio = None if peer_rate is None else ours_rate / peer_rate
        cmp = run["comparison"]
        figures.update({
            f"attest_seconds_{size}": round(ours["seconds"], 4),
            f"attest_cpu_seconds_{size}": round(ours["cpu_seconds"], 4),
            f"evidently_cpu_seconds_{size}": None if peer is None else round(peer["cpu_seconds"], 4),
            f"cpu_ratio_{size}": None if peer is None else round(peer["cpu_seconds"] / ours["cpu_seconds"], 3),
            f"attest_profile_seconds_{size}": round(ours["profile_seconds"], 4),
            f"attest_cached_profile_seconds_{size}": round(ours["cached_seconds"], 4),
            f"attest_all_seconds_{size}": [round(x, 4) for x in ours["all_seconds"]],
            f"attest_2threads_seconds_{size}": round(ours["threads2_seconds"], 4),
            f"attest_rows_features_per_s_{size}": round(ours_rate),
            f"attest_peak_mb_{size}": round(ours["peak_mb"], 1),
            f"attest_extra_mb_{size}": None if ours["extra_mb"] is None else round(ours["extra_mb"], 1),
            f"attest_drifted_{size}": ours["drifted"],
            f"evidently_seconds_{size}": None if peer is None else round(peer["seconds"], 4),
            f"evidently_rows_features_per_s_{size}": None if peer_rate is None else round(peer_rate),
            f"evidently_peak_mb_{size}": None if peer is None else round(peer["peak_mb"], 1),
            f"evidently_extra_mb_{size}": None if peer is None or peer["extra_mb"] is None
            else round(peer["extra_mb"], 1),
            f"evidently_drifted_count_{size}": None if peer is None else peer["drifted_count"],
            f"ratio_{size}": None if ratio is None else round(ratio, 3),
            f"shared_compared_{size}": None if cmp is None else cmp["compared"],
            f"shared_equal_{size}": None if cmp is None else cmp["equal"],
            f"shared_max_rel_diff_{size}": None if cmp is None else cmp["max_rel_diff"],
        })
        rows.append((f"{size:,}", FEATURES, ours["seconds"], ours["cpu_seconds"], ours_rate, ours["cached_seconds"],
                     ours["peak_mb"], ours["extra_mb"], None if peer is None else peer["seconds"],
                     None if peer is None else peer["cpu_seconds"], peer_rate,
                     None if peer is None else peer["peak_mb"], None if peer is None else peer["extra_mb"], ratio,
                     figures[f"cpu_ratio_{size}"], None if cmp is None else f"{cmp['equal']}/{cmp['compared']}"))
    versus = peer_note if peer_python is None else "Evidently"
    table_print(f"Drift check, rows per side x features (Attest vs {versus})",
                ["rows per side", "features", "Attest s", "Attest CPU s", "Attest rows*feat/s", "cached-profile s",
                 "Attest peak MB", "Attest +MB", "Evidently s", "Evidently CPU s", "Evidently rows*feat/s",
                 "Evidently peak MB", "Evidently +MB", "ratio", "CPU ratio", "shared equal"], rows)
    last = runs[-1]
    if last["comparison"] is not None:
        table_print(f"Per feature at {last['size']:,} rows: Attest score vs Evidently's drift score "
                    "(p-value for ks/chisquare)",
                    ["feature", "test", "Attest", "Evidently", "", "equal (1e-9)", "why not compared"],
                    [(n, t, _num(a), _num(b), c, s, w) for n, t, a, b, c, s, w in last["comparison"]["rows"]])
    for run in runs:
        extra = [name for name in run["ours"]["drifted"] if name not in expected_drifted()]
        print(f"Attest drifted features at {run['size']:,} rows: {', '.join(run['ours']['drifted'])} "
              f"(shifted by design: {', '.join(expected_drifted())}; also flagged: {', '.join(extra) or 'none'}; "
              "a p-value test flags an unshifted column 5% of the time)")

    ratio = figures.get(f"ratio_{last['size']}")
    shared_ok = None if last["comparison"] is None else all(
        figures[f"shared_equal_{r['size']}"] == figures[f"shared_compared_{r['size']}"] for r in runs)
    figures["goals"] = {"ratio_largest_ge_20": None if ratio is None else ratio >= GOAL_RATIO,
                        "shared_statistics_equal_1e-9": shared_ok,
                        "shifted_features_detected": all(set(expected_drifted()) <= set(r["ours"]["drifted"])
                                                         for r in runs)}
    figures["peer_version"] = None if last["peer"] is None else last["peer"]["version"]
    result_print(bench=BENCH, figures=figures, peer=None if last["peer"] is None else "evidently",
                 ratio=ratio, goal=GOAL_RATIO, met=bool(ratio is not None and ratio >= GOAL_RATIO and shared_ok))
    return 0


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e6):
        return f"{value:.6e}"
    return f"{value:.9f}"


if __name__ == "__main__":
    sys.exit(main())
