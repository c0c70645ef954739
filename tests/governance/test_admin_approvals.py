"""The governance admin: policies (edit = new version), pending requests per role, the sign-off page,
and the read-only records. Real database, Django's test client, the services underneath."""

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from governance.audit import AuditAction
from governance.models import ApprovalPolicy, ApprovalRequest, AuditEvent, Deployment, GateDecision, Signature
from governance.services.approvals import approval_request_open, approval_request_sign
from tests.governance.workflow_factories import PASSWORD, World

SIGN_URL = "admin:governance_approvalrequest_sign"
PENDING_URL = "/admin/governance/approvalrequest/pending/"


def staff(*users: User) -> None:
    """The admin needs is_staff; roles come from the groups the World gave them."""
    User.objects.filter(pk__in=[u.pk for u in users]).update(is_staff=True)


def login(user: User, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


def open_request(world: World, *, environment: str = "production") -> ApprovalRequest:
    return approval_request_open(actor=world.engineer, kind="deployment", model_version=world.v1,
                                 environment=environment)


def events(action: str) -> int:
    return AuditEvent.objects.filter(action=action).count()


@pytest.fixture
def world(db) -> World:
    w = World(tier="high")
    staff(w.engineer, w.validator, w.compliance, w.risk, w.auditor, w.signing_engineer)
    return w


@pytest.mark.django_db
def test_pending_view_lists_requests_needing_my_roles_oldest_first(world, audit_flush):
    # given: two high-tier requests; the validator has signed the older one
    older = open_request(world, environment="staging")
    newer = open_request(world, environment="production")
    approval_request_sign(actor=world.validator, request=older, password=PASSWORD, meaning="approve")
    minimal = World(tier="minimal", prefix="m")  # needs an ml_engineer, no officer
    approval_request_open(actor=minimal.engineer, kind="deployment", model_version=minimal.v1,
                          environment="production")
    # when
    validator_page = login(world.validator).get(PENDING_URL)
    compliance_page = login(world.compliance).get(PENDING_URL)
    # then: each officer sees the requests still needing their role, and not the minimal one
    assert validator_page.status_code == 200
    assert [row["request"].pk for row in validator_page.context["rows"]] == [newer.pk]
    assert [row["request"].pk for row in compliance_page.context["rows"]] == [older.pk, newer.pk]
    assert compliance_page.context["rows"][0]["my_roles"] == ["compliance_officer"]
    assert compliance_page.context["rows"][0]["risk_tier"] == "high"
    assert compliance_page.context["rows"][0]["roles_open"] == {"compliance_officer": 1, "risk_officer": 1}
    page = compliance_page.content.decode()
    assert f"#{older.pk}" in page and f"#{newer.pk}" in page and "mcredit" not in page


@pytest.mark.django_db
def test_signing_on_the_admin_page_records_one_signature_and_shows_the_manifestation(world, audit_flush):
    # given
    request = open_request(world)
    audit_flush()
    signed_before = events(AuditAction.APPROVAL_SIGNED)
    client = login(world.compliance)
    url = reverse(SIGN_URL, args=[request.pk])
    # when
    page = client.get(url)
    response = client.post(url, {"password": PASSWORD, "meaning": "approve", "reason": "evidence checked"},
                           follow=True)
    audit_flush()
    # then
    assert page.status_code == 200
    assert world.v1.artifact_sha256 in page.content.decode()
    assert [c["code"] for c in page.context["gate_checks"] if not c["passed"]][0] == "approval_missing"
    signature = Signature.objects.get()
    assert (signature.request_id, signature.signer_id, signature.role, signature.meaning) == (
        request.pk, world.compliance.pk, "compliance_officer", "approve")
    assert events(AuditAction.APPROVAL_SIGNED) == signed_before + 1
    assert response.status_code == 200
    assert response.redirect_chain == [(reverse("admin:governance_approvalrequest_signed",
                                                args=[request.pk, signature.pk]), 302)]
    html = response.content.decode()
    for text in ("Comp Tester", "compliance_officer", "approve", "evidence checked", signature.record_sha256,
                 signature.signed_at.strftime("%Y-%m-%d %H:%M:%S UTC")):
        assert text in html
    assert ApprovalRequest.objects.get(pk=request.pk).status == "pending"


@pytest.mark.django_db
def test_wrong_password_is_shown_in_words_signs_nothing_and_is_audit_logged(world, audit_flush):
    # given
    request = open_request(world)
    audit_flush()
    client = login(world.validator)
    # when
    response = client.post(reverse(SIGN_URL, args=[request.pk]), {"password": "not-it", "meaning": "approve"})
    audit_flush()
    # then
    assert response.status_code == 200
    assert ("Not signed.</strong> Re-authentication failed: the password is wrong or missing (1 of 5 attempts)."
            in response.content.decode())
    assert Signature.objects.count() == 0
    failure = AuditEvent.objects.get(action=AuditAction.SIGNING_REAUTH_FAILED)
    assert failure.object_repr == world.validator.username
    assert events(AuditAction.APPROVAL_SIGNED) == 0


@pytest.mark.django_db
def test_the_requester_is_refused_for_separation_of_duties_on_the_page(world, audit_flush):
    # given: the compliance officer opens the request, then tries to sign it
    request = approval_request_open(actor=world.compliance, kind="deployment", model_version=world.v1,
                                    environment="production")
    # when
    response = login(world.compliance).post(reverse(SIGN_URL, args=[request.pk]),
                                            {"password": PASSWORD, "meaning": "approve"})
    audit_flush()
    # then
    assert response.status_code == 200
    assert ("Separation of duties: the requester cannot sign their own request."
            in response.content.decode())
    assert Signature.objects.count() == 0 and events(AuditAction.APPROVAL_SIGNED) == 0


@pytest.mark.django_db
def test_an_author_of_the_version_is_refused_for_separation_of_duties(db, audit_flush):
    # given: a minimal-tier model whose signer role (ml_engineer) its author also holds
    world = World(tier="minimal")
    staff(world.engineer, world.scientist)
    request = approval_request_open(actor=world.scientist, kind="deployment", model_version=world.v1,
                                    environment="production")
    # when
    response = login(world.engineer).post(reverse(SIGN_URL, args=[request.pk]),
                                          {"password": PASSWORD, "meaning": "approve"})
    # then
    assert ("Separation of duties: an author of the model version cannot sign its approval."
            in response.content.decode())
    assert Signature.objects.count() == 0


@pytest.mark.django_db
def test_the_auditor_reads_everything_and_gets_403_on_signing_and_editing(world, audit_flush):
    # given
    request = open_request(world)
    approval_request_sign(actor=world.validator, request=request, password=PASSWORD, meaning="approve")
    client = login(world.auditor)
    policy = ApprovalPolicy.objects.get(risk_tier="high", version=1)
    # when / then: reads
    assert client.get("/admin/governance/approvalrequest/").status_code == 200
    detail = client.get(f"/admin/governance/approvalrequest/{request.pk}/change/")
    assert detail.status_code == 200
    signature = Signature.objects.get()
    for text in ("Val Tester", "model_validator", signature.record_sha256, request.evidence_sha256):
        assert text in detail.content.decode()
    assert client.get(f"/admin/governance/approvalpolicy/{policy.pk}/change/").status_code == 200
    assert client.get("/admin/governance/signature/").status_code == 200
    # when / then: writes
    assert client.get(reverse(SIGN_URL, args=[request.pk])).status_code == 403
    assert client.post(reverse(SIGN_URL, args=[request.pk]),
                       {"password": PASSWORD, "meaning": "approve"}).status_code == 403
    assert client.get("/admin/governance/approvalpolicy/edit/high/").status_code == 403
    assert client.post("/admin/governance/approvalpolicy/edit/high/", {"reason": "x"}).status_code == 403
    assert Signature.objects.count() == 1
    assert ApprovalPolicy.objects.filter(risk_tier="high").count() == 1


def _policy_form(**overrides) -> dict:
    form = {"approvable": "on", "environments": "staging, production", "role_ml_engineer": "0",
            "role_model_validator": "1", "role_compliance_officer": "1", "role_risk_officer": "1",
            "required_reports": ["fairness", "explainability"], "demographic_parity_ratio_min": "0.8",
            "equalized_odds_difference_max": "0.1", "metric": "accuracy", "metric_min": "0.7",
            "max_report_age_days": "90", "max_approval_age_days": "30", "reason": "two validators from Q3"}
    form.update(overrides)
    return form


@pytest.mark.django_db
def test_policy_edit_creates_the_next_version_and_keeps_the_old_one(world, audit_flush):
    # given
    v1 = ApprovalPolicy.objects.get(risk_tier="high", version=1)
    rules_v1 = v1.as_rules()
    client = login(world.compliance)
    # when
    form_page = client.get("/admin/governance/approvalpolicy/edit/high/")
    response = client.post("/admin/governance/approvalpolicy/edit/high/",
                            _policy_form(role_model_validator="2", max_approval_age_days="14"), follow=True)
    audit_flush()
    # then
    assert form_page.status_code == 200
    assert form_page.context["form"].initial["role_model_validator"] == 1
    v2 = ApprovalPolicy.objects.get(risk_tier="high", version=2)
    assert v2.required_roles == {"model_validator": 2, "compliance_officer": 1, "risk_officer": 1}
    assert (v2.max_approval_age_days, v2.change_reason, v2.created_by_id) == (14, "two validators from Q3",
                                                                               world.compliance.pk)
    assert v2.thresholds == v1.thresholds
    assert ApprovalPolicy.objects.get(pk=v1.pk).as_rules() == rules_v1
    assert events(AuditAction.POLICY_UPDATED) == 1
    # the page that follows is v2's, with its diff from v1
    html = response.content.decode()
    assert response.redirect_chain[-1][0] == f"/admin/governance/approvalpolicy/{v2.pk}/change/"
    assert "Created high policy v2." in html
    assert "max_approval_age_days" in html and "required_roles" in html and "environments</td>" not in html


@pytest.mark.django_db
def test_policy_edit_refusals_are_shown_and_change_nothing(world, audit_flush):
    # given
    client = login(world.compliance)
    # when: nothing changed, and no reason
    unchanged = client.post("/admin/governance/approvalpolicy/edit/high/", _policy_form())
    no_reason = client.post("/admin/governance/approvalpolicy/edit/high/", _policy_form(reason=""))
    refused_by_validator = login(world.validator).get("/admin/governance/approvalpolicy/edit/high/")
    audit_flush()
    # then
    assert "The new version would equal the current one; nothing to change." in unchanged.content.decode()
    assert no_reason.status_code == 200 and no_reason.context["form"].errors["reason"] == ["This field is required."]
    assert refused_by_validator.status_code == 403
    assert ApprovalPolicy.objects.filter(risk_tier="high").count() == 1
    assert events(AuditAction.POLICY_UPDATED) == 0


@pytest.mark.django_db
def test_withdraw_action_asks_a_reason_and_calls_the_service(world, audit_flush):
    # given
    request = open_request(world)
    client = login(world.compliance)
    data = {"action": "withdraw_selected", "_selected_action": [request.pk]}
    # when
    confirm = client.post("/admin/governance/approvalrequest/", data)
    done = client.post("/admin/governance/approvalrequest/",
                       {**data, "withdraw_reason_given": "1", "reason": "superseded by v2"})
    audit_flush()
    # then
    assert confirm.status_code == 200 and "superseded" not in confirm.content.decode()
    assert ApprovalRequest.objects.get(pk=request.pk).status == "withdrawn" and done.status_code == 302
    event = AuditEvent.objects.get(action=AuditAction.APPROVAL_WITHDRAWN)
    assert event.object_id == str(request.pk)


@pytest.mark.django_db
def test_read_only_admins_refuse_add_change_and_delete(world, audit_flush):
    # given: a signature, a gate decision and a deployment exist
    request = open_request(world)
    signature = approval_request_sign(actor=world.validator, request=request, password=PASSWORD,
                                      meaning="reviewed")
    superuser = User.objects.create_superuser("root", password=PASSWORD)
    client = login(superuser)
    from governance.gate import gate_evaluate

    decision = gate_evaluate(actor=world.engineer, model_name=world.model.name, version=1, environment="dev",
                             artifact_sha256=world.v1.artifact_sha256)
    from governance.services.deployments import deployment_record

    deployment = deployment_record(actor=world.engineer, model_version=world.v1, environment="dev",
                                   decision_id=decision.decision_id)
    policy = ApprovalPolicy.objects.get(risk_tier="high")
    # when / then
    for name, pk in (("signature", signature.pk), ("gatedecision", decision.pk), ("deployment", deployment.pk),
                     ("approvalrequest", request.pk), ("approvalpolicy", policy.pk)):
        assert client.get(f"/admin/governance/{name}/add/").status_code == 403, name
        assert client.post(f"/admin/governance/{name}/{pk}/delete/", {"post": "yes"}).status_code == 403, name
        change = client.post(f"/admin/governance/{name}/{pk}/change/", {})
        assert change.status_code == 403, name
        assert client.get(f"/admin/governance/{name}/{pk}/change/").status_code == 200, name
    assert (Signature.objects.count(), GateDecision.objects.count(), Deployment.objects.count()) == (1, 1, 1)


@pytest.mark.django_db
def test_deployment_history_per_environment(world, audit_flush):
    # given: v1 deployed to dev (dev needs no approval)
    from governance.gate import gate_evaluate
    from governance.services.deployments import deployment_record

    decision = gate_evaluate(actor=world.engineer, model_name=world.model.name, version=1, environment="dev",
                             artifact_sha256=world.v1.artifact_sha256)
    deployment_record(actor=world.engineer, model_version=world.v1, environment="dev",
                      decision_id=decision.decision_id)
    outsider = World(tier="minimal", prefix="o")
    staff(outsider.engineer)
    # when
    team_view = login(world.engineer).get("/admin/governance/deployment/?environment=dev")
    other_view = login(outsider.engineer).get("/admin/governance/deployment/")
    empty_env = login(world.engineer).get("/admin/governance/deployment/?environment=production")
    # then
    html = team_view.content.decode()
    assert team_view.status_code == 200
    rows = list(team_view.context["cl"].result_list)
    assert [(d.environment, d.model_version_id, d.decision_id) for d in rows] == [("dev", world.v1.pk, decision.pk)]
    assert world.v1.artifact_sha256[:12] in html and str(decision.decision_id)[:8] in html
    assert list(other_view.context["cl"].result_list) == []  # another team's history is hidden
    assert list(empty_env.context["cl"].result_list) == []


@pytest.mark.django_db
def test_another_teams_request_is_404_on_the_sign_off_page(world):
    # given: an ml_engineer of another team (a signing role, no governance role)
    request = open_request(world)
    approval_request_sign(actor=world.validator, request=request, password=PASSWORD, meaning="approve")
    outsider = World(tier="minimal", prefix="x")
    staff(outsider.signing_engineer)
    # when
    response = login(outsider.signing_engineer).get(reverse(SIGN_URL, args=[request.pk]))
    listing = login(outsider.signing_engineer).get("/admin/governance/approvalrequest/")
    signatures = login(outsider.signing_engineer).get("/admin/governance/signature/")
    own_team = login(world.signing_engineer).get("/admin/governance/signature/")
    # then
    assert response.status_code == 404
    assert list(listing.context["cl"].result_list) == []
    assert list(signatures.context["cl"].result_list) == []
    assert [s.signer_id for s in own_team.context["cl"].result_list] == [world.validator.pk]


@pytest.mark.django_db
def test_a_post_without_csrf_token_is_refused(world, audit_flush):
    # given
    request = open_request(world)
    client = login(world.compliance, enforce_csrf_checks=True)
    # when
    sign = client.post(reverse(SIGN_URL, args=[request.pk]), {"password": PASSWORD, "meaning": "approve"})
    edit = client.post("/admin/governance/approvalpolicy/edit/high/", _policy_form(role_model_validator="2"))
    # then
    assert (sign.status_code, edit.status_code) == (403, 403)
    assert Signature.objects.count() == 0
    assert ApprovalPolicy.objects.filter(risk_tier="high").count() == 1


@pytest.mark.django_db
def test_the_sign_off_form_carries_a_csrf_token_that_works(world, audit_flush):
    # given
    request = open_request(world)
    client = login(world.risk, enforce_csrf_checks=True)
    page = client.get(reverse(SIGN_URL, args=[request.pk]))
    token = page.context["csrf_token"]
    # when
    response = client.post(reverse(SIGN_URL, args=[request.pk]),
                           {"password": PASSWORD, "meaning": "approve", "csrfmiddlewaretoken": str(token)})
    # then
    assert response.status_code == 302
    assert Signature.objects.get().role == "risk_officer"


@pytest.mark.django_db
def test_five_wrong_passwords_lock_signing_and_the_page_says_so(world, audit_flush):
    # given
    request = open_request(world)
    client = login(world.risk)
    url = reverse(SIGN_URL, args=[request.pk])
    for _ in range(5):
        client.post(url, {"password": "not-it", "meaning": "approve"})
    # when: the right password, too late
    response = client.post(url, {"password": PASSWORD, "meaning": "approve"})
    audit_flush()
    # then
    assert "Signing is locked for risk after 5 failed re-authentications." in response.content.decode()
    assert Signature.objects.count() == 0
    assert events(AuditAction.SIGNING_REAUTH_FAILED) == 5 and events(AuditAction.SIGNING_LOCKED) == 1


@pytest.mark.django_db
def test_the_sign_off_page_warns_when_the_evidence_moved_since_opening(world, audit_flush):
    # given: the high policy gets a new version after the request was opened
    from governance.services.policies import policy_update

    request = open_request(world)
    policy_update(actor=world.compliance, risk_tier="high", changes={"max_approval_age_days": 10}, reason="tighter")
    # when
    page = login(world.risk).get(reverse(SIGN_URL, args=[request.pk]))
    # then
    what = "it was opened under the high policy v1 and the high policy v2 is in force now"
    message = (f"The evidence of request #{request.pk} changed since it was opened: {what}. A signature must bind "
               "the current record (21 CFR 11.70), so this request can no longer be signed; the requester can "
               "withdraw it and open a new one.")
    assert page.context["evidence_warning"] == message
    assert message in page.content.decode()


@pytest.mark.django_db
def test_signing_on_the_page_after_the_evidence_moved_is_refused_in_words(world, audit_flush):
    # given
    from governance.services.policies import policy_update

    request = open_request(world)
    policy_update(actor=world.compliance, risk_tier="high", changes={"max_approval_age_days": 10}, reason="tighter")
    # when
    response = login(world.risk).post(reverse(SIGN_URL, args=[request.pk]),
                                      {"password": PASSWORD, "meaning": "approve"})
    audit_flush()
    # then
    assert response.status_code == 200
    assert response.context["refusal"].code == "evidence_stale"
    assert (f"<strong>Not signed.</strong> The evidence of request #{request.pk} changed since it was opened: it "
            "was opened under the high policy v1 and the high policy v2 is in force now.") in response.content.decode()
    assert Signature.objects.count() == 0 and events(AuditAction.APPROVAL_SIGNED) == 0
    request.refresh_from_db()
    assert request.status == "pending"
