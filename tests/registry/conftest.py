"""Registry fixtures: an isolated storage root per test, teams with members, registered objects."""

from pathlib import Path

import pytest

from governance.models import AuditEvent, AuditQueueEntry
from registry import services
from registry.models import Dataset, DatasetVersion, ModelVersion, RegisteredModel, Team
from tests.registry.factories import csv_bytes, skops_bytes, upload


@pytest.fixture(autouse=True)
def storage_root(settings, tmp_path) -> Path:
    """Each test stores blobs under its own directory, so file counts are exact."""
    root = tmp_path / "storage"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                    "OPTIONS": {"location": str(root)}},
    }
    return root


def stored_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def audit_total() -> int:
    """Events recorded so far, chained or still queued."""
    return AuditEvent.objects.count() + AuditQueueEntry.objects.count()


def registry_rows() -> dict[str, int]:
    return {model.__name__: model.objects.count()
            for model in (Team, Dataset, DatasetVersion, RegisteredModel, ModelVersion)}


@pytest.fixture
def new_actions(audit_flush):
    """new_actions(since_seq) -> the actions chained after seq `since_seq` (flushes the queue first)."""

    def _actions(since: int = 0) -> list[str]:
        audit_flush()
        return list(AuditEvent.objects.filter(seq__gt=since).order_by("seq").values_list("action", flat=True))

    return _actions


@pytest.fixture
def head_seq(audit_flush):
    def _head() -> int:
        audit_flush()
        return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0

    return _head


@pytest.fixture
def alice(make_user):
    return make_user("alice", roles=["ml_engineer"], first_name="Alice", last_name="Ng")


@pytest.fixture
def bob(make_user):
    """A data scientist of another team."""
    return make_user("bob", roles=["data_scientist"])


@pytest.fixture
def validator(make_user):
    return make_user("val", roles=["model_validator"])


@pytest.fixture
def team(alice) -> Team:
    team = services.team_create(actor=None, name="credit-risk", description="Credit models")
    return services.team_member_add(actor=None, team=team, user=alice)


@pytest.fixture
def other_team(bob) -> Team:
    team = services.team_create(actor=None, name="marketing")
    return services.team_member_add(actor=None, team=team, user=bob)


@pytest.fixture
def dataset(alice, team) -> Dataset:
    return services.dataset_register(actor=alice, name="loans", team=team, description="Loan book")


@pytest.fixture
def dataset_version(alice, dataset) -> DatasetVersion:
    return services.dataset_version_register(actor=alice, dataset=dataset, file=upload(csv_bytes(), "loans.csv"),
                                             target_column="approved", sensitive_columns=["sex"])


@pytest.fixture
def model(alice, team) -> RegisteredModel:
    return services.model_register(actor=alice, name="credit-scorer", team=team, risk_tier="high",
                                   intended_use="Consumer credit decisions")


@pytest.fixture
def model_version(alice, model, dataset_version) -> ModelVersion:
    return services.model_version_register(actor=alice, model=model, artifact=upload(skops_bytes(), "m.skops"),
                                           framework="scikit-learn", training_datasets=[dataset_version],
                                           authors=[alice], metrics={"auc": 0.81})


@pytest.fixture
def foreign_model_version(bob, other_team) -> ModelVersion:
    model = services.model_register(actor=bob, name="churn", team=other_team, risk_tier="limited")
    return services.model_version_register(actor=bob, model=model, artifact=upload(b"churn-model-bytes"))
