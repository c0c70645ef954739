"""The plain-text email about an approval-request event: the facts and a link to the admin page."""

from typing import Any

_VERBS = {
    "approval_request.opened": "opened",
    "approval_request.signed": "signed",
    "approval_request.approved": "approved",
    "approval_request.rejected": "rejected",
    "approval_request.expired": "expired",
}


def _subject_target(payload: dict[str, Any]) -> str:
    if payload["kind"] == "deployment":
        return f"{payload['model']} v{payload['version']} → {payload['environment']}"
    return f"retraining of {payload['model']}"


def email_render(payload: dict[str, Any], *, link: str) -> tuple[str, str]:
    """(subject, body) for the event `payload` (governance.services.notifications builds it)."""
    verb = _VERBS[payload["event"]]
    subject = f"[Attest] Approval request #{payload['request_id']} {verb}: {_subject_target(payload)}"
    lines = [
        f"Approval request #{payload['request_id']} was {verb}.",
        "",
        f"Kind:         {payload['kind']}",
        f"Model:        {payload['model']}",
    ]
    if payload["kind"] == "deployment":
        lines += [f"Version:      {payload['version']}", f"Environment:  {payload['environment']}"]
    lines += [
        f"Status:       {payload['status']}",
        f"Requested by: {payload['requested_by']}",
    ]
    signer = payload.get("signer")
    if signer:
        lines.append(f"Signer:       {signer['printed_name']} ({signer['username']})"
                     + (f" as {signer['role']}, meaning {signer['meaning']}" if signer.get("role") else ""))
        if signer.get("reason"):
            lines.append(f"Reason:       {signer['reason']}")
    if payload["status"] == "pending":
        awaiting = ", ".join(payload["awaiting_roles"]) or "none"
        lines.append(f"Still to sign: {awaiting}")
    lines += [
        f"At (UTC):     {payload['timestamp']}",
        f"Correlation:  {payload['correlation_id']}",
        "",
        f"Review it: {link}",
        "",
        "Signing needs your password on that page; this email carries no link that signs.",
    ]
    return subject, "\n".join(lines) + "\n"
