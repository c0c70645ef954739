"""The demo registry: two real data sets, three trained models, their lineage (`manage.py load_demo`).

Everything is registered through the registry services, by the demo users, exactly as a
training job would through the API, so the audit log of a demo database is a real one.

- Toronto arrests (scikit-lego, no download): target `released`; sensitive `colour`, `sex`,
  `age`, `citizen`. Split 75/25 (stratified, seed 0) into a training and an evaluation
  version; a logistic regression (v1) and a gradient-boosting classifier (v2) of the model
  `arrests-release-classifier`, risk tier `high` (it informs decisions about people's liberty).
- Diabetes progression (scikit-learn, bundled): a regression example, sensitive `sex`, `age`;
  one gradient-boosting regressor of `diabetes-progression-regressor`, tier `limited`.

Idempotent: each step looks for what it would register (a data set by name, a version by its
content sha256, a model version by its description) and skips it when present. The CSV bytes
are deterministic, the skops files are not (their zip carries a timestamp), hence the
description as the key of a model version.
"""

import hashlib
import io
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile

from registry import services
from registry.models import Dataset, DatasetVersion, ModelVersion, RegisteredModel, Team

DEMO_TEAM = "risk-analytics"
DEMO_TEAM_DESCRIPTION = "Builds the demo's risk models; owns their data sets and models."
# The demo users who do the registering (created by `manage.py create_demo_users`).
DEMO_DATA_SCIENTIST = "dana"
DEMO_ML_ENGINEER = "emil"

ARRESTS_DATASET = "toronto-arrests"
ARRESTS_MODEL = "arrests-release-classifier"
DIABETES_DATASET = "diabetes-progression"
DIABETES_MODEL = "diabetes-progression-regressor"
SPLIT_SEED = 0
EVALUATION_FRACTION = 0.25

Log = Callable[[str], None]


class DemoPrerequisiteMissing(Exception):
    """The demo users are missing: `manage.py create_demo_users` has not run."""


@dataclass
class DemoResult:
    """What one run registered (created) and what it found already there (skipped)."""

    created: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Split:
    training: Any
    evaluation: Any


def code_commit() -> str:
    """The commit of this checkout (`git rev-parse HEAD`), or "unknown" outside a git work tree."""
    git = shutil.which("git")
    if git is None:
        return "unknown"
    try:
        completed = subprocess.run(  # noqa: S603 # nosec B603 # fixed argv, no shell, nothing from a request
            [git, "rev-parse", "HEAD"], cwd=settings.BASE_DIR, capture_output=True, text=True,
            timeout=10, check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit = completed.stdout.strip()
    return commit if len(commit) in (40, 64) else "unknown"


def _csv_bytes(frame) -> bytes:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue().encode("utf-8")


def _split(frame, *, stratify: str | None) -> _Split:
    from sklearn.model_selection import train_test_split

    training, evaluation = train_test_split(
        frame, test_size=EVALUATION_FRACTION, random_state=SPLIT_SEED,
        stratify=frame[stratify] if stratify else None,
    )
    return _Split(training=training.reset_index(drop=True), evaluation=evaluation.reset_index(drop=True))


def _jsonable_params(estimator) -> dict[str, Any]:
    # Only plain values: nested estimators and arrays are not hyperparameters a reviewer reads.
    return {
        key: value for key, value in sorted(estimator.get_params(deep=False).items())
        if value is None or isinstance(value, bool | int | float | str)
    }


def _users() -> tuple[Any, Any]:
    User = get_user_model()
    found = {user.username: user for user in User.objects.filter(
        username__in=[DEMO_DATA_SCIENTIST, DEMO_ML_ENGINEER])}
    missing = [name for name in (DEMO_DATA_SCIENTIST, DEMO_ML_ENGINEER) if name not in found]
    if missing:
        raise DemoPrerequisiteMissing(
            f"Demo user(s) {', '.join(missing)} missing; run `manage.py create_demo_users` first."
        )
    return found[DEMO_DATA_SCIENTIST], found[DEMO_ML_ENGINEER]


class _Loader:
    def __init__(self, log: Log):
        self.log = log
        self.result = DemoResult()
        self.scientist, self.engineer = _users()
        self.commit = code_commit()

    def _created(self, what: str) -> None:
        self.result.created.append(what)
        self.log(f"  registered {what}")

    def _skipped(self, what: str) -> None:
        self.result.skipped.append(what)
        self.log(f"  already there: {what}")

    # --- steps ------------------------------------------------------------------------------
    def team(self) -> Team:
        team = Team.objects.filter(name=DEMO_TEAM).first()
        if team is None:
            team = services.team_create(actor=self.scientist, name=DEMO_TEAM, description=DEMO_TEAM_DESCRIPTION)
            self._created(f"team {DEMO_TEAM}")
        else:
            self._skipped(f"team {DEMO_TEAM}")
        for user in (self.scientist, self.engineer):
            if not team.members.filter(pk=user.pk).exists():
                services.team_member_add(actor=self.scientist, team=team, user=user)
                self._created(f"member {user.username} of {DEMO_TEAM}")
        return team

    def dataset(self, *, name: str, team: Team, description: str) -> Dataset:
        dataset = Dataset.objects.filter(name=name).first()
        if dataset is None:
            dataset = services.dataset_register(actor=self.scientist, name=name, team=team,
                                                description=description)
            self._created(f"dataset {name}")
        else:
            self._skipped(f"dataset {name}")
        return dataset

    def split_versions(self, *, dataset: Dataset, split, source: str, method: str,
                       **fields) -> tuple[DatasetVersion, DatasetVersion]:
        """The training and evaluation versions of a split, each with its provenance."""
        versions = []
        for label, part, share in (("training", split.training, 1 - EVALUATION_FRACTION),
                                   ("evaluation", split.evaluation, EVALUATION_FRACTION)):
            how = ", ".join(filter(None, [f"{share:.0%}", method, f"seed {SPLIT_SEED}"]))
            versions.append(self.dataset_version(
                dataset=dataset, content=_csv_bytes(part), label=label,
                provenance=f"{source}; {label} split, {how}.", **fields,
            ))
        return versions[0], versions[1]

    def dataset_version(self, *, dataset: Dataset, content: bytes, label: str, **fields) -> DatasetVersion:
        sha256 = hashlib.sha256(content).hexdigest()
        version = DatasetVersion.objects.filter(dataset=dataset, sha256=sha256).first()
        if version is not None:
            self._skipped(f"{dataset.name} v{version.version} ({label}, sha256 {sha256[:12]}…)")
            return version
        version = services.dataset_version_register(
            actor=self.scientist, dataset=dataset, file=ContentFile(content, name=f"{label}.csv"),
            declared_sha256=sha256, **fields,
        )
        self._created(f"{dataset.name} v{version.version} ({label}, {version.row_count} rows, "
                      f"sha256 {sha256[:12]}…)")
        return version

    def model(self, *, name: str, team: Team, **fields) -> RegisteredModel:
        model = RegisteredModel.objects.filter(name=name).first()
        if model is None:
            model = services.model_register(actor=self.engineer, name=name, team=team, **fields)
            self._created(f"model {name} (risk tier {model.risk_tier})")
        else:
            self._skipped(f"model {name}")
        return model

    def model_version_existing(self, *, model: RegisteredModel, description: str) -> ModelVersion | None:
        version = ModelVersion.objects.filter(model=model, description=description).order_by("version").first()
        if version is not None:
            self._skipped(f"{model.name} v{version.version} ({description.split(':')[0]})")
        return version

    def model_version(self, *, model: RegisteredModel, estimator, features: list[str], task: str,
                      metrics: dict[str, float], training: DatasetVersion, evaluation: DatasetVersion,
                      description: str, hyperparameters: dict[str, Any]) -> ModelVersion:
        import sklearn
        import skops.io

        artifact = skops.io.dumps(estimator)
        version = services.model_version_register(
            actor=self.engineer, model=model,
            artifact=ContentFile(artifact, name="model.skops"),
            declared_sha256=hashlib.sha256(artifact).hexdigest(),
            framework="scikit-learn", framework_version=sklearn.__version__, task=task,
            code_repository="", code_commit=self.commit,
            hyperparameters=hyperparameters, metrics=metrics, feature_names=features,
            training_datasets=[training], evaluation_datasets=[evaluation],
            authors=[self.scientist, self.engineer], description=description,
        )
        self._created(f"{model.name} v{version.version} ({description.split(':')[0]}; "
                      + ", ".join(f"{key} {value:.3f}" for key, value in metrics.items()) + ")")
        return version

    # --- the two examples -------------------------------------------------------------------
    def arrests(self, team: Team) -> None:
        from sklego.datasets import load_arrests

        self.log("Toronto arrests (scikit-lego): binary classification of `released`")
        frame = load_arrests(as_frame=True)
        split = _split(frame, stratify="released")
        dataset = self.dataset(
            name=ARRESTS_DATASET, team=team,
            description="Arrests for simple possession of marijuana in Toronto, 1997-2002 (Toronto Star); "
                        "whether the arrestee was released with a summons.",
        )
        common = {
            "target_column": "released", "sensitive_columns": ("colour", "sex", "age", "citizen"),
            "source_uri": "https://github.com/koaning/scikit-lego",
            "license": "MIT (scikit-lego); data from the Toronto Star via the R package carData",
        }
        training, evaluation = self.split_versions(
            dataset=dataset, split=split, source="sklego.datasets.load_arrests()",
            method="stratified on `released`", **common,
        )
        model = self.model(
            name=ARRESTS_MODEL, team=team, risk_tier=RegisteredModel.RiskTier.HIGH,
            description="Predicts whether a person arrested for possession is released with a summons.",
            intended_use="Demonstration of Attest's governance workflow only; not for decisions about people.",
            limitations="Historic data from one city and period; uses protected attributes (colour, sex, "
                        "age, citizenship) as features, so disparities in the data are learnt.",
        )
        features = [column for column in frame.columns if column != "released"]
        candidates = [
            ("logistic regression: one-hot categories, standardised numbers", "logistic_regression"),
            ("gradient boosting: one-hot categories, standardised numbers", "gradient_boosting"),
        ]
        for description, kind in candidates:
            if self.model_version_existing(model=model, description=description):
                continue
            self.log(f"  training {kind} …")
            estimator, head = _arrests_pipeline(kind)
            estimator.fit(split.training[features], split.training["released"])
            metrics = _classification_metrics(estimator, split.evaluation[features],
                                              split.evaluation["released"], positive="Yes")
            self.model_version(
                model=model, estimator=estimator, features=features, task="classification",
                metrics=metrics, training=training, evaluation=evaluation, description=description,
                hyperparameters={"estimator": type(head).__name__, **_jsonable_params(head)},
            )

    def diabetes(self, team: Team) -> None:
        from sklearn.datasets import load_diabetes

        self.log("Diabetes progression (scikit-learn): regression of `target`")
        frame = load_diabetes(scaled=False, as_frame=True).frame
        split = _split(frame, stratify=None)
        dataset = self.dataset(
            name=DIABETES_DATASET, team=team,
            description="442 diabetes patients: ten baseline variables and a quantitative measure of "
                        "disease progression one year later (Efron et al., 2004).",
        )
        common = {
            "target_column": "target", "sensitive_columns": ("sex", "age"),
            "source_uri": "https://scikit-learn.org/stable/datasets/toy_dataset.html#diabetes-dataset",
            "license": "BSD-3-Clause (scikit-learn); data from Efron et al., Annals of Statistics 2004",
        }
        training, evaluation = self.split_versions(
            dataset=dataset, split=split, source="sklearn.datasets.load_diabetes(scaled=False)", method="",
            **common,
        )
        model = self.model(
            name=DIABETES_MODEL, team=team, risk_tier=RegisteredModel.RiskTier.LIMITED,
            description="Predicts a measure of diabetes progression one year after baseline.",
            intended_use="Demonstration of Attest with a regression model; not for clinical use.",
            limitations="442 patients from one study; sex and age are features.",
        )
        description = "gradient boosting regressor on the ten baseline variables"
        if self.model_version_existing(model=model, description=description):
            return
        from sklearn.ensemble import GradientBoostingRegressor

        self.log("  training gradient_boosting_regressor …")
        features = [column for column in frame.columns if column != "target"]
        estimator = GradientBoostingRegressor(random_state=SPLIT_SEED)
        estimator.fit(split.training[features], split.training["target"])
        metrics = _regression_metrics(estimator, split.evaluation[features], split.evaluation["target"])
        self.model_version(
            model=model, estimator=estimator, features=features, task="regression", metrics=metrics,
            training=training, evaluation=evaluation, description=description,
            hyperparameters={"estimator": type(estimator).__name__, **_jsonable_params(estimator)},
        )


def _arrests_pipeline(kind: str):
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    head = (LogisticRegression(max_iter=1000) if kind == "logistic_regression"
            else GradientBoostingClassifier(random_state=SPLIT_SEED))
    preprocess = ColumnTransformer([
        ("categorical", OneHotEncoder(handle_unknown="ignore"), ["colour", "sex", "employed", "citizen"]),
        ("numeric", StandardScaler(), ["year", "age", "checks"]),
    ])
    return Pipeline([("preprocess", preprocess), ("classifier", head)]), head


def _classification_metrics(estimator, features, target, *, positive: str) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, roc_auc_score

    scores = estimator.predict_proba(features)[:, list(estimator.classes_).index(positive)]
    return {
        "accuracy": round(float(accuracy_score(target, estimator.predict(features))), 6),
        "roc_auc": round(float(roc_auc_score(target == positive, scores)), 6),
    }


def _regression_metrics(estimator, features, target) -> dict[str, float]:
    from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error

    predicted = estimator.predict(features)
    return {
        "r2": round(float(r2_score(target, predicted)), 6),
        "mae": round(float(mean_absolute_error(target, predicted)), 6),
        "rmse": round(float(root_mean_squared_error(target, predicted)), 6),
    }


def demo_load(*, log: Log = lambda line: None) -> DemoResult:
    """Register the demo team, data sets, versions, models and versions that are not there yet.

    Each registration is its own service call and transaction, so an interrupted run leaves
    whole records and the next run completes it. Raises DemoPrerequisiteMissing without the
    demo users.
    """
    loader = _Loader(log)
    log(f"Team {DEMO_TEAM}")
    team = loader.team()
    loader.arrests(team)
    loader.diabetes(team)
    for _order, step in sorted(_demo_steps, key=lambda item: item[0]):
        step(log=log, result=loader.result)
    return loader.result


# Steps of the apps built on the registry (governance, monitoring) that cannot be imported from
# here: each registers itself when its app is ready; they run after the registry's, by `order`.
DemoStep = Callable[..., None]  # step(*, log: Log, result: DemoResult)
_demo_steps: list[tuple[int, DemoStep]] = []


def demo_step_add(step: DemoStep, *, order: int = 100) -> DemoStep:
    """Run `step(log=, result=)` at the end of every demo_load, lowest `order` first (idempotent steps only)."""
    if all(existing is not step for _order, existing in _demo_steps):
        _demo_steps.append((order, step))
    return step
