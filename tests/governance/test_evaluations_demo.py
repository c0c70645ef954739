"""load_demo evaluates the demo models: reports equal to a direct fairlearn computation, real PNG charts,
regression errors per group, and a second run that adds nothing."""

import io

import numpy as np
import pandas as pd
import pytest
from django.core.management import call_command
from matplotlib import image as mpimg

from governance.models import Evaluation, Report, ReportChart
from governance.services.evaluations import dataset_frame
from registry.demo import ARRESTS_MODEL, DIABETES_MODEL
from registry.loader import model_version_load
from registry.models import ModelVersion

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _tasks_in_process(request):
    """Evaluations run in-process after commit, also when the suite has a broker (.ci/run's second pass);
    the worker test goes through the broker instead."""
    if "celery_worker" not in request.fixturenames:
        request.getfixturevalue("celery_eager")
TOLERANCE = 1e-9


def _demo() -> str:
    out = io.StringIO()
    call_command("create_demo_users", stdout=out)
    call_command("load_demo", stdout=out)
    return out.getvalue()


def _labels(series: pd.Series, edges: list | None) -> pd.Series:
    """The groups as the report names them: binned columns as "[a, b)" from the report's edges."""
    if not edges:
        return series.astype(str)
    numbers = [(-np.inf if i == 0 else np.inf) if e is None else e for i, e in enumerate(edges)]
    text = ["-inf" if e is None and i == 0 else "inf" if e is None else
            (str(int(e)) if float(e).is_integer() else f"{e:g}") for i, e in enumerate(edges)]
    names = [f"[{text[i]}, {text[i + 1]})" for i in range(len(edges) - 1)]
    return pd.cut(series, numbers, right=False, labels=names).astype(str)


def _fairlearn_classification(report: Report, model_version: ModelVersion) -> None:
    from fairlearn.metrics import (
        MetricFrame,
        demographic_parity_ratio,
        equalized_odds_difference,
        false_negative_rate,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )
    from sklearn.metrics import accuracy_score, precision_score, roc_auc_score

    results = report.results
    frame = dataset_frame(report.evaluation.dataset_version)
    model = model_version_load(model_version)
    features = list(model.feature_names_in_)
    positive = results["positive_label"]
    y_true = (frame["released"] == positive).astype(int)
    y_pred = (pd.Series(model.predict(frame[features])) == positive).astype(int)
    scores = model.predict_proba(frame[features])[:, list(model.classes_).index(positive)]
    metrics = {"selection_rate": selection_rate, "accuracy": accuracy_score,
               "precision": lambda t, p: precision_score(t, p, zero_division=0.0), "recall": true_positive_rate,
               "fpr": false_positive_rate, "fnr": false_negative_rate}
    for feature in ("colour", "sex", "age", "citizen"):
        groups = _labels(frame[feature], results["binning"].get(feature))
        reference = MetricFrame(metrics=metrics, y_true=y_true, y_pred=y_pred, sensitive_features=groups)
        stored = {g["group"]: g for g in results["features"][feature]["groups"]}
        assert sorted(stored) == sorted(reference.by_group.index.astype(str))
        for group, row in reference.by_group.iterrows():
            for name in metrics:
                assert abs(stored[str(group)][name] - row[name]) <= TOLERANCE, (feature, group, name)
            assert stored[str(group)]["count"] == int((groups == group).sum())
            mask = (groups == group).to_numpy()
            if len(set(y_true[mask])) == 2:
                assert abs(stored[str(group)]["roc_auc"] - roc_auc_score(y_true[mask], scores[mask])) <= TOLERANCE
        aggregates = results["features"][feature]["aggregates"]
        assert abs(aggregates["demographic_parity_ratio"]
                   - demographic_parity_ratio(y_true, y_pred, sensitive_features=groups)) <= TOLERANCE
        assert abs(aggregates["equalized_odds_difference"]
                   - equalized_odds_difference(y_true, y_pred, sensitive_features=groups)) <= TOLERANCE


def _png_decodes(chart: ReportChart) -> None:
    pixels = mpimg.imread(io.BytesIO(bytes(chart.png)), format="png")
    assert pixels.shape[:2] == (800, 1280)
    assert pixels.std() > 0.05  # not a blank canvas


def test_load_demo_reports_equal_fairlearn_and_charts_are_pngs(settings, django_capture_on_commit_callbacks):
    # given / when: the demo, as `make demo` loads it
    settings.DEBUG = True
    with django_capture_on_commit_callbacks(execute=True):
        output = _demo()
    # then: every demo model version was evaluated
    assert "Evaluations (fairness and explainability reports)" in output
    evaluations = Evaluation.objects.select_related("model_version__model")
    assert sorted((e.model_version.model.name, e.model_version.version, e.status) for e in evaluations) == [
        (ARRESTS_MODEL, 1, "succeeded"), (ARRESTS_MODEL, 2, "succeeded"), (DIABETES_MODEL, 1, "succeeded")]
    for version in ModelVersion.objects.filter(model__name=ARRESTS_MODEL):
        reports = {r.kind: r for r in Report.objects.filter(model_version=version)}
        assert sorted(reports) == ["explainability", "fairness"]
        assert reports["fairness"].evaluation.sensitive_features == ["colour", "sex", "age", "citizen"]
        _fairlearn_classification(reports["fairness"], version)
        explained = reports["explainability"].results
        assert explained["explainer"] == ("linear" if version.version == 1 else "tree")
        assert explained["sample"]["rows"] == min(1000, explained["sample"]["of_rows"])
        assert set(explained["features"]) == set(version.feature_names)
        assert explained["proxy_check"]["passed"] is False  # the demo uses colour, age, citizen as features
        names = set(ReportChart.objects.filter(report__model_version=version).values_list("name", flat=True))
        assert names == {"fairness-headline", "fairness-colour", "fairness-sex", "fairness-age",
                         "fairness-citizen", "shap-importance", "shap-beeswarm"}
        for chart in ReportChart.objects.filter(report__model_version=version):
            _png_decodes(chart)
    # the regression example: MAE and RMSE per group, equal to scikit-learn's
    from sklearn.metrics import mean_absolute_error, root_mean_squared_error

    diabetes = ModelVersion.objects.get(model__name=DIABETES_MODEL)
    fairness = Report.objects.get(model_version=diabetes, kind="fairness")
    results = fairness.results
    assert results["task"] == "regression"
    frame = dataset_frame(fairness.evaluation.dataset_version)
    predicted = model_version_load(diabetes).predict(frame[diabetes.feature_names])
    for feature in ("sex", "age"):
        groups = _labels(frame[feature], results["binning"].get(feature))
        for group in results["features"][feature]["groups"]:
            mask = (groups == group["group"]).to_numpy()
            assert abs(group["mae"] - mean_absolute_error(frame["target"][mask], predicted[mask])) <= TOLERANCE
            assert abs(group["rmse"] - root_mean_squared_error(frame["target"][mask], predicted[mask])) <= TOLERANCE
    assert Report.objects.filter(model_version=diabetes, kind="explainability").exists()

    # and a second run adds nothing
    counts = (Evaluation.objects.count(), Report.objects.count(), ReportChart.objects.count())
    with django_capture_on_commit_callbacks(execute=True):
        again = _demo()
    assert "already there: evaluation of" in again
    assert (Evaluation.objects.count(), Report.objects.count(), ReportChart.objects.count()) == counts
