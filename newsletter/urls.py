from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from digests import views as digest_views
from newsletter import views
from subscribers.webhooks import webhook_urlpatterns

urlpatterns = [
    # Before the admin's own URLs: a staff page in the admin's frame, not part of the public site.
    path("admin/status/", views.status, name="status"),
    path("admin/", admin.site.urls),
    # set_language: the admin's language selector (newsletter/middleware.py reads the cookie).
    path("i18n/", include("django.conf.urls.i18n")),
    path("anymail/", include((webhook_urlpatterns(), "anymail"))),
    path("", include("subscribers.urls")),
    path("healthz", views.healthz, name="healthz"),
    path("digests/<str:day>/chart.png", digest_views.digest_chart, name="digest-chart"),
    path("archive/", include("digests.urls")),
]
