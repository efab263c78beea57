from __future__ import annotations

from django.urls import path

from . import views
from .feeds import ArchiveFeed

app_name = "digests"

urlpatterns = [
    path("", views.archive_list, name="archive"),
    path("atom.xml", ArchiveFeed(), name="archive-atom"),
    path("<str:day>/", views.archive_issue, name="archive-issue"),
]
