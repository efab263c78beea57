"""digests 0001 to 0011 in one migration, for new databases: the tables in their final form
(no AlterField per verbose name to replay), then the data steps of 0002 (the default categories
and feed) and 0005 (the Editors and Viewers groups with this app's permissions; subscribers'
squashed migration adds the readers' permissions and those of the later migrations). The data
steps of 0004 and 0006 only rewrote existing rows, so they are elidable and left out.

A database that applied some of 0001-0011 goes on with the old files; one that applied all of
them records this one as applied. Keep the old files until every deployment has migrated past
0011 (then delete them and drop `replaces`). The functions are copied here, not imported: a
migration module's name starts with a digit, and the old files will go.
"""

import django.db.models.deletion
from decimal import Decimal
from django.contrib.auth.management import create_permissions
from django.db import migrations, models


# digests 0002: the six categories of the sample issue and the default arXiv feed.
CATEGORIES = [
    {
        "slug": "nlp",
        "name": "Natural Language Processing",
        "colour": "#4C72B0",
        "description": (
            "Language understanding and generation that is not mainly about large language "
            "models themselves: translation, speech, dialogue, information extraction, "
            "multilingual and low-resource languages, linguistic analysis, text datasets."
        ),
        "arxiv_categories": ["cs.CL"],
        "keywords": [
            "natural language", "translation", "speech", "dialogue", "text classification",
            "named entity", "sentiment", "linguistic", "multilingual", "low-resource language",
            "corpus", "tokeniz", "question answering", "summarization",
        ],
    },
    {
        "slug": "computer-vision",
        "name": "Computer Vision",
        "colour": "#55A868",
        "description": (
            "Images, video and 3D from pixels: detection, segmentation, tracking, image and "
            "video generation or editing, depth, pose, scene reconstruction, medical imaging."
        ),
        "arxiv_categories": ["cs.CV", "eess.IV"],
        "keywords": [
            "image", "video", "segmentation", "object detection", "pixel", "3d", "point cloud",
            "diffusion model", "gaussian splatting", "depth estimation", "optical flow",
            "visual recognition", "camera",
        ],
    },
    {
        "slug": "training",
        "name": "Model training technique",
        "colour": "#C44E52",
        "description": (
            "How models are trained and made efficient, across domains: optimisers, "
            "regularisation, quantisation, pruning, distillation, federated and continual "
            "learning, data curation, scaling laws, theory of learning."
        ),
        "arxiv_categories": ["cs.LG", "stat.ML", "math.OC"],
        "keywords": [
            "optimizer", "optimization", "gradient", "quantiz", "pruning", "distillation",
            "federated", "continual learning", "fine-tuning", "regularization", "scaling law",
            "convergence", "training", "low-rank", "lora", "generalization",
        ],
    },
    {
        "slug": "llm",
        "name": "LLM",
        "colour": "#8172B2",
        "description": (
            "Large language models themselves: their reasoning, prompting, agents built on "
            "them, alignment, safety, evaluation and benchmarks of LLMs, retrieval-augmented "
            "generation, inference and serving of LLMs, code generation with LLMs."
        ),
        "arxiv_categories": [],
        "keywords": [
            "large language model", "llm", "gpt", "chain-of-thought", "prompt", "in-context",
            "instruction tuning", "rlhf", "retrieval-augmented", "rag", "jailbreak",
            "hallucination", "reasoning model", "language agent", "tool use",
        ],
    },
    {
        "slug": "reinforcement-learning",
        "name": "Reinforcement Learning",
        "colour": "#CCB974",
        "description": (
            "Learning from reward and interaction: reinforcement learning algorithms, policies, "
            "bandits, planning, multi-agent systems, robotics and control."
        ),
        "arxiv_categories": ["cs.RO", "cs.MA", "eess.SY", "cs.GT"],
        "keywords": [
            "reinforcement learning", "policy", "reward", "bandit", "markov decision",
            "q-learning", "robot", "multi-agent", "control", "planning", "offline rl",
            "grasp", "dexterous", "manipulation", "locomotion", "world model",
        ],
    },
    {
        "slug": "multimodal",
        "name": "Multimodal",
        "colour": "#64B5CD",
        "description": (
            "Models that join several modalities: vision-language models, text-to-image and "
            "text-to-video, audio-visual learning, image captioning, visual question answering, "
            "embodied models that see and speak."
        ),
        "arxiv_categories": ["cs.MM"],
        "keywords": [
            "multimodal", "multi-modal", "vision-language", "vision language", "text-to-image",
            "text-to-video", "image-text", "audio-visual", "vlm", "mllm", "captioning",
            "visual question answering", "video-language", "caption", "visual instruction",
            "audio-language", "speech-text", "image-to-text",
        ],
    },
]

DEFAULT_FEED = "https://rss.arxiv.org/rss/cs.AI+cs.CL+cs.CV+cs.LG+cs.RO+cs.MA+stat.ML"


def create_defaults(apps, schema_editor):
    Category = apps.get_model("digests", "Category")
    Feed = apps.get_model("digests", "Feed")
    for position, data in enumerate(CATEGORIES):
        Category.objects.update_or_create(
            slug=data["slug"], defaults={**data, "position": position, "active": True}
        )
    Feed.objects.get_or_create(
        url=DEFAULT_FEED, defaults={"name": "arXiv AI (cs.AI, CL, CV, LG, RO, MA, stat.ML)"}
    )


def remove_defaults(apps, schema_editor):
    apps.get_model("digests", "Category").objects.filter(
        slug__in=[c["slug"] for c in CATEGORIES]
    ).delete()
    apps.get_model("digests", "Feed").objects.filter(url=DEFAULT_FEED).delete()


# digests 0005: the groups' permissions in this app (subscribers 0005 adds view_dailyrun and
# view_fetchcount, the squashed subscribers migration the readers' permissions).
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
VIEWERS = [("digests", f"view_{model}") for model in DIGEST_MODELS]
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
            permission = Permission.objects.get(
                content_type__app_label=app_label, codename=codename
            )
            group.permissions.add(permission)


class Migration(migrations.Migration):

    replaces = [('digests', '0001_initial'), ('digests', '0002_default_categories_and_feeds'), ('digests', '0003_digest_approved_at_digest_approved_by_digest_send_at_and_more'), ('digests', '0004_editorial'), ('digests', '0005_editor_groups'), ('digests', '0006_send_pause_and_plan'), ('digests', '0007_integrity_and_runs'), ('digests', '0008_weekly_kind'), ('digests', '0009_section_reports'), ('digests', '0010_verbose_names'), ('digests', '0011_report_languages_and_reason_texts')]

    initial = True

    dependencies = [
        ('auth', '0012_alter_user_first_name_max_length'),
        ('contenttypes', '0002_remove_content_type_name'),
    ]

    operations = [
        migrations.CreateModel(
            name='Category',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=100, unique=True, verbose_name='name')),
                ('slug', models.SlugField(unique=True, verbose_name='slug')),
                ('description', models.TextField(blank=True, help_text='What belongs here. The LLM sees it when it sorts papers.', verbose_name='description')),
                ('position', models.PositiveSmallIntegerField(default=0, verbose_name='position')),
                ('colour', models.CharField(default='#4C72B0', help_text='Chart colour, #RRGGBB', max_length=7, verbose_name='colour')),
                ('active', models.BooleanField(default=True, verbose_name='active')),
                ('arxiv_categories', models.JSONField(blank=True, default=list, help_text='arXiv categories that point here, e.g. ["cs.CV"]', verbose_name='arxiv categories')),
                ('keywords', models.JSONField(blank=True, default=list, help_text='Lower-case words or phrases in title or abstract', verbose_name='keywords')),
            ],
            options={
                'verbose_name_plural': 'categories',
                'ordering': ['position', 'name'],
                'verbose_name': 'category',
            },
        ),
        migrations.CreateModel(
            name='Digest',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('date', models.DateField(help_text='The arXiv announcement date', unique=True, verbose_name='date')),
                ('status', models.CharField(choices=[('draft', 'draft'), ('approved', 'approved'), ('sending', 'sending'), ('paused', 'paused'), ('sent', 'sent')], default='draft', max_length=20, verbose_name='status')),
                ('title', models.CharField(max_length=300, verbose_name='title')),
                ('introduction', models.TextField(blank=True, verbose_name='introduction')),
                ('chart_png', models.BinaryField(blank=True, default=b'', verbose_name='chart png')),
                ('paper_count', models.PositiveIntegerField(default=0, verbose_name='paper count')),
                ('llm_calls', models.PositiveIntegerField(default=0, verbose_name='llm calls')),
                ('prompt_tokens', models.PositiveIntegerField(default=0, verbose_name='prompt tokens')),
                ('completion_tokens', models.PositiveIntegerField(default=0, verbose_name='completion tokens')),
                ('estimated_cost', models.DecimalField(decimal_places=4, default=Decimal('0'), max_digits=10, verbose_name='estimated cost')),
                ('built_at', models.DateTimeField(blank=True, null=True, verbose_name='built at')),
                ('build_count', models.PositiveIntegerField(default=0, verbose_name='build count')),
                ('created_at', models.DateTimeField(auto_now_add=True, verbose_name='created at')),
                ('updated_at', models.DateTimeField(auto_now=True, verbose_name='updated at')),
            ],
            options={
                'ordering': ['-date'],
                'permissions': [('approve_digest', 'Can approve a digest, schedule and cancel its send'), ('send_test_digest', 'Can send a test of a digest'), ('regenerate_section', 'Can regenerate a section summary with the LLM'), ('resend_digest', 'Can resend a digest to deliveries in an unknown state')],
                'verbose_name': 'digest',
                'verbose_name_plural': 'digests',
            },
        ),
        migrations.CreateModel(
            name='Feed',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('url', models.CharField(help_text='http(s) URL, file:// URL or path', max_length=1000, unique=True, verbose_name='url')),
                ('name', models.CharField(blank=True, max_length=200, verbose_name='name')),
                ('enabled', models.BooleanField(default=True, verbose_name='enabled')),
                ('etag', models.CharField(blank=True, max_length=500, verbose_name='etag')),
                ('last_modified', models.CharField(blank=True, max_length=100, verbose_name='last modified')),
                ('last_fetched_at', models.DateTimeField(blank=True, null=True, verbose_name='last fetched at')),
                ('last_success_at', models.DateTimeField(blank=True, null=True, verbose_name='last success at')),
                ('last_status', models.CharField(choices=[('never', 'never fetched'), ('ok', 'ok'), ('not_modified', 'not modified'), ('error', 'error')], default='never', max_length=20, verbose_name='last status')),
                ('last_error', models.TextField(blank=True, verbose_name='last error')),
                ('last_entry_count', models.PositiveIntegerField(default=0, verbose_name='last entry count')),
                ('consecutive_failures', models.PositiveIntegerField(default=0, verbose_name='consecutive failures')),
            ],
            options={
                'ordering': ['url'],
                'verbose_name': 'feed',
                'verbose_name_plural': 'feeds',
            },
        ),
        migrations.CreateModel(
            name='LLMCacheEntry',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('key', models.CharField(max_length=64, unique=True, verbose_name='key')),
                ('prompt_version', models.CharField(max_length=40, verbose_name='prompt version')),
                ('model', models.CharField(max_length=100, verbose_name='model')),
                ('response', models.TextField(verbose_name='response')),
                ('prompt_tokens', models.PositiveIntegerField(default=0, verbose_name='prompt tokens')),
                ('completion_tokens', models.PositiveIntegerField(default=0, verbose_name='completion tokens')),
                ('created_at', models.DateTimeField(auto_now_add=True, verbose_name='created at')),
            ],
            options={
                'verbose_name': 'LLM cache entry',
                'verbose_name_plural': 'LLM cache entries',
            },
        ),
        migrations.CreateModel(
            name='LLMCall',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('digest_date', models.DateField(blank=True, db_index=True, null=True, verbose_name='digest date')),
                ('purpose', models.CharField(choices=[('classify', 'classify'), ('summarize', 'summarize'), ('other', 'other')], max_length=20, verbose_name='purpose')),
                ('model', models.CharField(max_length=100, verbose_name='model')),
                ('prompt_tokens', models.PositiveIntegerField(default=0, verbose_name='prompt tokens')),
                ('completion_tokens', models.PositiveIntegerField(default=0, verbose_name='completion tokens')),
                ('cost', models.DecimalField(decimal_places=6, default=Decimal('0'), max_digits=10, verbose_name='cost')),
                ('cached', models.BooleanField(default=False, verbose_name='cached')),
                ('ok', models.BooleanField(default=True, verbose_name='ok')),
                ('error', models.TextField(blank=True, verbose_name='error')),
                ('duration_ms', models.PositiveIntegerField(default=0, verbose_name='duration ms')),
                ('created_at', models.DateTimeField(auto_now_add=True, db_index=True, verbose_name='created at')),
            ],
            options={
                'ordering': ['-created_at'],
                'verbose_name': 'LLM call',
                'verbose_name_plural': 'LLM calls',
            },
        ),
        migrations.CreateModel(
            name='DigestSection',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('position', models.PositiveSmallIntegerField(default=0, verbose_name='position')),
                ('summary', models.TextField(blank=True, help_text='Markdown', verbose_name='summary')),
                ('summary_source', models.CharField(choices=[('llm', 'LLM'), ('fallback', 'extractive fallback'), ('editor', 'editor')], default='fallback', max_length=10, verbose_name='summary source')),
                ('flags', models.JSONField(blank=True, default=list, verbose_name='flags')),
                ('paper_count', models.PositiveIntegerField(default=0, help_text='Papers of the day in it', verbose_name='paper count')),
                ('category', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='sections', to='digests.category', verbose_name='category')),
                ('digest', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='sections', to='digests.digest', verbose_name='digest')),
            ],
            options={
                'ordering': ['digest', 'position'],
                'verbose_name': 'digest section',
                'verbose_name_plural': 'digest sections',
            },
        ),
        migrations.CreateModel(
            name='Paper',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('arxiv_id', models.CharField(help_text='Without version', max_length=40, unique=True, verbose_name='arxiv id')),
                ('version', models.PositiveSmallIntegerField(default=1, verbose_name='version')),
                ('title', models.TextField(verbose_name='title')),
                ('abstract', models.TextField(verbose_name='abstract')),
                ('authors', models.JSONField(default=list, verbose_name='authors')),
                ('categories', models.JSONField(default=list, help_text='arXiv categories, primary first', verbose_name='categories')),
                ('primary_category', models.CharField(blank=True, max_length=40, verbose_name='primary category')),
                ('abs_url', models.URLField(max_length=300, verbose_name='abs url')),
                ('pdf_url', models.URLField(max_length=300, verbose_name='pdf url')),
                ('announce_type', models.CharField(choices=[('new', 'new'), ('cross', 'cross-list'), ('replace', 'replacement'), ('replace-cross', 'replacement of a cross-list'), ('unknown', 'unknown')], default='unknown', max_length=20, verbose_name='announce type')),
                ('announced_on', models.DateField(db_index=True, help_text='The day arXiv first announced it', verbose_name='announced on')),
                ('replaced_on', models.DateField(blank=True, null=True, verbose_name='replaced on')),
                ('importance', models.PositiveSmallIntegerField(blank=True, help_text='1 to 10', null=True, verbose_name='importance')),
                ('classified_by', models.CharField(blank=True, choices=[('llm', 'LLM'), ('rules', 'rules'), ('editor', 'editor')], max_length=10, verbose_name='classified by')),
                ('created_at', models.DateTimeField(auto_now_add=True, verbose_name='created at')),
                ('updated_at', models.DateTimeField(auto_now=True, verbose_name='updated at')),
                ('category', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='papers', to='digests.category', verbose_name='category')),
                ('digest', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='papers', to='digests.digest', verbose_name='digest')),
                ('source_feed', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to='digests.feed', verbose_name='source feed')),
            ],
            options={
                'ordering': ['-announced_on', 'arxiv_id'],
                'verbose_name': 'paper',
                'verbose_name_plural': 'papers',
            },
        ),
        migrations.CreateModel(
            name='SectionPaper',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('position', models.PositiveSmallIntegerField(default=0, verbose_name='position')),
                ('paper', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='section_entries', to='digests.paper', verbose_name='paper')),
                ('section', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='entries', to='digests.digestsection', verbose_name='section')),
            ],
            options={
                'ordering': ['section', 'position'],
                'verbose_name': 'paper in a section',
                'verbose_name_plural': 'papers in the sections',
            },
        ),
        migrations.AddConstraint(
            model_name='digestsection',
            constraint=models.UniqueConstraint(fields=('digest', 'category'), name='one_section_per_category'),
        ),
        migrations.AddField(
            model_name='digest',
            name='approved_at',
            field=models.DateTimeField(blank=True, null=True, verbose_name='approved at'),
        ),
        migrations.AddField(
            model_name='digest',
            name='approved_by',
            field=models.CharField(blank=True, help_text='Who approved it', max_length=150, verbose_name='approved by'),
        ),
        migrations.AddField(
            model_name='digest',
            name='send_at',
            field=models.DateTimeField(blank=True, null=True, verbose_name='send at'),
        ),
        migrations.AddField(
            model_name='digest',
            name='sending_started_at',
            field=models.DateTimeField(blank=True, null=True, verbose_name='sending started at'),
        ),
        migrations.AddField(
            model_name='digest',
            name='sent_at',
            field=models.DateTimeField(blank=True, null=True, verbose_name='sent at'),
        ),
        migrations.AddField(
            model_name='digest',
            name='auto_approved',
            field=models.BooleanField(default=False, verbose_name='auto approved'),
        ),
        migrations.AddField(
            model_name='digest',
            name='last_changed_by',
            field=models.CharField(blank=True, max_length=150, verbose_name='last changed by'),
        ),
        migrations.AddField(
            model_name='digest',
            name='reviewed_at',
            field=models.DateTimeField(blank=True, null=True, verbose_name='reviewed at'),
        ),
        migrations.AddField(
            model_name='digest',
            name='version',
            field=models.PositiveIntegerField(default=1, verbose_name='version'),
        ),
        migrations.AddField(
            model_name='digestsection',
            name='entries_edited',
            field=models.BooleanField(default=False, verbose_name='entries edited'),
        ),
        migrations.CreateModel(
            name='SectionRevision',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('summary', models.TextField(blank=True, verbose_name='summary')),
                ('summary_source', models.CharField(choices=[('llm', 'LLM'), ('fallback', 'extractive fallback'), ('editor', 'editor')], max_length=10, verbose_name='summary source')),
                ('flags', models.JSONField(blank=True, default=list, verbose_name='flags')),
                ('reason', models.CharField(choices=[('edit', "before an editor's edit"), ('regenerate', 'before a regeneration'), ('restore', 'before a restore')], max_length=20, verbose_name='reason')),
                ('created_by', models.CharField(blank=True, max_length=150, verbose_name='created by')),
                ('created_at', models.DateTimeField(auto_now_add=True, verbose_name='created at')),
                ('section', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='revisions', to='digests.digestsection', verbose_name='section')),
            ],
            options={
                'ordering': ['-created_at', '-pk'],
                'verbose_name': 'section revision',
                'verbose_name_plural': 'section revisions',
            },
        ),
        migrations.AddField(
            model_name='sectionpaper',
            name='digest',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='entries', to='digests.digest', verbose_name='digest'),
        ),
        migrations.CreateModel(
            name='Regeneration',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('status', models.CharField(choices=[('queued', 'queued'), ('running', 'running'), ('done', 'done'), ('failed', 'failed')], default='queued', max_length=10, verbose_name='status')),
                ('requested_by', models.CharField(blank=True, max_length=150, verbose_name='requested by')),
                ('error', models.TextField(blank=True, verbose_name='error')),
                ('created_at', models.DateTimeField(auto_now_add=True, verbose_name='created at')),
                ('started_at', models.DateTimeField(blank=True, null=True, verbose_name='started at')),
                ('finished_at', models.DateTimeField(blank=True, null=True, verbose_name='finished at')),
                ('section', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='regenerations', to='digests.digestsection', verbose_name='section')),
                ('revision', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='digests.sectionrevision', verbose_name='revision')),
            ],
            options={
                'ordering': ['-created_at', '-pk'],
                'verbose_name': 'regeneration',
                'verbose_name_plural': 'regenerations',
            },
        ),
        migrations.AddField(
            model_name='digest',
            name='send_planned_at',
            field=models.DateTimeField(blank=True, null=True, verbose_name='send planned at'),
        ),
        migrations.AddField(
            model_name='digest',
            name='send_errors_in_row',
            field=models.PositiveIntegerField(default=0, verbose_name='send errors in row'),
        ),
        migrations.AddField(
            model_name='digest',
            name='send_paused_at',
            field=models.DateTimeField(blank=True, null=True, verbose_name='send paused at'),
        ),
        migrations.AddField(
            model_name='digest',
            name='send_paused_reason',
            field=models.TextField(blank=True, verbose_name='send paused reason'),
        ),
        migrations.AddField(
            model_name='paper',
            name='excluded',
            field=models.BooleanField(default=False, help_text='Removed from the issue by an editor', verbose_name='excluded'),
        ),
        migrations.AddField(
            model_name='digest',
            name='integrity',
            field=models.JSONField(blank=True, default=dict, verbose_name='integrity'),
        ),
        migrations.CreateModel(
            name='DailyRun',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('started_at', models.DateTimeField(db_index=True, verbose_name='started at')),
                ('finished_at', models.DateTimeField(blank=True, null=True, verbose_name='finished at')),
                ('trigger', models.CharField(choices=[('schedule', 'schedule'), ('command', 'command'), ('admin', 'admin')], default='schedule', max_length=20, verbose_name='trigger')),
                ('day', models.DateField(blank=True, help_text='The announcement day built', null=True, verbose_name='day')),
                ('feeds_ok', models.PositiveIntegerField(default=0, verbose_name='feeds ok')),
                ('feeds_failed', models.PositiveIntegerField(default=0, verbose_name='feeds failed')),
                ('papers_new', models.PositiveIntegerField(default=0, verbose_name='papers new')),
                ('llm_calls', models.PositiveIntegerField(default=0, verbose_name='llm calls')),
                ('estimated_cost', models.DecimalField(decimal_places=4, default=Decimal('0'), max_digits=10, verbose_name='estimated cost')),
                ('outcome', models.CharField(choices=[('running', 'running'), ('built', 'draft built'), ('nothing', 'nothing to publish'), ('failed', 'failed')], default='running', max_length=20, verbose_name='outcome')),
                ('suspect', models.BooleanField(default=False, help_text="The day's counts look short or stale", verbose_name='suspect')),
                ('reasons', models.JSONField(blank=True, default=list, verbose_name='reasons')),
                ('digest', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='runs', to='digests.digest', verbose_name='digest')),
            ],
            options={
                'ordering': ['-started_at'],
                'verbose_name': 'daily run',
                'verbose_name_plural': 'daily runs',
            },
        ),
        migrations.CreateModel(
            name='FetchCount',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('fetched_at', models.DateTimeField(db_index=True, verbose_name='fetched at')),
                ('arxiv_category', models.CharField(max_length=40, verbose_name='arxiv category')),
                ('announced_on', models.DateField(blank=True, help_text='The day the feed claims', null=True, verbose_name='announced on')),
                ('new', models.PositiveIntegerField(default=0, verbose_name='new')),
                ('cross', models.PositiveIntegerField(default=0, verbose_name='cross')),
                ('replaced', models.PositiveIntegerField(default=0, verbose_name='replaced')),
                ('known', models.PositiveIntegerField(default=0, verbose_name='known')),
                ('expected_new', models.PositiveIntegerField(blank=True, null=True, verbose_name='expected new')),
                ('expected_cross', models.PositiveIntegerField(blank=True, null=True, verbose_name='expected cross')),
                ('expected_replaced', models.PositiveIntegerField(blank=True, null=True, verbose_name='expected replaced')),
                ('feed', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='counts', to='digests.feed', verbose_name='feed')),
            ],
            options={
                'ordering': ['-fetched_at'],
                'verbose_name': 'fetch count',
                'verbose_name_plural': 'fetch counts',
                'indexes': [models.Index(fields=['arxiv_category', 'announced_on'], name='digests_fet_arxiv_c_71c84b_idx')],
            },
        ),
        migrations.AddField(
            model_name='digest',
            name='kind',
            field=models.CharField(choices=[('daily', 'daily'), ('weekly', 'weekly')], db_index=True, default='daily', max_length=10, verbose_name='kind'),
        ),
        migrations.AddField(
            model_name='sectionpaper',
            name='weekly',
            field=models.BooleanField(default=False, help_text='An entry of a weekly issue', verbose_name='weekly'),
        ),
        migrations.AddConstraint(
            model_name='sectionpaper',
            constraint=models.UniqueConstraint(condition=models.Q(('weekly', False)), fields=('paper',), name='sectionpaper_paper_in_one_daily_section'),
        ),
        migrations.AddConstraint(
            model_name='sectionpaper',
            constraint=models.UniqueConstraint(fields=('digest', 'paper'), name='sectionpaper_paper_once_per_issue'),
        ),
        migrations.CreateModel(
            name='SectionReport',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('language', models.CharField(max_length=8, verbose_name='language')),
                ('summary', models.TextField(blank=True, help_text='Markdown', verbose_name='summary')),
                ('summary_source', models.CharField(choices=[('llm', 'LLM'), ('fallback', 'extractive fallback'), ('editor', 'editor')], default='fallback', max_length=10, verbose_name='summary source')),
                ('flags', models.JSONField(blank=True, default=list, verbose_name='flags')),
                ('updated_at', models.DateTimeField(auto_now=True, verbose_name='updated at')),
                ('section', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='reports', to='digests.digestsection', verbose_name='section')),
            ],
            options={
                'ordering': ['section', 'language'],
                'verbose_name': 'section report',
                'verbose_name_plural': 'section reports',
                'constraints': [models.UniqueConstraint(fields=('section', 'language'), name='one_report_per_section_and_language')],
            },
        ),
        migrations.AddField(
            model_name='dailyrun',
            name='reason_texts',
            field=models.JSONField(blank=True, default=list, editable=False, verbose_name="reasons' templates"),
        ),
        migrations.AddField(
            model_name='regeneration',
            name='language',
            field=models.CharField(blank=True, default='', max_length=8, verbose_name='language'),
        ),
        migrations.AddField(
            model_name='sectionrevision',
            name='language',
            field=models.CharField(blank=True, default='', max_length=8, verbose_name='language'),
        ),
        migrations.RunPython(create_defaults, remove_defaults),
        migrations.RunPython(groups_create, migrations.RunPython.noop),
    ]
