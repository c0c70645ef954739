"""governance.fairness.fairness_compute against fairlearn's own MetricFrame and metric functions.

Every per-group number and aggregate must equal a direct fairlearn / scikit-learn computation to
1e-9: on random data with awkward groups (imbalanced, no positives, a single class, below the
minimum size, missing values), on the Toronto arrests data with a fitted classifier, and on the
diabetes regression. The reference builds its own group labels from the raw columns, so the
grouping (binning, intersections, missing values) is checked too.
"""

import json
import math
from functools import partial

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    count,
    demographic_parity_difference,
    demographic_parity_ratio,
    equal_opportunity_difference,
    equalized_odds_difference,
    equalized_odds_ratio,
    false_negative_rate,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import (
    accuracy_score,
    mean_absolute_error,
    precision_score,
    roc_auc_score,
    root_mean_squared_error,
)

from governance.fairness import (
    AGE_EDGES,
    MISSING,
    OUT_OF_BINS,
    FairnessInputError,
    fairness_compute,
)

TOL = 1e-9
CLASSIFICATION_KEYS = ("selection_rate", "accuracy", "precision", "recall", "fpr", "fnr")


# --- the reference: fairlearn and scikit-learn, on labels built from the raw columns -----------------

def ref_labels(sensitive: pd.DataFrame, columns, edges: dict | None = None) -> pd.Series:
    """The group label of each row, built independently of the engine."""
    parts = []
    for column in columns:
        values = sensitive[column]
        if edges and column in edges:
            cuts = [-math.inf if e is None and i == 0 else math.inf if e is None else e
                    for i, e in enumerate(edges[column])]
            text = []
            for v in values:
                if pd.isna(v):
                    text.append(MISSING)
                    continue
                for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
                    if lo <= v < hi:
                        text.append(f"[{_edge(lo)}, {_edge(hi)})")
                        break
                else:
                    text.append(OUT_OF_BINS)
            parts.append(pd.Series(text, index=values.index))
        else:
            parts.append(values.map(lambda v: MISSING if pd.isna(v) else str(v)))
    label = parts[0]
    for part in parts[1:]:
        label = label + "×" + part
    return label


def _edge(e):
    if math.isinf(e):
        return "inf" if e > 0 else "-inf"
    return str(int(e)) if float(e).is_integer() else f"{e:g}"


def ref_classification(y_true, y_pred, labels: pd.Series, pos, y_score=None):
    metrics = {
        "count": count,
        "selection_rate": partial(selection_rate, pos_label=pos),
        "accuracy": accuracy_score,
        "precision": partial(precision_score, pos_label=pos, zero_division=0),
        "recall": partial(true_positive_rate, pos_label=pos),
        "fpr": partial(false_positive_rate, pos_label=pos),
        "fnr": partial(false_negative_rate, pos_label=pos),
    }
    frame = MetricFrame(metrics=metrics, y_true=y_true, y_pred=y_pred, sensitive_features=labels)
    by_group = frame.by_group.to_dict(orient="index")
    if y_score is not None:
        def auc(truth, score):
            return roc_auc_score(truth == pos, score) if len(set(truth)) == 2 else float("nan")

        scores = MetricFrame(metrics=auc, y_true=np.asarray(y_true), y_pred=np.asarray(y_score),
                             sensitive_features=labels)
        for group, value in scores.by_group.items():
            by_group[group]["roc_auc"] = value
    difference, ratio = frame.difference(method="between_groups"), frame.ratio(method="between_groups")
    aggregates = {
        "demographic_parity_difference": difference["selection_rate"],
        "demographic_parity_ratio": ratio["selection_rate"],
        # fairlearn's equalized_odds_*(agg="worst_case"): max/min over [tpr, fpr]
        "equalized_odds_difference": max([difference["recall"], difference["fpr"]]),
        "equalized_odds_ratio": min([ratio["recall"], ratio["fpr"]]),
        "equal_opportunity_difference": difference["recall"],
    }
    return by_group, aggregates, frame.overall.to_dict()


def close(a, b) -> bool:
    if a is None or (isinstance(a, float) and math.isnan(a)):
        return b is None or (isinstance(b, float) and math.isnan(b))
    return b is not None and not math.isnan(b) and abs(a - b) <= TOL


def assert_classification_feature(result, feature, y_true, y_pred, labels, pos, y_score=None):
    by_group, aggregates, overall = ref_classification(y_true, y_pred, labels, pos, y_score)
    got = {row["group"]: row for row in result["features"][feature]["groups"]}
    assert set(got) == set(by_group), feature
    for group, expected in by_group.items():
        row = got[group]
        assert row["count"] == expected["count"], (feature, group)
        assert row["small"] is (expected["count"] < result["min_group_size"])
        for key in CLASSIFICATION_KEYS:
            assert close(row[key], float(expected[key])), (feature, group, key, row[key], expected[key])
        if y_score is not None:
            assert close(row["roc_auc"], float(expected["roc_auc"])), (feature, group, row["roc_auc"],
                                                                       expected["roc_auc"])
        else:
            assert row["roc_auc"] is None
    for key, expected in aggregates.items():
        assert close(result["features"][feature]["aggregates"][key], float(expected)), (feature, key)
    for key in CLASSIFICATION_KEYS:
        assert close(result["overall"][key], float(overall[key])), key
    return by_group


def awkward_classification(seed: int, n: int = 3000):
    """Imbalanced groups, one without positives, one of a single class, one below min size, NaNs."""
    rng = np.random.default_rng(seed)
    group = rng.choice(["big", "mid", "rare"], size=n, p=[0.75, 0.2, 0.05]).astype(object)
    y_true = (rng.random(n) < 0.4).astype(int)
    y_pred = np.where(rng.random(n) < 0.7, y_true, 1 - y_true)
    score = np.round(rng.random(n) * 0.5 + 0.5 * y_true, 2)  # rounded: tied scores
    nopos = np.arange(n) % 97 == 5
    group[nopos], y_true[nopos] = "no_positives", 0
    single = np.arange(n) % 131 == 7
    group[single], y_true[single], y_pred[single] = "single_class", 1, 1
    tiny = np.arange(n) % 1000 == 11
    group[tiny] = "tiny"
    colour = rng.choice(["x", "y"], size=n, p=[0.6, 0.4]).astype(object)
    colour[np.arange(n) % 211 == 3] = None
    sensitive = pd.DataFrame({"group": group, "colour": colour})
    return y_true, y_pred, score, sensitive


# --- random data -----------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_random_classification_equals_metricframe_per_group_and_aggregate(seed):
    # given
    y_true, y_pred, score, sensitive = awkward_classification(seed)
    # when
    result = fairness_compute(y_true=y_true, y_pred=y_pred, y_score=score, sensitive=sensitive, min_group_size=30)
    # then
    groups = assert_classification_feature(result, "group", y_true, y_pred, ref_labels(sensitive, ["group"]), 1, score)
    assert_classification_feature(result, "colour", y_true, y_pred, ref_labels(sensitive, ["colour"]), 1, score)
    assert_classification_feature(result, "group×colour", y_true, y_pred,
                                  ref_labels(sensitive, ["group", "colour"]), 1, score)
    rows = {row["group"]: row for row in result["features"]["group"]["groups"]}
    assert rows["no_positives"]["positives"] == 0 and rows["no_positives"]["recall"] == 0.0  # fairlearn: 0, not NaN
    assert rows["single_class"]["roc_auc"] is None and rows["no_positives"]["roc_auc"] is None
    assert rows["tiny"]["small"] is True and rows["big"]["small"] is False
    assert groups["tiny"]["count"] < 30
    assert MISSING in {row["group"] for row in result["features"]["colour"]["groups"]}
    assert close(result["overall"]["roc_auc"], roc_auc_score(y_true, score))
    json.dumps(result, allow_nan=False)


@pytest.mark.parametrize("seed", [10, 11, 12])
def test_aggregates_equal_fairlearns_own_fairness_functions(seed):
    # given 0/1 labels, so fairlearn's functions (pos_label 1) apply as they are
    rng = np.random.default_rng(seed)
    n = 5000
    group = pd.Series(rng.choice(list("abcdefg"), size=n, p=[0.4, 0.2, 0.15, 0.1, 0.08, 0.05, 0.02]))
    y_true = rng.integers(0, 2, size=n)
    y_pred = np.where(rng.random(n) < 0.3 + 0.08 * group.map(ord).to_numpy() % 5, 1, 0)
    # when
    result = fairness_compute(y_true=y_true, y_pred=y_pred, sensitive=pd.DataFrame({"g": group}))
    # then
    aggregates = result["features"]["g"]["aggregates"]
    kwargs = {"sensitive_features": group}
    assert close(aggregates["demographic_parity_difference"], demographic_parity_difference(y_true, y_pred, **kwargs))
    assert close(aggregates["demographic_parity_ratio"], demographic_parity_ratio(y_true, y_pred, **kwargs))
    assert close(aggregates["equalized_odds_difference"],
                 equalized_odds_difference(y_true, y_pred, agg="worst_case", **kwargs))
    assert close(aggregates["equalized_odds_ratio"], equalized_odds_ratio(y_true, y_pred, agg="worst_case", **kwargs))
    assert close(aggregates["equal_opportunity_difference"], equal_opportunity_difference(y_true, y_pred, **kwargs))
    # the headline of a single feature is that feature's aggregates, and names the worst group
    rates = {row["group"]: row["selection_rate"] for row in result["features"]["g"]["groups"]}
    assert result["headline"]["demographic_parity_ratio"] == aggregates["demographic_parity_ratio"]
    assert result["headline"]["where"]["demographic_parity_ratio"]["group"] == min(rates, key=rates.get)
    assert result["features"]["g"]["worst_group"]["demographic_parity_difference"] == min(rates, key=rates.get)


def test_string_labels_and_positive_label():
    # given labels as text, the favourable one "Yes"
    rng = np.random.default_rng(5)
    n = 800
    y_true = pd.Series(rng.choice(["Yes", "No"], size=n, p=[0.8, 0.2]))
    y_pred = pd.Series(rng.choice(["Yes", "No"], size=n, p=[0.7, 0.3]))
    sensitive = pd.DataFrame({"sex": rng.choice(["Female", "Male"], size=n)})
    # when
    result = fairness_compute(y_true=y_true, y_pred=y_pred, sensitive=sensitive, positive_label="Yes")
    # then
    assert result["positive_label"] == "Yes"
    assert_classification_feature(result, "sex", y_true, y_pred, ref_labels(sensitive, ["sex"]), "Yes")


def test_undefined_ratio_is_none_and_result_is_strict_json():
    # given nobody is selected: every selection rate is 0, so their ratio is 0/0 (NaN in fairlearn)
    y_true = np.array([0, 1, 0, 1, 0, 1])
    y_pred = np.zeros(6, dtype=int)
    sensitive = pd.DataFrame({"g": ["a", "a", "a", "b", "b", "b"]})
    # when
    result = fairness_compute(y_true=y_true, y_pred=y_pred, sensitive=sensitive, min_group_size=2)
    # then
    assert math.isnan(demographic_parity_ratio(y_true, y_pred, sensitive_features=sensitive["g"]))
    assert result["features"]["g"]["aggregates"]["demographic_parity_ratio"] is None
    assert result["features"]["g"]["aggregates"]["demographic_parity_difference"] == 0.0
    assert result["headline"]["demographic_parity_ratio"] is None
    assert result["headline"]["where"]["demographic_parity_ratio"] is None
    # fairlearn's min([tpr ratio, fpr ratio]) when the TPR ratio is NaN: NaN
    assert math.isnan(equalized_odds_ratio(y_true, y_pred, sensitive_features=sensitive["g"]))
    assert result["features"]["g"]["aggregates"]["equalized_odds_ratio"] is None
    json.dumps(result, allow_nan=False)


# --- real data -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def arrests():
    from sklearn.linear_model import LogisticRegression
    from sklego.datasets import load_arrests

    frame = load_arrests(as_frame=True)
    features = pd.get_dummies(frame[["colour", "sex", "employed", "citizen"]], drop_first=True).astype(float)
    features[["year", "age", "checks"]] = frame[["year", "age", "checks"]]
    model = LogisticRegression(max_iter=2000).fit(features, frame["released"])
    predicted = pd.Series(model.predict(features))
    score = model.predict_proba(features)[:, list(model.classes_).index("Yes")]
    return frame, predicted, score


def test_arrests_equals_fairlearn_for_every_feature_and_intersection(arrests):
    # given
    frame, predicted, score = arrests
    sensitive = frame[["colour", "sex", "age", "citizen"]]
    # when
    result = fairness_compute(y_true=frame["released"], y_pred=predicted, y_score=score, sensitive=sensitive,
                              positive_label="Yes", min_group_size=30)
    # then: age (integers, 53 values) is binned with the age edges; the others are categories
    assert result["binning"] == {"age": [None if math.isinf(e) else float(e) for e in AGE_EDGES]}
    assert result["n"] == len(frame)
    pairs = ["colour×sex", "colour×age", "colour×citizen", "sex×age", "sex×citizen", "age×citizen"]
    assert list(result["features"]) == ["colour", "sex", "age", "citizen", *pairs, "colour×sex×age×citizen"]
    for feature in result["features"]:
        columns = feature.split("×")
        assert_classification_feature(result, feature, frame["released"], predicted,
                                      ref_labels(sensitive, columns, result["binning"]), "Yes", score)
    age_groups = [row["group"] for row in result["features"]["age"]["groups"]]
    assert age_groups == ["[0, 18)", "[18, 25)", "[25, 35)", "[35, 45)", "[45, 55)", "[55, 65)", "[65, inf)"]
    assert close(result["overall"]["roc_auc"], roc_auc_score(frame["released"] == "Yes", score))
    # the headline is the worst aggregate over all features, and says where it comes from
    headline = result["headline"]
    ratios = {f: body["aggregates"]["demographic_parity_ratio"] for f, body in result["features"].items()}
    assert headline["demographic_parity_ratio"] == min(v for v in ratios.values() if v is not None)
    where = headline["where"]["demographic_parity_ratio"]
    assert ratios[where["feature"]] == headline["demographic_parity_ratio"]
    assert where["group"] == result["features"][where["feature"]]["worst_group"]["demographic_parity_ratio"]
    # and without the small groups, only groups of min_group_size or more decide
    large = result["headline_excluding_small"]["where"]["demographic_parity_ratio"]
    assert large["small"] is False
    json.dumps(result, allow_nan=False)


def _diabetes_regression():
    """scikit-learn's diabetes data (shipped with it), a linear model's predictions, and Attest's report."""
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import LinearRegression

    frame = load_diabetes(scaled=False, as_frame=True).frame
    X = frame.drop(columns="target")
    predicted = LinearRegression().fit(X, frame["target"]).predict(X)
    sensitive = frame[["sex", "age"]]
    result = fairness_compute(y_true=frame["target"], y_pred=predicted, sensitive=sensitive, task="regression",
                              min_group_size=30)
    return frame, predicted, sensitive, result


def test_diabetes_regression_equals_metricframe():
    # given, when
    frame, predicted, sensitive, result = _diabetes_regression()
    # then
    assert result["task"] == "regression" and result["positive_label"] is None
    assert set(result["binning"]) == {"age"}  # sex has two values: a category
    for feature in ("sex", "age", "sex×age"):
        labels = ref_labels(sensitive, feature.split("×"), result["binning"])
        frame_ref = MetricFrame(metrics={"count": count, "mae": mean_absolute_error, "rmse": root_mean_squared_error,
                                         "mean_prediction": lambda t, p: float(np.mean(p))},
                                y_true=frame["target"], y_pred=predicted, sensitive_features=labels)
        got = {row["group"]: row for row in result["features"][feature]["groups"]}
        expected = frame_ref.by_group.to_dict(orient="index")
        assert set(got) == set(expected)
        for group, row in expected.items():
            assert got[group]["count"] == row["count"]
            for key in ("mae", "rmse", "mean_prediction"):
                assert close(got[group][key], row[key]), (feature, group, key)
        aggregates = result["features"][feature]["aggregates"]
        difference, ratio = frame_ref.difference(), frame_ref.ratio()
        assert close(aggregates["mae_difference"], difference["mae"])
        assert close(aggregates["mae_ratio"], ratio["mae"])
        assert close(aggregates["rmse_difference"], difference["rmse"])
        maes = {g: r["mae"] for g, r in expected.items()}
        assert result["features"][feature]["worst_group"]["mae_difference"] == max(maes, key=maes.get)
    assert close(result["overall"]["mae"], mean_absolute_error(frame["target"], predicted))
    assert close(result["overall"]["rmse"], root_mean_squared_error(frame["target"], predicted))
    assert set(result["headline"]) == {"mae_ratio", "mae_difference", "rmse_difference", "where"}


def test_diabetes_regression_headline_without_small_groups_leaves_them_out():
    # given the diabetes data, whose youngest age bins and some sex×age groups have fewer than 30 rows; when
    frame, predicted, sensitive, result = _diabetes_regression()
    # then the headline without small groups is MetricFrame's over the groups of 30 rows or more only
    differences, ratios, rmse_differences = {}, {}, {}
    for feature in ("sex", "age", "sex×age"):
        labels = ref_labels(sensitive, feature.split("×"), result["binning"])
        sizes = labels.value_counts()
        large = labels.isin(sizes[sizes >= 30].index)
        frame_ref = MetricFrame(metrics={"mae": mean_absolute_error, "rmse": root_mean_squared_error},
                                y_true=frame["target"][large], y_pred=predicted[large.to_numpy()],
                                sensitive_features=labels[large])
        differences[feature] = frame_ref.difference()["mae"]
        ratios[feature] = frame_ref.ratio()["mae"]
        rmse_differences[feature] = frame_ref.difference()["rmse"]
    assert (sizes < 30).any()  # sex×age has small groups
    excluded = result["headline_excluding_small"]
    assert close(excluded["mae_difference"], max(differences.values()))
    assert close(excluded["mae_ratio"], min(ratios.values()))
    assert close(excluded["rmse_difference"], max(rmse_differences.values()))
    assert all(where["small"] is False for where in excluded["where"].values())
    # and it differs from the headline, whose worst RMSE group is small
    assert result["headline"]["where"]["rmse_difference"] == {"feature": "sex×age", "group": "1.0×[18, 25)",
                                                              "small": True}
    assert excluded["rmse_difference"] < result["headline"]["rmse_difference"]
    assert excluded["mae_ratio"] > result["headline"]["mae_ratio"]


# --- bootstrap -------------------------------------------------------------------------------------

def disparate(n: int, seed: int):
    rng = np.random.default_rng(seed)
    group = rng.choice(["a", "b", "c"], size=n, p=[0.5, 0.3, 0.2])
    y_true = rng.integers(0, 2, size=n)
    y_pred = (rng.random(n) < np.select([group == "a", group == "b"], [0.6, 0.45], 0.3)).astype(int)
    return y_true, y_pred, pd.DataFrame({"g": group})


def test_bootstrap_is_seeded_and_contains_the_point_estimate():
    # given
    y_true, y_pred, sensitive = disparate(4000, 1)
    # when
    first = fairness_compute(y_true=y_true, y_pred=y_pred, sensitive=sensitive, bootstrap=400, seed=7)
    again = fairness_compute(y_true=y_true, y_pred=y_pred, sensitive=sensitive, bootstrap=400, seed=7)
    other = fairness_compute(y_true=y_true, y_pred=y_pred, sensitive=sensitive, bootstrap=400, seed=8)
    # then
    assert first["ci"] == again["ci"]
    assert first["ci"] != other["ci"]
    for metric, interval in first["ci"].items():
        assert interval["level"] == 0.95 and interval["resamples"] == 400 and interval["defined"] == 400
        assert interval["low"] <= first["headline"][metric] <= interval["high"], metric
        assert interval["low"] < interval["high"], metric
    for row in first["features"]["g"]["groups"]:
        ci = row["ci"]["selection_rate"]
        assert ci["low"] < row["selection_rate"] < ci["high"]
    assert set(first["ci"]) == {"demographic_parity_ratio", "demographic_parity_difference",
                                "equalized_odds_difference", "equalized_odds_ratio", "equal_opportunity_difference"}
    assert "ci" not in fairness_compute(y_true=y_true, y_pred=y_pred, sensitive=sensitive)
    json.dumps(first, allow_nan=False)


def test_bootstrap_interval_narrows_as_n_grows():
    widths = []
    for n in (1000, 16000):
        y_true, y_pred, sensitive = disparate(n, 2)
        result = fairness_compute(y_true=y_true, y_pred=y_pred, sensitive=sensitive, bootstrap=300, seed=0)
        interval = result["ci"]["demographic_parity_difference"]
        widths.append(interval["high"] - interval["low"])
    # the standard error shrinks as 1/sqrt(n): 16x the rows, about a quarter of the width
    assert widths[1] < widths[0] / 2.5


def test_multinomial_bootstrap_matches_a_row_bootstrap():
    # given a row bootstrap done the plain way: draw row indices, recompute the selection rates
    y_true, y_pred, sensitive = disparate(3000, 3)
    codes = pd.factorize(sensitive["g"])[0]
    rng = np.random.default_rng(0)
    draws = []
    for _ in range(2000):
        rows = rng.integers(0, len(y_true), size=len(y_true))
        rates = np.bincount(codes[rows], weights=y_pred[rows]) / np.bincount(codes[rows])
        draws.append(rates.max() - rates.min())
    point = demographic_parity_difference(y_true, y_pred, sensitive_features=sensitive["g"])
    low, high = np.quantile(draws, [0.025, 0.975])
    # when
    result = fairness_compute(y_true=y_true, y_pred=y_pred, sensitive=sensitive, bootstrap=2000, seed=0)
    # then: the same distribution, so the same interval up to Monte Carlo error
    assert close(result["headline"]["demographic_parity_difference"], point)
    interval = result["ci"]["demographic_parity_difference"]
    width = high - low
    assert abs(interval["low"] - low) < 0.15 * width
    assert abs(interval["high"] - high) < 0.15 * width


def test_regression_bootstrap_is_seeded_with_per_group_intervals():
    rng = np.random.default_rng(4)
    n = 600
    sensitive = pd.DataFrame({"sex": rng.choice(["f", "m"], size=n)})
    y_true = rng.normal(size=n)
    y_pred = y_true + rng.normal(scale=np.where(sensitive["sex"] == "f", 1.0, 1.5))
    kwargs = {"y_true": y_true, "y_pred": y_pred, "sensitive": sensitive, "task": "regression", "bootstrap": 200}
    first, again = fairness_compute(**kwargs, seed=1), fairness_compute(**kwargs, seed=1)
    assert first["ci"] == again["ci"]
    assert set(first["ci"]) == {"mae_ratio", "mae_difference", "rmse_difference"}
    for metric, interval in first["ci"].items():
        assert interval["low"] <= first["headline"][metric] <= interval["high"]
    for row in first["features"]["sex"]["groups"]:
        assert row["ci"]["mae"]["low"] < row["mae"] < row["ci"]["mae"]["high"]


def test_progress_reports_features_then_bootstrap_chunks():
    y_true, y_pred, sensitive = disparate(500, 5)
    sensitive["h"] = np.where(np.arange(500) % 2 == 0, "u", "v")
    calls = []
    fairness_compute(y_true=y_true, y_pred=y_pred, sensitive=sensitive, bootstrap=250,
                     progress=lambda done, total: calls.append((done, total)))
    # three features (g, h, g×h), then three chunks of at most 100 resamples
    assert calls == [(1, 6), (2, 6), (3, 6), (4, 6), (5, 6), (6, 6)]


# --- grouping --------------------------------------------------------------------------------------

def test_intersections_pairs_and_the_full_one():
    rng = np.random.default_rng(6)
    n = 400
    sensitive = pd.DataFrame({c: rng.choice(["p", "q"], size=n) for c in "abc"})
    y = rng.integers(0, 2, size=n)
    names = list(fairness_compute(y_true=y, y_pred=y, sensitive=sensitive)["features"])
    assert names == ["a", "b", "c", "a×b", "a×c", "b×c", "a×b×c"]
    assert list(fairness_compute(y_true=y, y_pred=y, sensitive=sensitive[["a", "b"]])["features"]) == \
        ["a", "b", "a×b"]
    assert list(fairness_compute(y_true=y, y_pred=y, sensitive=sensitive, intersections=False)["features"]) == \
        ["a", "b", "c"]
    groups = fairness_compute(y_true=y, y_pred=y, sensitive=sensitive)["features"]["a×c"]["groups"]
    assert [row["group"] for row in groups] == ["p×p", "p×q", "q×p", "q×q"]
    assert sum(row["count"] for row in groups) == n


def test_binning_defaults_override_and_out_of_range():
    rng = np.random.default_rng(7)
    n = 1000
    sensitive = pd.DataFrame({"income": rng.normal(50_000, 15_000, size=n), "age": rng.integers(10, 90, size=n),
                              "region": rng.integers(1, 5, size=n)})
    sensitive.loc[3, "income"] = np.nan
    y_true, y_pred = rng.integers(0, 2, size=n), rng.integers(0, 2, size=n)
    result = fairness_compute(y_true=y_true, y_pred=y_pred, sensitive=sensitive, intersections=False)
    # income: quintile edges, open ends; region (4 values): a category; age: the age edges
    income_edges = result["binning"]["income"]
    assert income_edges[0] is None and income_edges[-1] is None and len(income_edges) == 6
    assert "region" not in result["binning"]
    assert [row["group"] for row in result["features"]["region"]["groups"]] == ["1", "2", "3", "4"]
    income = {row["group"]: row["count"] for row in result["features"]["income"]["groups"]}
    assert income[MISSING] == 1 and all(150 < c < 250 for g, c in income.items() if g != MISSING)
    assert_classification_feature(result, "income", y_true, y_pred,
                                  ref_labels(sensitive, ["income"], result["binning"]), 1)
    # an override: edges that leave some ages out
    custom = fairness_compute(y_true=y_true, y_pred=y_pred, sensitive=sensitive, intersections=False,
                              bins={"age": [18, 40, 65], "region": [0, 2.5, 10]})
    assert custom["binning"]["age"] == [18.0, 40.0, 65.0]
    assert [row["group"] for row in custom["features"]["region"]["groups"]] == ["[0, 2.5)", "[2.5, 10)"]
    ages = [row["group"] for row in custom["features"]["age"]["groups"]]
    assert ages == ["[18, 40)", "[40, 65)", OUT_OF_BINS]
    assert_classification_feature(custom, "age", y_true, y_pred, ref_labels(sensitive, ["age"], custom["binning"]), 1)


# --- bad input -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("change", "column"), [
    (lambda a: {**a, "y_true": np.r_[np.nan, a["y_true"][1:]]}, "y_true"),
    (lambda a: {**a, "y_pred": a["y_pred"][:-1]}, "y_pred"),
    (lambda a: {**a, "y_score": np.r_[np.nan, a["y_score"][1:]]}, "y_score"),
    (lambda a: {**a, "y_pred": np.r_[2, a["y_pred"][1:]]}, "y_pred"),
    (lambda a: {**a, "positive_label": "Yes"}, "y_true"),
    (lambda a: {**a, "bins": {"g": [1, 0]}}, "g"),
    (lambda a: {**a, "bins": {"nope": [0, 1]}}, "nope"),
    (lambda a: {**a, "sensitive": pd.DataFrame(index=range(len(a["y_true"])))}, "sensitive"),
])
def test_inputs_it_cannot_evaluate_raise_with_the_column_named(change, column):
    rng = np.random.default_rng(8)
    n = 50
    args = {"y_true": rng.integers(0, 2, size=n).astype(float), "y_pred": rng.integers(0, 2, size=n),
            "y_score": rng.random(n), "sensitive": pd.DataFrame({"g": rng.choice(["a", "b"], size=n)})}
    with pytest.raises(FairnessInputError) as raised:
        fairness_compute(**change(args))
    assert raised.value.column == column


def test_ambiguous_group_names_are_refused():
    y = [1, 0, 1, 0]
    with pytest.raises(FairnessInputError) as raised:
        fairness_compute(y_true=y, y_pred=y, sensitive=pd.DataFrame({"g": pd.Series([1, "1", 2, "2"], dtype=object)}))
    assert raised.value.column == "g"
    clash = pd.DataFrame({"a": ["p", "q"] * 2, "b": ["p", "p", "q", "q"], "a×b": ["x", "y", "x", "y"]})
    with pytest.raises(FairnessInputError) as raised:
        fairness_compute(y_true=y, y_pred=y, sensitive=clash)
    assert raised.value.column == "a×b"


def test_regression_rejects_text_predictions_and_unknown_task():
    sensitive = pd.DataFrame({"g": ["a", "b"]})
    with pytest.raises(FairnessInputError) as raised:
        fairness_compute(y_true=[1.0, 2.0], y_pred=["x", "y"], sensitive=sensitive, task="regression")
    assert raised.value.column == "y_pred"
    with pytest.raises(FairnessInputError):
        fairness_compute(y_true=[1, 0], y_pred=[1, 0], sensitive=sensitive, task="ranking")
