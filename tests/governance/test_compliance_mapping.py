"""The regulatory mapping on the demo: `met` where the evidence exists, `missing` naming what is
missing; the model without an independent validator's signature; the compliance API and who reads it."""

import dataclasses

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from governance.models import AuditCheckpoint, AuditEvent, AuditQueueEntry, Report
from governance.reports.mapping import (
    CONTROLS,
    EVIDENCE,
    HIGH_RISK_ONLY,
    MET,
    MISSING,
    NOT_APPLICABLE,
    PARTLY,
    compliance_evaluate,
)
from governance.reports.snapshot import dossier_snapshot_build
from tests.governance.dossier_helpers import DemoGoverned, demo_governed
from tests.governance.workflow_factories import person, team
from tests.module_data import module_data

pytestmark = pytest.mark.django_db

VALIDATOR_MISSING = "no independent model validator's signature (role model_validator, approve or reviewed)"
EU_AI_ACT = {("EU AI Act", f"Annex IV({n})") for n in range(1, 10)} | {
    ("EU AI Act", f"Art. {n}") for n in (9, 10, 11, 12, 13, 14, 15, 19, 72)}


def _by_control(rows: list[dict]) -> dict[tuple[str, str], dict]:
    return {(r["framework"], r["control"]): r for r in rows}


def _rows(model) -> dict[tuple[str, str], dict]:
    return _by_control(compliance_evaluate(dossier_snapshot_build(model=model)))


def test_the_table_covers_the_frameworks_the_issue_names():
    controls = {(framework, control) for framework, control, _title, _keys in CONTROLS}
    annex = {("EU AI Act", f"Annex IV({n})") for n in range(1, 10)}
    articles = {("EU AI Act", f"Art. {n}") for n in (9, 10, 11, 12, 13, 14, 15, 19, 72)}
    sr117 = {("SR 11-7", c) for c in ("Development", "Validation", "Monitoring", "Governance")}
    nist = {("NIST AI RMF", c) for c in ("GOVERN", "MAP", "MEASURE", "MANAGE")}
    iso = {("ISO/IEC 42001", "A.6.2.8"), ("ISO/IEC 42001", "A.7.5")}
    assert controls == annex | articles | sr117 | nist | iso
    assert {k for *_, keys in CONTROLS for k in keys} <= set(EVIDENCE)


@pytest.fixture(scope="module")
def governed(django_db_setup, django_db_blocker) -> DemoGoverned:
    """The governed demo, loaded once for the module's readers (the load is most of their time)."""
    with module_data(django_db_blocker):
        yield demo_governed()


def test_demo_mapping_met_where_evidence_exists_missing_where_not(governed):
    # given the demo: the high-risk model approved by validator, compliance and risk officers; the
    # limited model reviewed by the compliance officer only
    world = governed
    # when
    arrests, diabetes = _rows(world.arrests), _rows(world.diabetes)
    # then: the high-risk model's validation, oversight and logging controls are met, by named evidence
    validation = arrests[("SR 11-7", "Validation")]
    assert validation["status"] == MET and validation["missing"] == []
    assert validation["evidence"][0].startswith("validated by Vera Lindqvist (model_validator, approve, ")
    for key in (("EU AI Act", "Art. 12"), ("EU AI Act", "Art. 14"), ("EU AI Act", "Art. 10"),
                ("EU AI Act", "Art. 19"), ("ISO/IEC 42001", "A.6.2.8"), ("ISO/IEC 42001", "A.7.5"),
                ("SR 11-7", "Governance"), ("NIST AI RMF", "GOVERN"), ("NIST AI RMF", "MAP")):
        assert arrests[key]["status"] == MET, (key, arrests[key])
    assert arrests[("EU AI Act", "Art. 14")]["evidence"] == [
        "3 electronic signature(s) by compliance_officer, model_validator, risk_officer",
        "1 approved request(s), every signature binds its record's sha256"]
    # the policy's roles read as words; the signing key is named as the cover prints it, its id explained
    assert arrests[("NIST AI RMF", "GOVERN")]["evidence"][0] == (
        "high policy v1 applied (roles 1 model_validator, 1 compliance_officer, 1 risk_officer)")
    checkpoint = AuditCheckpoint.objects.order_by("-size").first()
    assert arrests[("EU AI Act", "Art. 12")]["evidence"][1] == (
        f"checkpoint of size {checkpoint.size} signed (Ed25519) with public key {checkpoint.public_key[:16]}… "
        f"(key id {checkpoint.key_id}: the first 16 hex of that key's sha256)")
    # what Attest does not hold is missing, by name
    declaration = arrests[("EU AI Act", "Annex IV(8)")]
    assert (declaration["status"], declaration["missing"]) == (
        MISSING, ["no EU declaration of conformity recorded (not held by Attest)"])
    has_fairness = Report.objects.filter(model_version__model=world.arrests, kind="fairness").exists()
    measure = arrests[("NIST AI RMF", "MEASURE")]
    assert ("no fairness report recorded" in measure["missing"]) is not has_fairness
    assert measure["status"] in (MET, PARTLY)
    # the model without an independent validator's signature
    missing = diabetes[("SR 11-7", "Validation")]
    assert (missing["status"], missing["evidence"], missing["missing"]) == (MISSING, [], [VALIDATOR_MISSING])


def test_high_risk_obligations_are_not_applicable_below_the_high_tier(governed):
    # given the limited-tier diabetes model, and the same evidence under each tier
    snapshot = dossier_snapshot_build(model=governed.diabetes)

    def under(tier: str) -> dict[tuple[str, str], dict]:
        return _by_control(compliance_evaluate(dataclasses.replace(
            snapshot, model=dataclasses.replace(snapshot.model, risk_tier=tier))))

    # when
    limited = _by_control(compliance_evaluate(snapshot))
    # then every EU AI Act row binds high-risk systems only, and is not applicable to a limited model
    assert HIGH_RISK_ONLY == EU_AI_ACT
    for key in EU_AI_ACT:
        assert (limited[key]["status"], limited[key]["evidence"], limited[key]["missing"]) == (
            NOT_APPLICABLE, ["not applicable (risk tier limited): an obligation of high-risk AI systems only"], []), key
    assert under("minimal")[("EU AI Act", "Art. 14")]["evidence"] == [
        "not applicable (risk tier minimal): an obligation of high-risk AI systems only"]
    # frameworks that do not depend on the EU tier are still assessed
    assert limited[("SR 11-7", "Validation")]["status"] == MISSING
    # a high-risk (or prohibited) model is judged against them on the same evidence
    for tier in ("high", "unacceptable"):
        rows = under(tier)
        assert not [key for key, row in rows.items() if row["status"] == NOT_APPLICABLE], tier
        assert rows[("EU AI Act", "Annex IV(2)")]["status"] == PARTLY
        assert VALIDATOR_MISSING in rows[("EU AI Act", "Annex IV(2)")]["missing"]
        assert rows[("EU AI Act", "Art. 14")]["missing"] == ["no approved approval request"]
    assert not [key for key, row in _rows(governed.arrests).items() if row["status"] == NOT_APPLICABLE]


def test_compliance_api_readers_and_refusals(governed):
    # given
    world = governed
    outsider = person("olga", "data_scientist")
    team("other-team", outsider)
    client = APIClient()
    url = f"/api/v1/models/{world.diabetes.pk}/compliance/"
    before = AuditEvent.objects.count() + AuditQueueEntry.objects.count()
    # when / then: the auditor and the model's team read it
    for username in ("aldo", "dana", "vera"):
        client.force_authenticate(User.objects.get(username=username))
        response = client.get(url)
        assert response.status_code == 200, username
        body = response.json()
        assert body["model"] == world.diabetes.name and body["risk_tier"] == "limited"
        validation = next(c for c in body["controls"] if (c["framework"], c["control"]) == ("SR 11-7", "Validation"))
        assert validation["status"] == "missing" and validation["missing"] == [VALIDATOR_MISSING]
        assert body["summary"]["not applicable"] == len(EU_AI_ACT)  # a limited-tier model
        assert sum(body["summary"].values()) == len(CONTROLS)
    # one version; a version that does not exist; another team's member; the CI identity
    assert client.get(url, {"version": 1}).json()["version"] == 1
    response = client.get(url, {"version": 7})
    assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")
    assert client.get(url, {"version": "x"}).json()["error"]["code"] == "validation_error"
    client.force_authenticate(outsider)
    assert client.get(url).status_code == 404
    client.force_authenticate(User.objects.get(username="ci-bot"))
    response = client.get(url)
    assert (response.status_code, response.json()["error"]["code"]) == (403, "permission_denied")
    client.force_authenticate(None)
    assert client.get(url).status_code == 401
    # reading the map changed nothing
    assert AuditEvent.objects.count() + AuditQueueEntry.objects.count() == before
