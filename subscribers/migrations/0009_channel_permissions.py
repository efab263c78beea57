"""The Editors manage the team-chat channels (add, change, delete, view) and read their
deliveries; the Viewers read both. Adds what is missing, removes nothing."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

VIEWERS = [("subscribers", "view_channel"), ("subscribers", "view_channeldelivery")]
EDITORS = [
    *VIEWERS,
    ("subscribers", "add_channel"),
    ("subscribers", "change_channel"),
    ("subscribers", "delete_channel"),
]
GROUPS = {"Editors": EDITORS, "Viewers": VIEWERS}


def permissions_grant(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, wanted in GROUPS.items():
        group, _ = Group.objects.get_or_create(name=name)
        for app_label, codename in wanted:
            permission = Permission.objects.get(
                content_type__app_label=app_label, codename=codename
            )
            group.permissions.add(permission)


class Migration(migrations.Migration):
    dependencies = [
        ("subscribers", "0008_channels"),
        ("subscribers", "0005_notice_and_run_permissions"),
    ]

    operations = [migrations.RunPython(permissions_grant, migrations.RunPython.noop)]
