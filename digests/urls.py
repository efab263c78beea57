from __future__ import annotations

from django.urls import path

from . import views
from .feeds import CategoryFeed

app_name = "digests"

urlpatterns = [
    path("", views.archive_list, name="archive"),
    path("atom.xml", views.archive_atom, name="archive-atom"),
    path("<slug:slug>/atom.xml", CategoryFeed(), name="archive-category-atom"),
    path("<str:day>/", views.archive_issue, name="archive-issue"),
]
