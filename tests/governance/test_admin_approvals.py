"""The governance admin: policies (edit = new version), pending requests per role, the sign-off page,
and the read-only records. Real database, Django's test client, the services underneath."""

import datetime as dt
import re

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

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


# --- the QA pass of the compliance officer's admin -------------------------------------------------

def _text(fragment: str) -> str:
    """What a reader sees of an HTML fragment: tags dropped, whitespace collapsed."""
    return re.sub(r" ([,.:;])", r"\1", " ".join(re.sub(r"<[^>]+>", " ", fragment).split()))


def _element(html: str, element_id: str) -> str:
    """The text of the element with `element_id` (the first closing tag of its own name ends it)."""
    match = re.search(rf'<(\w+)[^>]*\bid="{element_id}"[^>]*>(.*?)</\1>', html, re.S)
    assert match, f"no #{element_id} on the page"
    return _text(match.group(2))


def _row(html: str, label: str) -> str:
    match = re.search(rf'<th scope="row">{re.escape(label)}</th>\s*<td>(.*?)</td>', html, re.S)
    assert match, f"no row {label!r} on the page"
    return _text(match.group(1))


@pytest.mark.django_db
def test_a_sign_off_without_a_meaning_lists_the_errors_at_the_top_of_the_page(world, audit_flush):
    # given
    request = open_request(world)
    # when: the password only, no meaning chosen
    response = login(world.risk).post(reverse(SIGN_URL, args=[request.pk]), {"password": PASSWORD})
    audit_flush()
    # then: a banner before the evidence names the field, and the field is marked where it is
    html = response.content.decode()
    assert response.status_code == 200
    assert _element(html, "form-errors") == "Not signed. Correct the form below: meaning: This field is required."
    assert html.index('id="form-errors"') < html.index('id="request-summary"')
    assert '<a href="#row-meaning">meaning</a>' in html
    assert '<div class="form-row errors" id="row-meaning">' in html
    assert Signature.objects.count() == 0 and events(AuditAction.APPROVAL_SIGNED) == 0


@pytest.mark.django_db
def test_a_rejection_without_a_reason_marks_the_reason_field(world, audit_flush):
    # given
    request = open_request(world)
    # when
    response = login(world.risk).post(reverse(SIGN_URL, args=[request.pk]),
                                      {"password": PASSWORD, "meaning": "reject", "reason": "  "})
    audit_flush()
    # then
    html = response.content.decode()
    assert response.context["form"].errors == {"reason": ["A rejection needs a reason."]}
    assert _element(html, "form-errors") == "Not signed. Correct the form below: reason: A rejection needs a reason."
    assert '<div class="form-row errors" id="row-reason">' in html
    assert Signature.objects.count() == 0 and events(AuditAction.APPROVAL_SIGNED) == 0
    assert ApprovalRequest.objects.get(pk=request.pk).status == "pending"


@pytest.mark.django_db
def test_a_rejected_request_needs_nothing_more_on_the_sign_off_and_signed_pages(world, audit_flush):
    # given: the validator rejects; the risk officer's approval was still open
    request = open_request(world)
    signature = approval_request_sign(actor=world.validator, request=request, password=PASSWORD, meaning="reject",
                                      reason="the fairness report is stale")
    # when
    sign_page = login(world.risk).get(reverse(SIGN_URL, args=[request.pk]))
    signed_page = login(world.validator).get(reverse("admin:governance_approvalrequest_signed",
                                                     args=[request.pk, signature.pk]))
    # then
    sign_html, signed_html = sign_page.content.decode(), signed_page.content.decode()
    assert (sign_page.status_code, signed_page.status_code) == (200, 200)
    assert _row(sign_html, "still needed") == "nothing: the request is rejected"
    assert _row(signed_html, "still needed") == "nothing: the request is rejected"
    assert "risk_officer</strong>" not in sign_html and "1 risk_officer" not in signed_html
    assert "Approval checks fail until the request is approved" not in sign_html
    assert ("The request is rejected and takes no more signatures: the approval checks show what the gate finds "
            "on record now, the others whether the evidence meets the policy's thresholds.") in _text(sign_html)


@pytest.mark.django_db
def test_a_pending_request_still_lists_the_open_roles(world, audit_flush):
    # given
    request = open_request(world)
    approval_request_sign(actor=world.validator, request=request, password=PASSWORD, meaning="approve")
    # when
    html = login(world.risk).get(reverse(SIGN_URL, args=[request.pk])).content.decode()
    # then
    assert _row(html, "still needed") == "1 compliance_officer, 1 risk_officer"
    assert "Approval checks fail until the request is approved" in html


@pytest.mark.django_db
def test_the_requester_sees_why_they_cannot_sign_instead_of_the_form(world, audit_flush):
    # given: the compliance officer opened the request
    request = approval_request_open(actor=world.compliance, kind="deployment", model_version=world.v1,
                                    environment="production")
    # when
    response = login(world.compliance).get(reverse(SIGN_URL, args=[request.pk]))
    # then
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="sign-form"' not in html and 'name="password"' not in html
    assert _element(html, "cannot-sign") == ("You cannot sign this request: you opened it, and separation of duties "
                                             "bars the requester from signing it.")


@pytest.mark.django_db
def test_an_author_sees_why_they_cannot_sign_instead_of_the_form(db, audit_flush):
    # given: a minimal-tier request (needs an ml_engineer); the engineer is the version's author
    world = World(tier="minimal")
    staff(world.engineer, world.scientist)
    request = approval_request_open(actor=world.scientist, kind="deployment", model_version=world.v1,
                                    environment="production")
    # when
    html = login(world.engineer).get(reverse(SIGN_URL, args=[request.pk])).content.decode()
    # then
    assert 'id="sign-form"' not in html
    assert _element(html, "cannot-sign") == ("You cannot sign this request: you made the model version it is about, "
                                             "and separation of duties bars its authors from signing its approval.")


@pytest.mark.django_db
def test_who_signed_already_sees_why_and_an_officer_whose_role_is_filled_or_not_needed_keeps_the_form(
        world, audit_flush):
    # given: the validator approved; a second validator, and an ml_engineer the high policy does not ask for
    request = open_request(world)
    approval_request_sign(actor=world.validator, request=request, password=PASSWORD, meaning="approve")
    from tests.governance.workflow_factories import person

    second_validator = person("val2", "model_validator")
    staff(second_validator)
    # when
    filled = login(second_validator).get(reverse(SIGN_URL, args=[request.pk])).content.decode()
    not_needed = login(world.signing_engineer).get(reverse(SIGN_URL, args=[request.pk])).content.decode()
    done = login(world.validator).get(reverse(SIGN_URL, args=[request.pk])).content.decode()
    still_open = login(world.risk).get(reverse(SIGN_URL, args=[request.pk])).content.decode()
    # then
    # the service still takes a rejection from a filled role and a "reviewed" note from any signing role
    assert 'id="sign-form"' in filled and 'id="sign-form"' in not_needed and 'id="sign-form"' not in done
    assert _element(done, "cannot-sign") == ("You cannot sign this request: you signed it already (approve as "
                                             "model_validator), and one person fills one required role once.")
    assert 'id="sign-form"' in still_open and 'id="cannot-sign"' not in still_open


@pytest.mark.django_db
def test_policy_edit_requires_the_metric_name_when_a_minimum_is_given(world, audit_flush):
    # given
    client = login(world.compliance)
    # when: a minimum with no metric name (empty, then blanks)
    empty = client.post("/admin/governance/approvalpolicy/edit/high/", _policy_form(metric="", metric_min="0.75"))
    blank = client.post("/admin/governance/approvalpolicy/edit/high/", _policy_form(metric="  ", metric_min="0.75"))
    audit_flush()
    # then
    message = "Name the metric this minimum applies to (a key of the version's metrics, e.g. accuracy)."
    assert empty.status_code == 200 and empty.context["form"].errors == {"metric": [message]}
    assert blank.context["form"].errors == {"metric": [message]}
    assert f'<ul class="errorlist" id="id_metric_error"><li>{escape(message)}</li></ul>' in empty.content.decode()
    assert ApprovalPolicy.objects.filter(risk_tier="high").count() == 1
    assert events(AuditAction.POLICY_UPDATED) == 0


@pytest.mark.django_db
def test_policy_edit_without_a_minimum_needs_no_metric_name(world, audit_flush):
    # given
    client = login(world.compliance)
    # when: the performance threshold is dropped altogether
    response = client.post("/admin/governance/approvalpolicy/edit/high/", _policy_form(metric="", metric_min=""))
    audit_flush()
    # then
    assert response.status_code == 302
    v2 = ApprovalPolicy.objects.get(risk_tier="high", version=2)
    assert v2.thresholds == {"demographic_parity_ratio_min": 0.8, "equalized_odds_difference_max": 0.1}


def _deployed(world: World) -> Deployment:
    from governance.gate import gate_evaluate
    from governance.services.deployments import deployment_record

    decision = gate_evaluate(actor=world.engineer, model_name=world.model.name, version=1, environment="dev",
                             artifact_sha256=world.v1.artifact_sha256)
    return deployment_record(actor=world.engineer, model_version=world.v1, environment="dev",
                             decision_id=decision.decision_id)


def _utc(value) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@pytest.mark.django_db
def test_governance_admin_times_show_seconds_and_utc(world, audit_flush):
    # given: a deployment (with its gate decision), a policy and a pending request
    deployment = _deployed(world)
    decision = deployment.decision
    policy = ApprovalPolicy.objects.get(risk_tier="high")
    request = open_request(world)
    client = login(world.compliance)
    # when
    pages = {
        "deployment list": (client.get("/admin/governance/deployment/"), deployment.deployed_at),
        "deployment detail": (client.get(f"/admin/governance/deployment/{deployment.pk}/change/"),
                              deployment.deployed_at),
        "gate decision list": (client.get("/admin/governance/gatedecision/"), decision.evaluated_at),
        "gate decision detail": (client.get(f"/admin/governance/gatedecision/{decision.pk}/change/"),
                                 decision.evaluated_at),
        "policy list": (client.get("/admin/governance/approvalpolicy/"), policy.created_at),
        "policy detail": (client.get(f"/admin/governance/approvalpolicy/{policy.pk}/change/"), policy.created_at),
        "request list": (client.get("/admin/governance/approvalrequest/"), request.created_at),
        "sign-off page": (client.get(reverse(SIGN_URL, args=[request.pk])), request.created_at),
        "pending page": (client.get(PENDING_URL), request.created_at),
    }
    # then: each time in the second and with its zone; none in Django's "Nov. 29, 2026, 4:03 a.m." form
    for name, (response, value) in pages.items():
        html = response.content.decode()
        assert response.status_code == 200, name
        assert _utc(value) in html, name
        assert not re.search(r"\d{1,2}:\d{2} [ap]\.m\.|\b(noon|midnight)\b", html), name


@pytest.mark.django_db
def test_the_gate_decision_of_a_deployment_links_to_the_decision(world, audit_flush):
    # given
    deployment = _deployed(world)
    decision = deployment.decision
    client = login(world.engineer)
    url = reverse("admin:governance_gatedecision_change", args=[decision.pk])
    # when
    listing = client.get("/admin/governance/deployment/").content.decode()
    detail = client.get(f"/admin/governance/deployment/{deployment.pk}/change/").content.decode()
    # then
    assert f'<a href="{url}"><code>{str(decision.decision_id)[:8]}…</code></a>' in listing
    assert f'<a href="{url}"><code>{decision.decision_id}</code></a>' in detail
    assert client.get(url).status_code == 200
