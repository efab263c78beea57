"""Preview and send a test of an issue's email, from the digest's admin page.

- Preview (`<id>/preview/`, view permission on Digest): the email of a choice of categories, or
  of one reader (by address, for those who may see readers: their categories, language and
  real personal links), in a language; its subject, its HTML at desktop and mobile width (in
  sandboxed iframes loaded from `<id>/preview/email/`, the chart as a data: URI), its plain
  text, and the size of its HTML as that reader receives it against Gmail's 102 KB clipping.
- Send a test (`<id>/send-test/`, POST, `digests.send_test_digest`): the same message a
  delivery sends, through the transport a delivery uses, the subject prefixed "[TEST] ", to at
  most 10 addresses; no Delivery rows.

`email_preview` and `digest_test_send` are the only calls into the email module and the send
engine: what a reader gets is built there, by the code a delivery runs. Every test send is
written to the admin log. The functions above the views take no request; the views check
permissions, read forms and report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_GET, require_POST

from digests.admin_views.workflow import (
    change_url,
    digest_for,
    digest_url,
    form_errors,
    issue_urlpatterns,
    log,
    redirect_back,
)
from digests.models import Category, Digest
from subscribers import emails, rendering
from subscribers.models import Subscriber
from subscribers.sending import chunk

TEST_ADDRESSES_MAX = 10
LANGUAGE_CHOICES = [
    ("", _("the reader's (Korean for categories)")),
    ("ko", _("Korean")),
    ("en", _("English")),
    ("ja", _("Japanese")),
]
# The preview's email is shown framed and sandboxed; opened on its own it is sandboxed too.
PREVIEW_CSP = (
    "default-src 'none'; img-src data: https: http:; style-src 'unsafe-inline' https:; "
    "font-src https: data:; sandbox allow-popups allow-popups-to-escape-sandbox"
)


# --- What is shown and sent ---------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    """Which email: the variant (a choice of categories) and language, and whose it is."""

    key: str
    language: str
    subscriber: Subscriber | None = None


def section_category_ids(digest: Digest) -> list[int]:
    """The categories with a section in the issue, in the editor's order: the default choice."""
    sections = digest.sections.order_by("position", "pk")
    return list(sections.values_list("category_id", flat=True))


def category_choices(digest: Digest) -> list[tuple[int, str]]:
    """Every active category and any with a section in the issue, marked when it has none."""
    with_section = set(section_category_ids(digest))
    shown = Category.objects.filter(active=True) | Category.objects.filter(pk__in=with_section)
    return [
        (
            c.pk,
            c.name
            if c.pk in with_section
            else gettext("%(name)s (no section in this issue)") % {"name": c.name},
        )
        for c in shown.distinct().order_by("position", "name")
    ]


def reader_choice(*, subscriber: Subscriber, language: str = "") -> Choice:
    ids = subscriber.categories.values_list("pk", flat=True)
    key = rendering.variant_key(ids, subscriber.keywords_key)  # their keyword marks too
    return Choice(key, language or subscriber.language, subscriber)


# --- The send engine's email (the only calls into emails and the send path) ------------------


def email_preview(*, digest: Digest, choice: Choice) -> emails.EmailPreview:
    """The email of the choice as its reader receives it, from the pieces a send uses. Without
    a reader, the links are of the same length and open nothing (an unsaved reader's tokens
    name no one)."""
    email = emails.digest_email(digest=digest, key=choice.key, language=choice.language)
    reader = choice.subscriber or Subscriber(email="preview@example.invalid")
    return emails.digest_preview(email, links=emails.personal_links(reader), to=reader.email)


def digest_test_send(
    *, digest: Digest, choice: Choice, addresses: list[str]
) -> chunk.TestSendReport:
    """The test messages through the transport a send uses. No Delivery row is made; ESP
    errors are reported."""
    return chunk.digest_test_send(
        digest=digest, key=choice.key, language=choice.language, addresses=addresses
    )


def category_names(ids: list[int]) -> list[str]:
    return list(
        Category.objects.filter(pk__in=ids)
        .order_by("position", "name")
        .values_list("name", flat=True)
    )


def choice_label(choice: Choice, *, reader_named: bool) -> str:
    """The choice in words; the reader's address only where `reader_named` (not in the log,
    which Viewers read)."""
    ids = sorted(rendering.variant_ids(choice.key))
    names = ", ".join(category_names(ids)) or gettext("none")
    if choice.subscriber is not None:
        who = choice.subscriber.email
        if not reader_named:
            who = gettext("reader #%(pk)s") % {"pk": choice.subscriber.pk}
        return gettext("as %(who)s (categories: %(names)s; language: %(language)s)") % {
            "who": who,
            "names": names,
            "language": choice.language,
        }
    return gettext("categories: %(names)s; language: %(language)s") % {
        "names": names,
        "language": choice.language,
    }


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
        raise ValidationError(gettext("Give at least one address to send the test to."))
    bad = []
    for address in addresses:
        try:
            validate_email(address)
        except ValidationError:
            bad.append(address)
    if bad:
        raise ValidationError(
            gettext("Not an email address: %(addresses)s.") % {"addresses": ", ".join(bad)}
        )
    if len(addresses) > TEST_ADDRESSES_MAX:
        raise ValidationError(
            gettext("At most %(max)s addresses at a time (you gave %(count)s).")
            % {"max": TEST_ADDRESSES_MAX, "count": len(addresses)}
        )
    return addresses


class ChoiceForm(forms.Form):
    """Which email to show or send: categories, or one reader; and the language."""

    categories = forms.TypedMultipleChoiceField(
        coerce=int, required=False, widget=forms.CheckboxSelectMultiple
    )
    subscriber = forms.EmailField(
        required=False,
        label=_("or as the reader"),
        help_text=_("A reader's address: their categories, language and personal links."),
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
            raise ValidationError(
                gettext("No reader has the address %(email)s.") % {"email": email}
            )
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
    addresses = forms.CharField(required=False, label=_("to"), widget=forms.Textarea({"rows": 2}))

    def clean_addresses(self) -> list[str]:
        return addresses_parse(self.cleaned_data.get("addresses") or "")


# --- The preview link and the test form on the digest's page -------------------------------------


def test_addresses_default(request: HttpRequest) -> list[str]:
    own = getattr(request.user, "email", "") or ""
    found: dict[str, str] = {}
    for address in [own, *settings.DIGEST_TEST_ADDRESSES]:
        if address:
            found.setdefault(address.lower(), address)
    return list(found.values())


def sending_context(request: HttpRequest, digest: Digest) -> dict[str, Any]:
    """The preview link and the test form inside the digest page's workflow panel
    (templates/admin/subscribers/digest/change_form.html)."""
    site_name = getattr(request.resolver_match, "namespace", "") or "admin"
    has_sections = digest.sections.exists()
    open_statuses = (Digest.Status.DRAFT, Digest.Status.APPROVED)
    panel = {
        "preview_url": digest_url(site_name, "preview", digest),
        "send_test_url": digest_url(site_name, "send_test", digest),
        # The page of an issue being sent or sent is read-only: its tests go from the preview.
        "can_send_test": digest.status in open_statuses
        and has_sections
        and request.user.has_perm("digests.send_test_digest"),
        "test_addresses": "\n".join(test_addresses_default(request)),
        "category_ids": section_category_ids(digest),
        "languages": LANGUAGE_CHOICES[1:],
        "default_language": settings.LANGUAGE_CODE,
        "next": request.get_full_path(),
    }
    return {"sending": panel}


# --- Views --------------------------------------------------------------------------------------
# Each takes the Digest admin as `model_admin` (bound in `urlpatterns`).


def _choice_form(request: HttpRequest, digest: Digest, data: Any, form_class: Any) -> Any:
    readers_visible = request.user.has_perm("subscribers.view_subscriber")
    if data is not None and data.get("subscriber") and not readers_visible:
        raise PermissionDenied  # readers' addresses are not for this user
    return form_class(data, digest=digest, readers_visible=readers_visible)


def choice_query(choice: Choice) -> str:
    """The preview's query string for a choice (the framed email is loaded with it)."""
    if choice.subscriber is not None:
        return urlencode({"subscriber": choice.subscriber.email, "language": choice.language})
    ids = sorted(rendering.variant_ids(choice.key))
    return urlencode({"categories": ids, "language": choice.language}, doseq=True)


@require_GET
def preview_view(request: HttpRequest, digest_id: int, *, model_admin: Any) -> HttpResponse:
    digest = digest_for(model_admin, request, digest_id)
    form = _choice_form(request, digest, request.GET or None, ChoiceForm)
    if form.is_bound:
        choice = form.choice() if form.is_valid() else None
    else:  # the first visit: the whole issue, in the default language
        choice = Choice(rendering.variant_key(section_category_ids(digest)), settings.LANGUAGE_CODE)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": Digest._meta,
        "original": digest,
        "title": gettext("Preview: %(issue)s") % {"issue": digest},
        "form": form,
        "limit_kb": emails.GMAIL_CLIP_BYTES // 1024,
        "change_url": change_url(model_admin, digest),
    }
    if choice is not None:
        context |= _preview_context(request, model_admin, digest, choice)
    return TemplateResponse(request, "admin/subscribers/digest/preview.html", context)


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
        "email_url": f"{digest_url(site_name, 'preview_email', digest)}?{choice_query(choice)}",
        "can_send_test": request.user.has_perm("digests.send_test_digest"),
        "send_test_url": digest_url(site_name, "send_test", digest),
        "test_addresses": "\n".join(test_addresses_default(request)),
        "from_email": settings.DEFAULT_FROM_EMAIL,
        "next": request.get_full_path(),
    }


@require_GET
@xframe_options_sameorigin
def preview_email_view(request: HttpRequest, digest_id: int, *, model_admin: Any) -> HttpResponse:
    """The email's HTML alone, for the preview's iframes (same origin only, sandboxed)."""
    digest = digest_for(model_admin, request, digest_id)
    form = _choice_form(request, digest, request.GET, ChoiceForm)
    if not form.is_valid():
        return HttpResponse("\n".join(form_errors(form)), status=400, content_type="text/plain")
    shown = email_preview(digest=digest, choice=form.choice())
    response = HttpResponse(shown.html_for_browser(), content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = PREVIEW_CSP
    return response


@require_POST
def send_test_view(request: HttpRequest, digest_id: int, *, model_admin: Any) -> HttpResponse:
    digest = digest_for(model_admin, request, digest_id)
    if not request.user.has_perm("digests.send_test_digest"):
        raise PermissionDenied
    form = _choice_form(request, digest, request.POST, SendTestForm)
    if not form.is_valid():
        for error in form_errors(form):
            messages.error(request, gettext("No test sent. %(error)s") % {"error": error})
        return redirect_back(request, change_url(model_admin, digest))
    choice = form.choice()
    report = digest_test_send(
        digest=digest, choice=choice, addresses=form.cleaned_data["addresses"]
    )
    _test_report(request, digest, choice, report)
    return redirect_back(request, change_url(model_admin, digest))


def _test_report(
    request: HttpRequest, digest: Digest, choice: Choice, report: chunk.TestSendReport
) -> None:
    """The result for the editor (messages) and for the history (the admin log, which names
    no reader: Viewers read it)."""
    logged = choice_label(choice, reader_named=False)
    if report.sent:
        to = ", ".join(report.sent)
        messages.success(
            request,
            gettext("Test sent to %(to)s (%(choice)s).")
            % {"to": to, "choice": choice_label(choice, reader_named=True)},
        )
        log(request, digest, f"Sent a test ({logged}) to {to}.")
    for address, why in report.failed.items():
        messages.error(
            request,
            gettext("The test to %(address)s was not sent: %(why)s")
            % {"address": address, "why": why},
        )
    if report.failed:
        log(request, digest, f"A test ({logged}) to {', '.join(report.failed)} failed.")


VIEWS = [
    ("preview/", preview_view, "preview"),
    ("preview/email/", preview_email_view, "preview_email"),
    ("send-test/", send_test_view, "send_test"),
]


def urlpatterns(model_admin: Any) -> list[URLPattern]:
    return issue_urlpatterns(model_admin, VIEWS)
