"""The editors' admin: review, edit, preview, approve and watch an issue.

The digest's page holds everything an editor changes: title and introduction, each section's
summary (Markdown, with a rendered preview beside it) under the reasons it was flagged, its
report in each other offered language (`report_<code>`, with that report's own flags), and the
papers of every section (reorder, remove, move to another section, add one the build left out).
The page is saved as one unit under an optimistic lock (`Digest.version`): a save made from a
page opened before someone else's save, a rebuild, a regeneration or an approval is refused,
and the editor's input stays in the form. Sending and sent issues are read-only.

At the top of the page, the day's integrity (counts against the usual and the listing, what
is suspect, a re-fetch of a suspect day). The pages beyond the form (approval, regeneration,
the Markdown preview, the re-fetch) are in
digests/admin_views/. The audience app extends this admin (subscribers/admin.py registers a
subclass: the email's preview, test sends, deliveries) through `change_page_context`,
`send_now_start` and the blocks of the change form's template; this app never names it.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import InlineModelAdmin
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .admin_views import editing as editing_views
from .admin_views import integrity as integrity_views
from .admin_views import regenerate, workflow
from .approval import digest_unapprove, local_time_label
from .editing import (
    digest_counts_refresh,
    digest_touch,
    flags_shown,
    paper_file,
    paper_remove,
    section_flags_refresh,
    section_report_edit,
    section_revision_save,
)
from .markdown import markdown_html
from .models import (
    Category,
    ClassifiedBy,
    Digest,
    DigestSection,
    Feed,
    LLMCall,
    Paper,
    Regeneration,
    SectionPaper,
    SectionReport,
    SectionRevision,
    SummarySource,
)
from .report_languages import extra_languages
from .weekly import week_of, week_papers

EDITABLE_STATUSES = (Digest.Status.DRAFT, Digest.Status.APPROVED)


def editable(digest: Digest | None) -> bool:
    """Drafts and approved issues (an edit returns them to draft); never one being sent."""
    return digest is None or digest.status in EDITABLE_STATUSES


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "position", "colour", "active"]
    list_editable = ["position", "active"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Feed)
class FeedAdmin(admin.ModelAdmin):
    list_display = ["url", "name", "enabled", "last_status", "last_fetched_at", "last_entry_count"]
    list_filter = ["enabled", "last_status"]
    list_editable = ["enabled"]
    search_fields = ["url", "name"]
    readonly_fields = [
        "etag",
        "last_modified",
        "last_fetched_at",
        "last_success_at",
        "last_status",
        "last_error",
        "last_entry_count",
        "consecutive_failures",
    ]


@admin.register(Paper)
class PaperAdmin(admin.ModelAdmin):
    list_display = [
        "arxiv_id",
        "title",
        "announced_on",
        "announce_type",
        "category",
        "importance",
        "classified_by",
        "digest",
        "excluded",
    ]
    list_filter = ["announced_on", "announce_type", "category", "classified_by", "excluded"]
    search_fields = ["arxiv_id", "title"]
    raw_id_fields = ["digest", "source_feed"]
    # Which issue shows it, and where, is changed on the issue's page (under its lock).
    readonly_fields = ["digest", "excluded"]

    def save_model(self, request: HttpRequest, obj: Paper, form: Any, change: bool) -> None:
        if change and "category" in form.changed_data:
            obj.classified_by = ClassifiedBy.EDITOR  # a rebuild must not undo an editor's choice
        super().save_model(request, obj, form, change)


# --- The digest page ------------------------------------------------------------------------


class SummaryEditor(forms.Textarea):
    """The Markdown text beside its rendered preview (as readers will see it: sanitised). The
    preview follows the typing through admin_views/editing.py; without JavaScript it shows the
    saved text."""

    template_name = "digests/widgets/summary_editor.html"  # an app template: forms render those

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__({"rows": 20, "class": "summary-editor-text", **(attrs or {})})

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        context["preview_html"] = markdown_html(text=str(value or ""))
        context["preview_url"] = reverse("admin:digests_digest_markdown_preview")
        return context

    class Media:
        css = {"all": ["digests/admin/editor.css"]}
        js = ["digests/admin/summary_editor.js"]


class TextField(forms.CharField):
    """Text with the line ends browsers submit (CRLF) stored as LF, so an untouched text is
    not seen as changed (which would make an LLM summary the editor's). Not stripped either,
    for the same reason."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs["strip"] = False
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> str:
        text = super().to_python(value) or ""
        return text.replace("\r\n", "\n").replace("\r", "\n")


class DigestSectionForm(forms.ModelForm):
    class Meta:
        model = DigestSection
        fields = ["category", "position", "summary"]
        widgets = {"summary": SummaryEditor()}
        field_classes = {"summary": TextField}

    languages: tuple[str, ...] = ()  # the other offered languages: a field `report_<code>` each

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        reports = self.saved_reports()
        for language in self.languages:
            report = reports.get(language)
            name = report_field(language)
            self.initial.setdefault(name, report.summary if report else "")
            self.fields[name].help_text = report_review_html(report)

    def saved_reports(self) -> dict[str, SectionReport]:
        if not self.instance.pk:
            return {}
        return {r.language: r for r in self.instance.reports.all()}

    def reports_changed(self) -> list[str]:
        """The languages whose report the editor changed."""
        return [code for code in self.languages if report_field(code) in self.changed_data]


def report_field(language: str) -> str:
    return f"report_{language}"


def report_label(language: str) -> str:
    return gettext("report (%(language)s)") % {"language": language}


def report_review_html(report: SectionReport | None) -> SafeString:
    """Where the report came from and the reasons it was flagged, under its text."""
    if report is None:
        return format_html("{}", gettext("Not written: no active reader reads this language."))
    source = report.get_summary_source_display()
    if not report.flags:
        return format_html("{}", gettext("%(source)s: nothing flagged.") % {"source": source})
    items = format_html_join(
        "",
        "<li><strong>{}</strong>: {}</li>",
        flags_shown(report.flags),
    )
    return format_html('{}:<ul class="section-flags" role="alert">{}</ul>', source, items)


def section_form_with_reports(languages: list[str]) -> type[DigestSectionForm]:
    """The section's form with a report field for each other offered language (settings may
    change while the process runs: tests, and a deploy that adds a language)."""
    fields: dict[str, Any] = {
        report_field(code): TextField(
            required=False, widget=SummaryEditor(), label=report_label(code)
        )
        for code in languages
    }
    fields["languages"] = tuple(languages)
    return type("DigestSectionForm", (DigestSectionForm,), fields)


class EditableWithIssue(InlineModelAdmin):
    """An inline of an issue: changed only while the issue is (`editable`)."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return editable(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return editable(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return editable(obj) and super().has_delete_permission(request, obj)


class DigestSectionInline(EditableWithIssue, admin.StackedInline):
    model = DigestSection
    form = DigestSectionForm
    extra = 0
    fields = ["review", "category", "position", "summary", "summary_source", "paper_count", "tools"]
    readonly_fields = ["review", "summary_source", "paper_count", "tools"]
    verbose_name = _("section")
    verbose_name_plural = _("sections")

    def get_queryset(self, request: HttpRequest) -> QuerySet[DigestSection]:
        queryset = super().get_queryset(request).select_related("digest", "category")
        return queryset.prefetch_related("reports")

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        """The section's fields, each other offered language's report after the summary."""
        fields = list(super().get_fields(request, obj))
        reports = [report_field(code) for code in extra_languages()]
        at = fields.index("summary") + 1
        for code in extra_languages():  # shown as text where the issue is read-only
            setattr(self, report_field(code), report_text_shown(code))
        return fields[:at] + reports + fields[at:]

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        kwargs["form"] = section_form_with_reports(extra_languages())
        return super().get_formset(request, obj, **kwargs)

    @admin.display(description=_("needs review"))
    def review(self, obj: DigestSection) -> SafeString | str:
        """The reasons the section was flagged, at the top of the section."""
        if not obj.pk or not obj.flags:
            return gettext("Nothing flagged.")
        items = format_html_join(
            "",
            "<li><strong>{}</strong>: {}</li>",
            flags_shown(obj.flags),
        )
        return format_html('<ul class="section-flags" role="alert">{}</ul>', items)

    @admin.display(description=_("regenerate and history"))
    def tools(self, obj: DigestSection) -> SafeString | str:
        return regenerate.section_tools_html(obj) if obj.pk else "-"


def report_text_shown(language: str) -> Any:
    """A read-only issue's report in `language` (the admin looks the field up by name)."""

    def shown(obj: DigestSection) -> str:
        report = next((r for r in obj.reports.all() if r.language == language), None)
        return report.summary if report else "-"

    shown.short_description = report_label(language)  # type: ignore[attr-defined]
    return shown


def section_label(section: DigestSection) -> str:
    return section.category.name


class StaticText(forms.Widget):
    """A value shown as text in a form's column (no input, and no query to find its label)."""

    def __init__(self, *, text: str) -> None:
        super().__init__()
        self.text = text

    def render(
        self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None
    ) -> SafeString:
        return format_html('<span class="static-text">{}</span>', self.text)


class SectionPaperForm(forms.ModelForm):
    # Declared, so the admin adds no add/change links around it, and its choices are given by
    # the formset: one query for every row, not one per row.
    section = forms.ModelChoiceField(
        queryset=DigestSection.objects.none(),
        label=_("section"),
        help_text=_("Choose another section to move the paper to its category."),
    )

    class Meta:
        model = SectionPaper
        fields = ["section", "position", "paper"]

    def __init__(
        self,
        *args: Any,
        digest: Digest | None = None,
        section_choices: list[tuple[Any, str]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.digest = digest
        field = self.fields["section"]
        assert isinstance(field, forms.ModelChoiceField)
        if digest is not None:
            field.queryset = digest.sections.all()
        if section_choices is not None:
            field.choices = section_choices
        if digest is not None and digest.kind == Digest.Kind.WEEKLY:
            self.instance.weekly = True  # shows again a paper of one of the week's daily issues
        if self.instance.pk:
            # An entry's paper is fixed (add another row instead): shown, not an input.
            self.fields["paper"].disabled = True
            self.fields["paper"].widget = StaticText(text=self.instance.paper.arxiv_id)

    def clean_paper(self) -> Paper:
        paper: Paper = self.cleaned_data["paper"]
        if self.instance.pk or self.digest is None:
            return paper
        if self.digest.kind == Digest.Kind.WEEKLY:
            return self.weekly_paper_clean(paper)
        if paper.announced_on != self.digest.date:
            raise ValidationError(
                gettext(
                    "%(paper)s was announced on %(announced)s, not on %(day)s: only papers of "
                    "the day can be added."
                )
                % {
                    "paper": paper.arxiv_id,
                    "announced": paper.announced_on,
                    "day": self.digest.date,
                }
            )
        if paper.digest_id not in (None, self.digest.pk):
            raise ValidationError(
                gettext("%(paper)s is already in the issue of %(issue)s.")
                % {"paper": paper.arxiv_id, "issue": paper.digest}
            )
        entry = SectionPaper.objects.filter(paper=paper).select_related("section__category")
        if shown := entry.first():
            raise ValidationError(
                gettext("%(paper)s is already shown in %(section)s.")
                % {"paper": paper.arxiv_id, "section": shown.section.category.name}
            )
        return paper

    def weekly_paper_clean(self, paper: Paper) -> Paper:
        """A weekly issue shows papers of its week's sent daily issues, each once."""
        assert self.digest is not None
        week = week_of(self.digest.date)
        if not week_papers(week).filter(pk=paper.pk).exists():
            raise ValidationError(
                gettext(
                    "%(paper)s is not a paper of the daily issues sent in %(week)s: only those "
                    "can be added."
                )
                % {"paper": paper.arxiv_id, "week": week}
            )
        entry = SectionPaper.objects.filter(digest=self.digest, paper=paper)
        if shown := entry.select_related("section__category").first():
            raise ValidationError(
                gettext("%(paper)s is already shown in %(section)s.")
                % {"paper": paper.arxiv_id, "section": shown.section.category.name}
            )
        return paper

    def validate_unique(self) -> None:
        """`clean_paper` explains a paper shown twice in words an editor understands."""
        if "paper" not in self.errors:
            super().validate_unique()


class SectionPaperFormSet(BaseInlineFormSet):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        digest = self.instance if self.instance.pk else None
        self.form_kwargs["digest"] = digest
        if digest is not None:
            sections = digest.sections.select_related("category").order_by("position")
            self.form_kwargs["section_choices"] = [
                ("", "---------"),
                *((section.pk, section_label(section)) for section in sections),
            ]

    def clean(self) -> None:
        super().clean()
        papers = [f.cleaned_data.get("paper") for f in self.forms if f.cleaned_data]
        picked = [p.pk for p in papers if p is not None]
        if len(picked) != len(set(picked)):
            raise ValidationError(gettext("The same paper is listed twice."))


class SectionPaperInline(EditableWithIssue, admin.TabularInline):
    """Every section's papers, in section order: reorder (position), move (section), remove
    (delete), and add one of the day's papers the build left out (the empty row, by id)."""

    model = SectionPaper
    fk_name = "digest"
    form = SectionPaperForm
    formset = SectionPaperFormSet
    fields = ["section", "position", "paper", "paper_title", "classified"]
    readonly_fields = ["paper_title", "classified"]
    raw_id_fields = ["paper"]
    extra = 1
    verbose_name = _("paper")
    verbose_name_plural = _("papers of the sections (reorder, move, remove, add)")

    def get_queryset(self, request: HttpRequest) -> QuerySet[SectionPaper]:
        return (
            super()
            .get_queryset(request)
            .select_related("paper", "section__category", "section__digest")
            .order_by("section__position", "position")
        )

    @admin.display(description=_("title"))
    def paper_title(self, obj: SectionPaper) -> SafeString | str:
        if not obj.pk:
            return "-"
        return format_html(
            '<a href="{}" target="_blank" rel="noopener">{}</a>', obj.paper.abs_url, obj.paper.title
        )

    @admin.display(description=_("classified by"))
    def classified(self, obj: SectionPaper) -> str:
        return obj.paper.get_classified_by_display() if obj.pk else "-"


class DigestForm(forms.ModelForm):
    """Title and introduction, under the optimistic lock: `version` is the one the page showed."""

    class Meta:
        model = Digest
        fields = ["title", "introduction", "version"]
        widgets = {"version": forms.HiddenInput, "introduction": forms.Textarea({"rows": 3})}
        field_classes = {"introduction": TextField}

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.instance.pk is None:
            return cleaned
        # Held until the save's transaction ends (the admin saves in one): a second save of
        # the same version waits here, then finds the version moved on.
        current = Digest.objects.select_for_update().get(pk=self.instance.pk)
        if cleaned.get("version") != current.version:
            who = current.last_changed_by or gettext("someone")
            when = timezone.localtime(current.updated_at).strftime("%Y-%m-%d %H:%M:%S")
            raise ValidationError(
                gettext(
                    "Not saved: %(who)s changed this issue at %(when)s, after you opened this "
                    "page. Your changes are still in the form below. Open the issue again in a "
                    "new tab, carry your changes over there and save that page."
                )
                % {"who": who, "when": when},
                code="stale",
            )
        if current.status not in EDITABLE_STATUSES:
            raise ValidationError(
                gettext("Not saved: the issue is %(status)s and can no longer be edited.")
                % {"status": current.get_status_display()},
                code="locked",
            )
        return cleaned


@admin.register(Digest)
class DigestAdmin(admin.ModelAdmin):
    form = DigestForm
    change_form_template = "admin/digests/digest/change_form.html"
    list_display = [
        "date",
        "kind",
        "status_shown",
        "paper_count",
        "flagged_sections",
        "total_tokens",
        "estimated_cost",
    ]
    list_filter = ["status", "kind"]
    date_hierarchy = "date"
    fieldsets = [
        (None, {"fields": ["title", "introduction", "version"]}),
        (
            _("Status"),
            {
                "fields": [
                    "status",
                    "send_at",
                    "approval",
                    "last_changed",
                    "sending_started_at",
                    "sent_at",
                ]
            },
        ),
        (_("Chart"), {"fields": ["chart"]}),
        (
            _("Build and LLM cost"),
            {
                "classes": ["collapse"],
                "fields": [
                    "paper_count",
                    "llm_calls",
                    "prompt_tokens",
                    "completion_tokens",
                    "estimated_cost",
                    "built_at",
                    "build_count",
                ],
            },
        ),
    ]
    readonly_fields = [
        "status",
        "send_at",
        "approval",
        "last_changed",
        "sending_started_at",
        "sent_at",
        "chart",
        "paper_count",
        "llm_calls",
        "prompt_tokens",
        "completion_tokens",
        "estimated_cost",
        "built_at",
        "build_count",
    ]
    inlines = [DigestSectionInline, SectionPaperInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Digest]:
        queryset = super().get_queryset(request).defer("chart_png")
        return queryset.prefetch_related("sections", "sections__reports")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # issues are built by the pipeline (build_digest), not typed in

    def has_change_permission(self, request: HttpRequest, obj: Digest | None = None) -> bool:
        return editable(obj) and super().has_change_permission(request, obj)

    # --- list columns ---

    @admin.display(description=_("status"), ordering="status")
    def status_shown(self, obj: Digest) -> str:
        if obj.status == Digest.Status.APPROVED and obj.send_at:
            at = local_time_label(obj.send_at)
            if obj.auto_approved:
                return gettext("approved, automatically: sends %(at)s") % {"at": at}
            return gettext("approved: sends %(at)s") % {"at": at}
        return obj.get_status_display()

    @admin.display(description=_("sections flagged"))
    def flagged_sections(self, obj: Digest) -> int:
        """Sections with a flag on their report in any language."""
        return sum(
            1
            for section in obj.sections.all()
            if section.flags or any(report.flags for report in section.reports.all())
        )

    @admin.display(description=_("LLM tokens"))
    def total_tokens(self, obj: Digest) -> int:
        return obj.total_tokens

    # --- page fields ---

    @admin.display(description=_("approval"))
    def approval(self, obj: Digest) -> str:
        if not obj.approved_at:
            return gettext("not approved")
        how = gettext("automatically (nobody acted in time)") if obj.auto_approved else None
        return gettext("by %(who)s at %(when)s") % {
            "who": how or obj.approved_by,
            "when": local_time_label(obj.approved_at),
        }

    @admin.display(description=_("last change"))
    def last_changed(self, obj: Digest) -> str:
        return gettext("version %(version)s, by %(who)s at %(when)s") % {
            "version": obj.version,
            "who": obj.last_changed_by or "-",
            "when": local_time_label(obj.updated_at),
        }

    @admin.display(description=_("chart"))
    def chart(self, obj: Digest) -> SafeString | str:
        if not obj.pk:
            return "-"
        url = reverse("digest-chart", args=[obj.date.isoformat()])
        stamp = int(obj.updated_at.timestamp())
        return format_html(
            '<img src="{}?v={}" alt="{}" style="max-width:640px;width:100%">',
            url,
            stamp,
            gettext("papers per category"),
        )

    # --- pages ---

    def get_urls(self) -> list[URLPattern]:
        own = [
            *editing_views.urlpatterns(self),
            *regenerate.urlpatterns(self),
            *workflow.urlpatterns(self),
            *integrity_views.urlpatterns(self),
        ]
        return own + super().get_urls()

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        digest = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if digest is not None:
            if digest.kind == Digest.Kind.DAILY:  # a week has no feeds of its own to judge
                context |= integrity_views.integrity_context(request, digest)
            context |= workflow.workflow_context(request, digest)
            context |= self.change_page_context(request, digest)
        return super().change_view(request, object_id, form_url, context)

    # --- what other apps' admins add (a subclass overrides these) ---

    def change_page_context(self, request: HttpRequest, digest: Digest) -> dict[str, Any]:
        """More context for the issue's page, shown by a subclass's template in the blocks
        `workflow-preview`, `workflow-test` and `after-form` of ours."""
        return {}

    def send_now_start(self) -> bool:
        """Starts the sends that are due once the approval commits ("Approve and send now");
        True if it did. Sending is not this app's: without a subclass that sends, the next
        check of due sends starts it."""
        return False

    # --- saving ---

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """Saves the sections and papers, then what follows from them: the checks of every
        section whose text or papers changed, the counts and chart, the lock's version."""
        form.save_m2m()
        editor = request.user.get_username()
        # Sections to check again: {section id: its papers changed}.
        rechecks: dict[int, bool] = {}
        for formset in formsets:
            if formset.model is DigestSection:
                found = dict.fromkeys(self._sections_save(formset=formset, editor=editor), False)
            elif formset.model is SectionPaper:
                found = dict.fromkeys(self._entries_save(formset=formset), True)
            else:
                self.save_formset(request, form, formset, change=change)
                continue
            for pk, sources_changed in found.items():
                rechecks[pk] = rechecks.get(pk, False) or sources_changed
        digest: Digest = form.instance
        changed = [n for n in form.changed_data if n != "version"]
        if not (changed or any(formset.has_changed() for formset in formsets)):
            return
        for section in DigestSection.objects.filter(pk__in=rechecks, digest=digest):
            section_flags_refresh(section=section, sources_changed=rechecks[section.pk])
        papers_changed = any(f.model is SectionPaper and f.has_changed() for f in formsets)
        # A weekly issue's counts and chart are its week's, whichever papers it shows.
        if papers_changed and digest.kind == Digest.Kind.DAILY:
            digest_counts_refresh(digest=digest)
        if digest.status == Digest.Status.APPROVED:
            digest_unapprove(digest=digest, by=editor)
            messages.warning(
                request,
                gettext(
                    "This issue was approved; your edit returned it to draft and cancelled its "
                    "scheduled send. Approve it again when it is ready."
                ),
            )
            self.log_change(request, digest, gettext("Edited after approval: returned to draft."))
        form.instance.version = digest_touch(digest_id=digest.pk, by=editor, reviewed=True)

    def _sections_save(self, *, formset: Any, editor: str) -> list[int]:
        """Saves the sections; returns those whose text an editor wrote or changed."""
        edited: list[DigestSection] = []
        for section_form in formset.initial_forms:
            if "summary" in section_form.changed_data and section_form.instance.pk:
                before = DigestSection.objects.get(pk=section_form.instance.pk)
                section_revision_save(section=before, reason=SectionRevision.Reason.EDIT, by=editor)
                edited.append(section_form.instance)
        for section in edited:
            section.summary_source = SummarySource.EDITOR  # a rebuild keeps the editor's text
        formset.save()
        for section in formset.new_objects:
            section.summary_source = SummarySource.EDITOR
            section.save(update_fields=["summary_source"])
        reported = self._reports_save(formset=formset, editor=editor)
        return [section.pk for section in [*edited, *formset.new_objects, *reported]]

    def _reports_save(self, *, formset: Any, editor: str) -> list[DigestSection]:
        """Saves the reports in other languages an editor changed, each checked for its
        language; returns their sections."""
        sections = []
        for section_form in formset.forms:
            if section_form in formset.deleted_forms or not section_form.instance.pk:
                continue
            for language in section_form.reports_changed():
                text = section_form.cleaned_data[report_field(language)]
                section_report_edit(
                    section=section_form.instance, language=language, text=text, by=editor
                )
                sections.append(section_form.instance)
        return sections

    def _entries_save(self, *, formset: Any) -> set[int]:
        """Saves the papers' rows; returns the sections whose papers changed. A weekly issue's
        rows only change what it shows: its papers stay their daily issues', as filed there."""
        touched: set[int] = set()
        daily = formset.instance.kind == Digest.Kind.DAILY
        for entry_form in formset.initial_forms:
            if entry_form in formset.deleted_forms:
                continue
            if entry_form.has_changed() and entry_form.instance.pk:
                touched.add(entry_form.initial["section"])
        for entry_form in formset.deleted_forms:
            if entry_form.instance.pk:
                touched.add(entry_form.instance.section_id)
                if daily:
                    paper_remove(paper=entry_form.instance.paper)
        entries = formset.save()
        for entry in entries:
            touched.add(entry.section_id)
            if daily:
                paper_file(paper=entry.paper, section=entry.section)
        if touched:
            DigestSection.objects.filter(pk__in=touched).update(entries_edited=True)
        return touched


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by the application: listed and shown, never typed in or changed here."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(DigestSection)
class DigestSectionAdmin(ReadOnlyAdmin):
    """A list to find flagged sections; they are edited on their issue's page (one lock)."""

    list_display = ["digest", "category", "paper_count", "summary_source", "flag_count"]
    list_filter = ["summary_source", "digest__status", "digest"]
    readonly_fields = ["digest", "category", "position", "summary", "summary_source", "flags"]

    @admin.display(description=_("flags"))
    def flag_count(self, obj: DigestSection) -> int:
        return len(obj.flags)


@admin.register(SectionRevision)
class SectionRevisionAdmin(ReadOnlyAdmin):
    list_display = ["section", "language", "reason", "summary_source", "created_by", "created_at"]
    list_filter = ["reason", "language"]
    readonly_fields = [f.name for f in SectionRevision._meta.fields]


@admin.register(Regeneration)
class RegenerationAdmin(ReadOnlyAdmin):
    list_display = ["section", "language", "status", "requested_by", "created_at", "finished_at"]
    list_filter = ["status"]
    readonly_fields = [f.name for f in Regeneration._meta.fields]


@admin.register(LLMCall)
class LLMCallAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "digest_date",
        "purpose",
        "model",
        "prompt_tokens",
        "completion_tokens",
        "cost",
        "cached",
        "ok",
    ]
    list_filter = ["purpose", "ok", "cached", "digest_date"]


from .admin_views import runs as runs_admin  # noqa: E402, F401 (registers DailyRunAdmin)
