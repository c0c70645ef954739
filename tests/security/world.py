"""Two teams' worth of real objects for the security tests, built once per test through the services.

`own` is team A: one user of every role is a member of it, so each role meets its own team's
objects; `foreign` is team B, whose objects only its own owner made. Every caller authenticates
with an API token of default scopes (a ci_service token for the CI identity), except the
anonymous caller. Objects added by later features get their attributes here and their rows in
`tests/security/authz_matrix.py`.
"""

import hashlib
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction

from governance.audit import audit_log_sequence
from governance.checkpoints import audit_checkpoint_create
from governance.gate import gate_evaluate
from governance.services.approvals import approval_request_open
from tests.governance.workflow_factories import PASSWORD, dataset_version, model, person, team, token_for, version

ROLES = ("data_scientist", "ml_engineer", "model_validator", "compliance_officer", "risk_officer", "auditor",
         "ci_service")
CALLERS = (*ROLES, "admin", "anonymous")


@dataclass
class Side:
    """One team's objects (ids and names the rows put into paths and bodies)."""

    name: str
    team: Any = None
    owner: Any = None
    requester: Any = None
    dataset: Any = None
    dataset_version: Any = None
    model: Any = None
    model_version: Any = None
    approval_request: Any = None
    decision: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, item: str) -> Any:
        # Objects added by later features live in `extra` (e.g. side.evaluation).
        extra = self.__dict__.get("extra", {})
        if item in extra:
            return extra[item]
        raise AttributeError(item)


@dataclass
class World:
    own: Side
    foreign: Side
    users: dict[str, User]
    tokens: dict[str, str]
    checkpoints: list[int]

    def side(self, name: str) -> Side:
        return self.own if name == "own" else self.foreign


def _side(name: str, *, owner: User, requester: User, members: list[User]) -> Side:
    side = Side(name=name, owner=owner, requester=requester)
    side.team = team(f"{name}-team", owner, requester, *members)
    side.model = model(owner=owner, team_=side.team, tier="limited", name=f"{name}-model")
    side.dataset_version = dataset_version(owner=owner, team_=side.team, name=f"{name}-data")
    side.dataset = side.dataset_version.dataset
    side.model_version = version(owner=owner, model_=side.model, artifact=f"{name}-v1",
                                 datasets=[side.dataset_version], authors=[owner])
    side.approval_request = approval_request_open(actor=requester, kind="deployment",
                                                  model_version=side.model_version, environment="staging",
                                                  reason="security matrix")
    # `dev` is outside the limited tier's policy, so the gate allows it with no approval: a
    # decision a deployment can cite.
    side.decision = gate_evaluate(actor=owner, model_name=side.model.name, version=side.model_version.version,
                                  environment="dev", artifact_sha256=side.model_version.artifact_sha256)
    assert side.decision.allowed, side.decision.checks
    return side


def build_world() -> World:
    users = {role: person(f"sec-{role}", role) for role in ROLES}
    users["admin"] = User.objects.create_superuser("sec-admin", "admin@example.com", PASSWORD)
    # Team A: every role's user is a member, so "own" means what it says for every role.
    own = _side("own", owner=person("sec-own-owner", "ml_engineer"), requester=users["data_scientist"],
                members=[users[role] for role in ROLES if role != "data_scientist"])
    foreign = _side("foreign", owner=person("sec-foreign-owner", "ml_engineer"),
                    requester=person("sec-foreign-sci", "data_scientist"), members=[])
    for hook in WORLD_HOOKS:
        hook(own, foreign, users)
    tokens = {role: token_for(user) for role, user in users.items()}
    with transaction.atomic():
        audit_log_sequence()
    first = audit_checkpoint_create(actor=None).size
    audit_log_sequence()
    second = audit_checkpoint_create(actor=None).size
    return World(own=own, foreign=foreign, users=users, tokens=tokens, checkpoints=[first, second])


# Later features add their objects to both sides here: hook(own, foreign, users).
WORLD_HOOKS: list = []


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
