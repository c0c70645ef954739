"""Fairness metrics per sensitive group: fairlearn's definitions, computed on count arrays.

`fairness_compute()` is pure (numpy and pandas; no Django): it takes labels or predictions and a
frame of sensitive features and returns a JSON-serialisable dict (plain str/int/float/bool/None,
NaN and infinity written as None). The `reports` code stores it and draws the charts.

Definitions (fairlearn 0.15, checked to 1e-9 against `MetricFrame` by
tests/governance/test_fairness_engine.py):

* Classification (binary). `positive_label` is the favourable outcome (fairlearn's "good
  outcome" of `selection_rate`). Per group, from the confusion counts TN, FP, FN, TP:
  selection_rate = (TP+FP)/n; accuracy = (TP+TN)/n; precision = TP/(TP+FP), 0.0 when nothing is
  predicted positive (scikit-learn's `zero_division` default); recall (= TPR) = TP/(TP+FN);
  fpr = FP/(FP+TN); fnr = FN/(TP+FN). Like fairlearn's `true_positive_rate`,
  `false_positive_rate` and `false_negative_rate` (a confusion matrix normalised by its rows, then
  `nan_to_num`), a rate whose denominator is empty is 0.0, not undefined: a group without actual
  positives has recall 0.0 and fnr 0.0 and so pulls the equal-opportunity numbers; each group
  carries `positives` and `negatives` counts so a reader can see it. roc_auc is scikit-learn's
  `roc_auc_score` (ties count one half), None without scores or for a group with one class.
* Aggregates, fairlearn's `method="between_groups"`: a difference is max - min over the groups
  (`MetricFrame.difference()`), a ratio min / max (`MetricFrame.ratio()`, None when max is 0).
  demographic_parity_* use the selection rate; equal_opportunity_difference the TPR;
  equalized_odds_difference is the larger of the TPR and FPR differences and
  equalized_odds_ratio the smaller of the two ratios (`agg="worst_case"`, with Python's
  `max`/`min` over [tpr, fpr] exactly as fairlearn, so an undefined TPR ratio makes the
  equalized-odds ratio undefined).
* Regression: per group mae, rmse (scikit-learn's `mean_absolute_error`,
  `root_mean_squared_error`) and mean_prediction; aggregates mae_difference, mae_ratio,
  rmse_difference, rmse_ratio (same between-groups rule).
* worst_group names the group responsible for each aggregate: the lowest selection rate, the
  lowest TPR, the highest FPR (for the equalized-odds aggregates, whichever of TPR and FPR
  decides them), the highest MAE / RMSE. Ties go to the first group in the listed order.

Small groups (count < min_group_size) are reported with `small: true` and, as in fairlearn,
enter `aggregates` and `headline` (whose `where` says whether the deciding group is small).
Because the intersections make small groups common, each feature also carries
`aggregates_excluding_small` and the result `headline_excluding_small`: the same aggregates
over the groups of min_group_size rows or more only (None when fewer than two such groups);
no interval is computed for those.

Features reported: each sensitive column; every pair of columns (`"colour×sex"`, groups such as
`"Black×Male"`); and, with three or more columns, the intersection of all of them. Other partial
intersections (the triples of four columns, ...) are not reported: their number grows fast and
their groups get small, and the full intersection already gives the finest view. So k columns
give k + k(k-1)/2 (+1 when k >= 3) features. Only combinations that occur in the data are groups.
The headline takes, for each aggregate, the worst value over all reported features (min of the
ratios, max of the differences) and `where` names its feature and group.

Group labels: the value as text; missing sensitive values form the group "(missing)" (reported,
never dropped). Continuous columns (numeric, not boolean, more than 10 distinct values) are
binned into right-open intervals [a, b) labelled "[25, 35)": a column named `age` (or `*_age`,
`age_*`) with AGE_EDGES [0, 18, 25, 35, 45, 55, 65, inf); any other with quintile edges
(rounded to 4 significant digits, the ends open: [-inf, q20, q40, q60, q80, inf]). `bins`
overrides the edges per column (and bins a column that would not be binned). Values outside the
edges form "(out of bins)". The edges used are in `binning`, an unbounded end written as None.
A categorical column stored as integers with more than 10 codes is binned: pass it as text or
a pandas Categorical to keep its codes as groups.

Method (issue 5 item 8). Rows are reduced once to the cells of the joint grouping: the
intersection J of all sensitive columns crossed with the confusion cell (classification), or
per-J sums of count, |error|, error² and prediction (regression). Every reported feature's
per-group counts are sums of those J cells, so after one `np.bincount` over the rows the
per-group metrics and aggregates are arithmetic on small arrays. ROC AUC per group is the
Mann-Whitney rank sum with tied scores sharing their mean rank: one sort of the scores, then
for each feature a stable (radix) sort of the group codes.

Bootstrap (bootstrap > 0): percentile intervals (level 0.95) of the headline numbers, of every
feature's aggregates and of the count-based per-group metrics. Classification: the confusion
counts of the J cells are sufficient statistics for every count-based metric here, and a row
bootstrap (n rows drawn with replacement) gives cell counts distributed exactly
Multinomial(n, observed cell counts / n); so each resample is one multinomial draw over the
J x 4 cells, not a pass over the rows: the same distribution as a row bootstrap, at a cost
independent of n. A resample in which a group is absent leaves that group out (as MetricFrame
would on those rows). Regression: |error| and error² are not finite cells, so each resample
draws n row indices (a true row bootstrap, O(n) per resample). Resamples come from
`numpy.random.default_rng(seed)`, so equal inputs and seed give equal intervals. ROC AUC has
no interval. Where they are: `ci[<headline metric>]`, `features[f]["ci"][<aggregate>]` and
`features[f]["groups"][i]["ci"][<metric>]`, each {"low", "high", "level", "resamples",
"defined" (resamples in which the number exists), "method": "percentile"}.

Errors: inputs that cannot be evaluated (missing or non-finite targets, predictions or scores;
more than two labels; a positive label not among two; lengths that differ; bad bin edges)
raise FairnessInputError, a ValueError whose `column` names the input.
"""

from __future__ import annotations

import functools
import math
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

AGE_EDGES: tuple[float, ...] = (0, 18, 25, 35, 45, 55, 65, math.inf)
QUANTILES: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8)
CONTINUOUS_MIN_DISTINCT = 10  # a numeric column with more distinct values than this is binned
MISSING = "(missing)"
OUT_OF_BINS = "(out of bins)"
SEP = "×"
CI_LEVEL = 0.95
BOOTSTRAP_CHUNK = 100  # resamples drawn at once (bounds memory; progress is reported per chunk)

CLASSIFICATION_METRICS = ("selection_rate", "accuracy", "precision", "recall", "fpr", "fnr", "roc_auc")
REGRESSION_METRICS = ("mae", "rmse", "mean_prediction")
CLASSIFICATION_AGGREGATES = ("demographic_parity_difference", "demographic_parity_ratio",
                             "equalized_odds_difference", "equalized_odds_ratio", "equal_opportunity_difference")
REGRESSION_AGGREGATES = ("mae_difference", "mae_ratio", "rmse_difference", "rmse_ratio")
# headline metric -> whether its worst value is the smallest ("min") or the largest ("max")
CLASSIFICATION_HEADLINE = {"demographic_parity_ratio": "min", "demographic_parity_difference": "max",
                           "equalized_odds_difference": "max", "equalized_odds_ratio": "min",
                           "equal_opportunity_difference": "max"}
REGRESSION_HEADLINE = {"mae_ratio": "min", "mae_difference": "max", "rmse_difference": "max"}
TASKS = ("classification", "regression")
_AGE_NAME = re.compile(r"(^|_)age($|_)", re.IGNORECASE)


class FairnessInputError(ValueError):
    """The inputs cannot be evaluated; `column` names the offending input when there is one."""

    def __init__(self, message: str, *, column: str | None = None) -> None:
        super().__init__(message)
        self.column = column


@dataclass
class _Feature:
    name: str
    labels: list[str]
    of_joint: np.ndarray  # the group code of this feature for each joint cell J


# --- public ----------------------------------------------------------------------------------------

def fairness_compute(*, y_true, y_pred, sensitive: pd.DataFrame, y_score=None, task: str = "classification",
                     positive_label=1, min_group_size: int = 30, bootstrap: int = 0, seed: int = 0,
                     intersections: bool = True, bins: dict[str, list[float]] | None = None,
                     progress: Callable[[int, int], Any] | None = None) -> dict[str, Any]:
    """Per-group metrics, between-group aggregates, headline and (bootstrap > 0) intervals.

    Raises FairnessInputError (a ValueError, with `.column`) for inputs it cannot evaluate.
    See the module docstring for the definitions and the method.
    """
    if task not in TASKS:
        raise FairnessInputError(f"task must be one of {', '.join(TASKS)}, not {task!r}", column=None)
    if not isinstance(sensitive, pd.DataFrame) or sensitive.shape[1] == 0:
        raise FairnessInputError("sensitive must be a DataFrame with at least one column", column="sensitive")
    n = len(sensitive)
    if n == 0:
        raise FairnessInputError("there are no rows to evaluate", column="sensitive")
    if int(min_group_size) < 0 or int(bootstrap) < 0:
        raise FairnessInputError("min_group_size and bootstrap must not be negative", column=None)
    bins = dict(bins or {})
    unknown = sorted(set(bins) - {str(c) for c in sensitive.columns})
    if unknown:
        raise FairnessInputError(f"bins given for a column that is not sensitive: {unknown[0]}", column=unknown[0])

    joint, features, binning = _features_build(sensitive, bins=bins, intersections=intersections)
    n_joint = len(features[0].of_joint)
    if task == "classification":
        truth, true_labels = _binary(y_true, "y_true", n, positive_label)
        predicted, predicted_labels = _binary(y_pred, "y_pred", n, positive_label)
        _labels_check(true_labels, predicted_labels, positive_label)
        cell = truth.astype(np.int64) * 2 + predicted  # 0 TN, 1 FP, 2 FN, 3 TP
        table = np.bincount(joint * 4 + cell, minlength=n_joint * 4).reshape(n_joint, 4).astype(np.float64)
        score = None if y_score is None else _numeric(y_score, "y_score", n)
    else:
        if y_score is not None:
            raise FairnessInputError("y_score is for classification only", column="y_score")
        truth, predicted = _numeric(y_true, "y_true", n), _numeric(y_pred, "y_pred", n)
        table = _regression_table(joint, n_joint, truth, predicted, weights=None)

    bootstrap = int(bootstrap)
    total = len(features) + (math.ceil(bootstrap / BOOTSTRAP_CHUNK) if bootstrap else 0)
    metrics_of = _classification_metrics if task == "classification" else _regression_metrics
    aggregates_of = _classification_aggregates if task == "classification" else _regression_aggregates
    headline_rule = CLASSIFICATION_HEADLINE if task == "classification" else REGRESSION_HEADLINE

    auc_context = None
    if task == "classification" and score is not None:
        auc_context = _AucContext(score, truth)

    result_features: dict[str, Any] = {}
    # "all": fairlearn's aggregates over every group; "large": only groups of min_group_size or more
    per_feature_aggregates: dict[str, dict[str, dict[str, float]]] = {}
    per_feature_worst: dict[str, dict[str, dict[str, dict[str, Any] | None]]] = {}
    for done, feature in enumerate(features, start=1):
        counts = _marginal(table[None], feature)[0]
        metrics = metrics_of(counts)
        if task == "classification":
            aucs = (auc_context.by_group(feature.of_joint[joint], len(feature.labels)) if auc_context is not None
                    else np.full(len(feature.labels), np.nan))
            metrics["roc_auc"] = aucs
        aggregates, worst = aggregates_of(metrics)
        # Classification cells are TN, FP, FN, TP (their sum is the count); regression's columns
        # are count, sum |error|, sum error², sum prediction, so only the first one counts rows.
        group_size = counts.sum(axis=-1) if task == "classification" else counts[..., 0]
        large = group_size >= min_group_size
        if large.sum() >= 2:
            large_aggregates, large_worst = aggregates_of({key: np.where(large, value, np.nan)
                                                           for key, value in metrics.items()})
        else:
            large_aggregates, large_worst = dict.fromkeys(aggregates, math.nan), dict.fromkeys(worst)
        groups = _groups_rows(feature, counts, metrics, task, min_group_size)
        for name, values, worst_index in (("all", aggregates, worst), ("large", large_aggregates, large_worst)):
            per_feature_aggregates.setdefault(name, {})[feature.name] = values
            per_feature_worst.setdefault(name, {})[feature.name] = {
                key: (None if index is None else {"group": feature.labels[index], "small": groups[index]["small"]})
                for key, index in worst_index.items()}
        result_features[feature.name] = {
            "groups": groups,
            "aggregates": {key: _num(value) for key, value in aggregates.items()},
            "worst_group": {key: None if found is None else found["group"]
                            for key, found in per_feature_worst["all"][feature.name].items()},
            "aggregates_excluding_small": {key: _num(value) for key, value in large_aggregates.items()},
        }
        if progress is not None:
            progress(done, total)

    overall_counts = table.sum(axis=0)[None]
    overall_metrics = metrics_of(overall_counts)
    if task == "classification":
        overall_metrics["roc_auc"] = (auc_context.by_group(np.zeros(0, dtype=np.int64), 1)
                                      if auc_context is not None else np.array([np.nan]))
    overall = _group_row(None, overall_counts[0], {k: v[0] for k, v in overall_metrics.items()}, task)
    overall.pop("group")
    overall.pop("small")

    headline, where = _headline(per_feature_aggregates["all"], per_feature_worst["all"], headline_rule)
    large_headline, large_where = _headline(per_feature_aggregates["large"], per_feature_worst["large"],
                                            headline_rule)
    result: dict[str, Any] = {
        "task": task,
        "positive_label": _plain(positive_label) if task == "classification" else None,
        "n": int(n),
        "min_group_size": int(min_group_size),
        "binning": binning,
        "features": result_features,
        "overall": overall,
        "headline": {**{key: _num(value) for key, value in headline.items()}, "where": where},
        "headline_excluding_small": {**{key: _num(value) for key, value in large_headline.items()},
                                     "where": large_where},
        "library_versions": library_versions(),
    }
    if bootstrap:
        result["ci"] = _bootstrap(
            task=task, table=table, joint=joint, truth=truth, predicted=predicted, features=features,
            result_features=result_features, headline_rule=headline_rule, resamples=bootstrap, seed=seed,
            progress=None if progress is None else (lambda k: progress(len(features) + k, total)),
        )
    return result


def library_versions() -> dict[str, str | None]:
    """Versions of the libraries whose definitions the numbers follow (fairlearn: the reference)."""
    return dict(_library_versions())


@functools.cache
def _library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in ("fairlearn", "numpy", "pandas", "scikit-learn"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


# --- inputs ----------------------------------------------------------------------------------------

def _one_dim(values, name: str, n: int) -> Any:
    if isinstance(values, pd.DataFrame):
        if values.shape[1] != 1:
            raise FairnessInputError(f"{name} must be one column", column=name)
        values = values.iloc[:, 0]
    if not isinstance(values, pd.Series):
        array = np.asarray(values)
        if array.ndim != 1:
            raise FairnessInputError(f"{name} must be one-dimensional", column=name)
        values = pd.Series(array)
    if len(values) != n:
        raise FairnessInputError(f"{name} has {len(values)} rows, the sensitive features {n}", column=name)
    return values


def _binary(values, name: str, n: int, positive_label) -> tuple[np.ndarray, list[Any]]:
    """Whether each row equals the positive label (uint8), and the distinct labels seen."""
    series = _one_dim(values, name, n)
    if isinstance(series.dtype, np.dtype) and series.dtype.kind in "biu":  # integers or booleans: no NaN, no codes
        array = series.to_numpy()
        flags = array == positive_label if _label_is_scalar(positive_label) else np.zeros(n, dtype=bool)
        return flags.astype(np.uint8), list(pd.unique(array)[:3])
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    if (codes < 0).any():
        raise FairnessInputError(f"{name} has missing values", column=name)
    out = np.zeros(n, dtype=np.uint8)
    for code, value in enumerate(uniques):
        if _label_equal(value, positive_label):
            out |= (codes == code)
    return out, list(uniques[:3])


def _label_is_scalar(value) -> bool:
    return isinstance(value, (int, float, bool, np.integer, np.floating, np.bool_))


def _label_equal(value, positive_label) -> bool:
    try:
        return bool(value == positive_label)
    except (TypeError, ValueError):
        return False


def _labels_check(true_labels: list[Any], predicted_labels: list[Any], positive_label) -> None:
    """Binary only, as fairlearn: at most two labels overall, the positive one among them if two."""
    labels: list[Any] = []
    for value in [*true_labels, *predicted_labels]:
        if not any(_label_equal(value, seen) for seen in labels):
            labels.append(value)
    if len(labels) > 2:
        shown = ", ".join(repr(_plain(v)) for v in labels[:5])
        raise FairnessInputError(f"classification is binary: y_true and y_pred hold more than two labels ({shown})",
                                 column="y_pred")
    if len(labels) == 2 and not any(_label_equal(v, positive_label) for v in labels):
        raise FairnessInputError(
            f"the positive label {positive_label!r} is not among the labels "
            f"{', '.join(repr(_plain(v)) for v in labels)}", column="y_true")


def _numeric(values, name: str, n: int) -> np.ndarray:
    series = _one_dim(values, name, n)
    if pd.api.types.is_bool_dtype(series.dtype) or not pd.api.types.is_numeric_dtype(series.dtype):
        raise FairnessInputError(f"{name} must be numeric", column=name)
    array = series.to_numpy(dtype=np.float64, na_value=np.nan)
    if not np.isfinite(array).all():
        raise FairnessInputError(f"{name} has missing or infinite values", column=name)
    return array


# --- grouping --------------------------------------------------------------------------------------

def _features_build(sensitive: pd.DataFrame, *, bins: dict[str, list[float]], intersections: bool
                    ) -> tuple[np.ndarray, list[_Feature], dict[str, list[float | None]]]:
    """Row codes of the joint cell J, the reported features as maps from J, and the binning used."""
    base_codes: list[np.ndarray] = []
    base_labels: list[list[str]] = []
    names: list[str] = []
    binning: dict[str, list[float | None]] = {}
    for column in sensitive.columns:
        name = str(column)
        if name in names:
            raise FairnessInputError(f"sensitive column {name} appears twice", column=name)
        codes, labels, edges = _column_groups(sensitive[column], name, bins.get(name))
        if edges is not None:
            binning[name] = [None if math.isinf(e) else _plain(e) for e in edges]
        names.append(name)
        base_codes.append(codes)
        base_labels.append(labels)

    joint = base_codes[0]
    n_joint = len(base_labels[0])
    for codes, labels in zip(base_codes[1:], base_labels[1:], strict=True):
        joint, n_joint = _combine(joint, n_joint, codes, len(labels))
    # the base codes of each joint cell (from one row of it)
    first_row = np.full(n_joint, -1, dtype=np.int64)
    first_row[joint[::-1]] = np.arange(len(joint) - 1, -1, -1)
    base_of_joint = [codes[first_row] for codes in base_codes]

    features = [_Feature(name, labels, of_joint)
                for name, labels, of_joint in zip(names, base_labels, base_of_joint, strict=True)]
    k = len(names)
    if intersections and k >= 2:
        tuples = [tuple(pair) for pair in combinations(range(k), 2)]
        if k >= 3:
            tuples.append(tuple(range(k)))
        for members in tuples:
            feature = _intersection(members, names, base_labels, base_of_joint)
            if feature.name in names:
                raise FairnessInputError(f"sensitive column {feature.name} has the name of an intersection",
                                         column=feature.name)
            features.append(feature)
    return joint, features, binning


def _combine(a: np.ndarray, n_a: int, b: np.ndarray, n_b: int) -> tuple[np.ndarray, int]:
    """Codes of the pairs (a, b) that occur, numbered in lexicographic order."""
    combined = a * n_b + b
    if n_a * n_b <= 4 * len(a) + 1024:
        present = np.bincount(combined, minlength=n_a * n_b) > 0
        remap = np.cumsum(present) - 1
        return remap[combined], int(present.sum())
    uniques, inverse = np.unique(combined, return_inverse=True)
    return inverse.reshape(-1).astype(np.int64), len(uniques)


def _intersection(members: Sequence[int], names: list[str], base_labels: list[list[str]],
                  base_of_joint: list[np.ndarray]) -> _Feature:
    code = base_of_joint[members[0]]
    size = len(base_labels[members[0]])
    for m in members[1:]:
        code = code * len(base_labels[m]) + base_of_joint[m]
        size *= len(base_labels[m])
    uniques, of_joint = np.unique(code, return_inverse=True)
    labels = []
    for value in uniques.tolist():
        parts = []
        for m in reversed(members):
            value, part = divmod(value, len(base_labels[m]))
            parts.append(base_labels[m][part])
        labels.append(SEP.join(reversed(parts)))
    return _Feature(SEP.join(names[m] for m in members), labels, of_joint.reshape(-1).astype(np.int64))


def _column_groups(series: pd.Series, name: str, edges: Sequence[float] | None
                   ) -> tuple[np.ndarray, list[str], list[float] | None]:
    """Group codes 0..G-1 of one sensitive column, their labels, and the bin edges if binned."""
    numeric = pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype)
    if edges is None and numeric and series.nunique(dropna=True) > CONTINUOUS_MIN_DISTINCT:
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        edges = list(AGE_EDGES) if _AGE_NAME.search(name) else _quantile_edges(values)
    if edges is not None:
        return (*_binned(series, name, edges),)
    try:
        codes, uniques = pd.factorize(series, sort=True, use_na_sentinel=True)
    except TypeError:  # labels of mixed types that do not sort
        codes, uniques = pd.factorize(series, sort=False, use_na_sentinel=True)
    labels = [_label(v) for v in uniques]
    if len(set(labels)) < len(labels):
        raise FairnessInputError(f"{name} holds different values written the same (such as 1 and '1')", column=name)
    codes = codes.astype(np.int64)
    if (codes < 0).any():
        codes[codes < 0] = len(labels)
        labels.append(MISSING)
    return codes, labels, None


def _binned(series: pd.Series, name: str, edges: Sequence[float]) -> tuple[np.ndarray, list[str], list[float]]:
    try:
        edges = [float(e) for e in edges]
    except (TypeError, ValueError) as exc:
        raise FairnessInputError(f"bin edges of {name} must be numbers", column=name) from exc
    increasing = all(b > a for a, b in zip(edges[:-1], edges[1:], strict=True))
    if len(edges) < 2 or any(math.isnan(e) for e in edges) or not increasing:
        raise FairnessInputError(f"bin edges of {name} must be at least two increasing numbers", column=name)
    if not pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype):
        raise FairnessInputError(f"{name} is binned but is not numeric", column=name)
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    raw = np.searchsorted(np.asarray(edges), values, side="right") - 1
    n_bins = len(edges) - 1
    missing = np.isnan(values)
    raw[(raw < 0) | (raw >= n_bins)] = n_bins
    raw[missing] = n_bins + 1
    present = np.bincount(raw, minlength=n_bins + 2) > 0
    names = [f"[{_edge_text(edges[i])}, {_edge_text(edges[i + 1])})" for i in range(n_bins)] + [OUT_OF_BINS, MISSING]
    remap = np.cumsum(present) - 1
    return remap[raw].astype(np.int64), [names[i] for i in np.flatnonzero(present)], edges


def _quantile_edges(values: np.ndarray) -> list[float]:
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return [-math.inf, math.inf]
    inner = sorted({float(f"{q:.4g}") for q in np.quantile(finite, QUANTILES)})
    return [-math.inf, *inner, math.inf]


def _edge_text(edge: float) -> str:
    if math.isinf(edge):
        return "inf" if edge > 0 else "-inf"
    return str(int(edge)) if float(edge).is_integer() else f"{edge:g}"


def _label(value) -> str:
    value = _plain(value)
    return str(value)


# --- counts and metrics (leading axis: resamples) --------------------------------------------------

def _marginal(table: np.ndarray, feature: _Feature) -> np.ndarray:
    """(B, J, 4) joint-cell statistics -> (B, G, 4) per group of `feature` (sums of its J cells)."""
    order = np.argsort(feature.of_joint, kind="stable")
    sorted_codes = feature.of_joint[order]
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    return np.add.reduceat(table[:, order, :], starts, axis=1)


def _regression_table(joint: np.ndarray, n_joint: int, truth: np.ndarray, predicted: np.ndarray,
                      weights: np.ndarray | None) -> np.ndarray:
    error = truth - predicted
    w = np.ones(len(joint)) if weights is None else weights
    return np.stack([np.bincount(joint, weights=w, minlength=n_joint),
                     np.bincount(joint, weights=w * np.abs(error), minlength=n_joint),
                     np.bincount(joint, weights=w * error * error, minlength=n_joint),
                     np.bincount(joint, weights=w * predicted, minlength=n_joint)], axis=1)


def _ratio_or_zero(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.zeros(np.broadcast(num, den).shape)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _classification_metrics(counts: np.ndarray) -> dict[str, np.ndarray]:
    tn, fp, fn, tp = (counts[..., i] for i in range(4))
    n = tn + fp + fn + tp
    with np.errstate(divide="ignore", invalid="ignore"):
        metrics = {
            "selection_rate": (tp + fp) / n,
            "accuracy": (tp + tn) / n,
            "precision": _ratio_or_zero(tp, tp + fp),
            "recall": _ratio_or_zero(tp, tp + fn),
            "fpr": _ratio_or_zero(fp, fp + tn),
            "fnr": _ratio_or_zero(fn, tp + fn),
        }
    empty = n == 0
    if empty.any():  # a group absent from a resample: no value at all (it is not a group there)
        for value in metrics.values():
            value[empty] = np.nan
    return metrics


def _regression_metrics(sums: np.ndarray) -> dict[str, np.ndarray]:
    count, abs_error, sq_error, prediction = (sums[..., i] for i in range(4))
    with np.errstate(divide="ignore", invalid="ignore"):
        return {"mae": abs_error / count, "rmse": np.sqrt(sq_error / count), "mean_prediction": prediction / count}


def _spread(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Between-groups difference and ratio along the last axis, with the argmin and argmax."""
    low = np.fmin.reduce(values, axis=-1)
    high = np.fmax.reduce(values, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = low / high
    return high - low, ratio, _arg(values, low), _arg(values, high)


def _arg(values: np.ndarray, target: np.ndarray) -> np.ndarray:
    hit = values == target[..., None]
    found = hit.any(axis=-1)
    return np.where(found, hit.argmax(axis=-1), -1)


def _py_max(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Python's max([a, b]) element-wise (NaN as fairlearn's `max(eo.difference())` treats it)."""
    return np.where(b > a, b, a)


def _py_min(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.where(b < a, b, a)


def _classification_aggregates(metrics: dict[str, np.ndarray], *, with_worst: bool = True):
    sel_diff, sel_ratio, sel_low, _ = _spread(metrics["selection_rate"])
    tpr_diff, tpr_ratio, tpr_low, _ = _spread(metrics["recall"])
    fpr_diff, fpr_ratio, _, fpr_high = _spread(metrics["fpr"])
    aggregates = {
        "demographic_parity_difference": sel_diff,
        "demographic_parity_ratio": sel_ratio,
        "equalized_odds_difference": _py_max(tpr_diff, fpr_diff),
        "equalized_odds_ratio": _py_min(tpr_ratio, fpr_ratio),
        "equal_opportunity_difference": tpr_diff,
    }
    if not with_worst:
        return aggregates
    worst = {
        "demographic_parity_difference": sel_low,
        "demographic_parity_ratio": sel_low,
        "equalized_odds_difference": np.where(fpr_diff > tpr_diff, fpr_high, tpr_low),
        "equalized_odds_ratio": np.where(fpr_ratio < tpr_ratio, fpr_high, tpr_low),
        "equal_opportunity_difference": tpr_low,
    }
    return _scalars(aggregates), {key: _index(value) for key, value in worst.items()}


def _regression_aggregates(metrics: dict[str, np.ndarray], *, with_worst: bool = True):
    mae_diff, mae_ratio, _, mae_high = _spread(metrics["mae"])
    rmse_diff, rmse_ratio, _, rmse_high = _spread(metrics["rmse"])
    aggregates = {"mae_difference": mae_diff, "mae_ratio": mae_ratio,
                  "rmse_difference": rmse_diff, "rmse_ratio": rmse_ratio}
    if not with_worst:
        return aggregates
    worst = {"mae_difference": mae_high, "mae_ratio": mae_high,
             "rmse_difference": rmse_high, "rmse_ratio": rmse_high}
    return _scalars(aggregates), {key: _index(value) for key, value in worst.items()}


def _scalars(arrays: dict[str, np.ndarray]) -> dict[str, float]:
    return {key: float(np.asarray(value).reshape(-1)[0]) for key, value in arrays.items()}


def _index(value: np.ndarray) -> int | None:
    index = int(np.asarray(value).reshape(-1)[0])
    return None if index < 0 else index


class _AucContext:
    """ROC AUC per group by ranks: the scores sorted once, the group codes stably per feature.

    Within a group, sorted by score, a tie block of rows occupying 1-based positions a..b has
    the mean rank (a+b)/2; AUC = (sum of the positives' ranks - P(P+1)/2) / (P N), the
    Mann-Whitney form of scikit-learn's trapezoidal `roc_auc_score` (ties count one half).
    The order inside a tie block does not matter, so the score sort need not be stable; the
    sort by group must be (it keeps each group in score order) and is a radix sort on uint8/16.
    """

    def __init__(self, score: np.ndarray, truth: np.ndarray) -> None:
        self.order = np.argsort(score)
        self.score = score[self.order]
        self.truth = truth[self.order].view(bool)

    def by_group(self, codes: np.ndarray, n_groups: int) -> np.ndarray:
        dtype = np.uint8 if n_groups <= 256 else np.uint16 if n_groups <= 65536 else np.int64
        if n_groups == 1:  # everyone: already in score order
            group, score, positive = np.zeros(len(self.order), dtype=dtype), self.score, self.truth
        else:
            group = codes.astype(dtype)[self.order]
            regroup = np.argsort(group, kind="stable")
            group = group[regroup]
            score = self.score[regroup]
            positive = self.truth[regroup]
        n = len(group)
        change = np.empty(n, dtype=bool)
        change[0] = True
        np.not_equal(score[1:], score[:-1], out=change[1:])
        change[1:] |= group[1:] != group[:-1]
        starts = np.flatnonzero(change)
        mean_position = (starts + np.r_[starts[1:], n] + 1) / 2.0  # 1-based mean position of each tie block
        block = np.cumsum(change, dtype=np.int64)
        block -= 1
        counts = np.bincount(group, minlength=n_groups)
        group_start = np.r_[0, np.cumsum(counts)[:-1]].astype(np.float64)
        positive_group = group[positive]
        rank = mean_position[block[positive]] - group_start[positive_group]
        positives = np.bincount(positive_group, minlength=n_groups).astype(np.float64)
        rank_sum = np.bincount(positive_group, weights=rank, minlength=n_groups)
        negatives = counts - positives
        with np.errstate(divide="ignore", invalid="ignore"):
            auc = (rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives)
        auc[(positives == 0) | (negatives == 0)] = np.nan
        return auc


# --- result shaping --------------------------------------------------------------------------------

def _groups_rows(feature: _Feature, counts: np.ndarray, metrics: dict[str, np.ndarray], task: str,
                 min_group_size: int) -> list[dict[str, Any]]:
    rows = []
    for g, label in enumerate(feature.labels):
        row = _group_row(label, counts[g], {key: value[g] for key, value in metrics.items()}, task)
        row["small"] = row["count"] < min_group_size
        rows.append(row)
    return rows


def _group_row(label: str | None, counts: np.ndarray, metrics: dict[str, float], task: str) -> dict[str, Any]:
    if task == "classification":
        tn, fp, fn, tp = (int(round(c)) for c in counts)
        row: dict[str, Any] = {"group": label, "count": tn + fp + fn + tp, "small": False,
                               "positives": tp + fn, "negatives": tn + fp}
        keys: tuple[str, ...] = CLASSIFICATION_METRICS
    else:
        row = {"group": label, "count": int(round(counts[0])), "small": False}
        keys = REGRESSION_METRICS
    row.update({key: _num(metrics[key]) for key in keys})
    return row


def _headline(aggregates: dict[str, dict[str, float]], worst: dict[str, dict[str, dict[str, Any] | None]],
              rule: dict[str, str]) -> tuple[dict[str, float], dict[str, dict[str, Any] | None]]:
    headline: dict[str, float] = {}
    where: dict[str, dict[str, Any] | None] = {}
    for metric, direction in rule.items():
        best_feature, best_value = None, math.nan
        for feature, values in aggregates.items():
            value = values[metric]
            if math.isnan(value):
                continue
            if best_feature is None or (value < best_value if direction == "min" else value > best_value):
                best_feature, best_value = feature, value
        headline[metric] = best_value
        found = None if best_feature is None else worst[best_feature][metric]
        where[metric] = None if found is None else {"feature": best_feature, **found}
    return headline, where


def _num(value) -> float | None:
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value


def _plain(value):
    """numpy scalars as Python ones (JSON)."""
    if isinstance(value, np.generic):
        return value.item()
    return value


# --- bootstrap -------------------------------------------------------------------------------------

def _bootstrap(*, task: str, table: np.ndarray, joint: np.ndarray, truth: np.ndarray, predicted: np.ndarray,
               features: list[_Feature], result_features: dict[str, Any], headline_rule: dict[str, str],
               resamples: int, seed: int, progress: Callable[[int], Any] | None) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    n = len(joint)
    n_joint = table.shape[0]
    metrics_of = _classification_metrics if task == "classification" else _regression_metrics
    aggregates_of = _classification_aggregates if task == "classification" else _regression_aggregates
    group_metrics = [m for m in (CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS)
                     if m != "roc_auc"]
    headline_draws: dict[str, list[np.ndarray]] = {m: [] for m in headline_rule}
    aggregate_draws: dict[str, dict[str, list[np.ndarray]]] = {f.name: {} for f in features}
    group_draws: dict[str, dict[str, list[np.ndarray]]] = {f.name: {m: [] for m in group_metrics} for f in features}
    probabilities = table.reshape(-1) / n if task == "classification" else None

    done = 0
    for chunk_index in range(math.ceil(resamples / BOOTSTRAP_CHUNK)):
        size = min(BOOTSTRAP_CHUNK, resamples - done)
        if task == "classification":
            draws = rng.multinomial(n, probabilities,  # type: ignore[arg-type]  # set for classification
                                    size=size).reshape(size, n_joint, 4).astype(np.float64)
        else:
            draws = np.empty((size, n_joint, 4))
            for b in range(size):
                weights = np.bincount(rng.integers(0, n, size=n), minlength=n).astype(np.float64)
                draws[b] = _regression_table(joint, n_joint, truth, predicted, weights)
        per_feature: dict[str, dict[str, np.ndarray]] = {}
        for feature in features:
            metrics = metrics_of(_marginal(draws, feature))
            aggregates = aggregates_of(metrics, with_worst=False)
            per_feature[feature.name] = aggregates
            for key, value in aggregates.items():
                aggregate_draws[feature.name].setdefault(key, []).append(value)
            for key in group_metrics:
                group_draws[feature.name][key].append(metrics[key])
        for metric, direction in headline_rule.items():
            stacked = np.stack([per_feature[f.name][metric] for f in features], axis=0)
            reduce = np.fmin if direction == "min" else np.fmax
            headline_draws[metric].append(reduce.reduce(stacked, axis=0))
        done += size
        if progress is not None:
            progress(chunk_index + 1)

    for feature in features:
        name = feature.name
        result_features[name]["ci"] = {key: _interval(np.concatenate(values), resamples)
                                       for key, values in aggregate_draws[name].items()}
        rows = result_features[name]["groups"]
        for key, values in group_draws[name].items():
            for row, interval in zip(rows, _intervals(np.concatenate(values, axis=0), resamples), strict=True):
                row.setdefault("ci", {})[key] = interval
    return {metric: _interval(np.concatenate(values), resamples) for metric, values in headline_draws.items()}


def _interval(values: np.ndarray, resamples: int) -> dict[str, Any]:
    return _intervals(values[:, None], resamples)[0]


def _intervals(values: np.ndarray, resamples: int) -> list[dict[str, Any]]:
    """Percentile intervals of each column of (resamples, k) draws; undefined draws (NaN) left out."""
    alpha = (1 - CI_LEVEL) / 2
    values = np.where(np.isfinite(values), values, np.nan)
    defined = np.isfinite(values).sum(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column: no interval
        bounds = np.nanquantile(values, [alpha, 1 - alpha], axis=0)
    return [{"low": _num(bounds[0, j]) if defined[j] else None, "high": _num(bounds[1, j]) if defined[j] else None,
             "level": CI_LEVEL, "resamples": int(resamples), "defined": int(defined[j]), "method": "percentile"}
            for j in range(values.shape[1])]
