"""The environments this installation deploys to (settings.ATTEST_ENVIRONMENTS).

A policy covers some of them, and approval is needed only there, so a name outside every policy
must not slip through by a typo or a capital letter ("Production", "prodution"): the gate, deployment
records, approval requests, policies and monitors accept only the names this list declares, and
refuse any other with 400 `environment_unknown`. Names are compared exactly, as they are stored.
"""

from django.conf import settings

from governance import errors


def environments_known() -> tuple[str, ...]:
    return tuple(settings.ATTEST_ENVIRONMENTS)


def environment_require_known(environment: str, *, field: str = "environment") -> None:
    """Raise 400 `environment_unknown` unless `environment` is one of ATTEST_ENVIRONMENTS."""
    known = settings.ATTEST_ENVIRONMENTS
    if environment not in known:
        raise errors.environment_unknown(environment=environment, known=known, field=field)
