"""A first admin for the content side: feeds and categories editable, digests reviewable.
The editorial workflow (preview, approve, locking) comes with the editors' issue."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from .models import Category, Digest, DigestSection, Feed, LLMCall, Paper, SectionPaper


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "position", "colour", "active"]
    list_editable = ["position", "active"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Feed)
class FeedAdmin(admin.ModelAdmin):
    list_display = ["url", "enabled", "last_status", "last_fetched_at", "last_entry_count"]
    list_filter = ["enabled", "last_status"]
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
    ]
    list_filter = ["announced_on", "announce_type", "category", "classified_by"]
    search_fields = ["arxiv_id", "title"]
    raw_id_fields = ["digest", "source_feed"]

    def save_model(self, request: HttpRequest, obj: Paper, form: object, change: bool) -> None:
        if change and "category" in getattr(form, "changed_data", []):
            obj.classified_by = "editor"  # a rebuild must not undo an editor's choice
        super().save_model(request, obj, form, change)


class SectionPaperInline(admin.TabularInline):
    model = SectionPaper
    raw_id_fields = ["paper"]
    extra = 0


@admin.register(DigestSection)
class DigestSectionAdmin(admin.ModelAdmin):
    list_display = ["digest", "category", "paper_count", "summary_source", "flag_count"]
    list_filter = ["summary_source", "digest"]
    inlines = [SectionPaperInline]

    @admin.display(description="flags")
    def flag_count(self, obj: DigestSection) -> int:
        return len(obj.flags)

    def save_model(
        self, request: HttpRequest, obj: DigestSection, form: object, change: bool
    ) -> None:
        if change and "summary" in getattr(form, "changed_data", []):
            obj.summary_source = "editor"  # a rebuild keeps the editor's text
        super().save_model(request, obj, form, change)


class DigestSectionInline(admin.StackedInline):
    model = DigestSection
    extra = 0
    fields = ["category", "position", "summary", "summary_source", "flags", "paper_count"]
    readonly_fields = ["summary_source", "flags", "paper_count"]
    show_change_link = True


@admin.register(Digest)
class DigestAdmin(admin.ModelAdmin):
    list_display = [
        "date",
        "status",
        "paper_count",
        "flagged_sections",
        "total_tokens",
        "estimated_cost",
    ]
    list_filter = ["status"]
    readonly_fields = [
        "chart",
        "paper_count",
        "llm_calls",
        "prompt_tokens",
        "completion_tokens",
        "estimated_cost",
        "built_at",
        "build_count",
    ]
    inlines = [DigestSectionInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Digest]:
        return super().get_queryset(request).prefetch_related("sections")

    @admin.display(description="sections flagged")
    def flagged_sections(self, obj: Digest) -> int:
        return sum(1 for section in obj.sections.all() if section.flags)

    @admin.display(description="chart")
    def chart(self, obj: Digest) -> SafeString | str:
        if not obj.chart_png:
            return "-"
        url = reverse("digest-chart", args=[obj.date.isoformat()])
        return format_html('<img src="{}" alt="category chart" style="max-width:640px">', url)


@admin.register(LLMCall)
class LLMCallAdmin(admin.ModelAdmin):
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
