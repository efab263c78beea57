from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from digests import views as digest_views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("anymail/", include("anymail.urls")),
    path("", include("subscribers.urls")),
    path("healthz", digest_views.healthz, name="healthz"),
    path("digests/<str:day>/chart.png", digest_views.digest_chart, name="digest-chart"),
    path("archive/", include("digests.urls")),
]
