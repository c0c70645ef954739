"""monitoring.stats against scipy's reference functions (issue 6 acceptance: equal to 1e-9 on random data),
hand-computed PSI values, the documented defaults, and the edge cases (NaN, constant, empty, unseen).

The expected values are computed here independently of the module: scipy on the raw samples,
or numpy histograms over bin edges taken from np.quantile of the raw reference.
"""

import json
import math
import pickle

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial import distance

from monitoring.stats import (
    DEFAULT_THRESHOLDS,
    PSI_EPSILON,
    STD_FLOOR,
    TESTS,
    DriftStatsError,
    FeatureSpec,
    dataset_drift,
    default_test,
    feature_drift,
    reference_profile,
    sorted_quantiles,
)

TOL = 1e-9


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=TOL, abs_tol=TOL)


def numeric_drift(ref, cur, test, **spec):
    ref, cur = pd.Series(ref, dtype="float64"), pd.Series(cur, dtype="float64")
    profile = reference_profile(ref.to_frame("x"), [FeatureSpec("x", "numeric")])
    return feature_drift(profile, cur, FeatureSpec("x", "numeric", test, **spec))


def quantile_bin_probs(ref: np.ndarray, cur: np.ndarray, bins: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Independent binning: decile edges of the reference, outer bins open, bins [a, b)."""
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1))[1:-1])
    full = np.concatenate(([-np.inf], edges, [np.inf]))
    # np.histogram's bins are [a, b) except the last, which is closed: +inf is never a value here
    ref_counts = np.histogram(ref, full)[0]
    cur_counts = np.histogram(cur, full)[0]
    return ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum()


def psi_by_hand(r: np.ndarray, c: np.ndarray) -> float:
    r = np.where(r == 0, PSI_EPSILON, r)
    c = np.where(c == 0, PSI_EPSILON, c)
    return float(sum((ri - ci) * math.log(ri / ci) for ri, ci in zip(r, c, strict=True)))


SIZES = [(300, 700), (5000, 8000), (30000, 20000), (120000, 90000)]


# --- numeric: equal to scipy ----------------------------------------------------------------------

@pytest.mark.parametrize(("n1", "n2"), SIZES)
def test_ks_statistic_and_p_value_equal_scipy_ks_2samp_on_random_data(n1, n2):
    # given two shifted normal samples (exact method below 10,000 rows, asymptotic above)
    rng = np.random.default_rng(n1)
    ref, cur = rng.normal(0, 1, n1), rng.normal(0.03, 1.1, n2)
    # when
    result = numeric_drift(ref, cur, "ks")
    # then
    expected = stats.ks_2samp(ref, cur)
    assert close(result["statistic"], expected.statistic)
    assert close(result["p_value"], expected.pvalue)
    assert result["details"]["statistic_location"] == expected.statistic_location
    assert result["details"]["method"] == ("exact" if max(n1, n2) <= 10000 else "asymp")


@pytest.mark.parametrize(("n1", "n2"), SIZES)
def test_ks_equals_scipy_with_many_ties(n1, n2):
    # given integer-valued samples (long runs of equal values on both sides)
    rng = np.random.default_rng(n2)
    ref, cur = rng.integers(0, 40, n1).astype(float), rng.integers(1, 41, n2).astype(float)
    # when
    result = numeric_drift(ref, cur, "ks")
    # then
    expected = stats.ks_2samp(ref, cur)
    assert close(result["statistic"], expected.statistic)
    assert close(result["p_value"], expected.pvalue)


@pytest.mark.parametrize(("n1", "n2"), SIZES)
@pytest.mark.parametrize("ties", [False, True])
def test_wasserstein_equals_scipy_divided_by_reference_std(n1, n2, ties):
    rng = np.random.default_rng(n1 + n2)
    ref, cur = rng.lognormal(0, 1, n1), rng.lognormal(0.1, 1, n2)
    if ties:
        ref, cur = np.round(ref, 1), np.round(cur, 1)
    # when
    result = numeric_drift(ref, cur, "wasserstein")
    # then
    assert close(result["statistic"], stats.wasserstein_distance(ref, cur) / np.std(ref))
    assert close(result["details"]["wasserstein"], stats.wasserstein_distance(ref, cur))
    assert result["p_value"] is None


@pytest.mark.parametrize(("n1", "n2"), SIZES)
def test_numeric_jensenshannon_equals_scipy_on_reference_decile_bins(n1, n2):
    rng = np.random.default_rng(7 * n1)
    ref, cur = rng.gamma(2.0, 1.0, n1), rng.gamma(2.2, 1.0, n2)
    # when
    result = numeric_drift(ref, cur, "jensenshannon")
    # then
    r, c = quantile_bin_probs(ref, cur)
    assert close(result["statistic"], distance.jensenshannon(r, c))
    assert result["details"]["binning"] == "reference_quantiles"


@pytest.mark.parametrize(("n1", "n2"), SIZES)
def test_numeric_psi_equals_the_formula_on_reference_decile_bins(n1, n2):
    rng = np.random.default_rng(11 * n2)
    ref, cur = rng.normal(0, 1, n1), rng.normal(0.5, 1, n2)  # current values beyond the reference range too
    # when
    result = numeric_drift(ref, cur, "psi")
    # then
    r, c = quantile_bin_probs(ref, cur)
    assert close(result["statistic"], psi_by_hand(r, c))
    assert close(sum(result["details"]["reference_shares"].values()), 1.0)


# --- PSI by hand ----------------------------------------------------------------------------------

def test_hand_built_categorical_psi():
    # given reference shares 1/4 each and current shares .1 .2 .3 .4
    ref = pd.Series(["a"] * 25 + ["b"] * 25 + ["c"] * 25 + ["d"] * 25)
    cur = pd.Series(["a"] * 10 + ["b"] * 20 + ["c"] * 30 + ["d"] * 40)
    # when
    result = feature_drift(ref, cur, FeatureSpec("g", "categorical", "psi"))
    # then PSI = .15 ln 2.5 + .05 ln 1.25 - .05 ln(.25/.3) - .15 ln(.25/.4)
    expected = 0.15 * math.log(2.5) + 0.05 * math.log(1.25) - 0.05 * math.log(0.25 / 0.3) - 0.15 * math.log(0.625)
    # by hand: .137444 + .011157 + .009116 + .070501 = .228217 (ln 2.5 = .916291, ln 1.25 = .223144, ...)
    assert abs(expected - 0.228217) < 1e-6
    assert close(result["statistic"], expected)
    assert result["drifted"] is True  # >= 0.1
    assert result["threshold"] == 0.1


def test_hand_built_numeric_psi_on_deciles_with_an_empty_bin():
    # given the reference 0..99: decile edges 9.9, 19.8, ..., 89.1 -> 10 bins of 10 values each
    ref = np.arange(100, dtype=float)
    # current: 50 values in the first decile, 50 in the last, the eight middle bins empty
    cur = np.concatenate([np.full(50, 3.0), np.full(50, 95.0)])
    # when
    result = numeric_drift(ref, cur, "psi")
    # then two bins (.1 vs .5) give 2 x (.1-.5) ln(.1/.5); eight bins (.1 vs 0 -> epsilon) give (.1-e) ln(.1/e)
    expected = 2 * (0.1 - 0.5) * math.log(0.1 / 0.5) + 8 * (0.1 - 1e-4) * math.log(0.1 / 1e-4)
    assert close(result["statistic"], expected)
    assert result["details"]["edges"] == pytest.approx([9.9 * k for k in range(1, 10)], rel=1e-12)


# --- categorical: equal to scipy ------------------------------------------------------------------

def random_categories(rng, n, probs, names="abcdefgh"):
    return pd.Series(rng.choice(list(names[: len(probs)]), size=n, p=probs))


@pytest.mark.parametrize(("n1", "n2"), SIZES)
def test_chisquare_equals_scipy_of_current_counts_vs_reference_shares(n1, n2):
    rng = np.random.default_rng(n1 * 3)
    ref = random_categories(rng, n1, [0.4, 0.3, 0.2, 0.1])
    cur = random_categories(rng, n2, [0.37, 0.33, 0.2, 0.1])
    # when
    result = feature_drift(ref, cur, FeatureSpec("g", "categorical", "chisquare"))
    # then
    keys = sorted(ref.unique())
    ref_share = ref.value_counts(normalize=True)[keys].to_numpy()
    f_obs = cur.value_counts()[keys].to_numpy()
    expected = stats.chisquare(f_obs, n2 * ref_share)
    assert close(result["statistic"], expected.statistic)
    assert close(result["p_value"], expected.pvalue)
    assert result["details"]["degrees_of_freedom"] == 3


def test_chisquare_pools_unseen_categories_in_one_cell_with_half_a_reference_count():
    # given a reference without "z" and "y", and a current batch where they appear
    ref = pd.Series(["a"] * 600 + ["b"] * 400)
    cur = pd.Series(["a"] * 280 + ["b"] * 200 + ["z"] * 15 + ["y"] * 5)
    # when
    result = feature_drift(ref, cur, FeatureSpec("g", "categorical", "chisquare"))
    # then: cells a, b, unseen; reference counts 600, 400, 0.5
    ref_counts = np.array([600, 400, 0.5])
    expected = stats.chisquare([280, 200, 20], 500 * ref_counts / ref_counts.sum())
    assert close(result["statistic"], expected.statistic)
    assert close(result["p_value"], expected.pvalue)
    assert result["drifted"] is True
    assert result["details"]["unseen_categories"] == ["z", "y"]
    assert result["details"]["unseen_share"] == pytest.approx(0.04)


@pytest.mark.parametrize(("n1", "n2"), SIZES)
def test_categorical_jensenshannon_and_psi_equal_scipy_and_the_formula(n1, n2):
    rng = np.random.default_rng(n2 * 5)
    ref = random_categories(rng, n1, [0.5, 0.3, 0.15, 0.05])
    cur = random_categories(rng, n2, [0.45, 0.3, 0.15, 0.05, 0.05])  # "e" is unseen
    # when
    js = feature_drift(ref, cur, FeatureSpec("g", "categorical", "jensenshannon"))
    psi = feature_drift(ref, cur, FeatureSpec("g", "categorical", "psi"))
    # then
    keys = list("abcde")
    r = ref.value_counts(normalize=True).reindex(keys, fill_value=0).to_numpy()
    c = cur.value_counts(normalize=True).reindex(keys, fill_value=0).to_numpy()
    assert close(js["statistic"], distance.jensenshannon(r, c))
    assert close(psi["statistic"], psi_by_hand(r, c))


def test_categories_compare_as_text_so_csv_strings_meet_parquet_integers():
    ref = pd.Series([1, 2, 2, 3] * 50)
    cur = pd.Series(["1", "2", "2", "3"] * 40)
    result = feature_drift(ref, cur, FeatureSpec("g", "categorical", "chisquare"))
    assert result["statistic"] == 0.0
    assert result["details"]["unseen_count"] == 0


def test_discrete_numeric_column_bins_by_value_and_chisquare_takes_values_as_categories():
    rng = np.random.default_rng(3)
    ref, cur = rng.integers(0, 4, 5000).astype(float), rng.integers(0, 5, 4000).astype(float)  # 4.0 unseen
    psi = numeric_drift(ref, cur, "psi")
    chi = numeric_drift(ref, cur, "chisquare")
    keys = [0.0, 1.0, 2.0, 3.0, 4.0]
    r = np.array([(ref == k).mean() for k in keys])
    c = np.array([(cur == k).mean() for k in keys])
    assert psi["details"]["binning"] == "values"
    assert close(psi["statistic"], psi_by_hand(r, c))
    ref_counts = np.array([(ref == k).sum() for k in keys[:4]] + [0.5])
    f_obs = [int((cur == k).sum()) for k in keys]
    expected = stats.chisquare(f_obs, 4000 * ref_counts / ref_counts.sum())
    assert close(chi["statistic"], expected.statistic)


# --- NaN, constant, empty -------------------------------------------------------------------------

def test_nan_values_are_dropped_counted_and_reported_as_null_shares():
    rng = np.random.default_rng(5)
    ref, cur = rng.normal(size=20000), rng.normal(size=15000)
    ref_nan, cur_nan = ref.copy(), cur.copy()
    ref_nan[:2000] = np.nan
    cur_nan[::5] = np.nan
    # when
    result = numeric_drift(ref_nan, cur_nan, "ks")
    # then the statistics are those of the non-null values
    expected = stats.ks_2samp(ref[2000:], cur[~np.isnan(cur_nan)])
    assert close(result["statistic"], expected.statistic)
    assert close(result["p_value"], expected.pvalue)
    details = result["details"]
    assert (details["null_reference"], details["null_current"]) == (2000, 3000)
    assert (details["n_reference"], details["n_current"]) == (18000, 12000)
    assert details["null_share_reference"] == pytest.approx(0.1)
    assert details["null_share_current"] == pytest.approx(0.2)
    # and categorical None/NaN likewise
    cat = feature_drift(pd.Series(["a", None, "b", "a"]), pd.Series([None, None, "a", np.nan]),
                        FeatureSpec("g", "categorical", "jensenshannon"))
    assert cat["details"]["null_current"] == 3
    assert cat["details"]["null_share_reference"] == 0.25


def test_non_numeric_text_in_a_numeric_column_counts_as_null_and_is_reported():
    ref = pd.Series(np.arange(50, dtype=float))
    cur = pd.Series(["1.5", "oops", "3", None])
    result = feature_drift(ref, cur, FeatureSpec("x", "numeric", "ks"))
    assert result["details"]["null_current"] == 2
    assert result["details"]["non_numeric_current"] == 1
    assert close(result["statistic"], stats.ks_2samp(np.arange(50.0), [1.5, 3.0]).statistic)


def test_constant_columns_give_finite_statistics():
    ref, same, moved = np.full(5000, 2.0), np.full(3000, 2.0), np.full(3000, 2.5)
    # Wasserstein: std 0 -> divided by the floor
    assert numeric_drift(ref, same, "wasserstein")["statistic"] == 0.0
    moved_w = numeric_drift(ref, moved, "wasserstein")
    assert close(moved_w["statistic"], 0.5 / STD_FLOOR)
    assert moved_w["drifted"] is True
    for test in ("ks", "psi", "jensenshannon", "chisquare"):
        unchanged, shifted = numeric_drift(ref, same, test), numeric_drift(ref, moved, test)
        assert unchanged["drifted"] is False, test
        assert shifted["drifted"] is True, test
        assert math.isfinite(shifted["statistic"]), test


@pytest.mark.parametrize("test", sorted(TESTS))
def test_an_empty_or_all_null_current_is_skipped_not_drifted(test):
    kind = "numeric" if test in ("ks", "wasserstein") else "categorical"
    ref = pd.Series(np.arange(100.0)) if kind == "numeric" else pd.Series(list("abcd") * 25)
    for cur in (pd.Series([], dtype="float64"), pd.Series([np.nan, None], dtype="object")):
        result = feature_drift(ref, cur, FeatureSpec("f", kind, test))
        assert result["statistic"] is None
        assert result["p_value"] is None
        assert result["drifted"] is False
        assert result["details"]["skipped"] == "no non-null current values"


# --- verdicts, defaults, dataset ------------------------------------------------------------------

def test_thresholds_decide_p_value_tests_below_and_distances_at_or_above():
    rng = np.random.default_rng(9)
    ref = rng.normal(size=800)
    same, shifted = rng.normal(size=800), rng.normal(0.5, 1, 800)
    assert numeric_drift(ref, same, "ks")["drifted"] is False
    assert numeric_drift(ref, shifted, "ks")["drifted"] is True
    result = numeric_drift(ref, shifted, "wasserstein", threshold=10.0)
    assert result["threshold"] == 10.0
    assert result["drifted"] is False
    stat = numeric_drift(ref, shifted, "wasserstein")["statistic"]
    assert numeric_drift(ref, shifted, "wasserstein", threshold=stat)["drifted"] is True


@pytest.mark.parametrize(("kind", "n_ref", "n_unique", "expected"), [
    ("numeric", 1000, 6, ("ks", 0.05)),
    ("numeric", 1000, 5, ("chisquare", 0.05)),
    ("categorical", 200, 40, ("chisquare", 0.05)),
    ("numeric", 1001, 6, ("wasserstein", 0.1)),
    ("numeric", 1_000_000, 3, ("jensenshannon", 0.1)),
    ("categorical", 5000, 3, ("jensenshannon", 0.1)),
])
def test_default_test_by_kind_and_size(kind, n_ref, n_unique, expected):
    assert default_test(kind, n_ref, 10, n_unique) == expected


def test_a_spec_without_a_test_gets_the_default_for_its_reference():
    rng = np.random.default_rng(2)
    small = numeric_drift(rng.normal(size=500), rng.normal(size=500), None)
    large = numeric_drift(rng.normal(size=5000), rng.normal(size=500), None)
    assert (small["test"], small["threshold"]) == ("ks", 0.05)
    assert (large["test"], large["threshold"]) == ("wasserstein", 0.1)


def test_invalid_specs_are_refused():
    with pytest.raises(DriftStatsError):
        FeatureSpec("g", "categorical", "ks")
    with pytest.raises(DriftStatsError):
        FeatureSpec("x", "numeric", "t-test")
    with pytest.raises(DriftStatsError):
        FeatureSpec("x", "text")
    with pytest.raises(DriftStatsError):
        FeatureSpec("x", "numeric", "psi", threshold=-1)
    with pytest.raises(DriftStatsError):
        reference_profile(pd.DataFrame({"a": [1]}), [FeatureSpec("b", "numeric")])
    assert DEFAULT_THRESHOLDS.keys() == TESTS


def test_dataset_drift_share_verdict_missing_column_and_progress():
    rng = np.random.default_rng(4)
    n = 3000
    ref = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.normal(size=n),
                        "g": rng.choice(list("xyz"), n)})
    cur = pd.DataFrame({"a": rng.normal(2, 1, n), "b": rng.normal(size=n),
                        "g": rng.choice(list("xyz"), n, p=[0.8, 0.1, 0.1])})  # "c" missing
    specs = [FeatureSpec("a", "numeric"), FeatureSpec("b", "numeric", "ks"), FeatureSpec("c", "numeric"),
             FeatureSpec("g", "categorical")]
    profile = reference_profile(ref, specs)
    calls = []
    # when
    result = dataset_drift(profile, cur, drift_share=0.6, progress=lambda *args: calls.append(args))
    # then
    assert [f["feature"] for f in result["features"]] == ["a", "b", "c", "g"]
    assert result["drifted_features"] == ["a", "g"]
    assert result["missing_columns"] == ["c"]
    assert result["n_evaluated"] == 3
    assert result["share"] == pytest.approx(2 / 3)
    assert result["dataset_drift"] is True
    assert (result["n_reference"], result["n_current"], result["drift_share"]) == (n, n, 0.6)
    assert calls == [(1, 4, "a"), (2, 4, "b"), (3, 4, "c"), (4, 4, "g")]
    assert dataset_drift(profile, cur, drift_share=0.7)["dataset_drift"] is False
    json.dumps(result, allow_nan=False)  # the result is JSON as it stands


def test_profile_is_reused_pickles_and_summarises_as_json():
    rng = np.random.default_rng(8)
    ref = pd.DataFrame({"x": rng.normal(size=2000), "g": rng.choice(list("ab"), 2000)})
    specs = [FeatureSpec("x", "numeric", "ks"), FeatureSpec("g", "categorical", "chisquare")]
    profile = pickle.loads(pickle.dumps(reference_profile(ref, specs)))
    cur = pd.DataFrame({"x": rng.normal(size=20000), "g": rng.choice(list("ab"), 20000)})
    first = dataset_drift(profile, cur)
    assert first == dataset_drift(profile, cur)
    assert close(first["features"][0]["statistic"], stats.ks_2samp(ref["x"], cur["x"]).statistic)
    summary = json.loads(json.dumps(profile.summary()))
    assert summary["features"][1]["categories"].keys() == {"a", "b"}
    assert len(summary["features"][0]["edges"]) == 9


def test_sorted_quantiles_are_numpys_bit_for_bit():
    rng = np.random.default_rng(12)
    qs = np.linspace(0, 1, 11)[1:-1]
    for n in (1, 2, 3, 7, 10, 11, 99, 100, 101, 12345):
        for values in (rng.normal(size=n), rng.integers(0, 5, n).astype(float)):
            ordered = np.sort(values)
            assert np.array_equal(sorted_quantiles(ordered, qs), np.quantile(values, qs))


@pytest.mark.parametrize("make", [lambda rng: rng.normal(size=30000), lambda rng: rng.integers(0, 7, 30000) * 1.5])
def test_the_profile_is_the_same_whether_the_reference_is_sorted_up_front_or_not(make):
    # given a spec that sorts at once (ks) and one that never needs to (psi)
    values = make(np.random.default_rng(13))
    frame = pd.DataFrame({"x": values})
    eager = reference_profile(frame, [FeatureSpec("x", "numeric", "ks")]).features["x"]
    lazy = reference_profile(frame, [FeatureSpec("x", "numeric", "psi")]).features["x"]
    # then the same edges, counts, distinct values, and summary
    assert eager.is_sorted and not lazy.is_sorted
    assert eager.summary() == lazy.summary()
    assert np.array_equal(lazy.sorted_values, eager.sorted_values)
    assert np.array_equal(frame["x"].to_numpy(), values)  # the caller's frame is never sorted in place


def test_threads_give_the_same_result_in_spec_order():
    rng = np.random.default_rng(14)
    n = 40000
    ref = pd.DataFrame({f"x{i}": rng.normal(size=n) for i in range(4)} | {"g": rng.choice(list("abc"), n)})
    cur = pd.DataFrame({f"x{i}": rng.normal(0.01 * i, 1, n) for i in range(4)} | {"g": rng.choice(list("abc"), n)})
    specs = [FeatureSpec("x0", "numeric", "ks"), FeatureSpec("x1", "numeric", "wasserstein"),
             FeatureSpec("x2", "numeric", "psi"), FeatureSpec("x3", "numeric"), FeatureSpec("g", "categorical")]
    single = dataset_drift(reference_profile(ref, specs), cur)
    calls = []
    threaded = dataset_drift(reference_profile(ref, specs, workers=2), cur, workers=3,
                             progress=lambda done, total, name: calls.append((done, total)))
    assert threaded == single
    assert calls == [(k, 5) for k in range(1, 6)]


def test_infinities_are_dropped_like_nulls_and_reported():
    rng = np.random.default_rng(15)
    ref = rng.normal(size=3000)
    ref_inf = np.concatenate([ref, [np.inf, -np.inf]])
    cur = rng.normal(size=2000)
    cur_inf = np.concatenate([cur, [np.inf, np.nan]])
    for test in ("ks", "wasserstein", "psi", "jensenshannon"):
        result = numeric_drift(ref_inf, cur_inf, test)
        clean = numeric_drift(ref, cur, test)
        assert result["statistic"] == clean["statistic"], test
        assert math.isfinite(result["statistic"]), test
        assert (result["details"]["null_reference"], result["details"]["null_current"]) == (2, 2)
        assert result["details"]["infinite_current"] == 1
    json.dumps(result, allow_nan=False)
