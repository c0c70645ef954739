from django.urls import path

from monitoring.api import views

app_name = "monitoring"
urlpatterns = [
    path("monitors/", views.DriftMonitorListCreateApi.as_view(), name="monitor-list"),
    path("monitors/<int:pk>/", views.DriftMonitorDetailApi.as_view(), name="monitor-detail"),
    path("monitors/<int:pk>/results/", views.DriftResultListApi.as_view(), name="monitor-results"),
    path("monitoring-batches/", views.MonitoringBatchListCreateApi.as_view(), name="batch-list"),
    path("monitoring-batches/<int:pk>/", views.MonitoringBatchDetailApi.as_view(), name="batch-detail"),
    path("alerts/", views.ComplianceAlertListApi.as_view(), name="alert-list"),
    path("alerts/<int:pk>/", views.ComplianceAlertDetailApi.as_view(), name="alert-detail"),
    path("alerts/<int:pk>/acknowledge/", views.ComplianceAlertAcknowledgeApi.as_view(), name="alert-acknowledge"),
    path("alerts/<int:pk>/resolve/", views.ComplianceAlertResolveApi.as_view(), name="alert-resolve"),
    path("alerts/<int:pk>/dismiss/", views.ComplianceAlertDismissApi.as_view(), name="alert-dismiss"),
]
