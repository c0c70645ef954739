"""Report charts as PNG bytes (matplotlib, headless Agg): 1280x800, readable on a screen and in a PDF.

Pure: report results (and the SHAP arrays) in, bytes out.

- per sensitive feature, the per-group metrics as bars with the report's 95% bootstrap
  intervals per group; without a bootstrap, selection rate and accuracy carry 95% Wilson score
  intervals (their denominator is the group's size); a group below the minimum size is hatched
  and labelled "small";
- the headline fairness metrics with their bootstrap confidence intervals;
- the global SHAP importance (mean |SHAP| per input column) and a SHAP beeswarm.
"""

import io
import math
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

WIDTH_IN, HEIGHT_IN, DPI = 12.8, 8.0, 100
Z95 = 1.959963984540054
CLASSIFICATION_BARS = (("selection_rate", "selection rate"), ("accuracy", "accuracy"), ("recall", "TPR (recall)"),
                       ("fpr", "FPR"))
REGRESSION_BARS = (("mae", "MAE"), ("rmse", "RMSE"))
WITH_INTERVAL = {"selection_rate", "accuracy"}
MAX_GROUPS = 40


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def _figure():
    fig, ax = plt.subplots(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, layout="constrained")
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    return fig, ax


def wilson_interval(rate: float, n: int) -> tuple[float, float]:
    """95% Wilson score interval of a proportion observed as `rate` in `n` trials."""
    if n <= 0 or rate is None or not math.isfinite(rate):
        return (math.nan, math.nan)
    denominator = 1 + Z95 ** 2 / n
    centre = (rate + Z95 ** 2 / (2 * n)) / denominator
    half = Z95 * math.sqrt(rate * (1 - rate) / n + Z95 ** 2 / (4 * n * n)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def _value(x: Any) -> float:
    return math.nan if x is None else float(x)


def _interval(group: dict[str, Any], key: str) -> tuple[float, float]:
    """The group's bootstrap interval of a metric when the report has one, else Wilson's (rates over n)."""
    ci = (group.get("ci") or {}).get(key)
    if ci and ci.get("low") is not None and ci.get("high") is not None:
        return float(ci["low"]), float(ci["high"])
    if key in WITH_INTERVAL:
        return wilson_interval(_value(group.get(key)), int(group["count"]))
    return (math.nan, math.nan)


def fairness_groups_chart(*, results: dict[str, Any], feature: str) -> bytes:
    """Per-group metric bars of one sensitive feature (or intersection) of a fairness report."""
    entry = results["features"][feature]
    groups = entry["groups"][:MAX_GROUPS]
    regression = results.get("task") == "regression"
    bars = REGRESSION_BARS if regression else CLASSIFICATION_BARS
    fig, ax = _figure()
    x = np.arange(len(groups))
    width = 0.8 / len(bars)
    colours = plt.get_cmap("tab10").colors
    for i, (key, _label) in enumerate(bars):
        heights = np.array([_value(g.get(key)) for g in groups])
        offsets = x - 0.4 + width * (i + 0.5)
        errors = None
        if any((g.get("ci") or {}).get(key) for g in groups) or (key in WITH_INTERVAL and not regression):
            intervals = [_interval(g, key) for g in groups]
            lower = np.nan_to_num(heights - np.array([lo for lo, _ in intervals]))
            upper = np.nan_to_num(np.array([hi for _, hi in intervals]) - heights)
            errors = np.clip(np.vstack([lower, upper]), 0, None)
        drawn = ax.bar(offsets, np.nan_to_num(heights), width, color=colours[i % 10],
                       yerr=errors, capsize=3 if errors is not None else 0)
        for patch, group in zip(drawn, groups, strict=True):
            if group.get("small"):
                patch.set_hatch("//")
                patch.set_alpha(0.55)
    labels = [f"{g['group']}\nn={g['count']}" + ("\n(small)" if g.get("small") else "") for g in groups]
    ax.set_xticks(x, labels, fontsize=11 if len(groups) <= 8 else 8,
                  rotation=0 if len(groups) <= 8 else 45, ha="center" if len(groups) <= 8 else "right")
    if not regression:
        ax.set_ylim(0, 1.2)  # room for the legend above the bars
        ax.set_yticks(np.linspace(0, 1, 6))
    else:
        tops = [_value(g.get(key)) for g in groups for key, _ in bars]
        tops += [_interval(g, key)[1] for g in groups for key, _ in bars]
        top = max((t for t in tops if math.isfinite(t)), default=1.0)
        ax.set_ylim(0, (top if top > 0 else 1.0) * 1.2)
    ax.set_ylabel("error (target units)" if regression else "rate", fontsize=12)
    title = f"{'Regression error' if regression else 'Classification metrics'} by {feature.replace('×', ' × ')}"
    shown = "" if len(entry["groups"]) <= MAX_GROUPS else f" (first {MAX_GROUPS} of {len(entry['groups'])} groups)"
    aggregates = entry.get("aggregates") or {}
    summary = ", ".join(f"{name.replace('_', ' ')} {value:.3f}" for name, value in aggregates.items()
                        if isinstance(value, int | float) and math.isfinite(value))
    import textwrap

    ax.set_title(title + shown, fontsize=15, pad=14 + 16 * len(textwrap.wrap(summary, 140)))
    if summary:
        ax.text(0.5, 1.01, "\n".join(textwrap.wrap(summary, 140)), transform=ax.transAxes, ha="center",
                va="bottom", fontsize=11, color="#333333")
    from matplotlib.patches import Patch

    bootstrap = any(g.get("ci") for g in groups)
    handles = [Patch(facecolor=colours[i % 10], label=label) for i, (key, label) in enumerate(bars)]
    handles.append(Patch(facecolor="white", edgecolor="black", hatch="//",
                         label=f"small group (< {results.get('min_group_size', '?')} rows)"))
    ax.legend(handles=handles, fontsize=11, loc="upper center", ncol=len(handles))
    ax.set_xlabel("error bars: 95% bootstrap percentile intervals" if bootstrap else
                  "error bars: 95% Wilson score intervals (selection rate, accuracy)", fontsize=11)
    return _png(fig)


HEADLINE_LABELS = {
    "demographic_parity_ratio": "demographic parity ratio",
    "demographic_parity_difference": "demographic parity difference",
    "equalized_odds_ratio": "equalized odds ratio",
    "equalized_odds_difference": "equalized odds difference",
    "equal_opportunity_difference": "equal opportunity difference",
}


REGRESSION_HEADLINE_LABELS = {
    "mae_ratio": "MAE ratio (min/max)",
    "mae_difference": "MAE difference (target units)",
    "rmse_difference": "RMSE difference (target units)",
}


def fairness_headline_chart(*, results: dict[str, Any]) -> bytes:
    """The headline fairness metrics (worst over features), each with its bootstrap interval."""
    headline = results.get("headline") or {}
    ci = results.get("ci") or {}
    regression = results.get("task") == "regression"
    known = REGRESSION_HEADLINE_LABELS if regression else HEADLINE_LABELS
    names = [name for name in known if isinstance(headline.get(name), int | float)]
    fig, ax = _figure()
    values = np.array([float(headline[name]) for name in names])
    lower = np.array([values[i] - _value((ci.get(n) or {}).get("low", values[i])) for i, n in enumerate(names)])
    upper = np.array([_value((ci.get(n) or {}).get("high", values[i])) - values[i] for i, n in enumerate(names)])
    errors = np.clip(np.nan_to_num(np.vstack([lower, upper])), 0, None)
    y = np.arange(len(names))
    ax.barh(y, values, xerr=errors, capsize=5, color=plt.get_cmap("tab10").colors[0])
    where = headline.get("where") or {}
    labels = []
    for name in names:
        place = where.get(name) or {}
        at = f"\n{place.get('feature')}: {place.get('group')}" if place else ""
        labels.append(known[name] + at)
    ax.set_yticks(y, labels, fontsize=11)
    ax.invert_yaxis()
    right = 1.05 if not regression else max([*values, *(values + errors[1])], default=1.0) * 1.15
    ax.set_xlim(0, right)
    ax.grid(axis="x", alpha=0.3)
    for i, value in enumerate(values):
        ax.text(value + right * 0.01, i - 0.3, f"{value:.3f}", va="center", fontsize=11)
    level = next((c.get("level") for c in ci.values() if isinstance(c, dict) and c.get("level")), None)
    resamples = next((c.get("resamples") for c in ci.values() if isinstance(c, dict) and c.get("resamples")), None)
    interval = (f"{float(level):.0%} bootstrap interval, {resamples} resamples" if level and resamples
                else "no bootstrap interval")
    ax.set_title(f"Headline fairness metrics ({interval})", fontsize=15)
    return _png(fig)


def shap_bar_chart(*, results: dict[str, Any]) -> bytes:
    """Global importance: mean |SHAP| per input column, sensitive or proxy columns marked."""
    importance = results["global_importance"][:25]
    proxy = results.get("proxy_check") or {}
    flagged = {flag["feature"]: (f"sensitive, top {proxy.get('top_k')}" if flag.get("reason") == "sensitive column"
                                 else f"proxy of {flag.get('sensitive')}, top {proxy.get('top_k')}")
               for flag in proxy.get("flags", [])}
    fig, ax = _figure()
    y = np.arange(len(importance))
    values = [row["mean_abs_shap"] or 0.0 for row in importance]
    colours = ["#d62728" if row["feature"] in flagged else "#1f77b4" for row in importance]
    ax.barh(y, values, color=colours)
    ax.set_yticks(y, [row["feature"] + (f" ({flagged[row['feature']]})" if row["feature"] in flagged else "")
                      for row in importance], fontsize=12)
    ax.invert_yaxis()
    ax.grid(axis="x", alpha=0.3)
    for i, value in enumerate(values):
        ax.text(value, i, f" {value:.3f}", va="center", fontsize=10)
    sample = results.get("sample") or {}
    ax.set_xlabel(f"mean |SHAP value| ({results.get('output', 'model output')})", fontsize=12)
    ax.set_title(f"Global feature importance — {results.get('explainer_class', 'shap')}, "
                 f"{sample.get('rows')} of {sample.get('of_rows')} rows", fontsize=15)
    return _png(fig)


def shap_beeswarm_chart(*, values: np.ndarray, data, features: list[str], results: dict[str, Any]) -> bytes:
    """Beeswarm of per-row SHAP values per input column (colour: the column's value, categories coded)."""
    import shap

    coded = np.column_stack([
        (data[name].astype("category").cat.codes.to_numpy(dtype=float) if name in data.columns
         and not _is_numeric(data[name]) else
         (data[name].to_numpy(dtype=float) if name in data.columns else np.full(len(values), np.nan)))
        for name in features
    ]) if len(features) else np.empty((len(values), 0))
    explanation = shap.Explanation(values=values, data=coded, feature_names=features)
    fig = plt.figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    shap.plots.beeswarm(explanation, max_display=20, show=False, plot_size=None)
    fig = plt.gcf()
    fig.set_size_inches(WIDTH_IN, HEIGHT_IN)
    ax = fig.axes[0]
    ax.set_title(f"SHAP values per row ({results.get('output', 'model output')}); "
                 "categorical columns coloured by category code", fontsize=14)
    fig.tight_layout()
    return _png(fig)


def _is_numeric(series) -> bool:
    import pandas as pd

    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
