"""From a fresh demo, in the browser alone: the compliance officer finds the pending request on the
dashboard, reads the evidence, signs (a wrong password first), sees the manifestation and
downloads the dossier; the auditor reads the same pages without a way to change anything; the
data scientist is refused the sign-off form with the reason shown.

One test on one demo: loading the demo (training, reports, monitoring) is the expensive part,
and each role's part reads what the officer's part left behind.
"""

import io

import pytest
from django.core.management import call_command

from governance.models import ApprovalRequest, AuditEvent, AuditQueueEntry, Signature
from monitoring.models import ComplianceAlert
from registry.demo import ARRESTS_MODEL
from registry.models import ModelVersion

pytestmark = pytest.mark.django_db(transaction=True)

COLM = ("colm", "attest-demo-regulation")  # compliance officer
ALDO = ("aldo", "attest-demo-evidence")  # auditor
DANA = ("dana", "attest-demo-notebook")  # data scientist
EVIDENCE_SECTIONS = ("#request-summary", "#model-card", "#lineage", "#thresholds", "#reports", "#drift-status",
                     "#previous-signatures", "#manifestation-preview")


@pytest.fixture
def demo(settings, celery_eager):
    settings.DEBUG = True  # create_demo_users refuses otherwise (public passwords)
    out = io.StringIO()
    call_command("create_demo_users", stdout=out)
    call_command("load_demo", stdout=out)
    return out.getvalue()


def _pending_request() -> ApprovalRequest:
    return ApprovalRequest.objects.get(status="pending", kind="deployment", model__name=ARRESTS_MODEL,
                                       environment="production")


def officer_finds_reviews_and_signs(login) -> ApprovalRequest:
    request = _pending_request()
    colm = login(*COLM)
    # the dashboard: the request waits for the compliance officer's role, with its tier and age
    awaiting = colm.page.locator("#awaiting-me")
    row = awaiting.locator("tbody tr", has_text=f"#{request.pk} deploy")
    row_text = row.inner_text()
    assert "arrests-release-classifier v2 → production" in row_text
    assert "high" in row_text and "compliance_officer" in row_text and "minute" in row_text
    for section in ("#models-by-tier", "#gate-denials", "#open-alerts", "#kpis", "#audit-log"):
        assert colm.page.locator(section).is_visible(), section
    colm.shot("01-dashboard-compliance-officer")

    # the sign-off page: the evidence side by side, then the form with the manifestation preview
    row.get_by_role("link", name="Review & sign").click()
    colm.page.wait_for_url(f"**/approvalrequest/{request.pk}/sign/")
    for section in EVIDENCE_SECTIONS:
        assert colm.page.locator(section).is_visible(), section
    assert ARRESTS_MODEL in colm.page.locator("#model-card").inner_text() or ARRESTS_MODEL in colm.page.locator(
        "#request-summary").inner_text()
    assert "toronto-arrests" in colm.page.locator("#lineage").inner_text()
    assert request.evidence_sha256 in colm.page.locator("#manifestation-preview").inner_text()
    assert "Colm Byrne" in colm.page.locator("#manifestation-preview").inner_text()
    colm.page.check("input[name=meaning][value=approve]")
    colm.page.fill("textarea[name=reason]", "Evidence reviewed; fit for production.")
    preview = colm.page.locator("#manifestation-preview").inner_text()
    assert "approve" in preview and "fit for production" in preview  # the preview follows the form
    colm.shot("02-sign-off-before")

    # a wrong password: refused, in words, nothing signed
    colm.page.fill("input[name=password]", "not-my-password")
    colm.page.click("#sign-submit")
    refusal = colm.page.locator("#refusal").inner_text()
    assert "Not signed." in refusal and "password" in refusal.lower()
    assert Signature.objects.filter(request=request).count() == 0
    colm.shot("03-sign-off-wrong-password")

    # the right password: the manifestation of the signature just made
    colm.page.check("input[name=meaning][value=approve]")
    colm.page.fill("textarea[name=reason]", "Evidence reviewed; fit for production.")
    colm.page.fill("input[name=password]", COLM[1])
    colm.page.click("#sign-submit")
    colm.page.wait_for_url("**/signed/**")
    manifestation = colm.page.locator("#manifestation").inner_text()
    signature = Signature.objects.get(request=request)
    assert (signature.printed_name, signature.role, signature.meaning) == ("Colm Byrne", "compliance_officer",
                                                                          "approve")
    for shown in ("Colm Byrne", "compliance_officer", "approve", "Evidence reviewed; fit for production.",
                  signature.record_sha256, signature.signed_at.strftime("%Y-%m-%d %H:%M:%S UTC")):
        assert shown in manifestation, shown
    colm.shot("04-sign-off-after")

    # the audit log, verified from the dashboard: the result, and who verified it, stay on the dashboard
    colm.goto("/admin/")
    colm.page.click("#verify-audit-log")
    colm.page.wait_for_url("**/admin/")
    assert "Audit log verified: OK " in colm.page.locator(".messagelist").inner_text()
    assert "OK" in colm.page.locator("#audit-log").inner_text() and "by colm" in colm.page.locator(
        "#audit-log").inner_text()

    # the model version page and its dossier
    version = ModelVersion.objects.get(pk=request.model_version_id)
    colm.goto(f"/admin/registry/modelversion/{version.pk}/change/")
    for section in ("#lineage", "#requests", "#deployments", "#gate-decisions", "#drift-status", "#reports"):
        assert colm.page.locator(section).is_visible(), section
    assert f"#{request.pk}" in colm.page.locator("#requests").inner_text()
    colm.shot("05-model-version")
    with colm.page.expect_download() as download_info:
        colm.page.click("#dossier-download")
    pdf = download_info.value.path().read_bytes()
    assert pdf.startswith(b"%PDF-") and b"%%EOF" in pdf[-1024:]
    return request


def officer_resolves_a_critical_alert(login) -> None:
    colm = login(*COLM)
    alerts = colm.page.locator("#open-alerts")
    critical = ComplianceAlert.objects.filter(severity="critical", status="open").order_by("pk")
    assert critical.count() >= 1
    assert f"{critical.count()} open" in alerts.locator(".bar-row", has_text="critical").inner_text()
    alert = critical.first()
    alerts.locator(f'a[href$="/compliancealert/{alert.pk}/change/"]').click()
    # the alert page: its evidence, the monitor's drift chart, the way to act
    colm.page.wait_for_url(f"**/compliancealert/{alert.pk}/change/")
    chart = colm.page.locator("#alert-drift-chart img").element_handle()
    colm.page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=chart)  # a real PNG
    assert alert.title in colm.page.content()
    colm.shot("05b-alert")
    colm.page.click("#alert-act")
    colm.page.select_option("select[name=action]", "resolve")
    colm.page.fill("textarea[name=reason]", "Reference data refreshed; drift explained by the new intake.")
    colm.page.fill("input[name=password]", COLM[1])
    colm.page.get_by_role("button", name="Record").click()
    colm.page.wait_for_url(f"**/compliancealert/{alert.pk}/change/")
    alert.refresh_from_db()
    assert alert.status == "resolved"
    assert "Colm Byrne" in colm.page.content()
    colm.shot("05c-alert-resolved")


def auditor_reads_without_changing(login, request: ApprovalRequest) -> None:
    aldo = login(*ALDO)
    assert "No role of yours signs approvals" in aldo.page.locator("#awaiting-me").inner_text()
    aldo.shot("06-dashboard-auditor")
    events_before = AuditEvent.objects.count() + AuditQueueEntry.objects.count()
    # the sign-off page: every piece of evidence, no form, and why
    aldo.goto(f"/admin/governance/approvalrequest/{request.pk}/sign/")
    for section in EVIDENCE_SECTIONS[:-1]:
        assert aldo.page.locator(section).is_visible(), section
    assert aldo.page.locator("#sign-form").count() == 0
    assert "may not sign" in aldo.page.locator("#signing-refused").inner_text()
    assert "Colm Byrne" in aldo.page.locator("#previous-signatures").inner_text()
    aldo.shot("07-sign-off-auditor")
    # the request, the version, a signature and an audit event: no save, no delete
    signature = Signature.objects.get(request=request)
    event = AuditEvent.objects.filter(action="governance.approval.signed").latest("seq")
    for path in (f"/admin/governance/approvalrequest/{request.pk}/change/",
                 f"/admin/registry/modelversion/{request.model_version_id}/change/",
                 f"/admin/governance/signature/{signature.pk}/change/",
                 f"/admin/governance/auditevent/{event.seq}/change/"):
        aldo.goto(path)
        assert aldo.page.locator("input[name=_save], input[name=_continue], a.deletelink").count() == 0, path
    assert event.hash in aldo.page.content() and event.prev_hash in aldo.page.content()
    # an alert: no act button, and the act page offers no form
    alert = ComplianceAlert.objects.filter(status="open").order_by("pk").first()
    aldo.goto(f"/admin/monitoring/compliancealert/{alert.pk}/change/")
    assert aldo.page.locator("#alert-actions").is_visible() and aldo.page.locator("#alert-act").count() == 0
    assert aldo.page.locator('a[href$="/act/"]').count() == 0  # nor the act field among the record's
    aldo.shot("07b-alert-auditor")
    aldo.goto(f"/admin/monitoring/compliancealert/{alert.pk}/act/")
    assert aldo.page.locator("select[name=action], input[name=password]").count() == 0
    # the inbox: every active alert, no button to handle or sign one
    aldo.goto("/admin/monitoring/compliancealert/inbox/")
    assert f"#{alert.pk}" in aldo.page.locator("#result_list").inner_text()
    assert aldo.page.locator('a[href$="/act/"]').count() == 0
    aldo.shot("07c-inbox-auditor")
    # nothing the auditor did wrote an event
    assert AuditEvent.objects.count() + AuditQueueEntry.objects.count() == events_before


def data_scientist_is_refused(login, request: ApprovalRequest) -> None:
    dana = login(*DANA)
    response = dana.goto(f"/admin/governance/approvalrequest/{request.pk}/sign/")
    assert response.status == 403
    refused = dana.page.locator("#signing-refused").inner_text()
    assert "dana may not sign approvals" in refused and "data_scientist" in refused
    assert dana.page.locator("#sign-form").count() == 0
    dana.shot("08-sign-off-data-scientist-refused")
    # a forbidden page: editing a policy is the compliance officer's
    assert dana.goto("/admin/governance/approvalpolicy/edit/high/").status == 403


def test_from_a_fresh_demo_the_officer_finds_reviews_signs_and_downloads_the_dossier(demo, login):
    request = officer_finds_reviews_and_signs(login)
    officer_resolves_a_critical_alert(login)
    auditor_reads_without_changing(login, request)
    data_scientist_is_refused(login, request)
