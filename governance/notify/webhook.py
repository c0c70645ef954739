"""Webhook delivery with the upload rules of RELIABILITY.md: https only, no private targets, no redirects.

The URL's host is resolved once, every address it resolves to is checked, and the connection
goes to a checked address (the TLS handshake still verifies the certificate for the host
name). Connecting to the address that was checked, rather than resolving again, closes the
DNS-rebinding window between check and use. Redirects are never followed: http.client does
not follow them, and a 3xx answer is a refused delivery.
"""

import http.client
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from governance.notify import DeliveryFailed, DeliveryRefused

# Refused even with ATTEST_WEBHOOK_ALLOW_PRIVATE: nothing legitimate listens on them, and
# link-local includes the cloud metadata endpoint (169.254.169.254), the classic SSRF prize.
# Checked first: Python counts 169.254/16 and 0.0.0.0/8 as "private" too.
_NEVER = ("is_link_local", "is_multicast", "is_unspecified")
# Refused unless ATTEST_WEBHOOK_ALLOW_PRIVATE (a receiver inside the operator's own network).
_PRIVATE = ("is_loopback", "is_private")


@dataclass(frozen=True)
class WebhookTarget:
    host: str
    port: int
    path: str
    addresses: tuple[str, ...]


def _address_refusal(address: str, *, allow_private: bool) -> str | None:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for kind in _NEVER:
        if getattr(ip, kind):
            return f"{address} is {kind.removeprefix('is_').replace('_', '-')}"
    for kind in _PRIVATE:
        if getattr(ip, kind):
            return None if allow_private else f"{address} is {kind.removeprefix('is_')}"
    # Checked last: ::1 is in the reserved ::/8 and must stay reachable with the flag.
    if ip.is_reserved:
        return f"{address} is reserved"
    # What is neither private nor global (100.64.0.0/10 carrier-grade NAT, documentation and
    # benchmarking ranges) is not the public internet either (tests/security: hypothesis found 100.64/10).
    if not ip.is_global and not allow_private:
        return f"{address} is not globally routable"
    return None


def webhook_target_check(url: str, *, allow_private: bool,
                         resolve=socket.getaddrinfo) -> WebhookTarget:
    """Parse and resolve `url`; raise DeliveryRefused unless it is https to public addresses only.

    A host that resolves to several addresses is refused if any of them is refused, since the
    connection could otherwise be steered to the bad one.
    """
    try:
        parts = urlsplit(url)
        port = parts.port or 443
    except ValueError as exc:
        raise DeliveryRefused(f"not a valid URL: {exc}") from exc
    if parts.scheme != "https":
        raise DeliveryRefused(f"webhook URLs must be https, not {parts.scheme or 'schemeless'}")
    if not parts.hostname:
        raise DeliveryRefused("webhook URL has no host")
    if parts.username or parts.password:
        raise DeliveryRefused("webhook URL must not carry credentials (userinfo)")
    try:
        infos = resolve(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        # DNS may come back; a retry is worth it.
        raise DeliveryFailed(f"cannot resolve {parts.hostname}: {exc}") from exc
    addresses = tuple(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise DeliveryFailed(f"{parts.hostname} resolves to no address")
    for address in addresses:
        refusal = _address_refusal(address, allow_private=allow_private)
        if refusal:
            raise DeliveryRefused(f"{parts.hostname} resolves to a blocked address: {refusal}")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return WebhookTarget(host=parts.hostname, port=port, path=path, addresses=addresses)


class _CheckedHTTPSConnection(http.client.HTTPSConnection):
    """An HTTPS connection to an address checked beforehand, verifying the certificate for the host name."""

    def __init__(self, target: WebhookTarget, *, context: ssl.SSLContext, timeout: float) -> None:
        super().__init__(target.host, target.port, context=context, timeout=timeout)
        self._target, self._tls = target, context

    def connect(self) -> None:
        last: OSError | None = None
        for address in self._target.addresses:
            try:
                sock = socket.create_connection((address, self._target.port), self.timeout)
            except OSError as exc:
                last = exc
                continue
            self.sock = self._tls.wrap_socket(sock, server_hostname=self._target.host)
            return
        raise last or OSError("no address to connect to")


def webhook_post(url: str, body: bytes, headers: dict[str, str], *, timeout: float, allow_private: bool,
                 ca_file: str | None = None) -> int:
    """POST `body` to `url`; return the 2xx status code.

    Raises DeliveryRefused (never retry: a refused URL or a redirect) or DeliveryFailed
    (retry: network error, timeout, TLS failure, any other non-2xx answer).
    """
    target = webhook_target_check(url, allow_private=allow_private)
    context = ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()
    connection = _CheckedHTTPSConnection(target, context=context, timeout=timeout)
    try:
        connection.request("POST", target.path, body=body,
                           headers={"Content-Type": "application/json", "User-Agent": "Attest-Webhook/1",
                                    **headers})
        response = connection.getresponse()
        status = response.status
        # Read a little so the connection closes cleanly; the receiver's answer is not ours to keep.
        response.read(4096)
    except (OSError, http.client.HTTPException) as exc:
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc
    finally:
        connection.close()
    if 300 <= status < 400:
        raise DeliveryRefused(f"receiver answered {status}; redirects are not followed", status_code=status)
    if not 200 <= status < 300:
        raise DeliveryFailed(f"receiver answered {status}", status_code=status)
    return status
