"""Outbound notifications: webhook signing and delivery, email rendering.

No database access here: governance.services.notifications decides what goes where and
records each attempt; this package only turns facts into bytes and bytes into a request.
"""


class DeliveryError(Exception):
    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class DeliveryRefused(DeliveryError):
    """A delivery that must never be attempted (or retried): a refused URL, a missing secret, a redirect."""


class DeliveryFailed(DeliveryError):
    """A delivery attempt that failed in a way a later attempt may not (network error, 5xx, timeout)."""
