"""The list in the admin: find and filter readers, import and export CSV, read ESP events and
deliveries; and the audience's part of the digest's page.

Readers are added by import only (new addresses get a confirmation email, or are recorded as
confirmed with a consent note), never by the plain add form, which would skip consent.

The Digest admin registered here extends the content app's (digests.admin.DigestAdmin): the
recipients and sent columns of the list, the email's preview and test send, the deliveries
panel and the dashboard's charts (subscribers/admin_views/).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Exists, OuterRef, QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils import timezone
from django.utils.text import Truncator
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from digests.admin import DigestAdmin as ContentDigestAdmin
from digests.admin_views.readonly import ReadOnlyModelAdmin
from digests.approval import local_time_label
from digests.models import Digest

from .admin_views import dashboard, deliveries, preview
from .channels.services import ChannelRefused, channel_test_post, webhook_kind
from .csv_io import (
    IMPORT_MAX_BYTES,
    ImportFileError,
    csv_lines,
    subscribers_csv_rows,
    subscribers_import,
)
from .keywords import KeywordError, rules_make
from .models import Channel, ChannelDelivery, Delivery, EmailEvent, Notice, Subscriber
from .sending.ledger import deliveries_count
from .tasks import confirmation_emails_enqueue, send_due_now

HISTORY_FIELDS = (
    "confirmation_sent_at",
    "confirmed_at",
    "unsubscribed_at",
    "soft_bounce_count",
    "suppressed_at",
    "suppressed_reason",
    "created_at",
    "updated_at",
)
CONSENT_FIELDS = (
    "consent_at",
    "consent_source",
    "consent_wording_version",
    "consent_ip",
    "consent_note",
)


class SubscriberImportForm(forms.Form):
    file = forms.FileField(
        label=_("CSV file"),
        allow_empty_file=True,  # the import explains an empty file in its own words
    )
    confirmed = forms.BooleanField(
        required=False,
        label=_("Mark as confirmed"),
        help_text=_(
            "Only for people who already agreed to receive the newsletter elsewhere. "
            "Otherwise each new address is pending and gets a confirmation email."
        ),
    )
    consent_note = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        label=_("Consent note"),
        help_text=_("Required with “Mark as confirmed”: where, when and how these people agreed."),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Built per form, in the editor's language, with the languages offered now.
        self.fields["file"].help_text = gettext(
            "UTF-8, with a header line: email, and optionally categories (slugs separated "
            "by ';') and language (%(languages)s). Without categories, a reader gets every "
            "active one."
        ) % {"languages": ", ".join(code for code, _name in settings.LANGUAGES)}

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if upload.size > IMPORT_MAX_BYTES:
            raise forms.ValidationError(
                gettext("The file is larger than %(mb)s MB.")
                % {"mb": IMPORT_MAX_BYTES // (1024 * 1024)}
            )
        return upload

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("confirmed") and not cleaned.get("consent_note", "").strip():
            self.add_error(
                "consent_note",
                gettext(
                    "A confirmed import needs a consent note: where, when and how they agreed."
                ),
            )
        return cleaned


@admin.action(description=_("Export selected subscribers as CSV"))
def export_csv(
    modeladmin: SubscriberAdmin, request: HttpRequest, queryset: QuerySet[Subscriber]
) -> StreamingHttpResponse:
    return subscribers_csv_response(queryset)


def subscribers_csv_response(queryset: QuerySet[Subscriber]) -> StreamingHttpResponse:
    subscribers = queryset.order_by("created_at", "pk").prefetch_related("categories")
    rows = subscribers_csv_rows(subscribers=subscribers.iterator(chunk_size=2000))
    response = StreamingHttpResponse(csv_lines(rows), content_type="text/csv; charset=utf-8")
    filename = f"subscribers-{timezone.localdate().isoformat()}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@admin.register(Subscriber)
class SubscriberAdmin(admin.ModelAdmin):
    list_display = ["email", "status", "category_list", "confirmed_at", "created_at"]
    list_filter = ["status", "categories"]
    search_fields = ["email"]
    date_hierarchy = "created_at"
    actions = [export_csv]
    filter_horizontal = ["categories"]
    exclude = ["confirm_nonce"]
    readonly_fields = ["email", *CONSENT_FIELDS, *HISTORY_FIELDS]
    fieldsets = [
        (None, {"fields": ["email", "status", "categories", "language"]}),
        (_("Consent"), {"fields": list(CONSENT_FIELDS)}),
        (_("History"), {"fields": list(HISTORY_FIELDS)}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Subscriber]:
        return super().get_queryset(request).prefetch_related("categories")

    @admin.display(description=_("categories"))
    def category_list(self, obj: Subscriber) -> str:
        return ", ".join(category.name for category in obj.categories.all())

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # by import, which records consent or sends a confirmation email

    def get_urls(self) -> list[URLPattern]:
        urls = [
            path(
                "import-csv/",
                self.admin_site.admin_view(self.import_view),
                name="subscribers_subscriber_import",
            ),
            path(
                "export-csv/",
                self.admin_site.admin_view(self.export_view),
                name="subscribers_subscriber_export",
            ),
        ]
        return urls + super().get_urls()

    def export_view(self, request: HttpRequest) -> HttpResponseBase:
        if not self.has_view_permission(request):
            raise PermissionDenied
        return subscribers_csv_response(Subscriber.objects.all())

    def import_view(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm("subscribers.add_subscriber"):
            raise PermissionDenied
        form = SubscriberImportForm(request.POST or None, request.FILES or None)
        report = file_error = None
        if request.method == "POST" and form.is_valid():
            try:
                report = subscribers_import(
                    data=form.cleaned_data["file"].read(),
                    confirmed=form.cleaned_data["confirmed"],
                    consent_note=form.cleaned_data["consent_note"],
                    imported_by=request.user.get_username(),
                )
                confirmation_emails_enqueue(report.to_confirm)
            except ImportFileError as err:
                file_error = str(err)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": gettext("Import subscribers from CSV"),
            "form": form,
            "report": report,
            "file_error": file_error,
        }
        return TemplateResponse(request, "admin/subscribers/subscriber/import_csv.html", context)


@admin.register(EmailEvent)
class EmailEventAdmin(ReadOnlyModelAdmin):
    """What the ESPs reported, as received: for reading, never for editing."""

    list_display = [
        "received_at",
        "esp",
        "event_type",
        "recipient",
        "reject_reason",
        "occurred_at",
        "applied_at",
    ]
    list_filter = ["esp", "event_type"]
    search_fields = ["recipient", "event_id"]


NOTICE_FIELDS = (
    "key",
    "kind",
    "subject",
    "body",
    "recipients",
    "created_at",
    "emailed_at",
    "webhook_at",
    "error",
)


@admin.register(Notice)
class NoticeAdmin(ReadOnlyModelAdmin):
    """What the editors were told and when (subscribers/notices.py): for reading only."""

    list_display = ["created_at", "kind", "subject", "emailed_at", "webhook_at", "error_shown"]
    list_filter = ["kind"]
    search_fields = ["subject", "key"]
    readonly_fields = NOTICE_FIELDS
    fields = NOTICE_FIELDS

    @admin.display(description=_("error"))
    def error_shown(self, obj: Notice) -> str:
        return Truncator(obj.error).chars(120)


class DigestListFilter(admin.RelatedFieldListFilter):
    """The issues that have deliveries, without loading each issue's chart image."""

    def field_choices(self, field: Any, request: HttpRequest, model_admin: Any) -> list[Any]:
        sent = Delivery.objects.filter(digest=OuterRef("pk"))
        digests = Digest.objects.filter(Exists(sent)).only("pk", "title", "date")
        return [(digest.pk, str(digest)) for digest in digests.order_by("-date")]


DELIVERY_COLUMNS = (
    "digest",
    "email",
    "status",
    "attempts",
    "sent_at",
    "opened_at",
    "clicked_at",
    "error_shown",
)


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyModelAdmin):
    """Each reader's copy of each issue, as the send engine recorded it: for reading only (the
    engine alone changes a delivery; an editor resends the unknown from the digest's page).

    Readers' addresses are for those who may see subscribers (editors), not for viewers."""

    list_display = DELIVERY_COLUMNS
    list_filter = ["status", ("digest", DigestListFilter)]
    search_fields = ["email"]
    # Counting every delivery of every issue on each page is slow with 100,000 readers.
    show_full_result_count = False

    @admin.display(description=_("error"))
    def error_shown(self, obj: Delivery) -> str:
        return Truncator(obj.error).chars(120)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Delivery]:
        return super().get_queryset(request).select_related("digest").defer("digest__chart_png")

    def get_list_display(self, request: HttpRequest) -> tuple[str, ...]:
        if addresses_visible(request):
            return DELIVERY_COLUMNS
        return tuple(column for column in DELIVERY_COLUMNS if column != "email")

    def get_list_display_links(self, request: HttpRequest, list_display: Any) -> Any:
        if addresses_visible(request):
            return super().get_list_display_links(request, list_display)
        return None  # a delivery's page names its reader

    def get_search_fields(self, request: HttpRequest) -> list[str]:
        return list(self.search_fields) if addresses_visible(request) else []

    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        allowed = super().has_view_permission(request, obj)
        return allowed and (obj is None or addresses_visible(request))


def addresses_visible(request: HttpRequest) -> bool:
    """Whether the user may see readers' addresses (editors may; viewers may not)."""
    return bool(request.user.has_perm("subscribers.view_subscriber"))


# --- The digest's page, with its deliveries ---------------------------------------------------


class DigestAdmin(ContentDigestAdmin):
    """The content app's digest admin, with what readers get: the email's preview and test
    send, the deliveries, and the recipients and sent columns of the list."""

    change_form_template = "admin/subscribers/digest/change_form.html"
    list_display = [*ContentDigestAdmin.list_display, "recipients", "sent"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Digest]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                recipient_count=deliveries_count(),
                sent_count=deliveries_count(Delivery.Status.SENT),
            )
        )

    @admin.display(description=_("recipients"))
    def recipients(self, obj: Digest) -> int:
        return getattr(obj, "recipient_count", None) or 0

    @admin.display(description=_("sent"))
    def sent(self, obj: Digest) -> str:
        count = getattr(obj, "sent_count", None) or 0
        if obj.sent_at:
            return f"{count} ({local_time_label(obj.sent_at)})"
        return str(count)

    def get_urls(self) -> list[URLPattern]:
        own = [
            *preview.urlpatterns(self),
            *deliveries.urlpatterns(self),
            *dashboard.urlpatterns(self),
        ]
        return own + super().get_urls()

    def change_page_context(self, request: HttpRequest, digest: Digest) -> dict[str, Any]:
        return {
            **super().change_page_context(request, digest),
            **preview.sending_context(request, digest),
            **deliveries.deliveries_context(request, digest),
        }

    def send_now_start(self) -> bool:
        send_due_now()
        return True


admin.site.unregister(Digest)
admin.site.register(Digest, DigestAdmin)


# --- Team chats ---------------------------------------------------------------------------------


class ChannelAdminForm(forms.ModelForm):
    """A channel staff add: Slack and Discord by their webhook (the same hosts a reader may
    use), Telegram by the chat's id; the language one of those offered."""

    language = forms.ChoiceField(label=_("language"))
    # Checked against the hosts a webhook may have (webhook_kind), not as any URL.
    url = forms.CharField(label=_("webhook URL"), max_length=500, required=False)

    class Meta:
        model = Channel
        fields = [
            "kind",
            "name",
            "url",
            "chat_id",
            "status",
            "categories",
            "language",
            "cadence",
            "keywords_include",
            "keywords_exclude",
            "keywords_all_categories",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        codes = dict(settings.LANGUAGES)
        offered = [code for code in dict.fromkeys(settings.DIGEST_LANGUAGES) if code in codes]
        field = self.fields["language"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [(code, codes[code]) for code in offered]
        if not self.instance.pk:
            self.initial.setdefault("language", offered[0] if offered else "")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        kind = cleaned.get("kind")
        if kind == Channel.Kind.TELEGRAM:
            self._telegram_clean(cleaned)
        elif kind:
            self._webhook_clean(cleaned, kind)
        try:
            rules_make(
                include=cleaned.get("keywords_include") or "",
                exclude=cleaned.get("keywords_exclude") or "",
                all_categories=bool(cleaned.get("keywords_all_categories")),
            )
        except KeywordError as error:
            self.add_error("keywords_include", error.messages)
        return cleaned

    def _telegram_clean(self, cleaned: dict[str, Any]) -> None:
        chat_id = str(cleaned.get("chat_id") or "").strip()
        if not chat_id.lstrip("-").isdigit():
            self.add_error(
                "chat_id", gettext("A Telegram chat id is a number, e.g. -1001234567890.")
            )
        if cleaned.get("url"):
            self.add_error("url", gettext("A Telegram chat has no webhook address."))
        cleaned["chat_id"] = chat_id

    def _webhook_clean(self, cleaned: dict[str, Any], kind: str) -> None:
        url = str(cleaned.get("url") or "").strip()
        try:
            if webhook_kind(url) != kind:
                self.add_error("kind", gettext("The webhook address is not of this kind."))
        except ChannelRefused as refused:
            self.add_error("url", str(refused.message))
        if cleaned.get("chat_id"):
            self.add_error("chat_id", gettext("Only a Telegram channel has a chat id."))


@admin.action(description=_("Post a test message"))
def post_test_message(
    modeladmin: ChannelAdmin, request: HttpRequest, queryset: QuerySet[Channel]
) -> None:
    for channel in queryset[:50]:
        result = channel_test_post(channel=channel)
        if result.ok:
            modeladmin.message_user(
                request, gettext("%(channel)s: posted.") % {"channel": channel}, messages.SUCCESS
            )
        else:
            modeladmin.message_user(
                request,
                gettext("%(channel)s: not posted (%(error)s).")
                % {"channel": channel, "error": Truncator(result.error).chars(200)},
                messages.ERROR,
            )


CHANNEL_HISTORY_FIELDS = (
    "subscriber",
    "confirm_sent_at",
    "confirmed_at",
    "suppressed_at",
    "suppressed_reason",
    "created_at",
    "updated_at",
)


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    """Team chats: staff add Slack and Discord webhooks and Telegram chats here, active at once
    (a reader's own, from the preferences page, wait for the test message's code). The list
    shows where a channel posts without the webhook's secret part."""

    form = ChannelAdminForm
    list_display = [
        "channel_name",
        "kind",
        "destination_shown",
        "status",
        "cadence",
        "language",
        "categories_count",
        "created_at",
    ]
    list_filter = ["kind", "status", "cadence"]
    search_fields = ["name", "chat_id"]
    filter_horizontal = ["categories"]
    actions = [post_test_message]
    readonly_fields = CHANNEL_HISTORY_FIELDS
    fieldsets = [
        (None, {"fields": ["kind", "name", "url", "chat_id", "status"]}),
        (_("What it gets"), {"fields": ["categories", "language", "cadence"]}),
        (
            _("Keywords"),
            {"fields": ["keywords_include", "keywords_exclude", "keywords_all_categories"]},
        ),
        (_("History"), {"fields": list(CHANNEL_HISTORY_FIELDS)}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Channel]:
        queryset = super().get_queryset(request).select_related("subscriber")
        return queryset.annotate(categories_total=Count("categories"))

    @admin.display(description=_("name"), ordering="name")
    def channel_name(self, obj: Channel) -> str:
        return obj.name or obj.get_kind_display()

    @admin.display(description=_("destination"))
    def destination_shown(self, obj: Channel) -> str:
        return obj.destination

    @admin.display(description=_("categories"), ordering="categories_total")
    def categories_count(self, obj: Channel) -> int:
        return getattr(obj, "categories_total", None) or 0

    def save_model(self, request: HttpRequest, obj: Channel, form: Any, change: bool) -> None:
        obj.keywords_key = rules_make(
            include=obj.keywords_include,
            exclude=obj.keywords_exclude,
            all_categories=obj.keywords_all_categories,
        ).key
        if not change and obj.status == Channel.Status.ACTIVE:
            obj.confirmed_at = timezone.now()
        super().save_model(request, obj, form, change)


CHANNEL_DELIVERY_COLUMNS = (
    "digest",
    "kind",
    "destination",
    "status",
    "parts",
    "attempts",
    "sent_at",
    "error_shown",
)


@admin.register(ChannelDelivery)
class ChannelDeliveryAdmin(ReadOnlyModelAdmin):
    """Each channel's copy of each issue, as the send engine recorded it: for reading only."""

    list_display = CHANNEL_DELIVERY_COLUMNS
    list_filter = ["status", "kind"]
    search_fields = ["destination"]
    show_full_result_count = False

    @admin.display(description=_("parts"))
    def parts(self, obj: ChannelDelivery) -> str:
        return f"{obj.parts_sent}/{obj.parts_total}"

    @admin.display(description=_("error"))
    def error_shown(self, obj: ChannelDelivery) -> str:
        return Truncator(obj.error).chars(120)

    def get_queryset(self, request: HttpRequest) -> QuerySet[ChannelDelivery]:
        queryset = super().get_queryset(request).select_related("digest")
        return queryset.defer("digest__chart_png")
