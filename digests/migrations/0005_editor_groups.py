"""The two roles of the admin, as groups: Editors and Viewers.

Editors review and edit the draft, preview it, send tests, approve it and cancel its send,
regenerate summaries and resend to deliveries in an unknown state; they may change the feeds.
Viewers see everything an editor sees (digests, sections, papers, deliveries, the dashboard)
and change nothing. Readers' addresses (subscribers) are visible to editors, who may preview an
issue as a given reader, not to viewers. The schedule is for operators (superusers).

Permissions are created here (they are normally created after all migrations), so the groups
can be given them on a fresh database. Running it again adds what is missing and removes
nothing an operator added.

It used to depend on subscribers 0002 for the readers' permissions (view_delivery,
view_subscriber, view_emailevent). That dependency made the two apps' histories cross
(subscribers 0002 depends on digests 0003), so that neither could be squashed: Django gives a
squashed migration the dependencies of every migration it replaces. This migration now grants
those permissions when they exist (every database that applied subscribers 0002 first, which
was every database until the squash), and subscribers 0002 grants them when it runs after.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

VIEW = "view"
DIGEST_MODELS = [
    "digest",
    "digestsection",
    "sectionpaper",
    "paper",
    "category",
    "feed",
    "llmcall",
    "sectionrevision",
    "regeneration",
]
VIEWERS = [("digests", f"view_{model}") for model in DIGEST_MODELS] + [
    ("subscribers", "view_delivery"),
]
EDITORS = VIEWERS + [
    ("digests", "change_digest"),
    ("digests", "add_digestsection"),
    ("digests", "change_digestsection"),
    ("digests", "delete_digestsection"),
    ("digests", "add_sectionpaper"),
    ("digests", "change_sectionpaper"),
    ("digests", "delete_sectionpaper"),
    ("digests", "change_paper"),
    ("digests", "add_feed"),
    ("digests", "change_feed"),
    ("digests", "approve_digest"),
    ("digests", "send_test_digest"),
    ("digests", "regenerate_section"),
    ("digests", "resend_digest"),
    ("subscribers", "view_subscriber"),
    ("subscribers", "view_emailevent"),
]
GROUPS = {"Editors": EDITORS, "Viewers": VIEWERS}


def groups_create(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, wanted in GROUPS.items():
        group, _ = Group.objects.get_or_create(name=name)
        for app_label, codename in wanted:
            permission = Permission.objects.filter(
                content_type__app_label=app_label, codename=codename
            ).first()
            if permission is None and app_label == "subscribers":
                continue  # not migrated yet: subscribers 0002 grants it
            if permission is None:
                raise Permission.DoesNotExist(f"{app_label}.{codename}")
            group.permissions.add(permission)


class Migration(migrations.Migration):
    dependencies = [
        ("digests", "0004_editorial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(groups_create, migrations.RunPython.noop)]
