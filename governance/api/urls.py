from django.urls import path

from governance.api import audit_views

app_name = "governance"
urlpatterns: list = [
    path("audit/events/", audit_views.AuditEventListApi.as_view(), name="audit-event-list"),
    path("audit/events/<int:seq>/proof/", audit_views.AuditEventProofApi.as_view(), name="audit-event-proof"),
    path("audit/checkpoints/", audit_views.AuditCheckpointListApi.as_view(), name="audit-checkpoint-list"),
    path("audit/checkpoints/consistency/", audit_views.AuditCheckpointConsistencyApi.as_view(),
         name="audit-checkpoint-consistency"),
    path("audit/checkpoints/<int:size>/", audit_views.AuditCheckpointDetailApi.as_view(),
         name="audit-checkpoint-detail"),
    path("audit/verify/", audit_views.AuditVerifyApi.as_view(), name="audit-verify"),
]
