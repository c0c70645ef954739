"""manage.py issue_token USERNAME [--scope SCOPE ...] [--expires-days N] [--name NAME]

Prints the new token as the LAST line of stdout (CONTRACT.md), so a script can take it with
`tail -n1`. The key is shown only here; Attest keeps its sha256.
"""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from governance.models import ApiToken
from governance.services.tokens import api_token_issue
from mlops_site.common.errors import ApplicationError


class Command(BaseCommand):
    help = "Issue an API token for USERNAME and print it as the last line of output."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--scope", action="append", dest="scopes", default=[], metavar="SCOPE",
            help=f"repeatable; one of {', '.join(ApiToken.Scope.values)}. Default: by the user's role.",
        )
        parser.add_argument("--expires-days", type=int, default=None, metavar="N",
                            help="the token expires after N days (default: never)")
        parser.add_argument("--name", default="", help="a label for the token, e.g. the pipeline's name")

    def handle(self, *args, username, scopes, expires_days, name, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        if expires_days is not None and expires_days < 1:
            raise CommandError("--expires-days must be at least 1.")
        expires_at = timezone.now() + timedelta(days=expires_days) if expires_days else None
        try:
            token, key = api_token_issue(actor=None, user=user, scopes=scopes, name=name,
                                         expires_at=expires_at)
        except ApplicationError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from exc
        expiry = token.expires_at.isoformat() if token.expires_at else "never"
        self.stdout.write(
            f"Token {token.prefix}… for {username}; scopes: {' '.join(token.scopes)}; expires: {expiry}.\n"
            "It is shown once; Attest stores only its sha256. Use it as: Authorization: Token <token>"
        )
        self.stdout.write(key)
