from django.urls import path

from registry.api import views

app_name = "registry"
urlpatterns: list = [
    path("datasets/", views.DatasetListCreateApi.as_view(), name="dataset-list"),
    path("datasets/<int:pk>/", views.DatasetDetailApi.as_view(), name="dataset-detail"),
    path("datasets/<int:pk>/archive/", views.DatasetArchiveApi.as_view(), name="dataset-archive"),
    path("dataset-versions/", views.DatasetVersionListCreateApi.as_view(), name="dataset-version-list"),
    path("dataset-versions/<int:pk>/", views.DatasetVersionDetailApi.as_view(), name="dataset-version-detail"),
    path("dataset-versions/<int:pk>/archive/", views.DatasetVersionArchiveApi.as_view(),
         name="dataset-version-archive"),
    path("models/", views.ModelListCreateApi.as_view(), name="model-list"),
    path("models/<int:pk>/", views.ModelDetailApi.as_view(), name="model-detail"),
    path("models/<int:pk>/archive/", views.ModelArchiveApi.as_view(), name="model-archive"),
    path("model-versions/", views.ModelVersionListCreateApi.as_view(), name="model-version-list"),
    path("model-versions/<int:pk>/", views.ModelVersionDetailApi.as_view(), name="model-version-detail"),
    path("model-versions/<int:pk>/archive/", views.ModelVersionArchiveApi.as_view(),
         name="model-version-archive"),
    path("lineage/", views.LineageApi.as_view(), name="lineage"),
]
