"""Governance's part of `manage.py load_demo`: evaluations (fairness and explainability reports) of the demo models.

Both arrests classifiers are evaluated on the arrests evaluation split with the sensitive features
colour, sex, age and citizen; the diabetes regressor on its evaluation split with sex and age.
Requested by the demo data scientist through the same service as the API. Idempotent: a version
that already has a succeeded evaluation on that data is skipped (a failed one is retried).
Kept fast: bootstrap 200 resamples, SHAP on at most ATTEST_SHAP_MAX_ROWS rows.
"""

from collections.abc import Callable
from typing import Any

from django.contrib.auth import get_user_model

from governance.models import Evaluation
from governance.services.evaluations import evaluation_request
from registry.demo import ARRESTS_MODEL, DEMO_DATA_SCIENTIST, DIABETES_MODEL
from registry.models import ModelVersion

DEMO_BOOTSTRAP = 200
DEMO_SENSITIVE = {
    ARRESTS_MODEL: ["colour", "sex", "age", "citizen"],
    DIABETES_MODEL: ["sex", "age"],
}


def demo_evaluations(*, log: Callable[[str], None], result: Any) -> None:
    """Evaluate every demo model version on its evaluation data, unless that was done already."""
    scientist = get_user_model().objects.filter(username=DEMO_DATA_SCIENTIST).first()
    versions = (ModelVersion.objects.filter(model__name__in=list(DEMO_SENSITIVE))
                .select_related("model").prefetch_related("evaluation_datasets").order_by("model__name", "version"))
    if scientist is None or not versions:
        return
    log("Evaluations (fairness and explainability reports)")
    for version in versions:
        for dataset_version in version.evaluation_datasets.all():
            what = f"evaluation of {version} on {dataset_version}"
            done = Evaluation.objects.filter(model_version=version, dataset_version=dataset_version,
                                             status=Evaluation.Status.SUCCEEDED).first()
            if done is not None:
                result.skipped.append(what)
                log(f"  already there: {what} (#{done.pk})")
                continue
            log(f"  computing {what} …")
            evaluation = evaluation_request(
                actor=scientist, model_version=version, dataset_version=dataset_version,
                sensitive_features=DEMO_SENSITIVE[version.model.name], bootstrap=DEMO_BOOTSTRAP,
            )
            evaluation.refresh_from_db()
            result.created.append(what)
            outcome = evaluation.status if not evaluation.failure_code else (
                f"{evaluation.status}: {evaluation.failure_code} {evaluation.failure_reason}")
            log(f"  registered {what} (#{evaluation.pk}, {outcome}, "
                f"{evaluation.reports.count()} reports)")
