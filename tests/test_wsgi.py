"""mlops_site.wsgi: the served process starts with its start-up objects out of the collector's reach."""

import subprocess
import sys

from django.conf import settings


def test_importing_the_wsgi_application_loads_the_urlconf_then_freezes_the_heap():
    # given: a fresh interpreter, as a gunicorn worker is
    probe = ("import gc, sys; import mlops_site.wsgi; "
             f"print(gc.get_freeze_count(), {settings.ROOT_URLCONF!r} in sys.modules, "
             "'governance.api.gate_views' in sys.modules)")
    # when
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                          cwd=settings.BASE_DIR, env={"PATH": "/usr/bin:/bin", "DEBUG": "1",
                                                      "ATTEST_VAR_DIR": str(settings.VAR_DIR)})
    # then: the views were imported before the freeze, and the freeze holds the start-up objects
    frozen, urlconf_loaded, gate_view_loaded = done.stdout.split()
    assert urlconf_loaded == gate_view_loaded == "True"
    assert int(frozen) > 50_000
