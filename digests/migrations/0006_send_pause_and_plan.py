from django.db import migrations, models
from django.db.models import F
from django.db.models.functions import Coalesce, Now


def sends_begun_are_planned(apps, schema_editor):  # type: ignore[no-untyped-def]
    """Sends started before planning in ranges made every row at their start."""
    Digest = apps.get_model("digests", "Digest")
    Digest.objects.filter(status__in=["sending", "sent"]).update(
        send_planned_at=Coalesce(F("sending_started_at"), Now())
    )


class Migration(migrations.Migration):
    dependencies = [
        ("digests", "0005_editor_groups"),
    ]

    operations = [
        migrations.AddField(
            model_name="digest",
            name="send_planned_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="digest",
            name="send_errors_in_row",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="digest",
            name="send_paused_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="digest",
            name="send_paused_reason",
            field=models.TextField(blank=True),
        ),
        migrations.AlterField(
            model_name="digest",
            name="status",
            field=models.CharField(
                choices=[
                    ("draft", "draft"),
                    ("approved", "approved"),
                    ("sending", "sending"),
                    ("paused", "paused"),
                    ("sent", "sent"),
                ],
                default="draft",
                max_length=20,
            ),
        ),
        migrations.RunPython(sends_begun_are_planned, migrations.RunPython.noop, elidable=True),
    ]
