"""The content side: feeds, papers, categories, digests and what the LLM cost."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop


class Category(models.Model):
    """A section of the newsletter. Editors add, reorder and retire them in the admin."""

    name = models.CharField(verbose_name=_("name"), max_length=100, unique=True)
    slug = models.SlugField(verbose_name=_("slug"), max_length=50, unique=True)
    description = models.TextField(
        verbose_name=_("description"),
        blank=True,
        help_text=_("What belongs here. The LLM sees it when it sorts papers."),
    )
    position = models.PositiveSmallIntegerField(verbose_name=_("position"), default=0)
    colour = models.CharField(
        verbose_name=_("colour"),
        max_length=7,
        default="#4C72B0",
        help_text=_("Chart colour, #RRGGBB"),
    )
    active = models.BooleanField(verbose_name=_("active"), default=True)
    # The offline fallback sorts by these when no LLM is reachable.
    arxiv_categories = models.JSONField(
        verbose_name=_("arxiv categories"),
        default=list,
        blank=True,
        help_text=_('arXiv categories that point here, e.g. ["cs.CV"]'),
    )
    keywords = models.JSONField(
        verbose_name=_("keywords"),
        default=list,
        blank=True,
        help_text=_("Lower-case words or phrases in title or abstract"),
    )

    class Meta:
        verbose_name = _("category")
        verbose_name_plural = _("categories")
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name


class Feed(models.Model):
    class Status(models.TextChoices):
        NEVER = "never", _("never fetched")
        OK = "ok", _("ok")
        NOT_MODIFIED = "not_modified", _("not modified")
        ERROR = "error", _("error")

    url = models.CharField(
        verbose_name=_("url"),
        max_length=1000,
        unique=True,
        help_text=_("http(s) URL, file:// URL or path"),
    )
    name = models.CharField(verbose_name=_("name"), max_length=200, blank=True)
    enabled = models.BooleanField(verbose_name=_("enabled"), default=True)
    etag = models.CharField(verbose_name=_("etag"), max_length=500, blank=True)
    last_modified = models.CharField(verbose_name=_("last modified"), max_length=100, blank=True)
    last_fetched_at = models.DateTimeField(verbose_name=_("last fetched at"), null=True, blank=True)
    last_success_at = models.DateTimeField(verbose_name=_("last success at"), null=True, blank=True)
    last_status = models.CharField(
        verbose_name=_("last status"), max_length=20, choices=Status.choices, default=Status.NEVER
    )
    last_error = models.TextField(verbose_name=_("last error"), blank=True)
    last_entry_count = models.PositiveIntegerField(verbose_name=_("last entry count"), default=0)
    consecutive_failures = models.PositiveIntegerField(
        verbose_name=_("consecutive failures"), default=0
    )

    class Meta:
        verbose_name = _("feed")
        verbose_name_plural = _("feeds")
        ordering = ["url"]

    def __str__(self) -> str:
        return self.name or self.url


class AnnounceType(models.TextChoices):
    NEW = "new", _("new")
    CROSS = "cross", _("cross-list")
    REPLACE = "replace", _("replacement")
    REPLACE_CROSS = "replace-cross", _("replacement of a cross-list")
    UNKNOWN = "unknown", _("unknown")


class ClassifiedBy(models.TextChoices):
    LLM = "llm", _("LLM")
    RULES = "rules", _("rules")
    EDITOR = "editor", _("editor")


class Paper(models.Model):
    arxiv_id = models.CharField(
        verbose_name=_("arxiv id"), max_length=40, unique=True, help_text=_("Without version")
    )
    version = models.PositiveSmallIntegerField(verbose_name=_("version"), default=1)
    title = models.TextField(verbose_name=_("title"))
    abstract = models.TextField(verbose_name=_("abstract"))
    authors = models.JSONField(verbose_name=_("authors"), default=list)
    categories = models.JSONField(
        verbose_name=_("categories"), default=list, help_text=_("arXiv categories, primary first")
    )
    primary_category = models.CharField(
        verbose_name=_("primary category"), max_length=40, blank=True
    )
    abs_url = models.URLField(verbose_name=_("abs url"), max_length=300)
    pdf_url = models.URLField(verbose_name=_("pdf url"), max_length=300)
    announce_type = models.CharField(
        verbose_name=_("announce type"),
        max_length=20,
        choices=AnnounceType.choices,
        default=AnnounceType.UNKNOWN,
    )
    announced_on = models.DateField(
        verbose_name=_("announced on"),
        db_index=True,
        help_text=_("The day arXiv first announced it"),
    )
    replaced_on = models.DateField(verbose_name=_("replaced on"), null=True, blank=True)
    source_feed = models.ForeignKey(
        Feed, verbose_name=_("source feed"), null=True, blank=True, on_delete=models.SET_NULL
    )

    category = models.ForeignKey(
        Category,
        verbose_name=_("category"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="papers",
    )
    importance = models.PositiveSmallIntegerField(
        verbose_name=_("importance"), null=True, blank=True, help_text=_("1 to 10")
    )
    classified_by = models.CharField(
        verbose_name=_("classified by"), max_length=10, choices=ClassifiedBy.choices, blank=True
    )
    # Set when a digest takes the paper: a paper belongs to at most one issue.
    digest = models.ForeignKey(
        "Digest",
        verbose_name=_("digest"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="papers",
    )
    # An editor took it out of its issue's sources: a rebuild does not put it back.
    excluded = models.BooleanField(
        verbose_name=_("excluded"),
        default=False,
        help_text=_("Removed from the issue by an editor"),
    )

    created_at = models.DateTimeField(verbose_name=_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(verbose_name=_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("paper")
        verbose_name_plural = _("papers")
        ordering = ["-announced_on", "arxiv_id"]

    def __str__(self) -> str:
        return f"{self.arxiv_id} {self.title[:60]}"


class Digest(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("draft")
        APPROVED = "approved", _("approved")
        SENDING = "sending", _("sending")
        # Stopped by itself after DELIVERY_PAUSE_AFTER_ERRORS errors in a row; an editor resumes.
        PAUSED = "paused", _("paused")
        SENT = "sent", _("sent")

    class Kind(models.TextChoices):
        DAILY = "daily", _("daily")
        WEEKLY = "weekly", _("weekly")

    # A daily issue's date is its arXiv announcement day (Monday to Friday); a weekly issue's is
    # the Sunday that ends its ISO week, so the two never share a date.
    date = models.DateField(
        verbose_name=_("date"), unique=True, help_text=_("The arXiv announcement date")
    )
    kind = models.CharField(
        verbose_name=_("kind"),
        max_length=10,
        choices=Kind.choices,
        default=Kind.DAILY,
        db_index=True,
    )
    status = models.CharField(
        verbose_name=_("status"), max_length=20, choices=Status.choices, default=Status.DRAFT
    )
    title = models.CharField(verbose_name=_("title"), max_length=300)
    introduction = models.TextField(verbose_name=_("introduction"), blank=True)
    chart_png = models.BinaryField(
        verbose_name=_("chart png"), blank=True, default=b"", editable=False
    )
    paper_count = models.PositiveIntegerField(verbose_name=_("paper count"), default=0)
    llm_calls = models.PositiveIntegerField(verbose_name=_("llm calls"), default=0)
    prompt_tokens = models.PositiveIntegerField(verbose_name=_("prompt tokens"), default=0)
    completion_tokens = models.PositiveIntegerField(verbose_name=_("completion tokens"), default=0)
    estimated_cost = models.DecimalField(
        verbose_name=_("estimated cost"), max_digits=10, decimal_places=4, default=Decimal("0")
    )
    built_at = models.DateTimeField(verbose_name=_("built at"), null=True, blank=True)
    build_count = models.PositiveIntegerField(verbose_name=_("build count"), default=0)
    # Approval and sending. Only approved digests are sent, at send_at or later.
    send_at = models.DateTimeField(verbose_name=_("send at"), null=True, blank=True)
    approved_at = models.DateTimeField(verbose_name=_("approved at"), null=True, blank=True)
    approved_by = models.CharField(
        verbose_name=_("approved by"), max_length=150, blank=True, help_text=_("Who approved it")
    )
    # Approved by DIGEST_AUTO_APPROVE because no editor acted in time.
    auto_approved = models.BooleanField(verbose_name=_("auto approved"), default=False)
    sending_started_at = models.DateTimeField(
        verbose_name=_("sending started at"), null=True, blank=True
    )
    # Every reader has their delivery row (the send is planned in ranges while it sends):
    # until then the send cannot be finished.
    send_planned_at = models.DateTimeField(verbose_name=_("send planned at"), null=True, blank=True)
    # ESP calls (or SMTP transactions) that failed one after the other, across workers; a
    # success sets it back to 0. At DELIVERY_PAUSE_AFTER_ERRORS the send pauses itself.
    send_errors_in_row = models.PositiveIntegerField(
        verbose_name=_("send errors in row"), default=0
    )
    send_paused_at = models.DateTimeField(verbose_name=_("send paused at"), null=True, blank=True)
    send_paused_reason = models.TextField(verbose_name=_("send paused reason"), blank=True)
    sent_at = models.DateTimeField(verbose_name=_("sent at"), null=True, blank=True)
    # Optimistic locking: every change to the content or status adds one (see
    # digests.editing.digest_touch); a save made from an older version is refused.
    version = models.PositiveIntegerField(verbose_name=_("version"), default=1)
    # The last person (or process) that changed it, and when an editor last acted on it
    # (edit, approve, cancel): automatic approval only takes issues nobody has touched.
    last_changed_by = models.CharField(
        verbose_name=_("last changed by"), max_length=150, blank=True
    )
    reviewed_at = models.DateTimeField(verbose_name=_("reviewed at"), null=True, blank=True)
    # The day's integrity as the build judged it (digests/integrity.py): per arXiv category,
    # received against usual and expected, and whether it is suspect. {} before the first build.
    integrity = models.JSONField(verbose_name=_("integrity"), default=dict, blank=True)
    created_at = models.DateTimeField(verbose_name=_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(verbose_name=_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("digest")
        verbose_name_plural = _("digests")
        ordering = ["-date"]
        # Stored in English (the migrations' names); the admin shows them translated
        # (newsletter/auth_admin.py).
        permissions = [
            ("approve_digest", gettext_noop("Can approve a digest, schedule and cancel its send")),
            ("send_test_digest", gettext_noop("Can send a test of a digest")),
            ("regenerate_section", gettext_noop("Can regenerate a section summary with the LLM")),
            (
                "resend_digest",
                gettext_noop("Can resend a digest to deliveries in an unknown state"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} {self.date:%Y-%m-%d}"

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class SummarySource(models.TextChoices):
    LLM = "llm", _("LLM")
    FALLBACK = "fallback", _("extractive fallback")
    EDITOR = "editor", _("editor")


class Report(models.Model):
    """A report's text, where it came from (llm / fallback / editor) and the checks' flags: of a
    section (its first language) and of its other languages (SectionReport)."""

    summary = models.TextField(verbose_name=_("summary"), blank=True, help_text=_("Markdown"))
    summary_source = models.CharField(
        verbose_name=_("summary source"),
        max_length=10,
        choices=SummarySource.choices,
        default=SummarySource.FALLBACK,
    )
    # Each flag is {"code": ..., "message": ...}; any flag means an editor should look.
    flags = models.JSONField(verbose_name=_("flags"), default=list, blank=True)

    class Meta:
        abstract = True


class DigestSection(Report):
    digest = models.ForeignKey(
        Digest, verbose_name=_("digest"), on_delete=models.CASCADE, related_name="sections"
    )
    category = models.ForeignKey(
        Category, verbose_name=_("category"), on_delete=models.PROTECT, related_name="sections"
    )
    position = models.PositiveSmallIntegerField(verbose_name=_("position"), default=0)
    paper_count = models.PositiveIntegerField(
        verbose_name=_("paper count"), default=0, help_text=_("Papers of the day in it")
    )
    # An editor reordered, removed, moved or added its papers: a rebuild keeps the section.
    entries_edited = models.BooleanField(verbose_name=_("entries edited"), default=False)

    class Meta:
        verbose_name = _("digest section")
        verbose_name_plural = _("digest sections")
        ordering = ["digest", "position"]
        constraints = [
            models.UniqueConstraint(fields=["digest", "category"], name="one_section_per_category")
        ]

    def __str__(self) -> str:
        return f"{self.digest.date} {self.category.name}"

    @property
    def needs_review(self) -> bool:
        return bool(self.flags)


class SectionReport(Report):
    """A section's report in another language the newsletter offers (DIGEST_LANGUAGES after the
    first; the first language's report is DigestSection.summary): written, checked, flagged and
    edited on its own."""

    section = models.ForeignKey(
        DigestSection, verbose_name=_("section"), on_delete=models.CASCADE, related_name="reports"
    )
    language = models.CharField(verbose_name=_("language"), max_length=8)
    updated_at = models.DateTimeField(verbose_name=_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("section report")
        verbose_name_plural = _("section reports")
        ordering = ["section", "language"]
        constraints = [
            models.UniqueConstraint(
                fields=["section", "language"], name="one_report_per_section_and_language"
            )
        ]

    def __str__(self) -> str:
        return f"{self.section} [{self.language}]"


class SectionPaper(models.Model):
    """A paper shown in a section's sources, in order. A paper is shown in one daily section
    ever; a weekly issue shows again papers of the week's daily issues (`weekly`)."""

    section = models.ForeignKey(
        DigestSection, verbose_name=_("section"), on_delete=models.CASCADE, related_name="entries"
    )
    # The section's digest, kept here so the digest's admin page can list every entry inline.
    digest = models.ForeignKey(
        Digest, verbose_name=_("digest"), on_delete=models.CASCADE, related_name="entries"
    )
    paper = models.ForeignKey(
        Paper, verbose_name=_("paper"), on_delete=models.CASCADE, related_name="section_entries"
    )
    position = models.PositiveSmallIntegerField(verbose_name=_("position"), default=0)
    weekly = models.BooleanField(
        verbose_name=_("weekly"), default=False, help_text=_("An entry of a weekly issue")
    )

    class Meta:
        verbose_name = _("paper in a section")
        verbose_name_plural = _("papers in the sections")
        ordering = ["section", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["paper"],
                condition=models.Q(weekly=False),
                name="sectionpaper_paper_in_one_daily_section",
            ),
            models.UniqueConstraint(
                fields=["digest", "paper"], name="sectionpaper_paper_once_per_issue"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.section} #{self.position} {self.paper.arxiv_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.section_id is not None:
            self.digest_id = DigestSection.objects.values_list("digest_id", flat=True).get(
                pk=self.section_id
            )
        super().save(*args, **kwargs)


class SectionRevision(models.Model):
    """A section's summary as it was before a change (an edit, a regeneration, a restore)."""

    class Reason(models.TextChoices):
        EDIT = "edit", _("before an editor's edit")
        REGENERATE = "regenerate", _("before a regeneration")
        RESTORE = "restore", _("before a restore")

    section = models.ForeignKey(
        DigestSection, verbose_name=_("section"), on_delete=models.CASCADE, related_name="revisions"
    )
    # The report's language: blank for the first language's (DigestSection.summary), else the
    # language of one of the section's SectionReports.
    language = models.CharField(verbose_name=_("language"), max_length=8, blank=True, default="")
    summary = models.TextField(verbose_name=_("summary"), blank=True)
    summary_source = models.CharField(
        verbose_name=_("summary source"), max_length=10, choices=SummarySource.choices
    )
    flags = models.JSONField(verbose_name=_("flags"), default=list, blank=True)
    reason = models.CharField(verbose_name=_("reason"), max_length=20, choices=Reason.choices)
    created_by = models.CharField(verbose_name=_("created by"), max_length=150, blank=True)
    created_at = models.DateTimeField(verbose_name=_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("section revision")
        verbose_name_plural = _("section revisions")
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.section} {self.get_reason_display()} {self.created_at:%Y-%m-%d %H:%M}"


class Regeneration(models.Model):
    """One request to rewrite a section's summary with the LLM, run by a background task."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        RUNNING = "running", _("running")
        DONE = "done", _("done")
        FAILED = "failed", _("failed")

    section = models.ForeignKey(
        DigestSection,
        verbose_name=_("section"),
        on_delete=models.CASCADE,
        related_name="regenerations",
    )
    # The report to rewrite: blank for the first language's, else another offered language's.
    language = models.CharField(verbose_name=_("language"), max_length=8, blank=True, default="")
    status = models.CharField(
        verbose_name=_("status"), max_length=10, choices=Status.choices, default=Status.QUEUED
    )
    requested_by = models.CharField(verbose_name=_("requested by"), max_length=150, blank=True)
    # The text it replaced, kept so it can be restored.
    revision = models.ForeignKey(
        SectionRevision,
        verbose_name=_("revision"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    error = models.TextField(verbose_name=_("error"), blank=True)
    created_at = models.DateTimeField(verbose_name=_("created at"), auto_now_add=True)
    started_at = models.DateTimeField(verbose_name=_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(verbose_name=_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("regeneration")
        verbose_name_plural = _("regenerations")
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return _("%(section)s: regeneration %(status)s") % {
            "section": self.section,
            "status": self.get_status_display(),
        }


class LLMCall(models.Model):
    """One request to the LLM (or one answer served from the cache), for cost and the budget."""

    class Purpose(models.TextChoices):
        CLASSIFY = "classify", _("classify")
        SUMMARIZE = "summarize", _("summarize")
        OTHER = "other", _("other")

    digest_date = models.DateField(
        verbose_name=_("digest date"), null=True, blank=True, db_index=True
    )
    purpose = models.CharField(verbose_name=_("purpose"), max_length=20, choices=Purpose.choices)
    model = models.CharField(verbose_name=_("model"), max_length=100)
    prompt_tokens = models.PositiveIntegerField(verbose_name=_("prompt tokens"), default=0)
    completion_tokens = models.PositiveIntegerField(verbose_name=_("completion tokens"), default=0)
    cost = models.DecimalField(
        verbose_name=_("cost"), max_digits=10, decimal_places=6, default=Decimal("0")
    )
    cached = models.BooleanField(verbose_name=_("cached"), default=False)
    ok = models.BooleanField(verbose_name=_("ok"), default=True)
    error = models.TextField(verbose_name=_("error"), blank=True)
    duration_ms = models.PositiveIntegerField(verbose_name=_("duration ms"), default=0)
    created_at = models.DateTimeField(
        verbose_name=_("created at"), auto_now_add=True, db_index=True
    )

    class Meta:
        verbose_name = _("LLM call")
        verbose_name_plural = _("LLM calls")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.purpose} {self.model} {self.created_at:%Y-%m-%d %H:%M}"


class LLMCacheEntry(models.Model):
    """An LLM answer, keyed by prompt version + model + input hash: a rebuild costs no calls."""

    key = models.CharField(verbose_name=_("key"), max_length=64, unique=True)
    prompt_version = models.CharField(verbose_name=_("prompt version"), max_length=40)
    model = models.CharField(verbose_name=_("model"), max_length=100)
    response = models.TextField(verbose_name=_("response"))
    prompt_tokens = models.PositiveIntegerField(verbose_name=_("prompt tokens"), default=0)
    completion_tokens = models.PositiveIntegerField(verbose_name=_("completion tokens"), default=0)
    created_at = models.DateTimeField(verbose_name=_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("LLM cache entry")
        verbose_name_plural = _("LLM cache entries")

    def __str__(self) -> str:
        return f"{self.prompt_version} {self.model} {self.key[:12]}"


class FetchCount(models.Model):
    """What one fetch of one feed saw of one arXiv category: how many new, cross-listed and
    replaced entries, for the announcement day the feed claims. A day's integrity is judged
    against these (digests/integrity.py)."""

    feed = models.ForeignKey(
        Feed,
        verbose_name=_("feed"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="counts",
    )
    fetched_at = models.DateTimeField(verbose_name=_("fetched at"), db_index=True)
    arxiv_category = models.CharField(verbose_name=_("arxiv category"), max_length=40)
    announced_on = models.DateField(
        verbose_name=_("announced on"),
        null=True,
        blank=True,
        help_text=_("The day the feed claims"),
    )
    new = models.PositiveIntegerField(verbose_name=_("new"), default=0)
    cross = models.PositiveIntegerField(verbose_name=_("cross"), default=0)
    replaced = models.PositiveIntegerField(verbose_name=_("replaced"), default=0)
    # New and cross-listed entries that were already stored before this fetch: a feed serving
    # an earlier announcement again (stale) shows almost all of its entries here.
    known = models.PositiveIntegerField(verbose_name=_("known"), default=0)
    # What arXiv's listing page (/list/<category>/new) says it shows, with ARXIV_LISTING_CHECK on.
    expected_new = models.PositiveIntegerField(
        verbose_name=_("expected new"), null=True, blank=True
    )
    expected_cross = models.PositiveIntegerField(
        verbose_name=_("expected cross"), null=True, blank=True
    )
    expected_replaced = models.PositiveIntegerField(
        verbose_name=_("expected replaced"), null=True, blank=True
    )

    class Meta:
        verbose_name = _("fetch count")
        verbose_name_plural = _("fetch counts")
        ordering = ["-fetched_at"]
        indexes = [models.Index(fields=["arxiv_category", "announced_on"])]

    def __str__(self) -> str:
        return f"{self.arxiv_category} {self.announced_on}: {self.new} new"


class DailyRun(models.Model):
    """One daily run (fetch, then build): a row per run, kept as the run's history."""

    class Outcome(models.TextChoices):
        RUNNING = "running", _("running")
        BUILT = "built", _("draft built")
        NOTHING = "nothing", _("nothing to publish")
        FAILED = "failed", _("failed")

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", _("schedule")
        COMMAND = "command", _("command")
        ADMIN = "admin", _("admin")

    started_at = models.DateTimeField(verbose_name=_("started at"), db_index=True)
    finished_at = models.DateTimeField(verbose_name=_("finished at"), null=True, blank=True)
    trigger = models.CharField(
        verbose_name=_("trigger"), max_length=20, choices=Trigger.choices, default=Trigger.SCHEDULE
    )
    day = models.DateField(
        verbose_name=_("day"), null=True, blank=True, help_text=_("The announcement day built")
    )
    digest = models.ForeignKey(
        Digest,
        verbose_name=_("digest"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="runs",
    )
    feeds_ok = models.PositiveIntegerField(verbose_name=_("feeds ok"), default=0)
    feeds_failed = models.PositiveIntegerField(verbose_name=_("feeds failed"), default=0)
    papers_new = models.PositiveIntegerField(verbose_name=_("papers new"), default=0)
    llm_calls = models.PositiveIntegerField(verbose_name=_("llm calls"), default=0)
    estimated_cost = models.DecimalField(
        verbose_name=_("estimated cost"), max_digits=10, decimal_places=4, default=Decimal("0")
    )
    outcome = models.CharField(
        verbose_name=_("outcome"), max_length=20, choices=Outcome.choices, default=Outcome.RUNNING
    )
    suspect = models.BooleanField(
        verbose_name=_("suspect"),
        default=False,
        help_text=_("The day's counts look short or stale"),
    )
    reasons = models.JSONField(verbose_name=_("reasons"), default=list, blank=True)
    # Beside each reason (same order), its template and parameters (digests/editor_text.py), or
    # null: the admin shows the reasons in the editor's language, the English above elsewhere.
    reason_texts = models.JSONField(
        verbose_name=_("reasons' templates"), default=list, blank=True, editable=False
    )

    class Meta:
        verbose_name = _("daily run")
        verbose_name_plural = _("daily runs")
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return _("run %(time)s %(outcome)s") % {
            "time": f"{self.started_at:%Y-%m-%d %H:%M}",
            "outcome": self.get_outcome_display(),
        }
