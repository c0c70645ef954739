"""The WSGI application gunicorn serves (docs/deploy.md).

Once Django and the URLconf (with every view, serializer and model it imports) are loaded, the
objects they made live as long as the process: `gc.freeze()` moves them out of the collector's
reach, so a full collection no longer walks them all. In-process, a full collection during the
gate's load took 160 ms before and 5.5 ms after, about once per thousand requests: a pause that
stalls every request of the worker (docs/BENCHMARKS.md, "Gate").
"""

import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlops_site.settings")
application = get_wsgi_application()
get_resolver().url_patterns  # noqa: B018 - imports the URLconf and its views now, before the freeze
gc.freeze()
