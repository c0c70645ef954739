"""The dossier's own charts (matplotlib, Agg backend): metrics per version, drift over time, KPIs.

Each function takes plain values from the snapshot and returns PNG bytes (or None when there is
nothing to draw). Fairness and SHAP charts come with the reports themselves (ReportChart).
"""

from __future__ import annotations

import io
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DPI = 130


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=DPI)
    plt.close(fig)
    return buffer.getvalue()


def metrics_by_version(metrics: dict[int, dict[str, float]]) -> bytes | None:
    """Grouped bars: each numeric metric of each version."""
    names = sorted({k for m in metrics.values() for k, v in m.items() if isinstance(v, int | float)})
    if not names or not metrics:
        return None
    versions = sorted(metrics)
    fig, ax = plt.subplots(figsize=(6.4, 2.6))
    width = 0.8 / len(versions)
    for i, version in enumerate(versions):
        values = [float(metrics[version].get(name) or 0) for name in names]
        bars = ax.bar([x + i * width for x in range(len(names))], values, width, label=f"v{version}")
        ax.bar_label(bars, fmt="%.3g", fontsize=6, padding=1)
    ax.set_xticks([x + width * (len(versions) - 1) / 2 for x in range(len(names))], names, fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    ax.set_title("Performance metrics by version (as registered)", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.margins(y=0.15)
    return _png(fig)


def drift_over_time(points: list[tuple[str, str, float | None, float | None, bool]]) -> bytes | None:
    """Share of drifted features per monitor over time with its threshold: [(at, monitor, value, threshold, breach)]."""
    series: dict[str, list[tuple[str, float, float | None, bool]]] = defaultdict(list)
    for at, monitor, value, threshold, breached in points:
        if value is not None:
            series[monitor].append((at[:16].replace("T", " "), value, threshold, breached))
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 2.6))
    for monitor, rows in sorted(series.items()):
        xs = list(range(len(rows)))
        line = ax.plot(xs, [r[1] for r in rows], marker="o", markersize=3, linewidth=1, label=monitor)[0]
        thresholds = [r[2] for r in rows if r[2] is not None]
        if thresholds:
            ax.axhline(thresholds[-1], color=line.get_color(), linestyle="--", linewidth=0.8)
        breaches = [(x, r[1]) for x, r in zip(xs, rows, strict=True) if r[3]]
        if breaches:
            breach_x, breach_y = zip(*breaches, strict=True)
            ax.scatter(breach_x, breach_y, color="red", s=14, zorder=3)
        step = max(1, len(rows) // 6)
        ax.set_xticks(xs[::step], [r[0] for r in rows][::step], rotation=20, fontsize=6, ha="right")
    ax.set_ylabel("share of features drifted", fontsize=7)
    ax.tick_params(axis="y", labelsize=7)
    ax.set_title("Drift over time (dashed: threshold, red: breach)", fontsize=9)
    ax.legend(fontsize=6)
    return _png(fig)


def approval_cycle_by_role(cycle: dict[str, dict]) -> bytes | None:
    """Mean hours from a request's opening to each role's signature."""
    rows = [(role, float(figures["mean"])) for role, figures in sorted(cycle.items())
            if figures.get("mean") is not None]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 1.8))
    bars = ax.barh([r[0] for r in rows], [r[1] for r in rows], color="#4c72b0")
    ax.bar_label(bars, fmt="%.2f h", fontsize=6, padding=2)
    ax.set_xlabel("mean hours from opening to signature", fontsize=7)
    ax.tick_params(labelsize=7)
    ax.set_title("Approval cycle time per role", fontsize=9)
    ax.set_xlim(left=0, right=max(1.0, max(r[1] for r in rows) * 1.25))
    return _png(fig)
