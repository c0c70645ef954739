"""Notifications of approval-request events: signed webhooks to a real HTTPS receiver, emails, retries, SSRF.

The receiver is a real http.server on 127.0.0.1 behind TLS with a certificate made here and
trusted through ATTEST_WEBHOOK_CA_FILE, so the production rule "https only" holds in tests
too; ATTEST_WEBHOOK_ALLOW_PRIVATE=1 lets deliveries reach loopback. Emails go to Django's
locmem backend (`mailoutbox`). On-commit work runs through
`django_capture_on_commit_callbacks(execute=True)` with eager Celery, and once through a
real worker.
"""

import datetime as dt
import ipaddress
import json
import re
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from governance.models import ApprovalRequest, NotificationDelivery, OutboxMessage
from governance.notify import DeliveryRefused
from governance.notify.webhook import webhook_target_check
from governance.services.approvals import approval_request_open, approval_request_sign
from governance.services.notifications import notification_fanout
from governance.tasks import approval_requests_expire_task, notification_deliver_task, outbox_prune_task
from mlops_site.celery import app as celery_app
from mlops_site.common.errors import ApplicationError
from tests.governance.workflow_factories import PASSWORD, World

SECRET = "s3cret-for-tests"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "notifications.md"


# --- a real HTTPS receiver on loopback -------------------------------------------------------------

def _certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (the trust anchor and the server's certificate)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "attest-test-receiver")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "receiver.pem", directory / "receiver.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class Receiver:
    """Records every POST (headers and raw body); answers with the queued status codes, then 200."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.answers: list[int] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.received.append((dict(self.headers.items()), body))
                    status = receiver.answers.pop(0) if receiver.answers else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}/hooks/attest"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self) -> list[dict]:
        return [json.loads(body) for _, body in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(autouse=True)
def _tasks_in_process(request):
    """Every test here but the real-worker one runs the notification tasks in-process."""
    if "celery_worker" not in request.fixturenames:
        request.getfixturevalue("celery_eager")


@pytest.fixture
def receiver(tmp_path, settings):
    cert, key = _certificate(tmp_path)
    server = Receiver(cert, key)
    settings.ATTEST_WEBHOOK_URLS = [server.url]
    settings.ATTEST_WEBHOOK_SECRET = SECRET
    settings.ATTEST_WEBHOOK_ALLOW_PRIVATE = True
    settings.ATTEST_WEBHOOK_CA_FILE = str(cert)
    settings.ATTEST_SITE_URL = "https://attest.example.com"
    yield server
    server.close()


def documented_verifier():
    """The receiver's verification snippet, taken verbatim from docs/notifications.md."""
    text = DOCS.read_text()
    section = text.split("### Verifying a webhook", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, str(DOCS), "exec"), namespace)  # noqa: S102 - our own documentation
    return namespace["attest_webhook_verify"]


def with_emails(world: World) -> World:
    for user in User.objects.all():
        user.email = f"{user.username}@example.com"
        user.save(update_fields=["email"])
    return world


def open_request(world: World) -> ApprovalRequest:
    return approval_request_open(actor=world.engineer, kind="deployment", model_version=world.v1,
                                 environment="production")


def sign(world_user, request, meaning="approve", reason=""):
    return approval_request_sign(actor=world_user, request=request, password=PASSWORD, meaning=meaning,
                                 reason=reason)


def recipients(outbox) -> list[str]:
    return sorted(address for message in outbox for address in message.to)


# --- opening ---------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_opening_sends_a_signed_webhook_and_emails_the_signers_and_requester(
        receiver, mailoutbox, django_capture_on_commit_callbacks):
    # given
    world = with_emails(World("limited"))
    # when
    with django_capture_on_commit_callbacks(execute=True):
        request = open_request(world)
    # then: one webhook, verified by the documented snippet
    assert len(receiver.received) == 1
    headers, body = receiver.received[0]
    event = documented_verifier()(body, headers, SECRET)
    assert headers["X-Attest-Signature"].startswith("sha256=")
    assert headers["X-Attest-Event"] == "approval_request.opened"
    assert headers["X-Attest-Timestamp"] == str(event["sent_at"])
    assert headers["X-Attest-Delivery"] == event["event_id"]
    assert set(event) == {"event_id", "event", "request_id", "kind", "model", "version", "environment", "status",
                          "requested_by", "signer", "awaiting_roles", "timestamp", "correlation_id", "sent_at"}
    assert {k: event[k] for k in ("event", "request_id", "kind", "model", "version", "environment", "status",
                                  "requested_by", "signer", "awaiting_roles")} == {
        "event": "approval_request.opened", "request_id": request.pk, "kind": "deployment", "model": "credit",
        "version": 1, "environment": "production", "status": "pending", "requested_by": "eng", "signer": None,
        "awaiting_roles": ["compliance_officer", "model_validator"],
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", event["timestamp"])
    assert re.fullmatch(r"[0-9a-f]{32}", event["correlation_id"])
    # then: a tampered body or a wrong secret does not verify
    with pytest.raises(ValueError, match="bad signature"):
        documented_verifier()(body.replace(b'"pending"', b'"approved"'), headers, SECRET)
    with pytest.raises(ValueError, match="bad signature"):
        documented_verifier()(body, headers, "another secret")
    # then: emails to the holders of the roles still to sign and to the requester, one each
    assert recipients(mailoutbox) == ["comp@example.com", "eng@example.com", "val@example.com"]
    assert all(len(message.to) == 1 for message in mailoutbox)
    message = mailoutbox[0]
    assert message.subject == f"[Attest] Approval request #{request.pk} opened: credit v1 → production"
    assert message.from_email == "attest@localhost"
    assert f"https://attest.example.com/admin/governance/approvalrequest/{request.pk}/change/" in message.body
    assert "Still to sign: compliance_officer, model_validator" in message.body
    assert "Environment:  production" in message.body
    # then: every delivery recorded as sent after one attempt
    rows = NotificationDelivery.objects.order_by("channel", "target")
    assert [(r.channel, r.target, r.event, r.status, r.attempts) for r in rows] == [
        ("email", "comp@example.com", "approval_request.opened", "sent", 1),
        ("email", "eng@example.com", "approval_request.opened", "sent", 1),
        ("email", "val@example.com", "approval_request.opened", "sent", 1),
        ("webhook", receiver.url, "approval_request.opened", "sent", 1),
    ]
    webhook = rows.get(channel="webhook")
    assert webhook.last_status_code == 200 and webhook.last_error == "" and webhook.sent_at is not None
    assert str(webhook.notification_id) == event["event_id"]


@pytest.mark.django_db
def test_a_quorum_notifies_each_signature_then_the_approval(receiver, mailoutbox,
                                                             django_capture_on_commit_callbacks):
    # given
    world = with_emails(World("limited"))
    with django_capture_on_commit_callbacks(execute=True):
        request = open_request(world)
    mailoutbox.clear()
    # when
    with django_capture_on_commit_callbacks(execute=True):
        sign(world.validator, request)
    after_first = recipients(mailoutbox)
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        sign(world.compliance, request)
    # then
    events = receiver.events()
    assert [(e["event"], e["status"], e["awaiting_roles"]) for e in events] == [
        ("approval_request.opened", "pending", ["compliance_officer", "model_validator"]),
        ("approval_request.signed", "pending", ["compliance_officer"]),
        # the signature is its own event: the request was still pending when it was made
        ("approval_request.signed", "pending", []),
        ("approval_request.approved", "approved", []),
    ]
    assert events[1]["signer"] == {"username": "val", "printed_name": "Val Tester", "role": "model_validator",
                                   "meaning": "approve", "reason": ""}
    assert events[3]["signer"] == {"username": "comp", "printed_name": "Comp Tester"}
    assert len({e["event_id"] for e in events}) == 4
    # the validator signed and their role is filled: only the compliance officer and the requester
    assert after_first == ["comp@example.com", "eng@example.com"]
    # nothing left to sign: the requester hears of the signature and of the approval
    assert [(m.to, m.subject) for m in mailoutbox] == [
        (["eng@example.com"], f"[Attest] Approval request #{request.pk} signed: credit v1 → production"),
        (["eng@example.com"], f"[Attest] Approval request #{request.pk} approved: credit v1 → production"),
    ]
    assert all(documented_verifier()(body, headers, SECRET) for headers, body in receiver.received)


@pytest.mark.django_db
def test_a_rejection_notifies_with_the_reason(receiver, mailoutbox, django_capture_on_commit_callbacks):
    # given
    world = with_emails(World("limited"))
    with django_capture_on_commit_callbacks(execute=True):
        request = open_request(world)
    mailoutbox.clear()
    # when
    with django_capture_on_commit_callbacks(execute=True):
        sign(world.compliance, request, meaning="reject", reason="bias not assessed")
    # then
    events = receiver.events()
    assert [(e["event"], e["status"]) for e in events[1:]] == [
        ("approval_request.signed", "pending"), ("approval_request.rejected", "rejected")]
    assert events[1]["signer"]["reason"] == "bias not assessed"
    rejected = [m for m in mailoutbox if " rejected: " in m.subject]
    # the validator never signed: they learn there is nothing left to sign
    assert sorted(m.to[0] for m in rejected) == ["eng@example.com", "val@example.com"]
    assert "Reason:       bias not assessed" not in rejected[0].body  # the decision names the signer only
    signed = [m for m in mailoutbox if " signed: " in m.subject]
    assert "Reason:       bias not assessed" in signed[0].body


@pytest.mark.django_db
def test_a_refused_change_notifies_nobody(receiver, mailoutbox, django_capture_on_commit_callbacks):
    # given
    world = with_emails(World("limited"))
    with django_capture_on_commit_callbacks(execute=True):
        request = open_request(world)
    before = NotificationDelivery.objects.count()
    # when: the requester may not sign their own request
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(ApplicationError):
            sign(world.engineer, request)
    # then
    assert callbacks == []
    assert NotificationDelivery.objects.count() == before
    assert len(receiver.received) == 1


# --- retries and idempotency -------------------------------------------------------------------------

@pytest.mark.django_db
def test_a_500_is_retried_recorded_and_then_succeeds(receiver, mailoutbox, django_capture_on_commit_callbacks):
    # given
    world = with_emails(World("limited"))
    receiver.answers = [500]
    # when
    with django_capture_on_commit_callbacks(execute=True):
        open_request(world)
    # then: two posts of the same event, both verifiable
    assert [json.loads(b)["event_id"] for _, b in receiver.received] == [receiver.events()[0]["event_id"]] * 2
    assert all(documented_verifier()(body, headers, SECRET) for headers, body in receiver.received)
    delivery = NotificationDelivery.objects.get(channel="webhook")
    assert (delivery.status, delivery.attempts, delivery.last_status_code, delivery.last_error) == (
        "sent", 2, 200, "")
    assert [(a["attempt"], a["status_code"], a["error"]) for a in delivery.attempt_log] == [
        (1, 500, "receiver answered 500"), (2, 200, "")]


@pytest.mark.django_db
def test_a_receiver_that_keeps_failing_ends_failed_after_the_configured_retries(
        receiver, settings, django_capture_on_commit_callbacks):
    # given
    world = World("limited")
    receiver.answers = [503] * 100
    # when
    with django_capture_on_commit_callbacks(execute=True):
        open_request(world)
    # then
    delivery = NotificationDelivery.objects.get(channel="webhook")
    attempts = settings.ATTEST_NOTIFY_MAX_RETRIES + 1
    assert notification_deliver_task.max_retries == settings.ATTEST_NOTIFY_MAX_RETRIES
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", attempts, 503)
    assert len(receiver.received) == attempts
    assert [a["status_code"] for a in delivery.attempt_log] == [503] * attempts


@pytest.mark.django_db
def test_a_delivered_notification_is_never_sent_twice(receiver, mailoutbox, django_capture_on_commit_callbacks):
    # given
    world = with_emails(World("limited"))
    with django_capture_on_commit_callbacks(execute=True):
        open_request(world)
    webhook = NotificationDelivery.objects.get(channel="webhook")
    rows = NotificationDelivery.objects.count()
    # when: the delivery task runs again (a redelivered message), and the fan-out too
    with django_capture_on_commit_callbacks(execute=True):
        status = notification_deliver_task.delay(webhook.pk).get()
        pending = notification_fanout(payload=webhook.payload)
    # then
    assert status == "sent" and pending == []
    assert len(receiver.received) == 1 and len(mailoutbox) == 3
    assert NotificationDelivery.objects.count() == rows
    webhook.refresh_from_db()
    assert webhook.attempts == 1


# --- SSRF ----------------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_a_loopback_url_is_refused_without_the_allow_flag(receiver, settings, django_capture_on_commit_callbacks):
    # given
    settings.ATTEST_WEBHOOK_ALLOW_PRIVATE = False
    world = World("limited")
    # when
    with django_capture_on_commit_callbacks(execute=True):
        open_request(world)
    # then: nothing reached the receiver, and the refusal is recorded without retries
    assert receiver.received == []
    delivery = NotificationDelivery.objects.get(channel="webhook")
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 1, None)
    assert delivery.last_error == "127.0.0.1 resolves to a blocked address: 127.0.0.1 is loopback"


@pytest.mark.parametrize(("url", "allow_private", "reason"), [
    ("http://example.com/hook", True, "webhook URLs must be https, not http"),
    ("file:///etc/passwd", True, "webhook URLs must be https, not file"),
    ("https://user:pw@example.com/hook", True, "webhook URL must not carry credentials (userinfo)"),
    ("https://localhost/hook", False, "localhost resolves to a blocked address: "),
    ("https://10.1.2.3/hook", False, "10.1.2.3 resolves to a blocked address: 10.1.2.3 is private"),
    ("https://192.168.0.7/hook", False, "192.168.0.7 resolves to a blocked address: 192.168.0.7 is private"),
    ("https://[::1]/hook", False, "::1 resolves to a blocked address: ::1 is loopback"),
    ("https://[::ffff:127.0.0.1]/hook", False, "::ffff:127.0.0.1 resolves to a blocked address: "),
    ("https://169.254.169.254/latest/meta-data", True,
     "169.254.169.254 resolves to a blocked address: 169.254.169.254 is link-local"),
    ("https://0.0.0.0/hook", True, "0.0.0.0 resolves to a blocked address: 0.0.0.0 is unspecified"),
])
def test_webhook_urls_outside_the_rules_are_refused(url, allow_private, reason):
    with pytest.raises(DeliveryRefused) as caught:
        webhook_target_check(url, allow_private=allow_private)
    assert str(caught.value).startswith(reason)


def test_a_loopback_url_is_accepted_with_the_allow_flag():
    target = webhook_target_check("https://127.0.0.1:8443/h?x=1", allow_private=True)
    assert (target.host, target.port, target.path, target.addresses) == ("127.0.0.1", 8443, "/h?x=1",
                                                                         ("127.0.0.1",))


@pytest.mark.django_db
def test_a_redirect_is_not_followed(receiver, django_capture_on_commit_callbacks):
    # given
    receiver.answers = [302]
    # when
    with django_capture_on_commit_callbacks(execute=True):
        open_request(World("limited"))
    # then
    delivery = NotificationDelivery.objects.get(channel="webhook")
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 1, 302)
    assert len(receiver.received) == 1


# --- expiry -------------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_the_expiry_task_expires_overdue_requests_and_notifies(receiver, mailoutbox, settings,
                                                                django_capture_on_commit_callbacks):
    # given
    world = with_emails(World("limited"))
    with django_capture_on_commit_callbacks(execute=True):
        overdue = open_request(world)
        sign(world.validator, overdue)
    age = dt.timedelta(days=overdue.policy.max_approval_age_days, minutes=1)
    ApprovalRequest.objects.filter(pk=overdue.pk).update(created_at=timezone.now() - age)
    mailoutbox.clear()
    # when
    with django_capture_on_commit_callbacks(execute=True):
        expired = approval_requests_expire_task.delay().get()
    # then
    overdue.refresh_from_db()
    assert expired == 1 and overdue.status == "expired"
    event = receiver.events()[-1]
    assert (event["event"], event["status"], event["signer"], event["awaiting_roles"]) == (
        "approval_request.expired", "expired", None, ["compliance_officer"])
    assert recipients(mailoutbox) == ["comp@example.com", "eng@example.com"]
    assert mailoutbox[0].subject == f"[Attest] Approval request #{overdue.pk} expired: credit v1 → production"
    # and it is on the beat schedule, under a task name the worker knows
    entry = settings.CELERY_BEAT_SCHEDULE["approval-expiry"]
    assert entry["task"] == "governance.tasks.approval_requests_expire_task"
    assert entry["schedule"] == dt.timedelta(minutes=15)
    assert entry["task"] in celery_app.tasks


# --- the outbox (governance/outbox.py) -------------------------------------------------------------

FANOUT, DELIVER = "governance.tasks.notification_fanout_task", "governance.tasks.notification_deliver_task"


@pytest.mark.django_db
def test_the_fanout_and_each_delivery_travel_through_the_outbox(receiver, mailoutbox,
                                                                 django_capture_on_commit_callbacks):
    # given
    world = with_emails(World("limited"))
    # when: the change commits
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            request = open_request(world)
            # then: its fan-out is a row of its transaction, not yet handed on
            assert list(OutboxMessage.objects.values_list("task_name", "sent_at")) == [(FANOUT, None)]
    # then: handed on at commit (eager: run in-process), the fan-out wrote one row per delivery
    rows = list(OutboxMessage.objects.order_by("id"))
    assert [(row.task_name, row.sent_at is not None, row.attempts, row.last_error) for row in rows] == [
        (FANOUT, True, 1, "")] + [(DELIVER, True, 1, "")] * 4
    assert rows[0].args[0]["request_id"] == request.pk
    assert sorted(row.args[0] for row in rows[1:]) == sorted(NotificationDelivery.objects.values_list("pk", flat=True))
    assert len(receiver.received) == 1 and len(mailoutbox) == 3


@pytest.mark.django_db
def test_the_relay_command_sends_a_row_left_pending(receiver, mailoutbox):
    # given: a committed change whose hand-off never ran (this test's transaction does not commit)
    world = with_emails(World("limited"))
    request = open_request(world)
    assert list(OutboxMessage.objects.values_list("task_name", "sent_at")) == [(FANOUT, None)]
    assert receiver.received == []
    # when
    out = StringIO()
    call_command("relay_outbox", stdout=out)
    # then: the fan-out ran (eager: in-process) and its four deliveries' rows went through the relay
    # too (their own on-commit hand-off never runs here either), once each
    assert out.getvalue() == "outbox: 5 sent, 0 pending\n"
    assert [event["request_id"] for event in receiver.events()] == [request.pk]
    assert not OutboxMessage.objects.filter(sent_at__isnull=True).exists()
    assert set(NotificationDelivery.objects.values_list("status", flat=True)) == {"sent"}
    # when: it runs again
    call_command("relay_outbox", stdout=StringIO())
    # then: nothing is sent twice
    assert len(receiver.received) == 1 and len(mailoutbox) == 3


@pytest.mark.django_db
def test_the_prune_task_deletes_only_rows_sent_before_the_kept_days(settings):
    # given: rows sent 8 days ago, 6 days ago, and one never sent (created 30 days ago)
    settings.ATTEST_OUTBOX_KEEP_DAYS = 7
    now = timezone.now()
    old, recent, pending = OutboxMessage.objects.bulk_create(
        OutboxMessage(task_name="tests.outbox_probe", args=[n]) for n in range(3))
    OutboxMessage.objects.filter(pk=old.pk).update(sent_at=now - dt.timedelta(days=8))
    OutboxMessage.objects.filter(pk=recent.pk).update(sent_at=now - dt.timedelta(days=6))
    OutboxMessage.objects.filter(pk=pending.pk).update(created_at=now - dt.timedelta(days=30))
    # when
    deleted = outbox_prune_task.apply().get()
    # then
    assert deleted == 1
    assert sorted(OutboxMessage.objects.values_list("pk", flat=True)) == [recent.pk, pending.pk]
    # and the relay and the prune are on the beat schedule, under task names the worker knows
    schedule = settings.CELERY_BEAT_SCHEDULE
    assert schedule["outbox-relay"]["schedule"] == dt.timedelta(seconds=10)
    assert schedule["outbox-prune"]["schedule"] == dt.timedelta(hours=1)
    assert {schedule[name]["task"] for name in ("outbox-relay", "outbox-prune")} <= set(celery_app.tasks)


# --- through a real worker -------------------------------------------------------------------------

def _wait_for(predicate, what, deadline_s: float = 60.0):
    """Poll until `predicate()` is truthy; the deadline only bounds a hung test, it asserts no speed."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what()}")


@pytest.mark.celery_worker
def test_through_a_real_worker_the_commit_sends_retries_and_records(receiver, celery_worker, mailoutbox):
    # given (mailoutbox after celery_worker: starting the worker leaves Django's mail.outbox a new list)
    world = with_emails(World("limited"))
    receiver.answers = [500]
    # when: a real transaction commits, and the worker takes it from there
    with transaction.atomic():
        request = open_request(world)
    # then
    rows = NotificationDelivery.objects.values_list("target", "status", "attempts", "attempt_log")
    done = _wait_for(lambda: NotificationDelivery.objects.filter(status="sent").count() == 4,
                     lambda: f"four sent deliveries, have {list(rows.all())}")
    assert done
    webhook = NotificationDelivery.objects.get(channel="webhook")
    assert (webhook.status, webhook.attempts, [a["status_code"] for a in webhook.attempt_log]) == (
        "sent", 2, [500, 200])
    assert all(documented_verifier()(body, headers, SECRET)["request_id"] == request.pk
               for headers, body in receiver.received)
    assert recipients(mailoutbox) == ["comp@example.com", "eng@example.com", "val@example.com"]
