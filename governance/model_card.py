"""The model card of a model version, built from the registry and its newest reports (a read; nothing stored).

Sections follow the Model Card Toolkit's schema (`model_details`, `model_parameters`,
`quantitative_analysis`, `considerations`; tensorflow/model-card-toolkit, schema v0.0.2), and the
same content is also given under the section names of Mitchell et al., "Model Cards for Model
Reporting" (2019): `intended_use`, `factors`, `metrics`, `evaluation_data`, `training_data`,
`quantitative_analyses`, `ethical_considerations`, `caveats_and_recommendations`.
"""

from collections.abc import Callable
from typing import Any

from governance.models import Report
from registry.models import DatasetVersion, ModelVersion

SCHEMA = "https://github.com/tensorflow/model-card-toolkit (schema v0.0.2) + Mitchell et al. 2019 sections"
GROUP_METRICS = {"classification": ("selection_rate", "accuracy", "recall", "fpr"),
                 "regression": ("mae", "rmse", "mean_prediction")}


def _dataset(version: DatasetVersion) -> dict[str, Any]:
    return {"name": version.dataset.name, "version": version.version, "sha256": version.sha256,
            "rows": version.row_count, "format": version.format, "target_column": version.target_column,
            "sensitive_columns": list(version.sensitive_columns or []), "license": version.license,
            "source_uri": version.source_uri, "provenance": version.provenance,
            "columns": [column.get("name") for column in version.schema]}


def _latest_reports(model_version: ModelVersion) -> dict[str, Report]:
    latest: dict[str, Report] = {}
    for report in (Report.objects.filter(model_version=model_version).select_related("evaluation")
                   .prefetch_related("charts").order_by("-created_at", "-id")):
        latest.setdefault(report.kind, report)
    return latest


def _metric(name: str, value: Any, *, slice_: str, source: str, ci: dict | None = None) -> dict[str, Any]:
    row = {"type": name, "value": value, "slice": slice_, "source": source}
    if ci and ci.get("low") is not None:
        row["confidence_interval"] = {"lower_bound": ci.get("low"), "upper_bound": ci.get("high"),
                                      "level": ci.get("level")}
    return row


def _performance_metrics(model_version: ModelVersion, fairness: Report | None) -> list[dict[str, Any]]:
    rows = [_metric(name, value, slice_="overall", source="registered with the version")
            for name, value in sorted((model_version.metrics or {}).items()) if isinstance(value, int | float)]
    if fairness is None:
        return rows
    results = fairness.results
    task = results.get("task", "classification")
    source = f"fairness report #{fairness.pk} (sha256 {fairness.sha256})"
    for name in GROUP_METRICS.get(task, ()):
        value = (results.get("overall") or {}).get(name)
        if value is not None:
            rows.append(_metric(name, value, slice_="overall", source=source))
    ci = results.get("ci") or {}
    for name, value in sorted((results.get("headline") or {}).items(), key=lambda item: item[0]):
        if name != "where" and value is not None:
            where = ((results.get("headline") or {}).get("where") or {}).get(name) or {}
            rows.append(_metric(name, value, slice_=f"worst: {where.get('feature')}={where.get('group')}",
                                source=source, ci=ci.get(name)))
    for feature, entry in sorted((results.get("features") or {}).items(), key=lambda item: item[0]):
        if "×" in feature:
            continue  # intersections stay in the report; the card lists single features
        for group in entry.get("groups", []):
            for name in GROUP_METRICS.get(task, ()):
                if group.get(name) is not None:
                    rows.append(_metric(name, group[name], slice_=f"{feature}={group['group']}", source=source,
                                        ci=(group.get("ci") or {}).get(name)))
    return rows


def model_card_build(*, model_version: ModelVersion, chart_url: Callable[[Report, str], str]) -> dict[str, Any]:
    """The card of one version: registry facts, the newest fairness and explainability reports, their charts."""
    model = model_version.model
    training = [_dataset(d) for d in model_version.training_datasets.select_related("dataset").order_by("pk")]
    evaluation = [_dataset(d) for d in model_version.evaluation_datasets.select_related("dataset").order_by("pk")]
    reports = _latest_reports(model_version)
    fairness, explainability = reports.get("fairness"), reports.get("explainability")
    fresults = fairness.results if fairness else {}
    eresults = explainability.results if explainability else {}
    # The evaluation's list gives the order (PostgreSQL's jsonb keeps no key order).
    sensitive = [f for f in (fairness.evaluation.sensitive_features if fairness else [])
                 if f in (fresults.get("features") or {})]
    proxy = eresults.get("proxy_check") or {}
    ethical = [{"name": f"{flag['feature']} ranks #{flag['rank']} in importance and "
                        + ("is a sensitive column" if flag.get("reason") == "sensitive column"
                           else f"is associated with {flag['sensitive']} (Cramér's V {flag['association']:.2f})"),
                "mitigation_strategy": "Review whether the model may use it; consider removing it or its proxies."}
               for flag in proxy.get("flags", [])]
    limitations = [text for text in (model.limitations,) if text]
    small = sorted({f"{feature}={g['group']} (n={g['count']})" for feature, entry in
                    (fresults.get("features") or {}).items() if "×" not in feature
                    for g in entry.get("groups", []) if g.get("small")})
    caveats = limitations + ([f"Groups below {fresults.get('min_group_size')} rows (estimates uncertain): "
                              + ", ".join(small)] if small else [])
    if explainability is not None:
        sample = eresults.get("sample") or {}
        caveats.append(f"SHAP values were computed with {eresults.get('explainer_class')} on {sample.get('rows')} "
                       f"of {sample.get('of_rows')} evaluation rows ({eresults.get('output')}).")
    graphics = [{"name": chart.title or chart.name, "image": chart_url(report, chart.name), "sha256": chart.sha256}
                for report in reports.values() for chart in report.charts.all()]
    quantitative = {"performance_metrics": _performance_metrics(model_version, fairness),
                    "graphics": {"description": "PNG charts of the reports", "collection": graphics}}
    intended_use = {"use_cases": [model.intended_use] if model.intended_use else [],
                    "users": [], "out_of_scope": limitations}
    considerations = {
        "users": [], "use_cases": intended_use["use_cases"], "limitations": limitations, "tradeoffs": [],
        "ethical_considerations": ethical,
        "fairness_assessment": {"report": fairness.pk if fairness else None, "headline": fresults.get("headline"),
                                "sensitive_features": sensitive, "binning": fresults.get("binning")},
    }
    return {
        "schema": SCHEMA,
        "model_details": {
            "name": model.name, "overview": model.description,
            "version": {"name": str(model_version.version), "date": model_version.created_at.isoformat(),
                        "diff": model_version.description},
            "owners": [{"name": model.team.name, "contact": ""}],
            "licenses": [], "references": [r for r in (model_version.code_repository,) if r],
            "citations": [], "path": model_version.artifact_uri,
            "risk_tier": model.risk_tier, "status": model_version.status,
            "artifact_sha256": model_version.artifact_sha256, "artifact_format": model_version.artifact_format,
            "framework": f"{model_version.framework} {model_version.framework_version}".strip(),
            "code_commit": model_version.code_commit,
        },
        "model_parameters": {
            "model_architecture": (model_version.hyperparameters or {}).get("estimator", model_version.framework),
            "hyperparameters": model_version.hyperparameters,
            "data": {"train": training, "eval": evaluation},
            "input_format": ", ".join(model_version.feature_names or []),
            "output_format": model_version.task,
        },
        "quantitative_analysis": quantitative,
        "considerations": considerations,
        # Mitchell et al. 2019 section names
        "intended_use": intended_use,
        "factors": {"sensitive_features": sensitive, "binning": fresults.get("binning"),
                    "intersections": sorted(f for f in (fresults.get("features") or {}) if "×" in f)},
        "metrics": {"performance": sorted(model_version.metrics or {}),
                    "fairness": sorted(k for k in (fresults.get("headline") or {}) if k != "where"),
                    "decision_threshold": "the model's own predict()", "bootstrap": fresults.get("ci") and {
                        k: v.get("resamples") for k, v in fresults["ci"].items()}},
        "evaluation_data": evaluation,
        "training_data": training,
        "quantitative_analyses": quantitative,
        "ethical_considerations": ethical,
        "caveats_and_recommendations": caveats,
        "reports": [{"id": r.pk, "kind": r.kind, "sha256": r.sha256, "created_at": r.created_at.isoformat(),
                     "artifact_sha256": r.artifact_sha256, "dataset_sha256": r.dataset_sha256}
                    for r in reports.values()],
    }
