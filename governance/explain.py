"""Explainability with shap: which features drive the model, for whom, and whether a sensitive column does.

Pure: a fitted estimator and data frames in, plain JSON-ready results (and the arrays the charts
draw) out. No Django, no database.

- The explainer follows the model: `TreeExplainer` for tree ensembles (exact, path-dependent,
  no background data), `LinearExplainer` for linear models (with an independent background
  sample), and the model-agnostic permutation explainer (with a background sample) otherwise.
- A scikit-learn `Pipeline` is explained at its final estimator, on the matrix its
  preprocessing steps produce; SHAP values are additive, so the values of the columns one input
  column became (the one-hot columns of `colour`) are summed back into that input column before
  taking absolute values. Reports therefore speak of the columns people registered.
- The rows explained are a seeded sample of at most `max_rows` (ATTEST_SHAP_MAX_ROWS), stated in
  the results.
- Proxy check: a sensitive column, or a feature whose association with one reaches
  `proxy_threshold`, ranks among the top `top_k` features. The association is Cramér's V
  (bias-uncorrected, scipy.stats.contingency.association) on the contingency table of the two
  columns, numeric columns with more than `PROXY_MAX_LEVELS` distinct values cut into quintiles
  first: one measure for categorical and numeric pairs alike, 0 (independent) to 1 (one column
  determines the other).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

EXPLAINER_TREE = "tree"
EXPLAINER_LINEAR = "linear"
EXPLAINER_PERMUTATION = "permutation"
PROXY_MAX_LEVELS = 10
PROXY_QUANTILES = 5
_TREE_MODULES = ("sklearn.ensemble._gb", "sklearn.ensemble._forest", "sklearn.tree", "xgboost", "lightgbm",
                 "catboost", "sklearn.ensemble._hist_gradient_boosting")


@dataclass
class Explanation:
    """The results (JSON-ready) and, for the charts, the per-row SHAP values by input column."""

    results: dict[str, Any]
    values: np.ndarray  # rows explained x input columns
    data: pd.DataFrame  # the rows explained, input columns
    features: list[str]


def _float(value: Any) -> float | None:
    value = float(value)
    return None if not np.isfinite(value) else value


def explainer_kind(estimator: Any) -> str:
    """`tree`, `linear` or `permutation` for a fitted estimator (a Pipeline's final step decides)."""
    estimator = _final(estimator)
    module = type(estimator).__module__
    if module.startswith(_TREE_MODULES) and hasattr(estimator, "n_features_in_"):
        return EXPLAINER_TREE
    if module.startswith("sklearn.linear_model") and hasattr(estimator, "coef_"):
        return EXPLAINER_LINEAR
    return EXPLAINER_PERMUTATION


def _final(model: Any) -> Any:
    from sklearn.pipeline import Pipeline

    return model[-1] if isinstance(model, Pipeline) else model


def _dense(matrix: Any) -> np.ndarray:
    if hasattr(matrix, "toarray"):
        matrix = matrix.toarray()
    return np.asarray(matrix, dtype=float)


# --- mapping the preprocessing's output columns back to input columns -------------------------

def _sources(transformer: Any, columns: list[str]) -> list[str]:
    """For each output column of a fitted transformer, the input column it came from."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    if isinstance(transformer, Pipeline):
        for _, step in transformer.steps:
            if step in (None, "passthrough"):
                continue
            columns = _sources(step, columns)
        return columns
    if isinstance(transformer, ColumnTransformer):
        out: list[str] = []
        for name, step, selection in transformer.transformers_:
            if step == "drop":
                continue
            chosen = _selected(selection, columns, transformer, name)
            if not chosen:
                continue
            out.extend(chosen if step == "passthrough" else _sources(step, chosen))
        return out
    if isinstance(transformer, OneHotEncoder):
        out = []
        names = list(transformer.get_feature_names_out(columns))
        for column, categories in zip(columns, transformer.categories_, strict=True):
            prefix = f"{column}_"
            out.extend(column for name in names if name.startswith(prefix) and name in
                       {f"{prefix}{c}" for c in categories} | {f"{prefix}infrequent_sklearn"})
        if len(out) == len(names):
            return out
        columns = list(columns)
    try:
        width = len(transformer.get_feature_names_out(columns))
    except Exception:  # noqa: BLE001 - a transformer without names: assume it keeps the width
        width = len(columns)
    if width == len(columns):
        return list(columns)
    if len(columns) == 1:
        return list(columns) * width
    return ["+".join(columns)] * width


def _selected(selection: Any, columns: list[str], transformer: Any, name: str) -> list[str]:
    if isinstance(selection, str):
        return [selection]
    if callable(selection):
        selection = selection(pd.DataFrame(columns=columns))
    if isinstance(selection, slice):
        return list(columns[selection])
    selection = list(selection)
    if selection and isinstance(selection[0], bool | np.bool_):
        return [c for c, keep in zip(columns, selection, strict=True) if keep]
    if selection and isinstance(selection[0], int | np.integer):
        return [columns[i] for i in selection]
    return [str(c) for c in selection]


def _design(model: Any, frame: pd.DataFrame) -> tuple[Any, Callable[[pd.DataFrame], np.ndarray], list[str]]:
    """(estimator to explain, input rows -> its design matrix, input column of each design column)."""
    from sklearn.pipeline import Pipeline

    columns = [str(c) for c in frame.columns]
    if isinstance(model, Pipeline) and len(model.steps) > 1:
        preprocess = model[:-1]
        return model[-1], lambda rows: _dense(preprocess.transform(rows)), _sources(preprocess, columns)
    return model, lambda rows: _dense(rows.to_numpy()), columns


def _positive_index(estimator: Any, positive_label: Any) -> int:
    classes = list(getattr(estimator, "classes_", []))
    if positive_label is not None and positive_label in classes:
        return classes.index(positive_label)
    return len(classes) - 1 if classes else 0


def _class_slice(values: np.ndarray, base_values: Any, index: int) -> tuple[np.ndarray, float]:
    """The values of one output (the positive class) when the explainer returned one per class."""
    base = np.asarray(base_values, dtype=float)
    if values.ndim == 3:
        values = values[:, :, min(index, values.shape[2] - 1)]
        if base.ndim == 2:
            base = base[:, min(index, base.shape[1] - 1)]
    return values, float(base.mean()) if base.size else 0.0


def _shap_values(*, estimator: Any, matrix: np.ndarray, background: np.ndarray, kind: str, task: str,
                 positive_index: int, seed: int) -> tuple[np.ndarray, float, str, str]:
    """(values rows x design columns, expected value, explainer class, what the values are in)."""
    import shap

    classifier = task == "classification"
    if kind == EXPLAINER_TREE:
        explainer = shap.TreeExplainer(estimator)
        explanation = explainer(matrix, check_additivity=False)
        output = "log-odds" if classifier and type(estimator).__name__.startswith("GradientBoosting") else (
            "probability" if classifier else "prediction")
    elif kind == EXPLAINER_LINEAR:
        explainer = shap.LinearExplainer(estimator, shap.maskers.Independent(background, max_samples=len(background)))
        explanation = explainer(matrix)
        output = "log-odds" if classifier else "prediction"
    else:
        if classifier:
            def predict(rows):
                return estimator.predict_proba(rows)[:, positive_index]
            output = "probability"
        else:
            predict, output = estimator.predict, "prediction"
        explainer = shap.PermutationExplainer(predict, shap.maskers.Independent(background,
                                                                                max_samples=len(background)),
                                              seed=seed)
        explanation = explainer(matrix, max_evals=max(2 * matrix.shape[1] + 1, 100))
    values, expected = _class_slice(np.asarray(explanation.values, dtype=float), explanation.base_values,
                                    positive_index)
    return values, expected, type(explainer).__name__, output


# --- association (proxy check) ----------------------------------------------------------------

def _levels(series: pd.Series) -> pd.Series:
    """A column as categories: numbers with many distinct values are cut into quintiles."""
    if pd.api.types.is_numeric_dtype(series) and series.nunique(dropna=True) > PROXY_MAX_LEVELS:
        return pd.qcut(series.rank(method="first"), PROXY_QUANTILES, labels=False).astype("Int64").astype(str)
    return series.astype(str)


def cramers_v(a: pd.Series, b: pd.Series) -> float:
    """Cramér's V of two columns (see the module docstring); 0 when either has a single level."""
    from scipy.stats.contingency import association

    table = pd.crosstab(_levels(a), _levels(b))
    if min(table.shape) < 2:
        return 0.0
    return float(association(table.to_numpy(), method="cramer"))


def proxy_check(*, importance: list[dict[str, Any]], frame: pd.DataFrame, sensitive: pd.DataFrame, top_k: int,
                threshold: float) -> dict[str, Any]:
    """Whether a sensitive column, or a feature associated with one at `threshold` or more, is in the top k."""
    sensitive_names = [str(c) for c in sensitive.columns]
    associations: dict[str, dict[str, float]] = {}
    flags = []
    for row in importance:
        feature = row["feature"]
        associations[feature] = {}
        for name in sensitive_names:
            value = 1.0 if feature == name else round(cramers_v(frame[feature], sensitive[name]), 12)
            associations[feature][name] = value
        if row["rank"] > top_k:
            continue
        if feature in sensitive_names:
            flags.append({"feature": feature, "rank": row["rank"], "sensitive": feature, "association": 1.0,
                          "reason": "sensitive column"})
            continue
        strongest = max(associations[feature].items(), key=lambda item: item[1], default=None)
        if strongest is not None and strongest[1] >= threshold:
            flags.append({"feature": feature, "rank": row["rank"], "sensitive": strongest[0],
                          "association": strongest[1], "reason": "proxy"})
    return {"passed": not flags, "top_k": top_k, "threshold": threshold, "method": "cramers_v",
            "quantiles_for_numeric": PROXY_QUANTILES, "flags": flags, "associations": associations}


# --- the report -------------------------------------------------------------------------------

def explain_compute(*, model: Any, features: pd.DataFrame, sensitive: pd.DataFrame, task: str = "classification",
                    positive_label: Any = None, group_labels: pd.DataFrame | None = None, max_rows: int = 1000,
                    background_rows: int = 100, top_k: int = 5, proxy_threshold: float = 0.5, seed: int = 0,
                    progress: Callable[[float], None] | None = None) -> Explanation:
    """SHAP explanation of `model` on `features` (the model's input columns, one row per case).

    `sensitive` holds the sensitive columns (raw, same rows); `group_labels` the group of each row
    per sensitive column as the fairness report names it (continuous columns binned), used for
    the per-group importance (defaults to `sensitive`). Returns the results and the arrays of the
    rows explained.
    """
    import scipy
    import shap
    import sklearn

    progress = progress or (lambda fraction: None)
    features = features.reset_index(drop=True)
    sensitive = sensitive.reset_index(drop=True)
    groups = (group_labels if group_labels is not None else sensitive).reset_index(drop=True)
    rng = np.random.default_rng(seed)
    total = len(features)
    rows = np.sort(rng.choice(total, size=max_rows, replace=False)) if total > max_rows else np.arange(total)
    background_index = (np.sort(rng.choice(total, size=background_rows, replace=False))
                        if total > background_rows else np.arange(total))
    sample = features.iloc[rows].reset_index(drop=True)

    estimator, design, sources = _design(model, features)
    kind = explainer_kind(estimator)
    matrix = design(sample)
    background = design(features.iloc[background_index])
    if len(sources) != matrix.shape[1]:
        sources = [f"column {i}" for i in range(matrix.shape[1])]
    progress(0.2)
    values, expected, explainer_class, output = _shap_values(
        estimator=estimator, matrix=matrix, background=background, kind=kind, task=task,
        positive_index=_positive_index(estimator, positive_label), seed=seed)
    progress(0.7)

    inputs = [str(c) for c in features.columns]
    order = [c for c in inputs if c in sources] + [c for c in dict.fromkeys(sources) if c not in inputs]
    grouping = np.zeros((len(sources), len(order)))
    for i, source in enumerate(sources):
        grouping[i, order.index(source)] = 1.0
    grouped = values @ grouping  # additive: a column's SHAP value is the sum of its design columns'
    mean_abs = np.abs(grouped).mean(axis=0) if len(grouped) else np.zeros(len(order))
    ranking = sorted(range(len(order)), key=lambda j: (-mean_abs[j], order[j]))
    importance = [{"feature": order[j], "mean_abs_shap": _float(mean_abs[j]), "rank": rank}
                  for rank, j in enumerate(ranking, start=1)]

    per_group: dict[str, list[dict[str, Any]]] = {}
    sample_groups = groups.iloc[rows].reset_index(drop=True)
    for column in sample_groups.columns:
        labels = sample_groups[column].astype(str).to_numpy()
        entries = []
        for label in sorted(set(labels)):
            mask = labels == label
            group_mean = np.abs(grouped[mask]).mean(axis=0)
            entries.append({"group": label, "count": int(mask.sum()),
                            "mean_abs_shap": {order[j]: _float(group_mean[j]) for j in ranking}})
        per_group[str(column)] = entries
    progress(0.85)

    frame_for_proxy = features.copy()
    for name in order:
        if name not in frame_for_proxy.columns:
            frame_for_proxy[name] = ""
    proxy = proxy_check(importance=importance, frame=frame_for_proxy, sensitive=sensitive, top_k=top_k,
                        threshold=proxy_threshold)
    progress(1.0)
    results = {
        "explainer": kind,
        "explainer_class": f"shap.{explainer_class}",
        "model_class": f"{type(estimator).__module__}.{type(estimator).__name__}",
        "pipeline": estimator is not model,
        "task": task,
        "output": output,
        "positive_label": positive_label if task == "classification" else None,
        "expected_value": _float(expected),
        "sample": {"rows": int(len(rows)), "of_rows": int(total), "max_rows": int(max_rows), "seed": seed,
                   "background_rows": int(len(background_index)) if kind != EXPLAINER_TREE else 0},
        "design_columns": int(matrix.shape[1]),
        "features": order,
        "global_importance": importance,
        "top_k": top_k,
        "top_features": [row["feature"] for row in importance[:top_k]],
        "per_group": per_group,
        "proxy_check": proxy,
        "library_versions": {"shap": shap.__version__, "scikit-learn": sklearn.__version__,
                             "numpy": np.__version__, "pandas": pd.__version__, "scipy": scipy.__version__},
    }
    return Explanation(results=results, values=grouped, data=sample[[c for c in order if c in sample.columns]],
                       features=order)


def _edge_text(edge: float | None, *, low: bool) -> str:
    if edge is None or not np.isfinite(edge):
        return "-inf" if low else "inf"
    return str(int(edge)) if float(edge).is_integer() else f"{edge:g}"


def group_labels(sensitive: pd.DataFrame, binning: dict[str, list[float | None]]) -> pd.DataFrame:
    """Each row's group per sensitive column, labelled as the fairness report labels it.

    Binned columns use the report's edges (right-open "[a, b)", an unbounded end stored as None);
    other columns their value as text; missing values "(missing)".
    """
    out = {}
    for column in sensitive.columns:
        series = sensitive[column]
        edges = binning.get(str(column))
        if edges:
            numbers = [(-np.inf if i == 0 else np.inf) if e is None else float(e) for i, e in enumerate(edges)]
            names = [f"[{_edge_text(edges[i], low=True)}, {_edge_text(edges[i + 1], low=False)})"
                     for i in range(len(edges) - 1)]
            values = series.to_numpy(dtype=np.float64, na_value=np.nan)
            index = np.searchsorted(np.asarray(numbers), values, side="right") - 1
            labels = np.where((index >= 0) & (index < len(names)),
                              np.asarray(names + [""], dtype=object)[np.clip(index, 0, len(names))], "(out of bins)")
            labels = np.where(np.isnan(values), "(missing)", labels)
        else:
            labels = np.asarray([("(missing)" if pd.isna(v) else str(v.item() if hasattr(v, "item") else v))
                                 for v in series], dtype=object)
        out[str(column)] = labels
    return pd.DataFrame(out, index=sensitive.index)
