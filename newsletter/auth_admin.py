"""The Group and User admins of django.contrib.auth, with permissions named in the editor's
language.

Django stores a permission's name in English when it creates it ("Can add subscriber") and
shows that stored name in the Group and User pages. Here the name is made at display time
instead: a model's add/change/delete/view permission from its codename's action and the model's
translated verbose name, a permission the project declares (`Meta.permissions`, their names
marked with gettext_noop) from the catalogue, and the app's translated name before it. Loaded
by `NewsletterConfig.ready`, after the admin has registered auth's own admins.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, Permission, User
from django.db.models import ManyToManyField
from django.forms import ModelMultipleChoiceField
from django.http import HttpRequest
from django.utils.translation import gettext, gettext_noop

# The actions of a model's default permissions (Meta.default_permissions).
ACTION_NAMES = {
    "add": gettext_noop("Can add %(model)s"),
    "change": gettext_noop("Can change %(model)s"),
    "delete": gettext_noop("Can delete %(model)s"),
    "view": gettext_noop("Can view %(model)s"),
}


def permission_name(permission: Permission) -> str:
    """The permission's name in the active language; its stored name where nothing better is
    known (a model that no longer exists, another app's own permission)."""
    content_type = permission.content_type
    model = content_type.model_class()
    action, _, model_name = permission.codename.partition("_")
    if model is not None and action in ACTION_NAMES and model_name == content_type.model:
        return gettext(ACTION_NAMES[action]) % {"model": model._meta.verbose_name}
    return gettext(permission.name)


def permission_label(permission: Permission) -> str:
    """ "app | model | name", as Django shows a permission, every part translated."""
    content_type = permission.content_type
    model = content_type.model_class()
    if model is None:
        return str(permission)
    app = apps.get_app_config(content_type.app_label).verbose_name
    return f"{app} | {model._meta.verbose_name} | {permission_name(permission)}"


class TranslatedPermissions(admin.ModelAdmin):
    """Labels the permission choices of a form with `permission_label`."""

    def formfield_for_manytomany(
        self, db_field: ManyToManyField, request: HttpRequest, **kwargs: Any
    ) -> ModelMultipleChoiceField | None:
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        queryset = field.queryset if field is not None else None
        if field is not None and queryset is not None and queryset.model is Permission:
            field.label_from_instance = permission_label  # type: ignore[assignment]
        return field


class TranslatedGroupAdmin(TranslatedPermissions, GroupAdmin):
    pass


class TranslatedUserAdmin(TranslatedPermissions, UserAdmin):
    pass


def auth_admins_register(site: admin.AdminSite) -> None:
    """auth's Group and User admins replaced by the translated ones (where they are
    registered: a project that swaps the user model keeps its own)."""
    for model, model_admin in ((Group, TranslatedGroupAdmin), (User, TranslatedUserAdmin)):
        if site.is_registered(model):
            site.unregister(model)
            site.register(model, model_admin)
