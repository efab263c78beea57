"""The Editors and Viewers groups may read the run history and what a fetch counted; the
Editors also read the notices they were sent. Adds what is missing, removes nothing."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

VIEWERS = [("digests", "view_dailyrun"), ("digests", "view_fetchcount")]
GROUPS = {"Editors": [*VIEWERS, ("subscribers", "view_notice")], "Viewers": VIEWERS}


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
        ("subscribers", "0004_notices"),
        ("digests", "0007_integrity_and_runs"),
        ("digests", "0005_editor_groups"),
    ]

    operations = [migrations.RunPython(permissions_grant, migrations.RunPython.noop)]
