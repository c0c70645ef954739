"""Reports benchmark (issue 5 item 8): Attest's fairness report vs bare fairlearn MetricFrame; SHAP on the demo models.

    python bench/reports.py            # full size: 1,000,000 rows (a few minutes: MetricFrame is slow)
    python bench/reports.py --quick    # 10,000 rows, SHAP at 200 and 1,000 rows (under a minute)

Measured in one run, on the same data, side by side:

* Fairness, 1,000,000 rows (--rows), one sensitive column with 2, 10 and 100 groups (Zipf-like
  sizes: the largest of 100 groups is 100x the smallest), binary labels, predictions and scores:
  - Attest: `governance.fairness.fairness_compute(..., bootstrap=0)` (per-group count, selection
    rate, accuracy, precision, recall, FPR, FNR, ROC AUC; demographic parity difference and ratio,
    equalized odds difference and ratio, equal opportunity difference), median of 3 timed calls
    after an untimed warm-up;
  - the peer: bare fairlearn `MetricFrame` with fairlearn's and scikit-learn's metric functions
    (`selection_rate`, `accuracy_score`, `precision_score(zero_division=0)`, `recall_score`,
    `false_positive_rate`, `false_negative_rate`, `roc_auc_score` on the scores via
    sample_params, `count`) and its `difference()` / `ratio()` (between_groups), one timed call;
  - every per-group number and aggregate is compared: the run fails (exit 1) unless all are
    equal to 1e-9.
* Bootstrap: `fairness_compute(..., bootstrap=1000)` at the same size, 10 and 100 groups (the
  multinomial-over-cells resampling described in governance/fairness.py).
* Peak memory, 10 groups: for each of Attest (bootstrap 0 and 1000) and MetricFrame, a fresh
  child process builds the inputs, warms up, resets its peak RSS (Linux /proc/self/clear_refs)
  and makes one call; the figure is the peak RSS during the call minus the RSS before it (the
  inputs are not counted). And this process's max RSS at the end.
* Explainability: `governance.explain.explain_compute` (the report's own function: explainer by
  model type, mean |SHAP| per input column, per-group importance, proxy check) on the two demo
  classifiers, built and fitted as `registry.demo` builds them (`_arrests_pipeline`, the demo's
  training split of the Toronto arrests data), explaining 1,000 and 10,000 rows (the arrests
  rows drawn with replacement, seeded), after an untimed 50-row call (imports shap).

Closing line (CONTRACT.md): `ratio` = MetricFrame seconds / Attest seconds at 10 groups and the
full row count; `goal` = 100; `met` = ratio >= 100, numbers equal to 1e-9 at every size, 1,000
bootstrap resamples under 10 s, every explainability report under 10 s.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import django_setup, parse_args, result_print, table_print  # noqa: E402

BENCH = "reports"
GOAL_RATIO = 100.0
GOAL_BOOTSTRAP_S = 10.0
GOAL_EXPLAIN_S = 10.0
TOLERANCE = 1e-9
GROUP_COUNTS = (2, 10, 100)
RATIO_GROUPS = 10
BOOTSTRAP_RESAMPLES = 1000
# full, quick
ROWS = (1_000_000, 10_000)
SHAP_ROWS = ((1_000, 10_000), (200, 1_000))
METRICS = ("selection_rate", "accuracy", "precision", "recall", "fpr", "fnr", "roc_auc")
AGGREGATES = ("demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference",
              "equalized_odds_ratio", "equal_opportunity_difference")


def log(message: str) -> None:
    print(f"# {message}", file=sys.stderr, flush=True)


# --- data ------------------------------------------------------------------------------------------

def synthetic(rows: int, groups: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, pd.DataFrame]:
    """Labels, predictions and scores with group-dependent rates; group sizes ~ 1/(rank+1)."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, groups + 1)
    codes = rng.choice(groups, size=rows, p=weights / weights.sum())
    names = np.array([f"g{i:03d}" for i in range(groups)], dtype=object)
    effect = rng.normal(scale=0.4, size=groups)
    y_true = (rng.random(rows) < 0.35 + 0.1 * np.tanh(effect[codes])).astype(np.int64)
    logit = -0.6 + 1.6 * y_true + effect[codes] + rng.normal(size=rows)
    y_score = 1.0 / (1.0 + np.exp(-logit))
    y_pred = (y_score >= 0.5).astype(np.int64)
    return y_true, y_pred, y_score, pd.DataFrame({"group": pd.Series(names[codes])})


# --- the two sides ---------------------------------------------------------------------------------

def attest_fairness(y_true, y_pred, y_score, sensitive, bootstrap: int = 0) -> dict[str, Any]:
    from governance.fairness import fairness_compute

    return fairness_compute(y_true=y_true, y_pred=y_pred, y_score=y_score, sensitive=sensitive,
                            bootstrap=bootstrap, seed=0, intersections=False)


def peer_fairness(y_true, y_pred, y_score, sensitive) -> dict[str, Any]:
    """Bare fairlearn: one MetricFrame with the library metric functions, then difference()/ratio()."""
    from fairlearn.metrics import MetricFrame, count, false_negative_rate, false_positive_rate, selection_rate
    from sklearn.metrics import accuracy_score, precision_score, recall_score, roc_auc_score

    def precision(y_t, y_p):
        return precision_score(y_t, y_p, zero_division=0)

    def recall(y_t, y_p):
        return recall_score(y_t, y_p, zero_division=0)

    def roc_auc(y_t, y_p, y_score):
        return roc_auc_score(y_t, y_score)

    frame = MetricFrame(
        metrics={"count": count, "selection_rate": selection_rate, "accuracy": accuracy_score,
                 "precision": precision, "recall": recall, "fpr": false_positive_rate,
                 "fnr": false_negative_rate, "roc_auc": roc_auc},
        y_true=y_true, y_pred=y_pred, sensitive_features=sensitive["group"],
        sample_params={"roc_auc": {"y_score": y_score}},
    )
    difference, ratio = frame.difference(method="between_groups"), frame.ratio(method="between_groups")
    return {
        "by_group": frame.by_group,
        "aggregates": {
            "demographic_parity_difference": difference["selection_rate"],
            "demographic_parity_ratio": ratio["selection_rate"],
            "equalized_odds_difference": max([difference["recall"], difference["fpr"]]),
            "equalized_odds_ratio": min([ratio["recall"], ratio["fpr"]]),
            "equal_opportunity_difference": difference["recall"],
        },
    }


def largest_difference(attest: dict[str, Any], peer: dict[str, Any]) -> float:
    """The largest absolute difference over every per-group number and aggregate (inf on a mismatch)."""
    feature = attest["features"]["group"]
    rows = {row["group"]: row for row in feature["groups"]}
    expected = peer["by_group"]
    if set(rows) != {str(g) for g in expected.index}:
        return float("inf")
    worst = 0.0
    for group, values in expected.iterrows():
        row = rows[str(group)]
        if row["count"] != int(values["count"]):
            return float("inf")
        for key in METRICS:
            worst = max(worst, _gap(row[key], float(values[key])))
    for key in AGGREGATES:
        worst = max(worst, _gap(feature["aggregates"][key], float(peer["aggregates"][key])))
    return worst


def _gap(got: float | None, expected: float) -> float:
    if got is None or expected != expected:  # None is how the report writes NaN
        return 0.0 if got is None and expected != expected else float("inf")
    return abs(got - expected)


def timed(fn) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def peak_mib(side: str, rows: int) -> float | None:
    """Peak memory of one call above the inputs: a child process's peak RSS during the call minus its RSS before.

    A fresh process per side; the inputs are built and the libraries warmed up, then the peak
    (VmHWM) is reset through /proc/self/clear_refs, so only the call's own peak counts.
    """
    done = subprocess.run([sys.executable, __file__, "--child-memory", side, "--rows", str(rows)],
                          capture_output=True, text=True, timeout=3600, check=False)
    if done.returncode != 0:
        log(f"memory child {side} failed: {done.stderr[-500:]}")
        return None
    return float(done.stdout.strip().splitlines()[-1])


def child_memory(side: str, rows: int) -> float:
    y_true, y_pred, y_score, sensitive = synthetic(rows, RATIO_GROUPS)
    small = synthetic(2000, 3, seed=99)
    calls = {"attest": lambda *d: attest_fairness(*d),
             "attest_bootstrap": lambda *d: attest_fairness(*d, bootstrap=BOOTSTRAP_RESAMPLES),
             "metricframe": peer_fairness}
    calls[side](*small)
    Path("/proc/self/clear_refs").write_text("5")  # Linux: reset the peak (VmHWM) to the current RSS
    before = _status_kib("VmRSS")
    calls[side](y_true, y_pred, y_score, sensitive)
    return (_status_kib("VmHWM") - before) / 1024


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


# --- explainability --------------------------------------------------------------------------------

def explain_measure(sizes: tuple[int, ...]) -> list[dict[str, Any]]:
    """explain_compute on the demo's two arrests classifiers, as registry.demo builds and fits them."""
    var_dir = Path(tempfile.mkdtemp(prefix="attest-bench-reports-"))
    django_setup(f"sqlite:///{var_dir / 'unused.sqlite3'}", var_dir, migrate=False)  # registry.demo imports models
    from sklego.datasets import load_arrests

    from governance.explain import explain_compute
    from registry.demo import _arrests_pipeline, _split

    frame = load_arrests(as_frame=True)
    split = _split(frame, stratify="released")
    features = [column for column in frame.columns if column != "released"]
    sensitive = ["colour", "sex", "age", "citizen"]
    rng = np.random.default_rng(0)
    results = []
    for kind in ("logistic_regression", "gradient_boosting"):
        model, head = _arrests_pipeline(kind)
        fit_s, _ = timed(lambda model=model: model.fit(split.training[features], split.training["released"]))
        warm = split.evaluation.iloc[:50]  # untimed: imports shap and its explainer code once
        explain_compute(model=model, features=warm[features], sensitive=warm[sensitive], task="classification",
                        positive_label="Yes", max_rows=50, seed=0)
        for rows in sizes:
            data = frame.iloc[rng.integers(0, len(frame), size=rows)].reset_index(drop=True)
            seconds, explanation = timed(lambda data=data, model=model, rows=rows: explain_compute(
                model=model, features=data[features], sensitive=data[sensitive], task="classification",
                positive_label="Yes", max_rows=rows, seed=0))
            results.append({"model": kind, "head": type(head).__name__, "rows": rows, "seconds": seconds,
                            "fit_seconds": fit_s, "explainer": explanation.results["explainer_class"],
                            "explained": explanation.results["sample"]["rows"],
                            "top": explanation.results["top_features"][:3]})
            log(f"explain {kind} {rows:,} rows: {seconds:.2f} s")
    return results


# --- run -------------------------------------------------------------------------------------------

def _extra(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rows", type=int, default=None, help="rows of the fairness data (default 1,000,000; "
                                                               "quick 10,000)")
    parser.add_argument("--no-shap", action="store_true", help="skip the explainability part")
    parser.add_argument("--child-memory", choices=["attest", "attest_bootstrap", "metricframe"],
                        help=argparse.SUPPRESS)


def main() -> int:
    args = parse_args(__doc__.splitlines()[0], extra=_extra)
    if args.child_memory:
        warnings.filterwarnings("ignore", category=UserWarning)
        print(child_memory(args.child_memory, args.rows))
        return 0
    started = time.perf_counter()
    rows = args.rows or ROWS[1 if args.quick else 0]
    warnings.filterwarnings("ignore", category=UserWarning)  # sklearn's single-label notes on tiny groups

    y_true, y_pred, y_score, sensitive = synthetic(2000, 3, seed=99)
    attest_fairness(y_true, y_pred, y_score, sensitive)  # warm-up: imports, first-call costs
    peer_fairness(y_true, y_pred, y_score, sensitive)

    fairness_rows, figures = [], {}
    all_equal = True
    for groups in GROUP_COUNTS:
        data = synthetic(rows, groups)
        times = []
        for _ in range(3):
            seconds, ours = timed(lambda data=data: attest_fairness(*data))
            times.append(seconds)
        ours_s = statistics.median(times)
        log(f"{groups} groups: Attest {ours_s * 1000:.0f} ms; MetricFrame running …")
        peer_s, peer = timed(lambda data=data: peer_fairness(*data))
        gap = largest_difference(ours, peer)
        equal = gap <= TOLERANCE
        all_equal &= equal
        small = sum(row["small"] for row in ours["features"]["group"]["groups"])
        fairness_rows.append((f"{rows:,} rows, {groups} groups ({small} below 30)", ours_s * 1000, peer_s * 1000,
                              peer_s / ours_s, gap, equal))
        figures.update({f"fairness_{groups}g_attest_ms": round(ours_s * 1000, 2),
                        f"fairness_{groups}g_metricframe_ms": round(peer_s * 1000, 1),
                        f"fairness_{groups}g_ratio": round(peer_s / ours_s, 2),
                        f"fairness_{groups}g_max_abs_difference": gap, f"fairness_{groups}g_equal": equal})
    table_print(f"Fairness report, one sensitive column, {rows:,} rows: Attest fairness_compute (median of 3) vs "
                "bare fairlearn MetricFrame + scikit-learn metrics (1 run); ratio = MetricFrame / Attest",
                ["data", "Attest ms", "MetricFrame ms", "ratio", "max |difference|", "equal to 1e-9"],
                fairness_rows)

    boot_rows = []
    for groups in (RATIO_GROUPS, 100):
        data = synthetic(rows, groups)
        plain_s = statistics.median(timed(lambda data=data: attest_fairness(*data))[0] for _ in range(3))
        boot_s, booted = timed(lambda data=data: attest_fairness(*data, bootstrap=BOOTSTRAP_RESAMPLES))
        ci = booted["ci"]["demographic_parity_difference"]
        boot_rows.append((f"{rows:,} rows, {groups} groups", BOOTSTRAP_RESAMPLES, boot_s, boot_s - plain_s,
                          f"{booted['headline']['demographic_parity_difference']:.4f} "
                          f"[{ci['low']:.4f}, {ci['high']:.4f}]"))
        figures[f"bootstrap_{groups}g_s"] = round(boot_s, 3)
        figures[f"bootstrap_{groups}g_resampling_s"] = round(boot_s - plain_s, 3)
    table_print("Bootstrap: fairness_compute(bootstrap=1000): whole call, and the part above the plain call",
                ["data", "resamples", "seconds", "resampling s", "DP difference [95% CI]"], boot_rows)

    memory = {"Attest, bootstrap 0": peak_mib("attest", rows),
              "Attest, bootstrap 1000": peak_mib("attest_bootstrap", rows),
              "MetricFrame": peak_mib("metricframe", rows)}
    table_print(f"Peak memory above the inputs ({rows:,} rows, {RATIO_GROUPS} groups): peak RSS of a fresh process "
                "during one call minus its RSS before (inputs built, libraries warmed up)",
                ["call", "peak MiB"], list(memory.items()))
    figures.update({"peak_mib_attest": _round(memory["Attest, bootstrap 0"]),
                    "peak_mib_attest_bootstrap": _round(memory["Attest, bootstrap 1000"]),
                    "peak_mib_metricframe": _round(memory["MetricFrame"])})

    explain = []
    if not args.no_shap:
        explain = explain_measure(SHAP_ROWS[1 if args.quick else 0])
        table_print("Explainability: governance.explain.explain_compute on the demo classifiers "
                    "(registry.demo._arrests_pipeline, fitted on the demo's training split)",
                    ["model", "explainer", "rows explained", "seconds", "top features"],
                    [(r["model"], r["explainer"], r["explained"], r["seconds"], ", ".join(r["top"]))
                     for r in explain])
        for r in explain:
            figures[f"explain_{r['model']}_{r['rows']}_s"] = round(r["seconds"], 3)

    maxrss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    elapsed = time.perf_counter() - started
    print(f"\nmax RSS {maxrss_mib:,.0f} MiB; elapsed {elapsed:.1f} s; shared 2-core machine")
    ratio = figures[f"fairness_{RATIO_GROUPS}g_ratio"]
    goals = {
        "ratio_ge_100": ratio >= GOAL_RATIO,
        "equal_1e9": all_equal,
        "bootstrap_1000_lt_10s": all(figures[f"bootstrap_{g}g_s"] < GOAL_BOOTSTRAP_S for g in (RATIO_GROUPS, 100)),
        "explain_lt_10s": (all(r["seconds"] < GOAL_EXPLAIN_S for r in explain) if explain else None),
    }
    figures.update({"rows": rows, "quick": args.quick, "max_rss_mib": round(maxrss_mib, 1),
                    "elapsed_s": round(elapsed, 1), "goals": goals})
    met = all(value is True for value in goals.values())
    result_print(bench=BENCH, figures=figures, peer="fairlearn MetricFrame", ratio=ratio, goal=GOAL_RATIO, met=met)
    return 0 if all_equal else 1


if __name__ == "__main__":
    sys.exit(main())
