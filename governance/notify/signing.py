"""The webhook signature: `X-Attest-Signature: sha256=<hex HMAC-SHA256 of the raw body>`.

The receiver recomputes it over the bytes it received, before parsing them (docs/notifications.md).
"""

import hashlib
import hmac

SIGNATURE_HEADER = "X-Attest-Signature"
TIMESTAMP_HEADER = "X-Attest-Timestamp"
EVENT_HEADER = "X-Attest-Event"
DELIVERY_HEADER = "X-Attest-Delivery"


def webhook_signature(body: bytes, secret: str) -> str:
    """The header value for `body`: "sha256=" and the hex HMAC-SHA256 keyed with the shared secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_signature_valid(body: bytes, header: str, secret: str) -> bool:
    """Whether `header` is the signature of `body` (constant-time comparison)."""
    return hmac.compare_digest(webhook_signature(body, secret), header or "")
