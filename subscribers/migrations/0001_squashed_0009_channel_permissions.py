"""subscribers 0001 to 0009 in one migration, for new databases: the tables in their final form
(no AlterField per verbose name to replay), then one data step that gives the Editors and
Viewers groups (made by digests' migrations) what 0002, 0005 and 0009 give them.

A database that applied some of 0001-0009 goes on with the old files; one that applied all of
them records this one as applied. Keep the old files until every deployment has migrated past
0009 (then delete them and drop `replaces`). The function is copied here, not imported: a
migration module's name starts with a digit, and the old files will go.
"""

import django.db.models.deletion
import django.db.models.functions.text
import subscribers.models
from django.contrib.auth.management import create_permissions
from django.db import migrations, models


# 0002: the readers (formerly in digests 0005); 0005: the run history, what a fetch counted,
# the notices; 0009: the team-chat channels and their deliveries. Adds what is missing, removes
# nothing.
VIEWERS = [
    ("subscribers", "view_delivery"),
    ("digests", "view_dailyrun"),
    ("digests", "view_fetchcount"),
    ("subscribers", "view_channel"),
    ("subscribers", "view_channeldelivery"),
]
EDITORS = [
    *VIEWERS,
    ("subscribers", "view_subscriber"),
    ("subscribers", "view_emailevent"),
    ("subscribers", "view_notice"),
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

    replaces = [('subscribers', '0001_initial'), ('subscribers', '0002_delivery'), ('subscribers', '0003_delivery_claim_no_index'), ('subscribers', '0004_notices'), ('subscribers', '0005_notice_and_run_permissions'), ('subscribers', '0006_cadence_and_keywords'), ('subscribers', '0007_verbose_names'), ('subscribers', '0008_channels'), ('subscribers', '0009_channel_permissions')]

    initial = True

    dependencies = [
        ('auth', '0012_alter_user_first_name_max_length'),
        ('contenttypes', '0002_remove_content_type_name'),
        ('digests', '0002_default_categories_and_feeds'),
        ('digests', '0003_digest_approved_at_digest_approved_by_digest_send_at_and_more'),
        ('digests', '0005_editor_groups'),
        ('digests', '0007_integrity_and_runs'),
        ('digests', '0010_verbose_names'),
    ]

    operations = [
        migrations.CreateModel(
            name='Subscriber',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('email', models.EmailField(max_length=254, unique=True, verbose_name='email')),
                ('status', models.CharField(choices=[('pending', 'pending confirmation'), ('active', 'active'), ('unsubscribed', 'unsubscribed'), ('bounced', 'bounced'), ('complained', 'complained')], db_index=True, default='pending', max_length=20, verbose_name='status')),
                ('language', models.CharField(default='ko', help_text='Interface and email language', max_length=8, verbose_name='language')),
                ('consent_at', models.DateTimeField(blank=True, null=True, verbose_name='consent at')),
                ('consent_source', models.CharField(blank=True, max_length=300, verbose_name='consent source')),
                ('consent_wording_version', models.CharField(blank=True, max_length=40, verbose_name='consent wording version')),
                ('consent_ip', models.GenericIPAddressField(blank=True, null=True, verbose_name='consent ip')),
                ('consent_note', models.TextField(blank=True, help_text='For confirmations made by an admin', verbose_name='consent note')),
                ('confirm_nonce', models.CharField(default=subscribers.models.new_nonce, max_length=32, verbose_name='confirm nonce')),
                ('confirmation_sent_at', models.DateTimeField(blank=True, null=True, verbose_name='confirmation sent at')),
                ('confirmed_at', models.DateTimeField(blank=True, null=True, verbose_name='confirmed at')),
                ('unsubscribed_at', models.DateTimeField(blank=True, null=True, verbose_name='unsubscribed at')),
                ('soft_bounce_count', models.PositiveIntegerField(default=0, verbose_name='soft bounce count')),
                ('suppressed_at', models.DateTimeField(blank=True, null=True, verbose_name='suppressed at')),
                ('suppressed_reason', models.TextField(blank=True, verbose_name='suppressed reason')),
                ('created_at', models.DateTimeField(auto_now_add=True, verbose_name='created at')),
                ('updated_at', models.DateTimeField(auto_now=True, verbose_name='updated at')),
                ('categories', models.ManyToManyField(blank=True, related_name='subscribers', to='digests.category', verbose_name='categories')),
                ('cadence', models.CharField(choices=[('daily', 'daily'), ('weekly', 'weekly')], db_index=True, default='daily', max_length=10, verbose_name='cadence')),
                ('keywords_all_categories', models.BooleanField(default=False, verbose_name='keywords all categories')),
                ('keywords_exclude', models.TextField(blank=True, verbose_name='keywords exclude')),
                ('keywords_include', models.TextField(blank=True, verbose_name='keywords include')),
                ('keywords_key', models.CharField(blank=True, db_index=True, max_length=16, verbose_name='keywords key')),
            ],
            options={
                'ordering': ['-created_at'],
                'verbose_name': 'subscriber',
                'verbose_name_plural': 'subscribers',
                'constraints': [models.UniqueConstraint(django.db.models.functions.text.Lower('email'), name='subscriber_email_unique_ci')],
            },
        ),
        migrations.CreateModel(
            name='Delivery',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('email', models.EmailField(max_length=254, verbose_name='email')),
                ('variant', models.CharField(max_length=200, verbose_name='variant')),
                ('status', models.CharField(choices=[('queued', 'queued'), ('sending', 'sending'), ('sent', 'sent'), ('failed', 'failed'), ('unknown', 'unknown'), ('skipped', 'skipped'), ('bounced', 'bounced'), ('complained', 'complained')], default='queued', max_length=20, verbose_name='status')),
                ('attempts', models.PositiveSmallIntegerField(default=0, verbose_name='attempts')),
                ('claim', models.CharField(blank=True, max_length=40, verbose_name='claim')),
                ('claimed_at', models.DateTimeField(blank=True, null=True, verbose_name='claimed at')),
                ('esp_message_id', models.CharField(blank=True, max_length=200, verbose_name='esp message id')),
                ('error', models.TextField(blank=True, verbose_name='error')),
                ('sent_at', models.DateTimeField(blank=True, null=True, verbose_name='sent at')),
                ('opened_at', models.DateTimeField(blank=True, null=True, verbose_name='opened at')),
                ('clicked_at', models.DateTimeField(blank=True, null=True, verbose_name='clicked at')),
                ('created_at', models.DateTimeField(auto_now_add=True, verbose_name='created at')),
                ('digest', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='digests.digest', verbose_name='digest')),
                ('subscriber', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='deliveries', to='subscribers.subscriber', verbose_name='subscriber')),
            ],
            options={
                'verbose_name_plural': 'deliveries',
                'verbose_name': 'delivery',
                'indexes': [models.Index(fields=['digest', 'status'], name='subscribers_digest__775fde_idx')],
                'constraints': [models.UniqueConstraint(fields=('digest', 'subscriber'), name='one_delivery_per_reader')],
            },
        ),
        migrations.CreateModel(
            name='EmailEvent',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('esp', models.CharField(max_length=40, verbose_name='esp')),
                ('event_id', models.CharField(max_length=200, verbose_name='event id')),
                ('event_type', models.CharField(max_length=40, verbose_name='event type')),
                ('recipient', models.EmailField(blank=True, max_length=254, verbose_name='recipient')),
                ('reject_reason', models.CharField(blank=True, max_length=40, verbose_name='reject reason')),
                ('description', models.TextField(blank=True, verbose_name='description')),
                ('occurred_at', models.DateTimeField(blank=True, null=True, verbose_name='occurred at')),
                ('received_at', models.DateTimeField(auto_now_add=True, verbose_name='received at')),
                ('applied_at', models.DateTimeField(blank=True, null=True, verbose_name='applied at')),
                ('metadata', models.JSONField(blank=True, default=dict, verbose_name='metadata')),
                ('tags', models.JSONField(blank=True, default=list, verbose_name='tags')),
            ],
            options={
                'ordering': ['-received_at'],
                'verbose_name': 'email event',
                'verbose_name_plural': 'email events',
                'constraints': [models.UniqueConstraint(fields=('esp', 'event_id'), name='email_event_once')],
            },
        ),
        migrations.CreateModel(
            name='Notice',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('key', models.CharField(max_length=200, unique=True, verbose_name='key')),
                ('kind', models.CharField(choices=[('draft_ready', 'draft ready'), ('nothing', 'nothing to publish'), ('sent', 'send finished'), ('paused', 'send paused'), ('approval_due', 'approval due'), ('send_due', 'send time close')], max_length=20, verbose_name='kind')),
                ('subject', models.CharField(max_length=300, verbose_name='subject')),
                ('body', models.TextField(verbose_name='body')),
                ('recipients', models.JSONField(blank=True, default=list, verbose_name='recipients')),
                ('created_at', models.DateTimeField(auto_now_add=True, verbose_name='created at')),
                ('emailed_at', models.DateTimeField(blank=True, null=True, verbose_name='emailed at')),
                ('webhook_at', models.DateTimeField(blank=True, null=True, verbose_name='webhook at')),
                ('error', models.TextField(blank=True, verbose_name='error')),
                ('digest', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='notices', to='digests.digest', verbose_name='digest')),
            ],
            options={
                'ordering': ['-created_at'],
                'verbose_name': 'notice',
                'verbose_name_plural': 'notices',
            },
        ),
        migrations.CreateModel(
            name='Channel',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('slack', 'Slack'), ('discord', 'Discord'), ('telegram', 'Telegram')], max_length=10, verbose_name='kind')),
                ('name', models.CharField(blank=True, max_length=200, verbose_name='name')),
                ('url', models.URLField(blank=True, max_length=500, verbose_name='webhook URL')),
                ('chat_id', models.CharField(blank=True, max_length=64, verbose_name='chat id')),
                ('status', models.CharField(choices=[('pending', 'waiting for confirmation'), ('active', 'active'), ('stopped', 'stopped'), ('revoked', 'revoked')], db_index=True, default='active', max_length=10, verbose_name='status')),
                ('language', models.CharField(default='ko', max_length=8, verbose_name='language')),
                ('cadence', models.CharField(choices=[('daily', 'daily'), ('weekly', 'weekly')], default='daily', max_length=10, verbose_name='cadence')),
                ('keywords_include', models.TextField(blank=True, verbose_name='keywords include')),
                ('keywords_exclude', models.TextField(blank=True, verbose_name='keywords exclude')),
                ('keywords_all_categories', models.BooleanField(default=False, verbose_name='keywords all categories')),
                ('keywords_key', models.CharField(blank=True, max_length=16, verbose_name='keywords key')),
                ('confirm_code', models.CharField(blank=True, max_length=16, verbose_name='confirm code')),
                ('confirm_sent_at', models.DateTimeField(blank=True, null=True, verbose_name='confirmation sent at')),
                ('confirmed_at', models.DateTimeField(blank=True, null=True, verbose_name='confirmed at')),
                ('suppressed_at', models.DateTimeField(blank=True, null=True, verbose_name='suppressed at')),
                ('suppressed_reason', models.TextField(blank=True, verbose_name='suppressed reason')),
                ('created_at', models.DateTimeField(auto_now_add=True, verbose_name='created at')),
                ('updated_at', models.DateTimeField(auto_now=True, verbose_name='updated at')),
                ('categories', models.ManyToManyField(blank=True, related_name='channels', to='digests.category', verbose_name='categories')),
                ('subscriber', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='channels', to='subscribers.subscriber', verbose_name='subscriber')),
            ],
            options={
                'verbose_name': 'channel',
                'verbose_name_plural': 'channels',
                'ordering': ['-created_at'],
            },
        ),
        migrations.CreateModel(
            name='ChannelDelivery',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('slack', 'Slack'), ('discord', 'Discord'), ('telegram', 'Telegram')], max_length=10, verbose_name='kind')),
                ('destination', models.CharField(max_length=200, verbose_name='destination')),
                ('variant', models.CharField(max_length=200, verbose_name='variant')),
                ('language', models.CharField(max_length=8, verbose_name='language')),
                ('status', models.CharField(choices=[('queued', 'queued'), ('sending', 'sending'), ('sent', 'sent'), ('failed', 'failed'), ('unknown', 'unknown'), ('skipped', 'skipped'), ('bounced', 'bounced'), ('complained', 'complained')], default='queued', max_length=20, verbose_name='status')),
                ('attempts', models.PositiveSmallIntegerField(default=0, verbose_name='attempts')),
                ('claim', models.CharField(blank=True, max_length=40, verbose_name='claim')),
                ('claimed_at', models.DateTimeField(blank=True, null=True, verbose_name='claimed at')),
                ('parts_sent', models.PositiveSmallIntegerField(default=0, verbose_name='parts sent')),
                ('parts_total', models.PositiveSmallIntegerField(default=0, verbose_name='parts')),
                ('message_id', models.CharField(blank=True, max_length=200, verbose_name='message id')),
                ('error', models.TextField(blank=True, verbose_name='error')),
                ('sent_at', models.DateTimeField(blank=True, null=True, verbose_name='sent at')),
                ('created_at', models.DateTimeField(auto_now_add=True, verbose_name='created at')),
                ('channel', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='deliveries', to='subscribers.channel', verbose_name='channel')),
                ('digest', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='channel_deliveries', to='digests.digest', verbose_name='digest')),
            ],
            options={
                'verbose_name': 'channel delivery',
                'verbose_name_plural': 'channel deliveries',
            },
        ),
        migrations.AddConstraint(
            model_name='channel',
            constraint=models.UniqueConstraint(condition=models.Q(('url', ''), _negated=True), fields=('kind', 'url'), name='channel_url_once'),
        ),
        migrations.AddConstraint(
            model_name='channel',
            constraint=models.UniqueConstraint(condition=models.Q(('chat_id', ''), _negated=True), fields=('kind', 'chat_id'), name='channel_chat_once'),
        ),
        migrations.AddIndex(
            model_name='channeldelivery',
            index=models.Index(fields=['digest', 'status'], name='subscribers_digest__5674d8_idx'),
        ),
        migrations.AddConstraint(
            model_name='channeldelivery',
            constraint=models.UniqueConstraint(fields=('digest', 'channel'), name='one_delivery_per_channel'),
        ),
        migrations.RunPython(permissions_grant, migrations.RunPython.noop),
    ]
