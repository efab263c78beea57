from __future__ import annotations

from django.urls import path

from . import channel_views, views

app_name = "subscribers"

urlpatterns = [
    path("subscribe/", views.subscribe, name="subscribe"),
    path("subscribe/check-inbox/", views.check_inbox, name="check-inbox"),
    path("subscribe/confirm/<str:token>/", views.confirm, name="confirm"),
    path("preferences/<str:token>/", views.preferences, name="preferences"),
    path("preferences/<str:token>/data.json", views.data_export, name="data-export"),
    path("preferences/<str:token>/delete/", views.delete, name="delete"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("telegram/webhook/", channel_views.telegram_webhook, name="telegram-webhook"),
]
