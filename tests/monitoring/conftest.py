"""Monitoring fixtures: a team, a model version trained on a real reference CSV, a monitor, batch builders."""

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from django.core.files.base import ContentFile

from monitoring.services.monitors import drift_monitor_create
from registry import services as registry
from tests.governance.workflow_factories import World

REFERENCE_ROWS = 600


@pytest.fixture(autouse=True)
def storage_root(settings, tmp_path) -> Path:
    root = tmp_path / "storage"
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(root)}}}
    return root


def sample(rows: int, *, seed: int, age_shift: float = 0.0, colour_mix=(0.6, 0.3, 0.1),
           labelled: bool = True, predicted_flip: float = 0.0) -> pd.DataFrame:
    """Rows like the reference: age ~ N(40 + shift, 10), income ~ N(50k, 8k), colour White/Black/Other."""
    rng = np.random.default_rng(seed)
    age = rng.normal(40 + age_shift, 10, rows).round(1)
    income = rng.normal(50_000, 8_000, rows).round(2)
    colour = rng.choice(["White", "Black", "Other"], size=rows, p=list(colour_mix))
    approved = (income + rng.normal(0, 4_000, rows) > 50_000).astype(int)
    frame = pd.DataFrame({"age": age, "income": income, "colour": colour})
    if labelled:
        frame["approved"] = approved
        predicted = approved.copy()
        flip = rng.random(rows) < predicted_flip
        predicted[flip] = 1 - predicted[flip]
        frame["predicted"] = predicted
    return frame


def csv_file(frame: pd.DataFrame, name: str = "batch.csv") -> ContentFile:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n")
    return ContentFile(buffer.getvalue().encode("utf-8"), name=name)


class Shop:
    """A World (team, officers, model) whose version is trained on a real reference, and its monitor."""

    def __init__(self, *, tier: str = "limited", prefix: str = "", breach_severity: str = "critical",
                 retrain_on_critical: bool = True) -> None:
        self.world = w = World(tier, prefix=prefix)
        dataset = registry.dataset_register(actor=w.engineer, name=f"{prefix}applications", team=w.team)
        self.reference = registry.dataset_version_register(
            actor=w.engineer, dataset=dataset, file=csv_file(sample(REFERENCE_ROWS, seed=1, labelled=False).assign(
                approved=sample(REFERENCE_ROWS, seed=1)["approved"]), "reference.csv"),
            target_column="approved", sensitive_columns=["colour"])
        digest = f"{prefix}v-monitored".encode().hex().ljust(64, "0")[:64]
        self.version = registry.model_version_register(
            actor=w.engineer, model=w.model, artifact_uri=f"https://models.example.com/{digest}.skops",
            declared_sha256=digest, training_datasets=[self.reference], authors=[w.engineer],
            feature_names=["age", "income", "colour"], metrics={"accuracy": 0.95}, task="classification")
        self.monitor = drift_monitor_create(
            actor=w.engineer, model_version=self.version, environment="production",
            breach_severity=breach_severity, retrain_on_critical=retrain_on_critical,
            prediction_column="predicted", drift_share=0.5)


@pytest.fixture
def shop(db) -> Shop:
    return Shop()
