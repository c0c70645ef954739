"""The officers' dashboard (the admin index), the audit-log verification it records, the report chart
view, the read-only evidence admins and the session timeout. Django's test client on the real
database and services; tests/browser/ drives the same pages in Chromium."""

import os
import subprocess
import sys

import pytest
from django.conf import settings as django_settings
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from governance.audit import AuditAction
from governance.models import AuditEvent, AuditQueueEntry, GateDecision
from governance.services.approvals import approval_request_open, approval_request_sign
from governance.services.audit_review import audit_log_verification_record
from mlops_site.common.errors import PermissionDeniedError
from tests.governance.workflow_factories import PASSWORD, World, person

pytestmark = pytest.mark.django_db

# Evidence and decisions: never added, changed or deleted from the admin, by anyone.
READ_ONLY_MODELS = ("governance.auditevent", "governance.auditcheckpoint", "governance.signature",
                    "governance.gatedecision", "governance.report", "governance.reportchart",
                    "governance.deployment", "monitoring.alertsignature", "monitoring.driftresult")


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def world(db) -> World:
    w = World(tier="high")
    from django.contrib.auth.models import User

    User.objects.filter(pk__in=[u.pk for u in (w.engineer, w.scientist, w.validator, w.compliance, w.risk,
                                                 w.auditor)]).update(is_staff=True)
    return w


def test_dashboard_lists_the_request_awaiting_my_role_with_tier_and_age(world, audit_flush):
    # given: a high-tier request; the validator signed it already
    request = approval_request_open(actor=world.engineer, kind="deployment", model_version=world.v1,
                                    environment="production")
    approval_request_sign(actor=world.validator, request=request, password=PASSWORD, meaning="approve")
    # when
    compliance = login(world.compliance).get("/admin/")
    validator = login(world.validator).get("/admin/")
    auditor = login(world.auditor).get("/admin/")
    # then: the officer still needed sees it; the validator (done) and the auditor (never signs) do not
    assert compliance.status_code == validator.status_code == auditor.status_code == 200
    rows = compliance.context["pending_for_me"]
    assert [(row["request"].pk, row["risk_tier"], row["my_roles"]) for row in rows] == [
        (request.pk, "high", ["compliance_officer"])]
    assert rows[0]["age"] == "0\xa0minutes"
    assert f'href="/admin/governance/approvalrequest/{request.pk}/sign/"' in compliance.content.decode()
    kpis = {item["label"]: item for item in compliance.context["kpis"]["items"]}
    assert (kpis["pending requests"]["value"], kpis["lead time to approval"]["value"]) == (1, "—")
    assert kpis["signature cycle"]["note"].startswith("model_validator ")
    assert validator.context["pending_for_me"] == []
    assert auditor.context["pending_for_me"] == [] and not auditor.context["can_sign"]
    assert "No role of yours signs approvals" in auditor.content.decode()


def test_dashboard_counts_models_by_tier_and_version_status_as_the_api_scopes_them(world):
    # given: another team's limited model, which the team's data scientist does not read
    other = World(tier="limited", prefix="o")
    # when
    officer = login(world.compliance).get("/admin/").context["models_chart"]
    # then: governance roles read every team
    tiers = {row["tier"]: row for row in officer["tiers"]}
    assert (officer["total_models"], officer["total_versions"]) == (2, 2)
    assert (tiers["high"]["models"], tiers["limited"]["models"], tiers["minimal"]["models"]) == (1, 1, 0)
    assert tiers["high"]["segments"] == [{"status": "registered", "n": 1, "width": 100.0}]
    assert other.model.name  # the other team's model exists


def test_recent_gate_denials_link_to_the_decision_and_are_scoped(world):
    # given: a denied gate decision for the world's model
    from governance.gate import gate_evaluate

    gate_evaluate(actor=world.ci, model_name=world.model.name, version=1, environment="production",
                  artifact_sha256=world.v1.artifact_sha256)
    decision = GateDecision.objects.get()
    outsider = person("outsider", "data_scientist")
    from django.contrib.auth.models import User

    User.objects.filter(pk=outsider.pk).update(is_staff=True)
    # when
    page = login(world.compliance).get("/admin/")
    outsider_page = login(outsider).get("/admin/")
    # then
    denials = page.context["gate_denials"]
    assert [row["decision"].pk for row in denials] == [decision.pk]
    assert "approval_missing" in denials[0]["failed"]
    assert f"/admin/governance/gatedecision/{decision.pk}/change/" in page.content.decode()
    assert outsider_page.context["gate_denials"] == []


def test_verify_button_records_the_verification_and_the_dashboard_shows_it(world, audit_flush):
    # given
    audit_flush()
    client = login(world.auditor)
    # when: the auditor verifies from the dashboard (a POST with the CSRF token)
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(world.auditor)
    refused = csrf_client.post(reverse("admin:audit_log_verify"))
    response = client.post(reverse("admin:audit_log_verify"), {"next": "/admin/"})
    audit_flush()
    page = client.get("/admin/")
    # then: without the token it is refused; with it, one event records who verified and the result
    assert refused.status_code == 403
    assert response.status_code == 302 and response["Location"] == "/admin/"
    event = AuditEvent.objects.get(action=AuditAction.AUDIT_VERIFIED)
    verification = page.context["audit"]["verification"]
    assert verification["ok"] is True and verification["by"] == world.auditor.username
    assert verification["line"].startswith(f"OK {event.seq - 1} events, head ")
    assert client.get(reverse("admin:audit_log_verify")).status_code == 405


def test_verify_is_refused_to_a_role_that_does_not_read_the_log(world):
    # given
    events = AuditQueueEntry.objects.count()
    # when / then: the service and the admin view refuse, and nothing is recorded
    with pytest.raises(PermissionDeniedError):
        audit_log_verification_record(actor=world.scientist)
    assert login(world.scientist).post(reverse("admin:audit_log_verify")).status_code == 403
    assert AuditQueueEntry.objects.count() == events


def test_the_verify_redirect_stays_on_this_site(world):
    response = login(world.compliance).post(reverse("admin:audit_log_verify"), {"next": "https://evil.example/"})
    assert response.status_code == 302 and response["Location"] == "/admin/"


@pytest.mark.parametrize("role", ["auditor", "compliance", "validator", "scientist", "engineer"])
def test_no_admin_page_offers_to_add_change_or_delete_evidence(world, role):
    # given
    user = getattr(world, role)
    client = login(user)
    request = type("R", (), {"user": user})()
    for label in READ_ONLY_MODELS:
        model_admin = next((ma for model, ma in admin.site._registry.items()
                            if model._meta.label_lower == label), None)
        if model_admin is None:
            continue  # that part of Attest has no admin page in this install
        opts = model_admin.model._meta
        # then: the admin class refuses, and so do its URLs
        assert not model_admin.has_add_permission(request), label
        assert not model_admin.has_change_permission(request), label
        assert not model_admin.has_delete_permission(request), label
        add_url = reverse(f"admin:{opts.app_label}_{opts.model_name}_add")
        assert client.get(add_url).status_code in (403, 302), label
        changelist = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
        if changelist.status_code == 200:
            body = changelist.content.decode()
            assert 'value="delete_selected"' not in body and f'href="{add_url}"' not in body, label


def test_no_admin_page_of_an_audit_event_offers_save_or_delete(world, audit_flush):
    # given
    audit_flush()
    event = AuditEvent.objects.order_by("-seq").first()
    # when
    page = login(world.compliance).get(f"/admin/governance/auditevent/{event.seq}/change/")
    post = login(world.compliance).post(f"/admin/governance/auditevent/{event.seq}/change/", {"action": "x"})
    delete = login(world.compliance).post(f"/admin/governance/auditevent/{event.seq}/delete/", {"post": "yes"})
    # then
    body = page.content.decode()
    assert page.status_code == 200 and event.hash in body and event.prev_hash in body
    assert 'name="_save"' not in body and "deletelink" not in body
    assert post.status_code == 403 and delete.status_code == 403
    assert AuditEvent.objects.filter(seq=event.seq, hash=event.hash).exists()


def test_session_timeout_comes_from_the_environment():
    # given / when: settings read in a fresh interpreter with and without the variable
    def cookie_age(**env) -> str:
        code = "import django; django.setup(); from django.conf import settings as s; " \
               "print(s.SESSION_COOKIE_AGE, s.SESSION_SAVE_EVERY_REQUEST, s.SESSION_EXPIRE_AT_BROWSER_CLOSE)"
        clean = {k: v for k, v in os.environ.items() if not k.startswith("ATTEST_SESSION")}
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120,
                              cwd=django_settings.BASE_DIR,
                              env={**clean, "DJANGO_SETTINGS_MODULE": "mlops_site.settings_test", **env})
        return done.stdout.strip()

    # then: 30 minutes idle by default, the variable in minutes, refreshed on every request
    assert cookie_age() == "1800 True True"
    assert cookie_age(ATTEST_SESSION_TIMEOUT_MINUTES="15") == "900 True True"
    assert cookie_age(ATTEST_SESSION_EXPIRE_AT_BROWSER_CLOSE="0") == "1800 True False"


def test_a_retraining_sign_off_shows_the_evidence_of_the_version_it_is_about(world):
    # given: a retraining request for a model with nothing deployed and no monitor
    request = approval_request_open(actor=world.engineer, kind="retraining", model=world.model,
                                    reason="Accuracy fell in production.")
    # when
    page = login(world.compliance).get(reverse("admin:governance_approvalrequest_sign", args=[request.pk]))
    # then: the newest version's lineage, reports and drift stand in for the live one
    assert page.status_code == 200
    assert (page.context["shown_version"], page.context["shown_why"]) == (world.v1, "the newest version, not deployed")
    assert page.context["lineage"]["me"]["label"] == f"{world.model.name} v1"
    assert "evidence shown for" in page.content.decode()


def test_the_version_page_shows_its_governance_and_the_dossier_links(world):
    # given
    request = approval_request_open(actor=world.engineer, kind="deployment", model_version=world.v1,
                                    environment="staging")
    # when
    page = login(world.compliance).get(f"/admin/registry/modelversion/{world.v1.pk}/change/")
    # then
    body = page.content.decode()
    assert page.status_code == 200
    assert [row["r"].pk for row in page.context["requests"]] == [request.pk]
    assert page.context["lineage"]["upstream"][0]["relation"] == "trained on"
    assert f'href="/api/v1/models/{world.model.pk}/dossier.pdf"' in body
    assert f'href="/api/v1/models/{world.model.pk}/evidence.zip"' in body
    assert 'name="_save"' not in body


def test_the_open_alerts_card_leads_to_the_alerts_inbox(world):
    page = login(world.compliance).get("/admin/")
    inbox = reverse("admin:monitoring_compliancealert_inbox")
    assert page.context["alerts"]["changelist_url"] == inbox
    assert f'<a href="{inbox}">Open alerts</a>' in page.content.decode()
