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

from governance.api import approval_views, gate_views  # noqa: E402

urlpatterns += [
    path("approval-requests/", approval_views.ApprovalRequestListCreateApi.as_view(), name="approval-request-list"),
    path("approval-requests/<int:pk>/", approval_views.ApprovalRequestDetailApi.as_view(),
         name="approval-request-detail"),
    path("approval-requests/<int:pk>/sign/", approval_views.ApprovalRequestSignApi.as_view(),
         name="approval-request-sign"),
    path("approval-requests/<int:pk>/withdraw/", approval_views.ApprovalRequestWithdrawApi.as_view(),
         name="approval-request-withdraw"),
    path("policies/", approval_views.PolicyListUpdateApi.as_view(), name="policy-list"),
    path("deployments/", gate_views.DeploymentListRecordApi.as_view(), name="deployment-list"),
    path("gate/", gate_views.GateApi.as_view(), name="gate"),
]

from governance.api import dossier_views  # noqa: E402

urlpatterns += [
    path("models/<int:pk>/dossier.pdf", dossier_views.DossierPdfApi.as_view(), name="model-dossier"),
    path("models/<int:pk>/evidence.zip", dossier_views.EvidenceBundleApi.as_view(), name="model-evidence"),
    path("models/<int:pk>/compliance/", dossier_views.ComplianceApi.as_view(), name="model-compliance"),
    path("kpis/", dossier_views.KpiApi.as_view(), name="kpis"),
]

from governance.api import evaluation_views  # noqa: E402

urlpatterns += [
    path("evaluations/", evaluation_views.EvaluationListCreateApi.as_view(), name="evaluation-list"),
    path("evaluations/<int:pk>/", evaluation_views.EvaluationDetailApi.as_view(), name="evaluation-detail"),
    path("reports/<int:pk>/", evaluation_views.ReportDetailApi.as_view(), name="report-detail"),
    path("reports/<int:pk>/charts/<slug:name>.png", evaluation_views.ReportChartApi.as_view(), name="report-chart"),
    path("model-versions/<int:pk>/model-card/", evaluation_views.ModelCardApi.as_view(), name="model-card"),
]

from governance.api import mlflow_views  # noqa: E402

urlpatterns += [
    path("mlflow/webhook/", mlflow_views.MlflowWebhookApi.as_view(), name="mlflow-webhook"),
]
