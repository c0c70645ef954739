"""Builders for the approval workflow: people with roles, a team, a registered model and versions.

Registration goes through the registry's services (artifacts by https reference, so no file
is stored); dataset versions are real CSV uploads.
"""

import hashlib
import itertools

from django.contrib.auth.models import Group, User
from django.db import transaction

from governance.models import AuditEvent, AuditQueueEntry
from governance.services.tokens import api_token_issue
from registry import services as registry
from registry.models import DatasetVersion, ModelVersion, RegisteredModel, Team
from tests.registry.factories import upload

PASSWORD = "pw-Attest-123"
_counter = itertools.count(1)


def logged(action: str) -> list:
    """The events of `action` written so far: queued (chained when their transaction commits) or, for
    a `chain_now` writer on PostgreSQL (the gate), already chained in their own transaction."""
    return [*AuditQueueEntry.objects.filter(action=action), *AuditEvent.objects.filter(action=action)]


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def person(username: str, *roles: str, first: str = "", last: str = "") -> User:
    """A user with roles, the shared test password and a printed name."""
    user = User.objects.create_user(username=username, password=PASSWORD,
                                     first_name=first or username.title(), last_name=last or "Tester")
    if roles:
        user.groups.add(*Group.objects.filter(name__in=roles))
    return user


def team(name: str | None = None, *members: User) -> Team:
    with transaction.atomic():
        created = registry.team_create(actor=None, name=name or f"team-{next(_counter)}")
    created.members.add(*members)
    return created


def model(*, owner: User, team_: Team, tier: str = "limited", name: str | None = None) -> RegisteredModel:
    return registry.model_register(actor=owner, name=name or f"model-{next(_counter)}", team=team_,
                                   risk_tier=tier)


def dataset_version(*, owner: User, team_: Team, name: str | None = None, rows: str = "") -> DatasetVersion:
    dataset = registry.dataset_register(actor=owner, name=name or f"data-{next(_counter)}", team=team_)
    text = "age,income,approved\n34,52000.5,1\n51,61000.0,0\n" + rows
    return registry.dataset_version_register(actor=owner, dataset=dataset, file=upload(text.encode(), "d.csv"))


def version(*, owner: User, model_: RegisteredModel, artifact: str | None = None, datasets=(),
            parent: ModelVersion | None = None, authors=(), metrics: dict | None = None) -> ModelVersion:
    digest = sha(artifact or f"artifact-{next(_counter)}")
    return registry.model_version_register(
        actor=owner, model=model_, artifact_uri=f"https://models.example.com/{digest}.skops",
        declared_sha256=digest, training_datasets=list(datasets), parent=parent, authors=list(authors),
        metrics=metrics if metrics is not None else {"accuracy": 0.9},
    )


def token_for(user: User, *scopes: str) -> str:
    _, key = api_token_issue(actor=None, user=user, scopes=list(scopes) or None)
    return key


class World:
    """A team, its engineer and CI, the officers of every role, and one model of a given tier."""

    def __init__(self, tier: str = "limited", prefix: str = "") -> None:
        p = prefix
        self.engineer = person(f"{p}eng", "ml_engineer")
        self.scientist = person(f"{p}sci", "data_scientist")
        self.ci = person(f"{p}ci", "ci_service")
        self.validator = person(f"{p}val", "model_validator")
        self.compliance = person(f"{p}comp", "compliance_officer")
        self.risk = person(f"{p}risk", "risk_officer")
        self.auditor = person(f"{p}aud", "auditor")
        self.signing_engineer = person(f"{p}eng2", "ml_engineer")
        self.team = team(f"{p}team", self.engineer, self.scientist, self.ci, self.signing_engineer)
        self.model = model(owner=self.engineer, team_=self.team, tier=tier, name=f"{p}credit")
        self.data = dataset_version(owner=self.engineer, team_=self.team, name=f"{p}loans")
        self.v1 = version(owner=self.engineer, model_=self.model, artifact=f"{p}v1", datasets=[self.data],
                          authors=[self.engineer])

    def signers(self) -> list[User]:
        """The officers who together meet the model's default policy."""
        return {
            "high": [self.validator, self.compliance, self.risk],
            "limited": [self.validator, self.compliance],
            "minimal": [self.signing_engineer],
        }.get(self.model.risk_tier, [])
