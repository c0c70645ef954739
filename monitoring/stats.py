"""Drift statistics: pure numpy/scipy/pandas, no Django (issue 6 item 3; the maths is in docs/drift.md).

A reference is profiled once (`reference_profile`): numeric columns are sorted, their quantile
bin edges and bin counts taken, their distinct values counted when there are few; categorical
columns are counted. Each check then compares a current batch against the profile:

numeric      ks            two-sample Kolmogorov-Smirnov, statistic and p-value (= scipy.stats.ks_2samp, method 'auto')
             wasserstein   Wasserstein-1 distance / reference std (= scipy.stats.wasserstein_distance / np.std)
             psi           population stability index on reference quantile bins (empty bins -> PSI_EPSILON)
             jensenshannon Jensen-Shannon distance, natural log, on the same bins (= scipy's jensenshannon)
             chisquare     chi-square goodness of fit, each distinct value a category (discrete columns)
categorical  chisquare     chi-square goodness of fit of current counts vs reference shares (= scipy.stats.chisquare)
             psi, jensenshannon on category shares

The numeric path never re-sorts the reference: the current sample is sorted once, merged into
the reference by one `searchsorted`, and the two empirical CDFs on the merged values give both
the KS statistic (their largest gap at the end of each run of equal values) and the Wasserstein
integral (sum of |F_ref - F_cur| x gap to the next value), which is exactly scipy's formula.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats as sps
from scipy.spatial import distance as spd

TESTS = frozenset({"ks", "psi", "wasserstein", "jensenshannon", "chisquare"})
KINDS = frozenset({"numeric", "categorical"})
TESTS_FOR_KIND = {
    "numeric": frozenset({"ks", "psi", "wasserstein", "jensenshannon", "chisquare"}),
    "categorical": frozenset({"psi", "jensenshannon", "chisquare"}),
}
# p-value tests: drift when p < threshold; distances: drift when statistic >= threshold.
P_VALUE_TESTS = frozenset({"ks", "chisquare"})
DEFAULT_THRESHOLDS = {"ks": 0.05, "chisquare": 0.05, "psi": 0.1, "wasserstein": 0.1, "jensenshannon": 0.1}

# Defaults (Evidently's data-drift defaults as the reference point, docs/drift.md "Defaults").
SMALL_REFERENCE_ROWS = 1000  # reference rows at or below: a hypothesis test; above: a distance
LOW_CARDINALITY = 5  # numeric columns with at most this many distinct reference values count as discrete
# PSI / Jensen-Shannon binning of numeric columns.
QUANTILE_BINS = 10  # deciles of the reference
DISCRETE_MAX_VALUES = 20  # at most this many distinct reference values: one bin per value instead
PSI_EPSILON = 1e-4  # share given to an empty bin (either side) before PSI's log ratio
UNSEEN_PSEUDO_COUNT = 0.5  # reference count of the pooled "unseen categories" cell in chi-square
STD_FLOOR = 1e-3  # Wasserstein is divided by max(reference std, STD_FLOOR), as Evidently does
KS_EXACT_MAX_N = 10000  # scipy's MAX_AUTO_N: method 'auto' is exact when max(n_ref, n_cur) <= this
UNSEEN_LISTED = 20  # unseen categories named in details (all are counted)


class DriftStatsError(ValueError):
    """A spec the statistics cannot run: unknown test or kind, or a test not defined for the kind."""


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    kind: Literal["numeric", "categorical"]
    test: str | None = None
    threshold: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise DriftStatsError(f"feature {self.name!r}: kind must be one of {sorted(KINDS)}, not {self.kind!r}")
        if self.test is not None and self.test not in TESTS_FOR_KIND[self.kind]:
            raise DriftStatsError(f"feature {self.name!r}: test {self.test!r} is not one of "
                                  f"{sorted(TESTS_FOR_KIND[self.kind])} for a {self.kind} column")
        if self.threshold is not None and not (isinstance(self.threshold, int | float)
                                               and math.isfinite(self.threshold) and self.threshold >= 0):
            raise DriftStatsError(f"feature {self.name!r}: threshold must be a finite number >= 0")


@dataclass
class FeatureProfile:
    """One reference column, precomputed. Numeric: the values (sorted on first need by KS or
    Wasserstein, then kept sorted), std, min, max, quantile edges and bin counts, and the distinct
    values with counts when there are at most DISCRETE_MAX_VALUES of them. Categorical: category
    (as str) -> count. `n_unique` is exact up to DISCRETE_MAX_VALUES and DISCRETE_MAX_VALUES + 1
    ("more") above that, which is all the defaults and the binning need to know."""

    spec: FeatureSpec
    n: int  # non-null rows
    nulls: int
    n_unique: int
    data: np.ndarray | None = None  # numeric non-null values; sorted once `is_sorted`
    is_sorted: bool = False
    std: float | None = None
    min: float | None = None
    max: float | None = None
    edges: np.ndarray | None = None  # interior bin edges; bin i holds edges[i-1] <= x < edges[i]
    bin_counts: np.ndarray | None = None
    values: np.ndarray | None = None  # numeric discrete: distinct sorted values
    value_counts: np.ndarray | None = None
    categories: dict[str, int] = field(default_factory=dict)

    @property
    def discrete(self) -> bool:
        return self.values is not None

    @property
    def sorted_values(self) -> np.ndarray:
        if not self.is_sorted:
            # a sorted copy, never in place: `data` may be a view of the caller's frame, and two
            # threads sorting at once each assign the same result
            self.data = np.sort(self.data)
            self.is_sorted = True
        return self.data

    def summary(self) -> dict[str, Any]:
        """A JSON-able description (without the values)."""
        out: dict[str, Any] = {"name": self.spec.name, "kind": self.spec.kind, "n": self.n, "nulls": self.nulls,
                               "n_unique": self.n_unique}
        if self.spec.kind == "numeric" and self.n:
            out.update({"std": self.std, "min": self.min, "max": self.max, "edges": _floats(self.edges),
                        "bin_counts": _ints(self.bin_counts)})
            if self.discrete:
                out.update({"values": _floats(self.values), "value_counts": _ints(self.value_counts)})
        if self.spec.kind == "categorical":
            out["categories"] = dict(self.categories)
        return out


@dataclass
class ReferenceProfile:
    n_rows: int
    features: dict[str, FeatureProfile]

    @property
    def specs(self) -> list[FeatureSpec]:
        return [fp.spec for fp in self.features.values()]

    def summary(self) -> dict[str, Any]:
        return {"n_rows": self.n_rows, "features": [fp.summary() for fp in self.features.values()]}


# --- profiling ------------------------------------------------------------------------------------

def _numeric_array(series: pd.Series) -> tuple[np.ndarray, int, int, int]:
    """(finite float64 values, values dropped, of which non-numeric text, of which +-infinity).

    Everything dropped counts as null in the details; non-numeric text and infinities are also
    reported on their own."""
    raw_nulls = int(series.isna().sum())
    if pd.api.types.is_bool_dtype(series.dtype):
        series = series.astype("float64")
    if not pd.api.types.is_numeric_dtype(series.dtype):
        series = pd.to_numeric(series, errors="coerce")
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    finite = np.isfinite(values)
    infinite = 0
    if not finite.all():
        infinite = int(np.isinf(values).sum())
        values = values[finite]
    dropped = len(series) - len(values)
    return values, dropped, dropped - raw_nulls - infinite, infinite


def _category_counts(series: pd.Series) -> tuple[dict[str, int], int]:
    """(category as str -> count, nulls). Categories compare by str(), so 1 from Parquet meets "1" from CSV."""
    counts = series.value_counts(dropna=True, sort=False)
    out: dict[str, int] = {}
    for key, count in zip(counts.index.tolist(), counts.to_numpy().tolist(), strict=True):
        name = str(key)
        out[name] = out.get(name, 0) + int(count)
    nulls = len(series) - sum(out.values())
    return out, nulls


def _distinct_small(values: np.ndarray, cap: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(sorted distinct values, their counts) when there are at most `cap`, else None; no full sort.

    The distinct values of a head chunk are candidates; every value is matched to them by a
    searchsorted over at most `cap` entries, and only values that match none are looked at again.
    """
    head = np.unique(values[:65536])
    if len(head) > cap:
        return None
    idx = np.searchsorted(head, values)
    np.minimum(idx, len(head) - 1, out=idx)
    matched = head[idx] == values
    if not matched.all():
        head = np.union1d(head, values[~matched])
        if len(head) > cap:
            return None
        idx = np.searchsorted(head, values)
    return head, np.bincount(idx, minlength=len(head)).astype(np.int64)


def _quantile_edges(values: np.ndarray, bins: int = QUANTILE_BINS, is_sorted: bool = False) -> np.ndarray:
    """Interior edges: np.quantile (method 'linear') at 1/bins, ..., (bins-1)/bins, duplicates dropped."""
    qs = np.linspace(0.0, 1.0, bins + 1)[1:-1]
    return np.unique(sorted_quantiles(values, qs) if is_sorted else np.quantile(values, qs))


def sorted_quantiles(ordered: np.ndarray, qs: np.ndarray) -> np.ndarray:
    """np.quantile(ordered, qs) of an already sorted array by indexing, without numpy's partition:
    the same virtual index (n-1)q, floor, gamma and lerp as numpy's 'linear' method."""
    n = len(ordered)
    virtual = (n - 1) * np.asarray(qs, dtype=np.float64)
    previous = np.floor(virtual)
    gamma = virtual - previous
    lo = np.clip(previous.astype(np.intp), 0, n - 1)
    hi = np.clip(previous.astype(np.intp) + 1, 0, n - 1)
    a, b = ordered[lo], ordered[hi]
    diff = b - a
    out = a + diff * gamma
    np.subtract(b, diff * (1 - gamma), out=out, where=gamma >= 0.5)
    return out


def _feature_profile(series: pd.Series, spec: FeatureSpec) -> FeatureProfile:
    if spec.kind == "categorical":
        categories, nulls = _category_counts(series)
        return FeatureProfile(spec=spec, n=sum(categories.values()), nulls=nulls, n_unique=len(categories),
                              categories=categories)
    values, nulls, _, _ = _numeric_array(series)
    n = len(values)
    profile = FeatureProfile(spec=spec, n=n, nulls=nulls, n_unique=0, data=values)
    if n == 0:
        return profile
    profile.std = float(np.std(values))
    # KS and Wasserstein (and the default, which is one of them for most columns) need the sorted
    # reference: sort now and read everything else off it; PSI / JS / chi-square never sort it.
    eager = spec.test in (None, "ks", "wasserstein")
    if eager:
        ordered = profile.sorted_values
        profile.min, profile.max = float(ordered[0]), float(ordered[-1])
        starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
        profile.n_unique = min(len(starts), DISCRETE_MAX_VALUES + 1)
        if len(starts) <= DISCRETE_MAX_VALUES:
            profile.values, profile.value_counts = ordered[starts], np.diff(np.append(starts, n))
    else:
        profile.min, profile.max = float(values.min()), float(values.max())
        small = _distinct_small(values, DISCRETE_MAX_VALUES)
        if small is not None:
            profile.values, profile.value_counts = small
        profile.n_unique = DISCRETE_MAX_VALUES + 1 if small is None else len(small[0])
    profile.edges = _quantile_edges(profile.data, is_sorted=eager)
    profile.bin_counts = _bin_counts(profile.data, profile.edges, is_sorted=eager)
    return profile


def reference_profile(ref: pd.DataFrame, specs: Iterable[FeatureSpec], *, workers: int = 1) -> ReferenceProfile:
    """Profile each spec'd column of the reference once. A spec'd column missing from `ref` is an error.
    `workers` > 1 profiles columns in that many threads (numpy releases the GIL while it sorts)."""
    specs = list(specs)
    missing = [spec.name for spec in specs if spec.name not in ref.columns]
    if missing:
        raise DriftStatsError(f"reference has no column(s) {missing}")
    profiles = _threaded([lambda spec=spec: _feature_profile(ref[spec.name], spec) for spec in specs], workers)
    return ReferenceProfile(n_rows=len(ref), features={spec.name: fp for spec, fp in zip(specs, profiles,
                                                                                          strict=True)})


def _threaded(jobs: list[Callable[[], Any]], workers: int,
              done: Callable[[int, int], Any] | None = None) -> list[Any]:
    """Run the jobs (in `workers` threads when > 1) and return their results in job order;
    `done(count, index)` after each job finishes, in the calling thread."""
    results: list[Any]
    if workers <= 1 or len(jobs) <= 1:
        results = []
        for index, job in enumerate(jobs):
            results.append(job())
            if done is not None:
                done(index + 1, index)
        return results
    results = [None] * len(jobs)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(job): index for index, job in enumerate(jobs)}
        for count, future in enumerate(as_completed(futures), start=1):
            index = futures[future]
            results[index] = future.result()
            if done is not None:
                done(count, index)
    return results


# --- defaults -------------------------------------------------------------------------------------

def default_test(kind: str, n_reference: int, n_current: int, n_unique: int) -> tuple[str, float]:
    """The test and threshold a feature gets when its spec names none (docs/drift.md "Defaults").

    Reference rows <= 1000: numeric with more than 5 distinct values -> KS (p < 0.05); otherwise
    chi-square (p < 0.05). Larger references: numeric with more than 5 distinct values ->
    Wasserstein normed (>= 0.1); otherwise Jensen-Shannon distance (>= 0.1). `n_unique` is the
    reference's distinct non-null values; `n_current` is accepted for the record, not used.
    """
    if kind not in KINDS:
        raise DriftStatsError(f"kind must be one of {sorted(KINDS)}, not {kind!r}")
    continuous = kind == "numeric" and n_unique > LOW_CARDINALITY
    if n_reference <= SMALL_REFERENCE_ROWS:
        test = "ks" if continuous else "chisquare"
    else:
        test = "wasserstein" if continuous else "jensenshannon"
    return test, DEFAULT_THRESHOLDS[test]


# --- the statistics on prepared arrays ------------------------------------------------------------

def _sorted_bin_counts(ordered: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts per bin [-inf, e0), [e0, e1), ..., [e_last, inf) of an already sorted array."""
    cuts = np.searchsorted(ordered, edges, side="left")
    return np.diff(np.concatenate(([0], cuts, [len(ordered)]))).astype(np.int64)


def _bin_counts(values: np.ndarray, edges: np.ndarray, is_sorted: bool) -> np.ndarray:
    """Counts per bin [-inf, e0), [e0, e1), ..., [e_last, inf): from #(x < e) per edge, one vectorised
    comparison per edge (faster than a per-value binary search over a handful of edges)."""
    if is_sorted:
        return _sorted_bin_counts(values, edges)
    below = [np.count_nonzero(values < edge) for edge in edges]
    return np.diff(np.array([0, *below, len(values)], dtype=np.int64))


def psi_from_counts(ref_counts: np.ndarray, cur_counts: np.ndarray, epsilon: float = PSI_EPSILON) -> float:
    """PSI = sum (r_i - c_i) ln(r_i / c_i) over bins, shares r, c; a zero share becomes `epsilon`."""
    r = np.asarray(ref_counts, dtype=np.float64)
    c = np.asarray(cur_counts, dtype=np.float64)
    r = r / r.sum()
    c = c / c.sum()
    r = np.where(r == 0, epsilon, r)
    c = np.where(c == 0, epsilon, c)
    return float(np.sum((r - c) * np.log(r / c)))


def js_from_counts(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Jensen-Shannon distance (natural log) of the two count vectors' shares, by scipy."""
    r = np.asarray(ref_counts, dtype=np.float64)
    c = np.asarray(cur_counts, dtype=np.float64)
    return float(spd.jensenshannon(r / r.sum(), c / c.sum()))


def merged_cdfs(ref_sorted: np.ndarray, cur_sorted: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(all values merged and sorted, running count of reference values, running count of current values).

    At the last position of each run of equal values the running counts are the right-rank
    (`searchsorted(..., 'right')`) that scipy uses; inside a run they are smaller, but there the
    gap to the next value is 0, so the Wasserstein integral is unchanged, and KS looks only at run ends.
    """
    n1, n2 = len(ref_sorted), len(cur_sorted)
    total = n1 + n2
    # Stable merge, reference first: current value j lands after every reference value <= it
    # and after the j current values before it.
    pos = np.searchsorted(ref_sorted, cur_sorted, side="right")
    pos += np.arange(n2, dtype=pos.dtype)
    from_cur = np.zeros(total, dtype=bool)
    from_cur[pos] = True
    merged = np.empty(total, dtype=np.float64)
    merged[pos] = cur_sorted
    merged[~from_cur] = ref_sorted
    cum_cur = np.cumsum(from_cur, dtype=np.int64)
    cum_ref = np.arange(1, total + 1, dtype=np.int64)
    cum_ref -= cum_cur
    return merged, cum_ref, cum_cur


def ks_from_merged(merged: np.ndarray, cum_ref: np.ndarray, cum_cur: np.ndarray, n1: int,
                   n2: int) -> tuple[float, float, float]:
    """(D, p-value, location) as scipy.stats.ks_2samp(method='auto') gives for max(n1, n2) > 10000 (asymp)."""
    ends = np.empty(len(merged), dtype=bool)
    np.not_equal(merged[1:], merged[:-1], out=ends[:-1])
    ends[-1] = True
    if ends.all():  # no ties: every position is a run end
        diffs, end_values = cum_ref / n1 - cum_cur / n2, merged
    else:
        diffs, end_values = cum_ref[ends] / n1 - cum_cur[ends] / n2, merged[ends]
    arg_min, arg_max = int(np.argmin(diffs)), int(np.argmax(diffs))
    min_s = float(np.clip(-diffs[arg_min], 0, 1))
    max_s = float(diffs[arg_max])
    if min_s > max_s:
        d, location = min_s, float(end_values[arg_min])
    else:
        d, location = max_s, float(end_values[arg_max])
    m, n = sorted([float(n1), float(n2)], reverse=True)
    en = m * n / (m + n)
    p = float(np.clip(sps.kstwo.sf(d, np.round(en)), 0, 1))
    return d, p, location


def wasserstein_from_merged(merged: np.ndarray, cum_ref: np.ndarray, cum_cur: np.ndarray, n1: int,
                            n2: int) -> float:
    """Integral of |F_ref - F_cur| over the merged values: scipy's `_cdf_distance(1, ...)` term by term."""
    deltas = np.diff(merged)
    gap = np.abs(cum_ref[:-1] / n1 - cum_cur[:-1] / n2)
    return float(np.vecdot(gap, deltas))


# --- one feature ----------------------------------------------------------------------------------

def _result(spec: FeatureSpec, test: str, threshold: float, statistic: float | None, p_value: float | None,
            details: dict[str, Any]) -> dict[str, Any]:
    if statistic is None:
        drifted = False
    elif test in P_VALUE_TESTS:
        drifted = p_value is not None and p_value < threshold
    else:
        drifted = statistic >= threshold
    return {"feature": spec.name, "kind": spec.kind, "test": test, "statistic": statistic, "p_value": p_value,
            "threshold": threshold, "drifted": bool(drifted), "details": details}


def _counts_union(ref: dict[Any, int], cur: dict[Any, int]) -> tuple[list[Any], np.ndarray, np.ndarray]:
    keys = list(ref) + [key for key in cur if key not in ref]
    return (keys, np.array([ref.get(key, 0) for key in keys], dtype=np.int64),
            np.array([cur.get(key, 0) for key in keys], dtype=np.int64))


def _chisquare(ref: dict[Any, int], cur: dict[Any, int], details: dict[str, Any]) -> tuple[float, float]:
    """scipy.stats.chisquare(current counts, n_cur x reference shares); unseen categories pooled in one cell
    whose reference count is UNSEEN_PSEUDO_COUNT (docs/drift.md "Unseen categories")."""
    ref_keys = list(ref)
    f_obs = [cur.get(key, 0) for key in ref_keys]
    ref_counts = [float(ref[key]) for key in ref_keys]
    unseen = {key: count for key, count in cur.items() if key not in ref and count > 0}
    if unseen:
        f_obs.append(sum(unseen.values()))
        ref_counts.append(UNSEEN_PSEUDO_COUNT)
    f_obs_arr = np.asarray(f_obs, dtype=np.float64)
    ref_arr = np.asarray(ref_counts, dtype=np.float64)
    f_exp = f_obs_arr.sum() * (ref_arr / ref_arr.sum())
    details["degrees_of_freedom"] = len(f_obs) - 1
    if len(f_obs) < 2:  # one category on both sides: nothing can differ
        return 0.0, 1.0
    result = sps.chisquare(f_obs_arr, f_exp)
    return float(result.statistic), float(result.pvalue)


def _shares(keys: list[Any], counts: np.ndarray) -> dict[str, float]:
    total = counts.sum()
    return {str(key): float(count / total) for key, count in zip(keys, counts, strict=True)} if total else {}


def _numeric_feature(fp: FeatureProfile, spec: FeatureSpec, test: str, current: pd.Series,
                     details: dict[str, Any]) -> tuple[float | None, float | None]:
    values, nulls, coerced, infinite = _numeric_array(current)
    details.update(_null_details(fp, len(values), nulls))
    if coerced:
        details["non_numeric_current"] = coerced
    if infinite:
        details["infinite_current"] = infinite
    if fp.n == 0 or len(values) == 0:
        details["skipped"] = "no non-null reference values" if fp.n == 0 else "no non-null current values"
        return None, None
    n1, n2 = fp.n, len(values)
    if test in ("ks", "wasserstein"):
        if test == "ks" and max(n1, n2) <= KS_EXACT_MAX_N:
            result = sps.ks_2samp(fp.sorted_values, values)  # method 'auto' -> exact here; cheap at this size
            details.update({"method": "exact", "statistic_location": float(result.statistic_location)})
            return float(result.statistic), float(result.pvalue)
        cur_sorted = np.sort(values)
        merged, cum_ref, cum_cur = merged_cdfs(fp.sorted_values, cur_sorted)
        if test == "ks":
            d, p, location = ks_from_merged(merged, cum_ref, cum_cur, n1, n2)
            details.update({"method": "asymp", "statistic_location": location})
            return d, p
        raw = wasserstein_from_merged(merged, cum_ref, cum_cur, n1, n2)
        norm = max(fp.std, STD_FLOOR)
        details.update({"wasserstein": raw, "reference_std": fp.std, "norm": norm})
        return raw / norm, None
    if test == "chisquare" or fp.discrete:
        if fp.discrete:
            ref_map = dict(zip(fp.values.tolist(), fp.value_counts.tolist(), strict=True))
            cur_map = _counts_against(fp.values, values)
        else:
            ref_map = dict(zip(*_run_counts(fp.sorted_values), strict=True))
            cur_map = dict(zip(*_run_counts(np.sort(values)), strict=True))
        unseen = [key for key in cur_map if key not in ref_map]
        details["unseen_values"] = len(unseen)
        details["unseen_share"] = float(sum(cur_map[key] for key in unseen) / n2)
        if test == "chisquare":
            return _chisquare(ref_map, cur_map, details)
        keys, ref_counts, cur_counts = _counts_union(ref_map, cur_map)
        details["binning"] = "values"
    else:
        ref_counts = fp.bin_counts
        cur_counts = _bin_counts(values, fp.edges, is_sorted=False)
        keys = ["<" + repr(float(fp.edges[0]))] + [f">={float(edge)!r}" for edge in fp.edges]
        details["binning"] = "reference_quantiles"
        details["edges"] = _floats(fp.edges)
    details["reference_shares"] = _shares(keys, ref_counts)
    details["current_shares"] = _shares(keys, cur_counts)
    if test == "psi":
        return psi_from_counts(ref_counts, cur_counts), None
    return js_from_counts(ref_counts, cur_counts), None


def _categorical_feature(fp: FeatureProfile, test: str, current: pd.Series,
                         details: dict[str, Any]) -> tuple[float | None, float | None]:
    cur_map, nulls = _category_counts(current)
    n2 = sum(cur_map.values())
    details.update(_null_details(fp, n2, nulls))
    if fp.n == 0 or n2 == 0:
        details["skipped"] = "no non-null reference values" if fp.n == 0 else "no non-null current values"
        return None, None
    unseen = sorted((key for key in cur_map if key not in fp.categories), key=lambda k: -cur_map[k])
    details["unseen_categories"] = unseen[:UNSEEN_LISTED]
    details["unseen_count"] = len(unseen)
    details["unseen_share"] = float(sum(cur_map[key] for key in unseen) / n2)
    details["missing_categories"] = sorted(key for key in fp.categories if key not in cur_map)[:UNSEEN_LISTED]
    if test == "chisquare":
        return _chisquare(fp.categories, cur_map, details)
    keys, ref_counts, cur_counts = _counts_union(fp.categories, cur_map)
    details["reference_shares"] = _shares(keys, ref_counts)
    details["current_shares"] = _shares(keys, cur_counts)
    if test == "psi":
        return psi_from_counts(ref_counts, cur_counts), None
    return js_from_counts(ref_counts, cur_counts), None


def _null_details(fp: FeatureProfile, n_current: int, nulls_current: int) -> dict[str, Any]:
    total_ref, total_cur = fp.n + fp.nulls, n_current + nulls_current
    return {"n_reference": fp.n, "n_current": n_current, "null_reference": fp.nulls, "null_current": nulls_current,
            "null_share_reference": fp.nulls / total_ref if total_ref else 0.0,
            "null_share_current": nulls_current / total_cur if total_cur else 0.0}


def feature_drift(profile_or_ref: ReferenceProfile | FeatureProfile | pd.Series, current: pd.Series,
                  spec: FeatureSpec) -> dict[str, Any]:
    """Drift of one feature: {"feature","kind","test","statistic","p_value","threshold","drifted","details"}.

    `profile_or_ref` is a ReferenceProfile (the feature is looked up by spec.name), a FeatureProfile,
    or the raw reference Series. `spec` decides the test and threshold (None -> default_test).
    NaN/None are dropped and counted (details: null counts and shares); an empty side gives
    statistic None and drifted False with details["skipped"] saying why.
    """
    if isinstance(profile_or_ref, ReferenceProfile):
        fp = profile_or_ref.features.get(spec.name)
        if fp is None:
            raise DriftStatsError(f"the reference profile has no feature {spec.name!r}")
    elif isinstance(profile_or_ref, FeatureProfile):
        fp = profile_or_ref
    else:
        fp = _feature_profile(profile_or_ref, spec)
    if fp.spec.kind != spec.kind:
        raise DriftStatsError(f"feature {spec.name!r} was profiled as {fp.spec.kind}, not {spec.kind}")
    n_current_rows = len(current)
    test = spec.test
    if test is None:
        test, threshold = default_test(spec.kind, fp.n, n_current_rows, fp.n_unique)
    else:
        threshold = DEFAULT_THRESHOLDS[test]
    if spec.threshold is not None:
        threshold = float(spec.threshold)
    details: dict[str, Any] = {}
    if spec.kind == "numeric":
        statistic, p_value = _numeric_feature(fp, spec, test, current, details)
    else:
        statistic, p_value = _categorical_feature(fp, test, current, details)
    return _result(spec, test, threshold, statistic, p_value, details)


# --- the dataset ----------------------------------------------------------------------------------

def dataset_drift(profile: ReferenceProfile, current: pd.DataFrame, *, drift_share: float = 0.5,
                  progress: Callable[[int, int, str], Any] | None = None,
                  specs: Iterable[FeatureSpec] | None = None, workers: int = 1) -> dict[str, Any]:
    """Every profiled feature (or `specs`, to override tests/thresholds) against `current`.

    Dataset drift when share = drifted / evaluated >= drift_share, where features skipped for want
    of data (missing column, no non-null values) are not evaluated. `progress(done, total, name)`
    is called after each feature, in the calling thread. `workers` > 1 checks features in that many
    threads; the result is the same, in spec order.
    """
    if not 0 <= drift_share <= 1:
        raise DriftStatsError("drift_share must be between 0 and 1")
    specs = list(specs) if specs is not None else profile.specs
    missing = [spec.name for spec in specs if spec.name not in current.columns]

    def one(spec: FeatureSpec) -> dict[str, Any]:
        if spec.name in current.columns:
            return feature_drift(profile, current[spec.name], spec)
        fp = profile.features[spec.name]
        test, threshold = (spec.test, DEFAULT_THRESHOLDS[spec.test]) if spec.test else default_test(
            spec.kind, fp.n, 0, fp.n_unique)
        threshold = float(spec.threshold) if spec.threshold is not None else threshold
        return _result(spec, test, threshold, None, None, {"skipped": "column missing from current", "missing": True})

    def done(count: int, index: int) -> None:
        if progress is not None:
            progress(count, len(specs), specs[index].name)

    results = _threaded([lambda spec=spec: one(spec) for spec in specs], workers, done)
    evaluated = [r for r in results if r["statistic"] is not None]
    drifted = [r["feature"] for r in results if r["drifted"]]
    share = len(drifted) / len(evaluated) if evaluated else 0.0
    return {"features": results, "drifted_features": drifted, "share": share, "drift_share": drift_share,
            "dataset_drift": bool(evaluated) and share >= drift_share, "n_reference": profile.n_rows,
            "n_current": len(current), "n_evaluated": len(evaluated), "missing_columns": missing}


def _counts_against(known: np.ndarray, values: np.ndarray) -> dict[float, int]:
    """value -> count of `values`, matched against the sorted `known` values by searchsorted; only
    the values that are not known get sorted."""
    idx = np.searchsorted(known, values)
    np.minimum(idx, len(known) - 1, out=idx)
    matched = known[idx] == values
    counts = np.bincount(idx[matched], minlength=len(known))
    out = {value: count for value, count in zip(known.tolist(), counts.tolist(), strict=True) if count}
    if not matched.all():
        out.update(zip(*_run_counts(np.sort(values[~matched])), strict=True))
    return out


def _run_counts(ordered: np.ndarray) -> tuple[list[float], list[int]]:
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    return ordered[starts].tolist(), np.diff(np.append(starts, len(ordered))).tolist()


def _floats(values: np.ndarray | None) -> list[float] | None:
    return None if values is None else [float(v) for v in values]


def _ints(values: np.ndarray | None) -> list[int] | None:
    return None if values is None else [int(v) for v in values]
