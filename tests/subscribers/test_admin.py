"""The subscriber list in the admin, as a staff member sees it: search, filters, CSV in and out."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.core import mail
from django.test import Client
from django.urls import reverse

from digests.models import Category
from subscribers.models import EmailEvent, Subscriber
from tests.subscribers.factories import subscriber_create

pytestmark = pytest.mark.django_db

Status = Subscriber.Status
CHANGELIST = "/admin/subscribers/subscriber/"
IMPORT = "/admin/subscribers/subscriber/import-csv/"
EXPORT = "/admin/subscribers/subscriber/export-csv/"


def category(slug: str) -> Category:
    return Category.objects.get(slug=slug)


def csv_upload(text: str | bytes, name: str = "readers.csv") -> io.BytesIO:
    upload = io.BytesIO(text.encode() if isinstance(text, str) else text)
    upload.name = name
    return upload


def csv_rows(response: Any) -> list[dict[str, str]]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


def import_csv(client: Client, text: str | bytes, **fields: Any) -> Any:
    return client.post(IMPORT, {"file": csv_upload(text), **fields})


# --- The list ---------------------------------------------------------------------------------


def test_the_list_shows_email_status_categories_and_dates(admin_client: Client) -> None:
    subscriber_create(email="jane@example.com", categories=[category("nlp"), category("llm")])

    page = admin_client.get(CHANGELIST).content.decode()

    assert "jane@example.com" in page
    assert category("nlp").name in page
    assert category("llm").name in page
    for column in (
        "column-status",
        "column-category_list",
        "column-confirmed_at",
        "column-created_at",
    ):
        assert column in page


def test_search_finds_readers_by_email(admin_client: Client) -> None:
    subscriber_create(email="jane@example.com")
    subscriber_create(email="mary@example.org")

    page = admin_client.get(CHANGELIST, {"q": "example.org"}).content.decode()

    assert "mary@example.org" in page
    assert "jane@example.com" not in page


def test_the_list_filters_by_status_and_by_category(admin_client: Client) -> None:
    subscriber_create(email="jane@example.com", categories=[category("nlp")])
    subscriber_create(
        email="bounced@example.com", status=Status.BOUNCED, categories=[category("llm")]
    )

    bounced = admin_client.get(CHANGELIST, {"status__exact": "bounced"}).content.decode()
    nlp = admin_client.get(CHANGELIST, {"categories__id__exact": category("nlp").pk})

    assert "bounced@example.com" in bounced and "jane@example.com" not in bounced
    assert "jane@example.com" in nlp.content.decode()
    assert "bounced@example.com" not in nlp.content.decode()


def test_the_change_page_shows_consent_read_only_and_why_an_address_is_suppressed(
    admin_client: Client,
) -> None:
    reader = subscriber_create(
        email="jane@example.com",
        status=Status.BOUNCED,
        consent_source="/subscribe/",
        consent_wording_version="2026-11-v1",
        consent_note="Signed up at the meetup",
        suppressed_reason="Mailgun bounced: 5.1.1 user unknown",
    )

    page = admin_client.get(f"{CHANGELIST}{reader.pk}/change/").content.decode()

    assert "Signed up at the meetup" in page and "2026-11-v1" in page
    assert "5.1.1 user unknown" in page
    for field in ("consent_at", "consent_source", "consent_wording_version", "consent_note"):
        assert f'name="{field}"' not in page  # shown, not editable
    assert "confirm_nonce" not in page
    assert 'name="status"' in page


def test_readers_are_added_by_import_not_by_the_plain_add_form(admin_client: Client) -> None:
    page = admin_client.get(CHANGELIST).content.decode()

    assert f'href="{IMPORT}"' in page
    assert f'href="{EXPORT}"' in page
    assert admin_client.get(f"{CHANGELIST}add/").status_code == 403


# --- Export -----------------------------------------------------------------------------------


def test_export_all_writes_every_reader_with_its_consent_record(admin_client: Client) -> None:
    subscriber_create(
        email="jane@example.com",
        categories=[category("nlp"), category("llm")],
        language="en",
        consent_source="/subscribe/",
        consent_wording_version="2026-11-v1",
    )
    subscriber_create(email="gone@example.com", status=Status.UNSUBSCRIBED, categories=[])

    response = admin_client.get(EXPORT)

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="subscribers-')
    rows = csv_rows(response)
    assert list(rows[0]) == [
        "email",
        "status",
        "categories",
        "language",
        "consent_at",
        "consent_source",
        "consent_wording_version",
        "confirmed_at",
        "created_at",
        "cadence",
        "keywords_include",
        "keywords_exclude",
        "keywords_all_categories",
    ]
    jane, gone = rows
    assert jane["email"] == "jane@example.com"
    assert jane["categories"] == "llm;nlp"
    assert (jane["language"], jane["consent_source"], jane["consent_wording_version"]) == (
        "en",
        "/subscribe/",
        "2026-11-v1",
    )
    assert jane["confirmed_at"].startswith("20") and jane["consent_at"]
    assert (gone["status"], gone["categories"], gone["confirmed_at"]) == ("unsubscribed", "", "")


def test_the_export_action_writes_only_the_selected_readers(admin_client: Client) -> None:
    jane = subscriber_create(email="jane@example.com")
    subscriber_create(email="mary@example.com")

    response = admin_client.post(
        CHANGELIST, {"action": "export_csv", "_selected_action": [jane.pk]}
    )

    assert [row["email"] for row in csv_rows(response)] == ["jane@example.com"]


def test_the_export_keeps_spreadsheets_from_running_an_address_as_a_formula(
    admin_client: Client,
) -> None:
    subscriber_create(email="=cmd@example.com")

    [row] = csv_rows(admin_client.get(EXPORT))

    assert row["email"] == "'=cmd@example.com"


# --- Import -----------------------------------------------------------------------------------


def test_imported_addresses_are_pending_and_each_gets_a_confirmation_email(
    admin_client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    text = "email,categories,language\nJane@Example.com,nlp;llm,en\nmary@example.com,,\n"

    with django_capture_on_commit_callbacks(execute=True):
        response = import_csv(admin_client, text)

    page = response.content.decode()
    assert response.status_code == 200
    assert "Created: 2" in page
    jane = Subscriber.objects.get(email="jane@example.com")
    assert (jane.status, jane.language) == (Status.PENDING, "en")
    assert sorted(c.slug for c in jane.categories.all()) == ["llm", "nlp"]
    assert jane.consent_source == "admin import by admin"
    assert jane.confirmed_at is None
    mary = Subscriber.objects.get(email="mary@example.com")
    assert mary.categories.count() == Category.objects.filter(active=True).count()
    assert sorted(message.to[0] for message in mail.outbox) == [
        "jane@example.com",
        "mary@example.com",
    ]
    assert all("/subscribe/confirm/" in message.body for message in mail.outbox)


def test_marking_an_import_confirmed_without_a_consent_note_is_refused(
    admin_client: Client,
) -> None:
    response = import_csv(admin_client, "email\njane@example.com\n", confirmed="on")

    page = response.content.decode()
    assert "A confirmed import needs a consent note" in page
    assert not Subscriber.objects.exists()


def test_a_confirmed_import_with_a_consent_note_makes_active_readers_and_sends_nothing(
    admin_client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        import_csv(
            admin_client,
            "email\njane@example.com\n",
            confirmed="on",
            consent_note="Paper sign-up sheet, AI meetup Seoul, 2026-08-01",
        )

    jane = Subscriber.objects.get(email="jane@example.com")
    assert jane.status == Status.ACTIVE
    assert jane.confirmed_at is not None and jane.consent_at is not None
    assert jane.consent_source == "admin import by admin"
    assert jane.consent_note == "Paper sign-up sheet, AI meetup Seoul, 2026-08-01"
    assert mail.outbox == []


def test_an_import_neither_duplicates_nor_reactivates_and_reports_each_line(
    admin_client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    subscriber_create(email="jane@example.com", categories=[category("nlp")])
    subscriber_create(email="angry@example.com", status=Status.COMPLAINED)
    text = (
        "Email,Categories\n"
        "JANE@example.com,llm\n"  # line 2: already on the list
        "angry@example.com,\n"  # line 3: complained, stays so
        "not-an-address,\n"  # line 4
        "new@example.com,quantum-cooking\n"  # line 5: unknown category
        "fresh@example.com,\n"  # line 6: created
        "fresh@example.com,\n"  # line 7: repeated
        '"evil@example.com\nBcc: all@example.com",\n'  # lines 8-9: one quoted cell
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = import_csv(admin_client, text, confirmed="on", consent_note="Meetup list")

    page = response.content.decode()
    assert "Created: 1" in page
    assert "Already present, left as they are: 1" in page
    assert "left as they are: 1" in page and "angry@example.com" in page
    assert "Line 4: &#x27;not-an-address&#x27; is not a valid email address" in page
    assert "Line 5: unknown categories: quantum-cooking" in page
    assert "Line 7: fresh@example.com is already on line 6" in page
    assert r"Line 9: &#x27;evil@example.com\nbcc: all@example.com&#x27; is not a valid" in page
    assert set(Subscriber.objects.values_list("email", flat=True)) == {
        "jane@example.com",
        "angry@example.com",
        "fresh@example.com",
    }
    assert Subscriber.objects.get(email="angry@example.com").status == Status.COMPLAINED
    jane = Subscriber.objects.get(email="jane@example.com")
    assert [c.slug for c in jane.categories.all()] == ["nlp"]
    assert Subscriber.objects.filter(email__iexact="jane@example.com").count() == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("email\njané@example.com\n".encode("latin-1"), "The file is not UTF-8 text."),
        (b"", "The file is empty."),
        (b"   \n\n", "The file is empty."),
        (b"address,name\njane@example.com,Jane\n", "with an “email” column. Found: address, name"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "The file is not UTF-8 text."),
    ],
    ids=["latin-1", "zero bytes", "blank", "no email column", "an image"],
)
def test_a_bad_file_gets_a_clear_message_and_imports_nothing(
    admin_client: Client, content: bytes, message: str
) -> None:
    response = import_csv(admin_client, content)

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Subscriber.objects.exists()


def test_the_import_page_is_for_staff_with_the_add_permission_only(
    client: Client, django_user_model: type[User]
) -> None:
    assert client.get(IMPORT).status_code == 302  # to the admin login

    staff = django_user_model.objects.create_user("editor", password="pw-editor", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_subscriber"))
    client.force_login(staff)
    assert client.get(IMPORT).status_code == 403
    assert import_csv(client, "email\njane@example.com\n").status_code == 403
    assert not Subscriber.objects.exists()


def test_the_import_form_needs_its_csrf_token(admin_user: User) -> None:
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(admin_user)

    page = browser.get(IMPORT)
    assert 'name="csrfmiddlewaretoken"' in page.content.decode()
    assert import_csv(browser, "email\njane@example.com\n").status_code == 403
    assert not Subscriber.objects.exists()


# --- ESP events -------------------------------------------------------------------------------


def test_esp_events_are_listed_filtered_and_read_only(admin_client: Client) -> None:
    EmailEvent.objects.create(
        esp="Mailgun", event_id="a", event_type="bounced", recipient="jane@example.com"
    )
    EmailEvent.objects.create(
        esp="Postmark", event_id="b", event_type="delivered", recipient="mary@example.com"
    )
    url = reverse("admin:subscribers_emailevent_changelist")

    bounced = admin_client.get(url, {"event_type": "bounced"}).content.decode()
    postmark = admin_client.get(url, {"esp": "Postmark"}).content.decode()

    assert "jane@example.com" in bounced and "mary@example.com" not in bounced
    assert "mary@example.com" in postmark and "jane@example.com" not in postmark
    event = EmailEvent.objects.get(event_id="a")
    change_page = admin_client.get(reverse("admin:subscribers_emailevent_change", args=[event.pk]))
    assert 'name="event_type"' not in change_page.content.decode()
    assert admin_client.get(reverse("admin:subscribers_emailevent_add")).status_code == 403
