from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from governance.oidc import oidc_callback, oidc_login
from mlops_site.common.health import healthz, readyz
from mlops_site.common.metrics import metrics_view

api_v1 = [
    path("", include("registry.api.urls")),
    path("", include("governance.api.urls")),
    path("", include("monitoring.api.urls")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("oidc/login/", oidc_login, name="oidc-login"),
    path("oidc/callback/", oidc_callback, name="oidc-callback"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/v1/", include(api_v1)),
]

handler404 = "mlops_site.common.api.exception_handler.page_not_found"
handler500 = "mlops_site.common.api.exception_handler.server_error"
