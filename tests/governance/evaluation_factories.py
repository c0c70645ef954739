"""Builders for evaluation tests: a synthetic credit data set, a trained pipeline stored as skops, real uploads.

The data are made here (seeded): a binary target `approved` ("yes"/"no"), sensitive columns
`sex` and `age`, a feature `postcode_band` that is a strong proxy of `sex`, and `income`.
"""

import hashlib
import io
from dataclasses import dataclass

import numpy as np
import pandas as pd

from registry import services as registry
from registry.models import DatasetVersion, ModelVersion
from tests.governance.workflow_factories import World
from tests.registry.factories import upload

FEATURES = ["income", "age", "sex", "postcode_band"]
SENSITIVE = ["sex", "age"]


def credit_frame(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sex = rng.choice(["female", "male"], size=n, p=[0.4, 0.6])
    # postcode band follows sex 90% of the time: a proxy
    postcode = np.where(rng.random(n) < 0.9, np.where(sex == "male", "north", "south"),
                        rng.choice(["north", "south"], size=n))
    age = rng.integers(18, 80, size=n)
    income = np.round(rng.normal(40_000, 12_000, size=n) + (sex == "male") * 6_000, 2)
    logit = (income - 42_000) / 8_000 + (postcode == "north") * 0.8 - 0.02 * (age - 45)
    approved = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
    return pd.DataFrame({"income": income, "age": age, "sex": sex, "postcode_band": postcode,
                         "approved": approved})


def credit_pipeline(kind: str = "logistic"):
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    head = LogisticRegression(max_iter=500) if kind == "logistic" else GradientBoostingClassifier(random_state=0)
    preprocess = ColumnTransformer([("categorical", OneHotEncoder(handle_unknown="ignore"), ["sex", "postcode_band"]),
                                    ("numeric", StandardScaler(), ["income", "age"])])
    return Pipeline([("preprocess", preprocess), ("classifier", head)])


def csv_of(frame: pd.DataFrame) -> bytes:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue().encode()


@dataclass
class Credit:
    world: World
    training: DatasetVersion
    evaluation: DatasetVersion
    version: ModelVersion
    frame: pd.DataFrame


def dataset_version_upload(world: World, frame: pd.DataFrame, *, name: str | None = None, dataset=None,
                           target: str = "approved", sensitive=tuple(SENSITIVE)) -> DatasetVersion:
    if dataset is None:
        dataset = registry.dataset_register(actor=world.engineer, name=name or f"credit-{id(frame)}", team=world.team)
    return registry.dataset_version_register(actor=world.engineer, dataset=dataset,
                                             file=upload(csv_of(frame), "data.csv"), target_column=target,
                                             sensitive_columns=list(sensitive))


def credit_world(tier: str = "limited", kind: str = "logistic", prefix: str = "") -> Credit:
    """A World whose model has a real, loadable skops version trained on a registered split."""
    import skops.io as sio

    world = World(tier, prefix=prefix)
    data = credit_frame()
    train, test = data.iloc[:400].reset_index(drop=True), data.iloc[400:].reset_index(drop=True)
    dataset = registry.dataset_register(actor=world.engineer, name=f"{prefix}credit-data", team=world.team)
    training = dataset_version_upload(world, train, dataset=dataset)
    evaluation = dataset_version_upload(world, test, dataset=dataset)
    model = credit_pipeline(kind).fit(train[FEATURES], train["approved"])
    artifact = sio.dumps(model)
    version = registry.model_version_register(
        actor=world.engineer, model=world.model, artifact=upload(artifact, "model.skops"),
        declared_sha256=hashlib.sha256(artifact).hexdigest(), task="classification", framework="scikit-learn",
        feature_names=FEATURES, training_datasets=[training], evaluation_datasets=[evaluation],
        metrics={"accuracy": 0.75}, authors=[world.engineer],
    )
    return Credit(world=world, training=training, evaluation=evaluation, version=version, frame=test)
