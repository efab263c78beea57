"""Preview, send a test, approve with a send time, cancel: an issue's way out, from the admin.

- Preview (`<id>/preview/`, view permission on Digest): the email of a choice of categories, or
  of one reader (by address, for those who may see readers: their categories, language and
  real personal links), in a language; its subject, its HTML at desktop and mobile width (in
  sandboxed iframes loaded from `<id>/preview/email/`, the chart as a data: URI), its plain
  text, and the size of its HTML as that reader receives it against Gmail's 102 KB clipping.
- Send a test (`<id>/send-test/`, POST, `digests.send_test_digest`): the same message a
  delivery sends (rendering, inline chart, List-Unsubscribe headers) through EMAIL_BACKEND, the
  subject prefixed "[TEST] ", to at most 10 addresses; no Delivery rows.
- Approve (`<id>/approve/`, POST, `digests.approve_digest`): for a send time in
  DIGEST_SEND_TIMEZONE, or now; refused when the issue changed since the page was opened.
- Cancel (`<id>/unapprove/`, same permission): back to draft, the scheduled send cancelled.

Every test send, approval and cancellation is written to the admin log. The functions above the
views hold the work and take no request; the views check permissions, read forms and report.
"""

from __future__ import annotations

import base64
import contextlib
import re
import smtplib
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any
from urllib.parse import urlencode

from anymail.exceptions import AnymailError
from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import get_connection
from django.core.validators import validate_email
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_GET, require_POST

from digests.approval import (
    ApprovalRefused,
    auto_approve_time,
    digest_approve,
    digest_unapprove,
    local_time_label,
    next_send_time,
    send_timezone,
)
from digests.editing import admin_log
from digests.models import Category, Digest
from subscribers import delivery, rendering
from subscribers.models import Subscriber

# Gmail shows "[Message clipped]" and hides the rest (the unsubscribe link with it) once the
# HTML part is larger than this.
GMAIL_CLIP_BYTES = 102 * 1024
NEAR_CLIP_BYTES = 90 * 1024
TEST_ADDRESSES_MAX = 10
TEST_PREFIX = "[TEST] "
DATETIME_LOCAL = "%Y-%m-%dT%H:%M"
LANGUAGE_CHOICES = [
    ("", "the reader's (Korean for categories)"),
    ("ko", "Korean"),
    ("en", "English"),
]
# What an ESP or a mail server raises when a message cannot be sent (SMTPException is an OSError).
SEND_ERRORS = (AnymailError, smtplib.SMTPException, OSError)
# The preview's email is shown framed and sandboxed; opened on its own it is sandboxed too.
PREVIEW_CSP = (
    "default-src 'none'; img-src data: https: http:; style-src 'unsafe-inline' https:; "
    "font-src https: data:; sandbox allow-popups allow-popups-to-escape-sandbox"
)
_HEAD = re.compile(r"<head(\s[^>]*)?>", re.IGNORECASE)


# --- What is shown and sent ---------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    """Which email: the variant (a choice of categories) and language, and whose it is."""

    key: str
    language: str
    subscriber: Subscriber | None = None


@dataclass(frozen=True)
class EmailPreview:
    subject: str
    html: str  # personalised as sent, the chart at cid:<chart_cid>
    text: str
    chart_png: bytes
    chart_cid: str
    empty: bool  # no section for the choice: the short note

    @property
    def html_bytes(self) -> int:
        return len(self.html.encode("utf-8"))

    @property
    def html_kb(self) -> str:
        return f"{self.html_bytes / 1024:.1f}"

    @property
    def chart_kb(self) -> str:
        return f"{len(self.chart_png) / 1024:.1f}"

    @property
    def clipped(self) -> bool:
        return self.html_bytes > GMAIL_CLIP_BYTES

    @property
    def near_clip(self) -> bool:
        return NEAR_CLIP_BYTES < self.html_bytes <= GMAIL_CLIP_BYTES

    def html_for_browser(self) -> str:
        """The HTML with the chart inline (a data: URI for its cid:) and links opening outside
        the preview frame."""
        data = base64.b64encode(self.chart_png).decode("ascii")
        html = self.html.replace(f"cid:{self.chart_cid}", f"data:image/png;base64,{data}")
        return _HEAD.sub(lambda head: head.group(0) + '<base target="_blank">', html, count=1)


@dataclass
class SendTestReport:
    sent: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # address -> why


def section_category_ids(digest: Digest) -> list[int]:
    """The categories with a section in the issue, in the editor's order: the default choice."""
    sections = digest.sections.order_by("position", "pk")
    return list(sections.values_list("category_id", flat=True))


def category_choices(digest: Digest) -> list[tuple[int, str]]:
    """Every active category and any with a section in the issue, marked when it has none."""
    with_section = set(section_category_ids(digest))
    shown = Category.objects.filter(active=True) | Category.objects.filter(pk__in=with_section)
    return [
        (c.pk, c.name if c.pk in with_section else f"{c.name} (no section in this issue)")
        for c in shown.distinct().order_by("position", "name")
    ]


def reader_choice(*, subscriber: Subscriber, language: str = "") -> Choice:
    ids = subscriber.categories.values_list("pk", flat=True)
    return Choice(rendering.variant_key(ids), language or subscriber.language, subscriber)


def personal_links(subscriber: Subscriber | None) -> dict[str, str]:
    """The reader's own links, as their email has them; without a reader, links of the same
    length that open nothing (an unsaved reader's tokens name no one)."""
    return delivery.personal_links(subscriber or Subscriber(email="preview@example.invalid"))


def variant_render(*, digest: Digest, choice: Choice) -> tuple[rendering.RenderedVariant, str]:
    """The choice's email as the send engine renders it, and the Content-ID of its chart."""
    content = rendering.digest_context(digest=digest)
    cid = rendering.chart_cid_make(digest_id=digest.pk, key=choice.key)
    rendered = rendering.variant_render(
        content=content, key=choice.key, language=choice.language, chart_cid=cid
    )
    return rendered, cid


def email_preview(*, digest: Digest, choice: Choice) -> EmailPreview:
    """The email of the choice as its reader receives it (the render a delivery uses)."""
    variant, cid = variant_render(digest=digest, choice=choice)
    links = personal_links(choice.subscriber)
    return EmailPreview(
        subject=variant.subject,
        html=rendering.personalise_html(variant.html, links),
        text=rendering.personalise_text(variant.text, links),
        chart_png=variant.chart_png,
        chart_cid=cid,
        empty=variant.empty,
    )


def _reason(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:500]


def digest_test_send(*, digest: Digest, choice: Choice, addresses: list[str]) -> SendTestReport:
    """The message a delivery sends, built by the same code, to each address, with "[TEST] "
    before its subject. An address that is a reader's gets that reader's working links; any
    other gets links that open nothing. No Delivery row is made; ESP errors are reported."""
    rendered, cid = variant_render(digest=digest, choice=choice)
    known = Subscriber.objects.filter(email__in=[a.lower() for a in addresses])
    readers = {s.email.lower(): s for s in known}
    connection = get_connection()
    context = delivery.SendContext(
        digest=digest,
        claim="",
        rendered=rendered,
        chart_cid=cid,
        report=delivery.ChunkReport(),
        connection=connection,
    )
    report = SendTestReport()
    try:
        connection.open()
        for address in addresses:
            reader = readers.get(address.lower()) or Subscriber(email=address)
            recipient = delivery.Recipient(0, address, choice.key, choice.language, reader)
            message = delivery.single_message(context, recipient)
            message.subject = TEST_PREFIX + message.subject
            try:
                connection.send_messages([message])
            except SEND_ERRORS as error:
                report.failed[address] = _reason(error)
            else:
                report.sent.append(address)
    except SEND_ERRORS as error:  # the connection itself could not be opened
        for address in addresses:
            if address not in report.sent:
                report.failed.setdefault(address, _reason(error))
    finally:
        with contextlib.suppress(*SEND_ERRORS):  # what was sent is sent, the rest reported
            connection.close()
    return report


def category_names(ids: list[int]) -> list[str]:
    return list(
        Category.objects.filter(pk__in=ids)
        .order_by("position", "name")
        .values_list("name", flat=True)
    )


def choice_label(choice: Choice, *, reader_named: bool) -> str:
    """The choice in words; the reader's address only where `reader_named` (not in the log,
    which Viewers read)."""
    names = ", ".join(category_names(sorted(rendering.variant_ids(choice.key)))) or "none"
    if choice.subscriber is not None:
        who = choice.subscriber.email if reader_named else f"reader #{choice.subscriber.pk}"
        return f"as {who} (categories: {names}; language: {choice.language})"
    return f"categories: {names}; language: {choice.language}"


# --- Forms --------------------------------------------------------------------------------------


def addresses_parse(raw: str) -> list[str]:
    """Addresses separated by commas, semicolons, spaces or lines; each checked, repeats dropped,
    at most TEST_ADDRESSES_MAX."""
    found: dict[str, str] = {}
    for part in re.split(r"[\s,;]+", raw):
        if part:
            found.setdefault(part.lower(), part)
    addresses = list(found.values())
    if not addresses:
        raise ValidationError("Give at least one address to send the test to.")
    bad = []
    for address in addresses:
        try:
            validate_email(address)
        except ValidationError:
            bad.append(address)
    if bad:
        raise ValidationError(f"Not an email address: {', '.join(bad)}.")
    if len(addresses) > TEST_ADDRESSES_MAX:
        raise ValidationError(
            f"At most {TEST_ADDRESSES_MAX} addresses at a time (you gave {len(addresses)})."
        )
    return addresses


class ChoiceForm(forms.Form):
    """Which email to show or send: categories, or one reader; and the language."""

    categories = forms.TypedMultipleChoiceField(
        coerce=int, required=False, widget=forms.CheckboxSelectMultiple
    )
    subscriber = forms.EmailField(
        required=False,
        label="or as the reader",
        help_text="A reader's address: their categories, language and personal links.",
    )
    language = forms.ChoiceField(required=False, choices=LANGUAGE_CHOICES)

    def __init__(self, *args: Any, digest: Digest, readers_visible: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        categories = self.fields["categories"]
        assert isinstance(categories, forms.TypedMultipleChoiceField)
        categories.choices = category_choices(digest)
        categories.initial = section_category_ids(digest)
        if not readers_visible:
            del self.fields["subscriber"]

    def clean_subscriber(self) -> Subscriber | None:
        email = self.cleaned_data.get("subscriber")
        if not email:
            return None
        reader = Subscriber.objects.filter(email__iexact=email.strip()).first()
        if reader is None:
            raise ValidationError(f"No reader has the address {email}.")
        return reader

    def choice(self) -> Choice:
        language = self.cleaned_data.get("language") or ""
        reader = self.cleaned_data.get("subscriber")
        if reader is not None:
            return reader_choice(subscriber=reader, language=language)
        key = rendering.variant_key(self.cleaned_data.get("categories") or [])
        return Choice(key, language or settings.LANGUAGE_CODE)


class SendTestForm(ChoiceForm):
    # Not `required`: addresses_parse says what is missing in the words of this page.
    addresses = forms.CharField(required=False, label="to", widget=forms.Textarea({"rows": 2}))

    def clean_addresses(self) -> list[str]:
        return addresses_parse(self.cleaned_data.get("addresses") or "")


class ApproveForm(forms.Form):
    """A send time read in DIGEST_SEND_TIMEZONE (validate under `timezone.override`), or now;
    and the version of the issue the editor saw."""

    send_at = forms.DateTimeField(
        required=False,
        input_formats=[DATETIME_LOCAL, "%Y-%m-%dT%H:%M:%S"],
        widget=forms.DateTimeInput({"type": "datetime-local"}, format=DATETIME_LOCAL),
    )
    send_now = forms.BooleanField(required=False)
    version = forms.IntegerField(min_value=1)

    def __init__(self, *args: Any, now: datetime, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.now = now
        if self.is_bound and self.data.get("send_now"):
            del self.fields["send_at"]  # "send now" uses now, whatever the time field says

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("send_now"):
            cleaned["send_at"] = self.now
            return cleaned
        send_at = cleaned.get("send_at")
        if send_at is None and "send_at" not in self.errors:
            raise ValidationError("Choose a send time, or approve with “Approve and send now”.")
        if send_at is not None and send_at < self.now:
            raise ValidationError(
                f"Not approved: the send time {local_time_label(send_at)} has passed. Choose a "
                "later time, or use “Approve and send now” to send it at once."
            )
        return cleaned


def form_errors(form: forms.Form) -> list[str]:
    found = []
    for name, errors in form.errors.items():
        label = "" if name == "__all__" else f"{form.fields[name].label or name}: "
        found += [f"{label}{error}" for error in errors]
    return found


# --- The panel on the digest's page ---------------------------------------------------------------


def test_addresses_default(request: HttpRequest) -> list[str]:
    own = getattr(request.user, "email", "") or ""
    found: dict[str, str] = {}
    for address in [own, *settings.DIGEST_TEST_ADDRESSES]:
        if address:
            found.setdefault(address.lower(), address)
    return list(found.values())


def auto_approve_note(digest: Digest) -> str:
    """What DIGEST_AUTO_APPROVE will do with a draft, in words ("" when it is off)."""
    if not settings.DIGEST_AUTO_APPROVE or digest.status != Digest.Status.DRAFT:
        return ""
    if digest.reviewed_at is not None:
        return "An editor has acted on this issue: it will not be approved automatically."
    if digest.built_at is None:
        return ""
    at = local_time_label(auto_approve_time(built_at=digest.built_at))
    return f"Automatic approval is on: unless someone acts, this issue is approved at {at}."


def _url(site_name: str, name: str, digest: Digest) -> str:
    return reverse(f"{site_name}:digests_digest_{name}", args=[digest.pk])


def workflow_context(request: HttpRequest, digest: Digest) -> dict[str, Any]:
    """The workflow panel of the digest's page (templates/admin/digests/digest/_workflow.html)."""
    site_name = getattr(request.resolver_match, "namespace", "") or "admin"
    user = request.user
    has_sections = digest.sections.exists()
    draft = digest.status == Digest.Status.DRAFT
    panel = {
        "status": digest.get_status_display(),
        "draft": draft,
        "approved": digest.status == Digest.Status.APPROVED,
        "zone": settings.DIGEST_SEND_TIMEZONE,
        "send_at": local_time_label(digest.send_at) if digest.send_at else "",
        "send_at_passed": bool(digest.send_at and digest.send_at <= timezone.now()),
        "approved_at": local_time_label(digest.approved_at) if digest.approved_at else "",
        "approved_by": digest.approved_by,
        "auto_approved": digest.auto_approved,
        "sent_at": local_time_label(digest.sent_at) if digest.sent_at else "",
        "auto_note": auto_approve_note(digest),
        "has_sections": has_sections,
        "version": digest.version,
        "preview_url": _url(site_name, "preview", digest),
        "approve_url": _url(site_name, "approve", digest),
        "unapprove_url": _url(site_name, "unapprove", digest),
        "send_test_url": _url(site_name, "send_test", digest),
        "can_approve": draft and has_sections and user.has_perm("digests.approve_digest"),
        "can_cancel": digest.status == Digest.Status.APPROVED
        and user.has_perm("digests.approve_digest"),
        # The page of an issue being sent or sent is read-only: its tests go from the preview.
        "can_send_test": (draft or digest.status == Digest.Status.APPROVED)
        and has_sections
        and user.has_perm("digests.send_test_digest"),
        "send_at_default": next_send_time().astimezone(send_timezone()).strftime(DATETIME_LOCAL),
        "test_addresses": "\n".join(test_addresses_default(request)),
        "category_ids": section_category_ids(digest),
        "languages": LANGUAGE_CHOICES[1:],
        "default_language": settings.LANGUAGE_CODE,
        "next": request.get_full_path(),
    }
    return {"workflow": panel}


# --- Views --------------------------------------------------------------------------------------
# Each takes the DigestAdmin as `model_admin` (bound in `urlpatterns`).


def _digest(model_admin: Any, request: HttpRequest, digest_id: int) -> Digest:
    digest = Digest.objects.defer("chart_png").filter(pk=digest_id).first()
    if digest is None:
        raise Http404("No such issue.")
    if not model_admin.has_view_permission(request, digest):
        raise PermissionDenied
    return digest


def _require(request: HttpRequest, permission: str) -> None:
    if not request.user.has_perm(permission):
        raise PermissionDenied


def _choice_form(request: HttpRequest, digest: Digest, data: Any, form_class: Any) -> Any:
    readers_visible = request.user.has_perm("subscribers.view_subscriber")
    if data is not None and data.get("subscriber") and not readers_visible:
        raise PermissionDenied  # readers' addresses are not for this user
    return form_class(data, digest=digest, readers_visible=readers_visible)


def _change_url(model_admin: Any, digest: Digest) -> str:
    return _url(model_admin.admin_site.name, "change", digest)


def _back(request: HttpRequest, fallback: str) -> HttpResponseRedirect:
    """To the page the form was on (`next`), if it is one of this site's, else `fallback`."""
    wanted = request.POST.get("next", "")
    safe = url_has_allowed_host_and_scheme(
        wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return HttpResponseRedirect(wanted if wanted and safe else fallback)


def _log(request: HttpRequest, digest: Digest, message: str) -> None:
    admin_log(user_id=int(request.user.pk or 0), obj=digest, message=message)


def choice_query(choice: Choice) -> str:
    """The preview's query string for a choice (the framed email is loaded with it)."""
    if choice.subscriber is not None:
        return urlencode({"subscriber": choice.subscriber.email, "language": choice.language})
    ids = sorted(rendering.variant_ids(choice.key))
    return urlencode({"categories": ids, "language": choice.language}, doseq=True)


@require_GET
def preview_view(request: HttpRequest, digest_id: int, *, model_admin: Any) -> HttpResponse:
    digest = _digest(model_admin, request, digest_id)
    form = _choice_form(request, digest, request.GET or None, ChoiceForm)
    if form.is_bound:
        choice = form.choice() if form.is_valid() else None
    else:  # the first visit: the whole issue, in the default language
        choice = Choice(rendering.variant_key(section_category_ids(digest)), settings.LANGUAGE_CODE)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": Digest._meta,
        "original": digest,
        "title": f"Preview: {digest}",
        "form": form,
        "limit_kb": GMAIL_CLIP_BYTES // 1024,
        "change_url": _change_url(model_admin, digest),
    }
    if choice is not None:
        context |= _preview_context(request, model_admin, digest, choice)
    return TemplateResponse(request, "admin/digests/preview/preview.html", context)


def _preview_context(
    request: HttpRequest, model_admin: Any, digest: Digest, choice: Choice
) -> dict[str, Any]:
    site_name = model_admin.admin_site.name
    reader = choice.subscriber
    return {
        "choice": choice,
        "choice_label": choice_label(choice, reader_named=True),
        "choice_ids": sorted(rendering.variant_ids(choice.key)),
        "reader_inactive": reader is not None and reader.status != Subscriber.Status.ACTIVE,
        "preview": email_preview(digest=digest, choice=choice),
        "skip_empty": settings.DELIVERY_EMPTY_POLICY == "skip",
        "email_url": f"{_url(site_name, 'preview_email', digest)}?{choice_query(choice)}",
        "can_send_test": request.user.has_perm("digests.send_test_digest"),
        "send_test_url": _url(site_name, "send_test", digest),
        "test_addresses": "\n".join(test_addresses_default(request)),
        "from_email": settings.DEFAULT_FROM_EMAIL,
        "next": request.get_full_path(),
    }


@require_GET
@xframe_options_sameorigin
def preview_email_view(request: HttpRequest, digest_id: int, *, model_admin: Any) -> HttpResponse:
    """The email's HTML alone, for the preview's iframes (same origin only, sandboxed)."""
    digest = _digest(model_admin, request, digest_id)
    form = _choice_form(request, digest, request.GET, ChoiceForm)
    if not form.is_valid():
        return HttpResponse("\n".join(form_errors(form)), status=400, content_type="text/plain")
    shown = email_preview(digest=digest, choice=form.choice())
    response = HttpResponse(shown.html_for_browser(), content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = PREVIEW_CSP
    return response


@require_POST
def send_test_view(request: HttpRequest, digest_id: int, *, model_admin: Any) -> HttpResponse:
    digest = _digest(model_admin, request, digest_id)
    _require(request, "digests.send_test_digest")
    form = _choice_form(request, digest, request.POST, SendTestForm)
    if not form.is_valid():
        for error in form_errors(form):
            messages.error(request, f"No test sent. {error}")
        return _back(request, _change_url(model_admin, digest))
    choice = form.choice()
    report = digest_test_send(
        digest=digest, choice=choice, addresses=form.cleaned_data["addresses"]
    )
    _test_report(request, digest, choice, report)
    return _back(request, _change_url(model_admin, digest))


def _test_report(
    request: HttpRequest, digest: Digest, choice: Choice, report: SendTestReport
) -> None:
    """The result for the editor (messages) and for the history (the admin log, which names
    no reader: Viewers read it)."""
    logged = choice_label(choice, reader_named=False)
    if report.sent:
        to = ", ".join(report.sent)
        messages.success(request, f"Test sent to {to} ({choice_label(choice, reader_named=True)}).")
        _log(request, digest, f"Sent a test ({logged}) to {to}.")
    for address, why in report.failed.items():
        messages.error(request, f"The test to {address} was not sent: {why}")
    if report.failed:
        _log(request, digest, f"A test ({logged}) to {', '.join(report.failed)} failed.")


def _send_due_enqueue() -> None:
    from subscribers.tasks import send_due_digests

    send_due_digests.delay()


@require_POST
def approve_view(request: HttpRequest, digest_id: int, *, model_admin: Any) -> HttpResponse:
    digest = _digest(model_admin, request, digest_id)
    _require(request, "digests.approve_digest")
    back = HttpResponseRedirect(_change_url(model_admin, digest))
    form = ApproveForm(request.POST, now=timezone.now())
    with timezone.override(send_timezone()):  # the time typed is a time in that zone
        valid = form.is_valid()
    if not valid:
        for error in form_errors(form):
            messages.error(request, error)
        return back
    try:
        digest = digest_approve(
            digest=digest,
            send_at=form.cleaned_data["send_at"],
            by=request.user.get_username(),
            version=form.cleaned_data["version"],
        )
    except ApprovalRefused as refused:
        messages.error(request, str(refused))
        return back
    assert digest.send_at is not None
    when = local_time_label(digest.send_at)
    soon = ""
    if form.cleaned_data.get("send_now"):
        # Start it now rather than at the beat's next minute (which would also start it, once:
        # the start is a conditional UPDATE). With eager tasks it runs within this request.
        transaction.on_commit(_send_due_enqueue)
        soon = " (now: the send has started)"
    messages.success(request, f"Approved: the issue of {digest.date} is sent at {when}{soon}.")
    _log(request, digest, f"Approved, to be sent at {when}.")
    return back


@require_POST
def unapprove_view(request: HttpRequest, digest_id: int, *, model_admin: Any) -> HttpResponse:
    digest = _digest(model_admin, request, digest_id)
    _require(request, "digests.approve_digest")
    back = HttpResponseRedirect(_change_url(model_admin, digest))
    was = local_time_label(digest.send_at) if digest.send_at else "no time"
    try:
        digest = digest_unapprove(digest=digest, by=request.user.get_username())
    except ApprovalRefused as refused:
        messages.error(request, str(refused))
        return back
    messages.success(
        request,
        f"Back to draft: the send scheduled for {was} is cancelled. Approve it again when it "
        "is ready.",
    )
    _log(request, digest, f"Cancelled the send scheduled for {was}: back to draft.")
    return back


VIEWS = [
    ("preview/", preview_view, "preview"),
    ("preview/email/", preview_email_view, "preview_email"),
    ("send-test/", send_test_view, "send_test"),
    ("approve/", approve_view, "approve"),
    ("unapprove/", unapprove_view, "unapprove"),
]


def urlpatterns(model_admin: Any) -> list[URLPattern]:
    site = model_admin.admin_site
    return [
        path(
            f"<int:digest_id>/{route}",
            site.admin_view(partial(view, model_admin=model_admin)),
            name=f"digests_digest_{name}",
        )
        for route, view, name in VIEWS
    ]
