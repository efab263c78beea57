"""A reader's way through the pages, in a real browser (issue 3, "Shown by").

Sign up in Korean (the default language) with one category unticked, open the confirmation link
from the email the worker sent, confirm with the button (the GET alone confirms nothing), change
the categories on the preferences page, download the data, unsubscribe there. And a mail client's
RFC 8058 one-click POST, with no cookie and no CSRF token.

Buttons, fields and headings are found by their accessible names, in the project's own Korean
translations, so a missing label or translation fails here.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext
from playwright.sync_api import Page, expect

from digests.models import Category
from subscribers.emails import personal_links, unsubscribe_headers
from subscribers.models import Subscriber
from tests.browser.conftest import DESKTOP, PHONE, Mailbox

pytestmark = [
    pytest.mark.integration,
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]

CONFIRM_LINK = re.compile(r"https?://[^\s<>\"]+/subscribe/confirm/[^\s<>\"/]+/")


def ko(text: str) -> str:
    """The Korean interface text of an English message id, from the project's translations."""
    with translation.override("ko"):
        return gettext(text)


def subscriber_get(email: str) -> Subscriber:
    return Subscriber.objects.get(email__iexact=email)


def chosen_slugs(subscriber: Subscriber) -> set[str]:
    return set(subscriber.categories.values_list("slug", flat=True))


def expect_boxes(page: Page, categories: list[Category], ticked: set[str]) -> None:
    for category in categories:
        box = page.get_by_label(category.name, exact=True)
        if category.slug in ticked:
            expect(box).to_be_checked()
        else:
            expect(box).not_to_be_checked()


def horizontal_overflow(page: Page) -> int:
    """How many CSS pixels the page is wider than the viewport (0 when nothing scrolls sideways)."""
    return int(
        page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    )


def test_sign_up_confirm_change_categories_and_unsubscribe(
    page: Page,
    live_server: Any,
    mailbox: Mailbox,
    default_categories: None,
    screenshot: Callable[..., Path],
) -> None:
    categories = list(Category.objects.filter(active=True).order_by("position", "name"))
    assert len(categories) >= 4
    everything = {category.slug for category in categories}
    address = "Browser.Reader@Example.org"  # stored normalised: browser.reader@example.org

    # --- the signup page, in Korean, at phone and desktop width --------------------------------
    page.goto(live_server.url + reverse("subscribers:subscribe"))
    expect(page.locator("html")).to_have_attribute("lang", "ko")
    expect(page).to_have_title(re.compile(ko("Subscribe")))
    email_field = page.get_by_label(ko("Email address"), exact=True)
    expect(email_field).to_be_visible()
    expect(page.get_by_role("group", name=ko("Categories"))).to_be_visible()
    expect_boxes(page, categories, ticked=everything)  # all checked by default

    screenshot(page, "signup-375", viewport=PHONE)
    assert horizontal_overflow(page) == 0, "the signup page scrolls sideways at 375 px"
    for label in [ko("Email address"), *(category.name for category in categories)]:
        box = page.locator("label", has_text=label).first.bounding_box()
        assert box is not None and box["width"] > 0, f"label {label!r} is not shown at 375 px"
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], f"{label!r} is cut"
    expect(page.get_by_role("button", name=ko("Subscribe"), exact=True)).to_be_visible()
    screenshot(page, "signup-1280", viewport=DESKTOP)
    assert horizontal_overflow(page) == 0

    # --- sign up with one category unticked ----------------------------------------------------
    dropped = categories[1]
    email_field.fill(address)
    page.get_by_label(dropped.name, exact=True).uncheck()
    page.get_by_role("button", name=ko("Subscribe"), exact=True).click()

    expect(page).to_have_url(re.compile(r"/subscribe/check-inbox/"))
    expect(page.get_by_role("heading", level=1)).to_have_text(ko("Check your inbox"))
    screenshot(page, "check-inbox-375", viewport=PHONE)
    page.set_viewport_size(DESKTOP)

    subscriber = subscriber_get(address)
    assert subscriber.email == "browser.reader@example.org"
    assert subscriber.status == Subscriber.Status.PENDING
    assert chosen_slugs(subscriber) == everything - {dropped.slug}
    assert subscriber.consent_wording_version
    assert subscriber.consent_source.endswith(reverse("subscribers:subscribe"))

    # --- the confirmation email, sent by the worker -------------------------------------------
    message = mailbox.wait_for(subscriber.email)
    text = message.get_body(("plain",)).get_content()
    links = CONFIRM_LINK.findall(text)
    assert len(set(links)) == 1, f"expected one confirmation link in the email:\n{text}"
    link = links[0]
    assert link.startswith(live_server.url), f"the link does not lead to SITE_URL: {link}"
    html = message.get_body(("html",))
    assert html is not None and link in html.get_content(), "the HTML part lacks the same link"

    # --- opening the link shows a button; the GET confirms nothing ----------------------------
    page.goto(link)
    confirm_button = page.get_by_role("button", name=ko("Confirm my subscription"), exact=True)
    expect(confirm_button).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_have_text(ko("Confirm your subscription"))
    screenshot(page, "confirm-375", viewport=PHONE)
    screenshot(page, "confirm-1280", viewport=DESKTOP)
    page.reload()  # a link scanner opening it twice changes nothing either
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.PENDING
    assert subscriber.confirmed_at is None

    confirm_button.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(ko("You are subscribed"))
    expect(page.get_by_role("status")).to_contain_text(subscriber.email)
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.ACTIVE
    assert subscriber.confirmed_at is not None
    assert subscriber.consent_at is not None

    # --- the preferences page, by the link on the confirmation page ---------------------------
    page.get_by_role(
        "link", name=ko("Your preferences: categories, unsubscribe, your data"), exact=True
    ).click()
    expect(page).to_have_url(re.compile(r"/preferences/[^/]+/"))
    expect(page.get_by_role("heading", level=1)).to_have_text(ko("Your preferences"))
    expect_boxes(page, categories, ticked=everything - {dropped.slug})
    screenshot(page, "preferences-375", viewport=PHONE)
    assert horizontal_overflow(page) == 0, "the preferences page scrolls sideways at 375 px"
    screenshot(page, "preferences-1280", viewport=DESKTOP)

    # Take the dropped one back, drop the first two others.
    wanted = (everything | {dropped.slug}) - {categories[0].slug, categories[2].slug}
    page.get_by_label(dropped.name, exact=True).check()
    page.get_by_label(categories[0].name, exact=True).uncheck()
    page.get_by_label(categories[2].name, exact=True).uncheck()
    page.get_by_role("button", name=ko("Save my choices"), exact=True).click()

    expect(page.get_by_role("status")).to_have_text(ko("Your choices are saved."))
    expect_boxes(page, categories, ticked=wanted)
    assert chosen_slugs(subscriber) == wanted
    page.reload()
    expect_boxes(page, categories, ticked=wanted)

    # --- download my data (JSON) ----------------------------------------------------------------
    with page.expect_download() as download_info:
        page.get_by_role("link", name=ko("Download my data (JSON)"), exact=True).click()
    data = json.loads(Path(download_info.value.path()).read_text(encoding="utf-8"))
    assert data["email"] == subscriber.email
    assert data["status"] == "active"
    assert {category["slug"] for category in data["categories"]} == wanted

    # --- unsubscribe from the preferences page --------------------------------------------------
    page.get_by_role("button", name=ko("Unsubscribe"), exact=True).click()
    expect(page.get_by_role("status")).to_have_text(
        ko("You are unsubscribed. We will send no more newsletters.")
    )
    screenshot(page, "preferences-unsubscribed-1280")
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.UNSUBSCRIBED
    assert subscriber.unsubscribed_at is not None


def test_one_click_unsubscribe_as_a_mail_client_sends_it(
    page: Page,
    live_server: Any,
    settings: Any,
    default_categories: None,
    screenshot: Callable[..., Path],
) -> None:
    settings.SITE_URL = live_server.url
    subscriber = Subscriber.objects.create(
        email="one.click@example.org", status=Subscriber.Status.ACTIVE
    )
    subscriber.categories.set(Category.objects.filter(active=True))
    headers = unsubscribe_headers(personal_links(subscriber)["unsubscribe_url"])
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = headers["List-Unsubscribe"].strip("<>")
    assert urlsplit(url).path.startswith("/unsubscribe/")
    assert url.startswith(live_server.url)

    # A person who opens the URL sees a button; the GET changes nothing.
    page.goto(url)
    expect(page.get_by_role("button", name=ko("Unsubscribe"), exact=True)).to_be_visible()
    screenshot(page, "unsubscribe-ask-375", viewport=PHONE)
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.ACTIVE

    # The mail provider's POST: no cookie, no CSRF token, no Referer, only the RFC 8058 body.
    request = urllib.request.Request(
        url,
        data=b"List-Unsubscribe=One-Click",
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(request, timeout=15) as response:
        assert response.status == 200
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.UNSUBSCRIBED
    assert subscriber.unsubscribed_at is not None

    # The same POST again (providers retry) is harmless.
    with urllib.request.urlopen(request, timeout=15) as response:
        assert response.status == 200

    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text(ko("You are unsubscribed"))
