"""The reads every gate request makes, written once as SQL (docs/BENCHMARKS.md, "Gate").

The gate asks the same seven questions on every request: who holds this token, which version is
this and may the caller see it, which policy is in force, which deployment requests and
signatures stand, which reports and datasets the version has now. Through the ORM each question
cost 0.2–0.4 ms of CPU in query compilation alone; here each is one statement built at import
from the models' `_meta` and bound with parameters, and its rows become ordinary model instances
(mlops_site.common.sql_rows). The selectors that answer these questions elsewhere (approvals
recording their evidence, the admin's sign-off page) call the same functions, so the gate and
the rest of Attest cannot read the evidence differently.

Each read is a statement (`*_statement`: text and parameters) and a function that runs it through
`sql_rows.fetch_rows`, so the gate can send the five that depend only on the version and the
environment in one round trip (`gate_statements`, `sql_rows.read_ahead`) and the functions then
answer from what came back.

Reviewed SQL module: listed in tests/security/test_raw_sql.py.
"""

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection

from governance.models import ApiToken, ApprovalPolicy, ApprovalRequest, Report, Signature
from mlops_site.common.sql_rows import Statement, column_count, fetch_rows, instance_from_row, select_list
from registry.models import Dataset, DatasetVersion, ModelVersion, RegisteredModel, Team

User = get_user_model()


def _table(model: Any) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _col(model: Any, name: str) -> str:
    return connection.ops.quote_name(model._meta.get_field(name).column)


_USER_GROUPS = User.groups.through
_TEAM_MEMBERS = Team.members.through

# A token, its user and the user's role names: one row per role (one row with a NULL role for none).
_TOKEN_SQL = (
    f"SELECT {select_list(ApiToken, 't')}, {select_list(User, 'u')}, g.{_col(Group, 'name')} "
    f"FROM {_table(ApiToken)} t JOIN {_table(User)} u ON u.{_col(User, 'id')} = t.{_col(ApiToken, 'user')} "
    f"LEFT JOIN {_table(_USER_GROUPS)} ug ON ug.{_col(_USER_GROUPS, 'user')} = u.{_col(User, 'id')} "
    f"LEFT JOIN {_table(Group)} g ON g.{_col(Group, 'id')} = ug.{_col(_USER_GROUPS, 'group')} "
    f"WHERE t.{_col(ApiToken, 'key_sha256')} = %s"
)

# A version by model name and number, its model, and whether the user is in the model's team.
_VERSION_SQL = (
    f"SELECT {select_list(ModelVersion, 'mv')}, {select_list(RegisteredModel, 'm')}, "
    f"EXISTS (SELECT 1 FROM {_table(_TEAM_MEMBERS)} tm WHERE tm.{_col(_TEAM_MEMBERS, 'team')} = "
    f"m.{_col(RegisteredModel, 'team')} AND tm.{_col(_TEAM_MEMBERS, 'user')} = %s) "
    f"FROM {_table(ModelVersion)} mv JOIN {_table(RegisteredModel)} m "
    f"ON m.{_col(RegisteredModel, 'id')} = mv.{_col(ModelVersion, 'model')} "
    f"WHERE m.{_col(RegisteredModel, 'name')} = %s AND mv.{_col(ModelVersion, 'version')} = %s"
)

_POLICY_SQL = (
    f"SELECT {select_list(ApprovalPolicy, 'p')} FROM {_table(ApprovalPolicy)} p "
    f"WHERE p.{_col(ApprovalPolicy, 'risk_tier')} = %s ORDER BY p.{_col(ApprovalPolicy, 'version')} DESC LIMIT 1"
)

# The newest 20 deployment requests of a version to an environment in the given states, with
# their policies (ApprovalRequest's default order).
_REQUESTS_SQL = (
    f"SELECT {select_list(ApprovalRequest, 'r')}, {select_list(ApprovalPolicy, 'p')} "
    f"FROM {_table(ApprovalRequest)} r JOIN {_table(ApprovalPolicy)} p "
    f"ON p.{_col(ApprovalPolicy, 'id')} = r.{_col(ApprovalRequest, 'policy')} "
    f"WHERE r.{_col(ApprovalRequest, 'kind')} = %s AND r.{_col(ApprovalRequest, 'model_version')} = %s "
    f"AND r.{_col(ApprovalRequest, 'environment')} = %s AND r.{_col(ApprovalRequest, 'status')} IN (%s, %s) "
    f"ORDER BY r.{_col(ApprovalRequest, 'created_at')} DESC, r.{_col(ApprovalRequest, 'id')} DESC LIMIT 20"
)

# The signatures of a version's deployment requests to an environment in the given states (by
# request, then Signature's default order) and whether each signer still holds the role signed as.
# By the requests' key rather than one request's id, so that it needs no earlier answer and rides
# in the gate's one round trip.
_SIGNATURES_SQL = (
    f"SELECT {select_list(Signature, 's')}, EXISTS (SELECT 1 FROM {_table(_USER_GROUPS)} ug "
    f"JOIN {_table(Group)} g ON g.{_col(Group, 'id')} = ug.{_col(_USER_GROUPS, 'group')} "
    f"WHERE ug.{_col(_USER_GROUPS, 'user')} = s.{_col(Signature, 'signer')} "
    f"AND g.{_col(Group, 'name')} = s.{_col(Signature, 'role')}) "
    f"FROM {_table(Signature)} s WHERE s.{_col(Signature, 'request')} IN ("
    f"SELECT r.{_col(ApprovalRequest, 'id')} FROM {_table(ApprovalRequest)} r "
    f"WHERE r.{_col(ApprovalRequest, 'kind')} = %s AND r.{_col(ApprovalRequest, 'model_version')} = %s "
    f"AND r.{_col(ApprovalRequest, 'environment')} = %s AND r.{_col(ApprovalRequest, 'status')} IN (%s, %s)) "
    f"ORDER BY s.{_col(Signature, 'request')}, s.{_col(Signature, 'signed_at')}, s.{_col(Signature, 'id')}"
)

_REPORTS_SQL = (
    f"SELECT {select_list(Report, 'r')} FROM {_table(Report)} r WHERE r.{_col(Report, 'model_version')} = %s "
    f"ORDER BY r.{_col(Report, 'created_at')} DESC, r.{_col(Report, 'id')} DESC"
)


def _datasets_part(use: str, relation: Any) -> str:
    through = relation.through
    return (
        f"SELECT '{use}', dv.{_col(DatasetVersion, 'id')}, dv.{_col(DatasetVersion, 'sha256')}, "
        f"dv.{_col(DatasetVersion, 'version')}, d.{_col(Dataset, 'name')} FROM {_table(through)} t "
        f"JOIN {_table(DatasetVersion)} dv ON dv.{_col(DatasetVersion, 'id')} = t.{_col(through, 'datasetversion')} "
        f"JOIN {_table(Dataset)} d ON d.{_col(Dataset, 'id')} = dv.{_col(DatasetVersion, 'dataset')} "
        f"WHERE t.{_col(through, 'modelversion')} = %s"
    )


# The dataset versions a model version was trained and evaluated on ("use" is a constant).
_DATASETS_SQL = (f"{_datasets_part('training', ModelVersion.training_datasets)} UNION ALL "
                 f"{_datasets_part('evaluation', ModelVersion.evaluation_datasets)}")


def token_with_roles(key_sha256: str) -> tuple[ApiToken, set[str]] | None:
    """The token with this key hash, its user loaded (token.user), and the user's role names."""
    rows = fetch_rows(_TOKEN_SQL, [key_sha256])
    if not rows:
        return None
    token = instance_from_row(ApiToken, rows[0])
    token.user = instance_from_row(User, rows[0], column_count(ApiToken))
    return token, {row[-1] for row in rows if row[-1] is not None}


def version_with_membership(*, model_name: str, version: int, user_id: Any) -> tuple[ModelVersion, bool] | None:
    """The version (with .model loaded) and whether user_id is a member of its model's team."""
    rows = fetch_rows(_VERSION_SQL, [user_id, model_name, version])
    if not rows:
        return None
    row = rows[0]
    model_version = instance_from_row(ModelVersion, row)
    model_version.model = instance_from_row(RegisteredModel, row, column_count(ModelVersion))
    return model_version, bool(row[-1])


def policy_in_force_statement(risk_tier: str) -> Statement:
    return _POLICY_SQL, [risk_tier]


def policy_in_force(risk_tier: str) -> ApprovalPolicy | None:
    """The tier's highest policy version."""
    rows = fetch_rows(*policy_in_force_statement(risk_tier))
    return instance_from_row(ApprovalPolicy, rows[0]) if rows else None


def deployment_requests_statement(*, model_version_id: int, environment: str, statuses: tuple[str, str]) -> Statement:
    return _REQUESTS_SQL, [ApprovalRequest.Kind.DEPLOYMENT.value, model_version_id, environment, *statuses]


def deployment_requests(*, model_version_id: int, environment: str, statuses: tuple[str, str]) -> list[ApprovalRequest]:
    """The newest 20 deployment requests of the version to the environment in either status (.policy loaded)."""
    requests = []
    for row in fetch_rows(*deployment_requests_statement(model_version_id=model_version_id, environment=environment,
                                                         statuses=statuses)):
        request = instance_from_row(ApprovalRequest, row)
        request.policy = instance_from_row(ApprovalPolicy, row, column_count(ApprovalRequest))
        requests.append(request)
    return requests


def signatures_with_roles_statement(*, model_version_id: int, environment: str,
                                    statuses: tuple[str, str]) -> Statement:
    return _SIGNATURES_SQL, [ApprovalRequest.Kind.DEPLOYMENT.value, model_version_id, environment, *statuses]


def signatures_with_roles(*, model_version_id: int, environment: str, statuses: tuple[str, str]) -> list[Signature]:
    """The signatures of the version's deployment requests to the environment in either status, by
    request (then as signed), each with `signer_holds_role`: whether the signer still holds that role."""
    signatures = []
    for row in fetch_rows(*signatures_with_roles_statement(model_version_id=model_version_id,
                                                           environment=environment, statuses=statuses)):
        signature = instance_from_row(Signature, row)
        signature.signer_holds_role = bool(row[-1])  # type: ignore[attr-defined]  # read by the gate
        signatures.append(signature)
    return signatures


def reports_of_version_statement(model_version_id: int) -> Statement:
    return _REPORTS_SQL, [model_version_id]


def reports_of_version(model_version_id: int) -> list[Report]:
    """Every report of the version, newest first."""
    return [instance_from_row(Report, row) for row in fetch_rows(*reports_of_version_statement(model_version_id))]


def datasets_of_version_statement(model_version_id: int) -> Statement:
    return _DATASETS_SQL, [model_version_id, model_version_id]


def datasets_of_version(model_version_id: int) -> list[tuple[str, int, str, int, str]]:
    """(use, dataset version id, sha256, version number, dataset name) of each dataset version used."""
    return [tuple(row) for row in fetch_rows(*datasets_of_version_statement(model_version_id))]


def gate_statements(*, model_version: ModelVersion, environment: str, statuses: tuple[str, str]) -> list[Statement]:
    """The reads the gate's checks make that depend only on the version and environment (read ahead)."""
    pk = model_version.pk
    return [policy_in_force_statement(model_version.model.risk_tier),
            deployment_requests_statement(model_version_id=pk, environment=environment, statuses=statuses),
            signatures_with_roles_statement(model_version_id=pk, environment=environment, statuses=statuses),
            reports_of_version_statement(pk), datasets_of_version_statement(pk)]
