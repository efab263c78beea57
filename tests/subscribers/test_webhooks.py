"""ESP tracking webhooks, posted in each ESP's real format to anymail's endpoints.

Payloads follow the ESPs' documented examples (as used in django-anymail's own tests). Each post
carries the basic auth from WEBHOOK_SECRET and, where the ESP signs, a real signature: Mailgun's
HMAC, SendGrid's ECDSA. Amazon SES arrives through SNS; its subscription confirmation goes to a
local server that speaks the SNS query API.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.test import Client

from subscribers.models import EmailEvent, Subscriber
from tests.fakes.local import POLL_INTERVAL

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning"),
]

WEBHOOK_SECRET = "esp-hooks:8x1Wq9-test-only"
MAILGUN_SIGNING_KEY = "key-mailgun-webhook-signing-test"
Status = Subscriber.Status

MAILGUN = "/anymail/mailgun/tracking/"
SENDGRID = "/anymail/sendgrid/tracking/"
POSTMARK = "/anymail/postmark/tracking/"
AMAZON_SES = "/anymail/amazon_ses/tracking/"


# --- The outside world ------------------------------------------------------------------------


class FakeSNS:
    """Answers SNS ConfirmSubscription (query protocol, XML) and remembers each call."""

    def __init__(self) -> None:
        self.calls: list[dict[str, list[str]]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                fake.calls.append(parse_qs(self.rfile.read(length).decode()))
                body = (
                    b'<ConfirmSubscriptionResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">'
                    b"<ConfirmSubscriptionResult><SubscriptionArn>"
                    b"arn:aws:sns:us-west-2:123456789012:SES_Notifications:0b1c2d3e"
                    b"</SubscriptionArn></ConfirmSubscriptionResult>"
                    b"<ResponseMetadata><RequestId>5e7f8a9b</RequestId></ResponseMetadata>"
                    b"</ConfirmSubscriptionResponse>"
                )
                self.send_response(200)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": POLL_INTERVAL}, daemon=True
        )

    def __enter__(self) -> FakeSNS:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def sendgrid_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def fake_sns() -> Iterator[FakeSNS]:
    with FakeSNS() as fake:
        yield fake


@pytest.fixture(autouse=True)
def esp_settings(
    settings: Any, sendgrid_key: ec.EllipticCurvePrivateKey, fake_sns: FakeSNS
) -> None:
    public_pem = sendgrid_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    settings.ANYMAIL = {
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
        "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_SIGNING_KEY,
        # The key as SendGrid's settings page shows it: the PEM body without its armour.
        "SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY": "".join(
            public_pem.decode().splitlines()[1:-1]
        ),
        "AMAZON_SES_CLIENT_PARAMS": {
            "endpoint_url": fake_sns.url,
            "aws_access_key_id": "AKIDEXAMPLE",
            "aws_secret_access_key": "test-only-secret",
        },
    }
    settings.SOFT_BOUNCE_LIMIT = 3
    # The ESPs whose webhooks these tests post to are configured; any other answers 404.
    settings.EMAIL_WEBHOOK_ESPS = ["mailgun", "sendgrid", "postmark", "amazon_ses"]


Post = Callable[..., Any]


@pytest.fixture
def post(client: Client, django_capture_on_commit_callbacks: Any) -> Post:
    """POST a body to a webhook as the ESP would, then run what was enqueued after commit."""

    def _post(
        path: str,
        body: str | bytes | dict[str, Any] | list[Any],
        *,
        auth: str | None = WEBHOOK_SECRET,
        content_type: str = "application/json",
        **headers: str,
    ) -> Any:
        if not isinstance(body, str | bytes):
            body = json.dumps(body)
        if auth is not None:
            token = base64.b64encode(auth.encode()).decode()
            headers["HTTP_AUTHORIZATION"] = f"Basic {token}"
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(path, data=body, content_type=content_type, **headers)

    return _post


def reader(email: str, status: str = Status.ACTIVE) -> Subscriber:
    return Subscriber.objects.create(email=email, status=status)


def status_of(email: str) -> str:
    return Subscriber.objects.get(email=email).status


def snapshot() -> list[tuple[Any, ...]]:
    """Everything a webhook could change."""
    subscribers = Subscriber.objects.order_by("email").values_list(
        "email", "status", "soft_bounce_count", "suppressed_at", "suppressed_reason"
    )
    return [*subscribers, ("events", EmailEvent.objects.count())]


# --- Mailgun ----------------------------------------------------------------------------------


def mailgun_signed(event_data: dict[str, Any], *, key: str = MAILGUN_SIGNING_KEY) -> dict[str, Any]:
    timestamp = str(int(event_data.get("timestamp", 1534110422)))
    token = secrets.token_hex(25)
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256)
    return {
        "signature": {"timestamp": timestamp, "token": token, "signature": signature.hexdigest()},
        "event-data": event_data,
    }


def mailgun_failed(recipient: str, *, severity: str = "permanent") -> dict[str, Any]:
    temporary = severity == "temporary"
    return {
        "event": "failed",
        "id": "G9Bn5sl1TC6nu79C8C0bwg",
        "severity": severity,
        "reason": "generic" if temporary else "bounce",
        "recipient": recipient,
        "timestamp": 1534110422.389832,
        "log-level": "warn" if temporary else "error",
        "message": {
            "headers": {
                "to": recipient,
                "message-id": "20180812214658.1.0DF563D0B3597700@example.org",
                "from": "Daily AI Insights <digest@mg.example.org>",
                "subject": "Daily AI Insights",
            }
        },
        "user-variables": {"delivery_id": "42"},
        "tags": ["digest"],
        "delivery-status": {
            "attempt-no": 1,
            "code": 452 if temporary else 550,
            "description": "",
            "message": "4.2.2 Mailbox full"
            if temporary
            else "5.1.1 The email account that you tried to reach does not exist.",
        },
    }


def test_a_mailgun_permanent_failure_suppresses_the_reader_as_bounced(post: Post) -> None:
    reader("jane@example.com")

    response = post(MAILGUN, mailgun_signed(mailgun_failed("jane@example.com")))

    assert response.status_code == 200
    jane = Subscriber.objects.get(email="jane@example.com")
    assert jane.status == Status.BOUNCED
    assert jane.suppressed_at is not None
    assert jane.suppressed_reason.startswith("Mailgun bounced at 2018-08-12T21:47:02")
    assert "5.1.1 The email account that you tried to reach does not exist." in (
        jane.suppressed_reason
    )
    event = EmailEvent.objects.get()
    assert (event.esp, event.event_type, event.recipient) == (
        "Mailgun",
        "bounced",
        "jane@example.com",
    )
    assert event.applied_at is not None
    assert event.metadata == {"delivery_id": "42"}
    assert event.tags == ["digest"]


def test_a_mailgun_complaint_and_an_unsubscribe_suppress_their_readers(post: Post) -> None:
    reader("mary@example.com")
    reader("richard@example.com")

    for event, recipient in [
        ("complained", "mary@example.com"),
        ("unsubscribed", "richard@example.com"),
    ]:
        data = {"event": event, "recipient": recipient, "timestamp": 1534111899.659519}
        assert post(MAILGUN, mailgun_signed(data)).status_code == 200

    assert status_of("mary@example.com") == Status.COMPLAINED
    assert status_of("richard@example.com") == Status.UNSUBSCRIBED
    assert Subscriber.objects.get(email="richard@example.com").unsubscribed_at is not None


def test_a_mailgun_temporary_failure_is_counted_not_suppressed(post: Post) -> None:
    reader("full@example.com")

    post(MAILGUN, mailgun_signed(mailgun_failed("full@example.com", severity="temporary")))

    full = Subscriber.objects.get(email="full@example.com")
    assert (full.status, full.soft_bounce_count) == (Status.ACTIVE, 1)
    assert EmailEvent.objects.get().event_type == "deferred"


def test_the_same_mailgun_post_delivered_twice_is_applied_once(post: Post) -> None:
    reader("full@example.com")
    payload = mailgun_signed(mailgun_failed("full@example.com", severity="temporary"))

    assert post(MAILGUN, payload).status_code == 200
    assert post(MAILGUN, payload).status_code == 200

    assert Subscriber.objects.get(email="full@example.com").soft_bounce_count == 1
    assert EmailEvent.objects.count() == 1


def test_a_mailgun_post_with_a_wrong_signature_changes_nothing(post: Post) -> None:
    reader("jane@example.com")
    before = snapshot()
    forged = mailgun_signed(mailgun_failed("jane@example.com"), key="not-the-signing-key")

    assert post(MAILGUN, forged).status_code == 400
    assert snapshot() == before


def test_a_mailgun_post_without_a_signature_changes_nothing(post: Post) -> None:
    reader("jane@example.com")
    before = snapshot()

    unsigned = {"event-data": mailgun_failed("jane@example.com")}
    assert post(MAILGUN, unsigned).status_code == 400
    assert snapshot() == before


@pytest.mark.parametrize(
    "auth", [None, "esp-hooks:wrong-password"], ids=["no basic auth", "wrong basic auth"]
)
def test_a_signed_mailgun_post_without_the_webhook_secret_changes_nothing(
    post: Post, auth: str | None
) -> None:
    reader("jane@example.com")
    before = snapshot()

    response = post(MAILGUN, mailgun_signed(mailgun_failed("jane@example.com")), auth=auth)

    assert response.status_code == 400  # anymail answers a failed check with Bad Request
    assert snapshot() == before


def test_malformed_json_to_mailgun_is_a_bad_request_and_changes_nothing(post: Post) -> None:
    reader("jane@example.com")
    before = snapshot()

    assert post(MAILGUN, '{"signature": {"token": "abc", ').status_code == 400
    assert snapshot() == before


# --- SendGrid ---------------------------------------------------------------------------------


@pytest.fixture
def post_sendgrid(post: Post, sendgrid_key: ec.EllipticCurvePrivateKey) -> Post:
    """POST a SendGrid event batch signed as SendGrid's signed event webhook signs it."""

    def _post(events: list[dict[str, Any]], *, key: Any = None, **kwargs: Any) -> Any:
        body = json.dumps(events)
        timestamp = "1700000000"
        signature = (key or sendgrid_key).sign(
            timestamp.encode() + body.encode(), ec.ECDSA(hashes.SHA256())
        )
        return post(
            SENDGRID,
            body,
            HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_SIGNATURE=base64.b64encode(signature).decode(),
            HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_TIMESTAMP=timestamp,
            **kwargs,
        )

    return _post


def sendgrid_event(event: str, email: str, **fields: Any) -> dict[str, Any]:
    return {
        "email": email,
        "timestamp": 1461095250,
        "smtp-id": "<wrfRRvF7Q0GgwUo2CvDmEA@ismtpd0006p1sjc2.sendgrid.net>",
        "sg_event_id": secrets.token_urlsafe(16),
        "sg_message_id": "Lli-03HcQ5-JLybO9fXsJg.filter0077p1las1.21536.5717FC482.0",
        "anymail_id": "de212213-bb66-4302-8f3f-20acdb7a104e",
        "event": event,
        "category": ["digest"],
        "delivery_id": "42",
        **fields,
    }


def test_one_sendgrid_batch_bounces_complains_and_unsubscribes_its_readers(
    post_sendgrid: Post,
) -> None:
    for email in ("noreply@example.com", "angry@example.com", "leaving@example.com"):
        reader(email)
    bounce = sendgrid_event(
        "bounce",
        "noreply@example.com",
        status="5.1.1",
        type="bounce",
        reason="550 5.1.1 The email account that you tried to reach does not exist.",
    )

    response = post_sendgrid(
        [
            bounce,
            sendgrid_event("spamreport", "angry@example.com"),
            sendgrid_event("unsubscribe", "leaving@example.com"),
        ]
    )

    assert response.status_code == 200
    assert status_of("noreply@example.com") == Status.BOUNCED
    assert status_of("angry@example.com") == Status.COMPLAINED
    assert status_of("leaving@example.com") == Status.UNSUBSCRIBED
    bounced = Subscriber.objects.get(email="noreply@example.com")
    assert "550 5.1.1 The email account" in bounced.suppressed_reason
    assert EmailEvent.objects.get(recipient="noreply@example.com").metadata == {"delivery_id": "42"}


def test_a_sendgrid_block_and_a_deferral_are_soft_bounces(post_sendgrid: Post) -> None:
    reader("blocked@example.com")
    reader("slow@example.com")
    block = sendgrid_event(
        "bounce", "blocked@example.com", type="blocked", reason="421 Try again later"
    )
    deferral = sendgrid_event(
        "deferred", "slow@example.com", attempt="1", response="IPs were throttled"
    )

    post_sendgrid([block, deferral])

    for email in ("blocked@example.com", "slow@example.com"):
        subscriber = Subscriber.objects.get(email=email)
        assert (subscriber.status, subscriber.soft_bounce_count) == (Status.ACTIVE, 1)


def test_a_sendgrid_drop_of_a_known_bounced_address_suppresses_it(post_sendgrid: Post) -> None:
    reader("gone@example.com")

    post_sendgrid([sendgrid_event("dropped", "gone@example.com", reason="Bounced Address")])

    assert status_of("gone@example.com") == Status.BOUNCED


def test_a_sendgrid_batch_signed_with_another_key_changes_nothing(post_sendgrid: Post) -> None:
    reader("noreply@example.com")
    before = snapshot()
    other_key = ec.generate_private_key(ec.SECP256R1())

    response = post_sendgrid([sendgrid_event("spamreport", "noreply@example.com")], key=other_key)

    assert response.status_code == 400
    assert snapshot() == before


def test_a_sendgrid_batch_without_signature_headers_changes_nothing(post: Post) -> None:
    reader("noreply@example.com")
    before = snapshot()

    response = post(SENDGRID, [sendgrid_event("spamreport", "noreply@example.com")])

    assert response.status_code == 400
    assert snapshot() == before


def test_a_signed_sendgrid_batch_with_a_wrong_webhook_secret_changes_nothing(
    post_sendgrid: Post,
) -> None:
    reader("noreply@example.com")
    before = snapshot()

    response = post_sendgrid(
        [sendgrid_event("spamreport", "noreply@example.com")], auth="esp-hooks:guess"
    )

    assert response.status_code == 400
    assert snapshot() == before


# --- Postmark ---------------------------------------------------------------------------------


def postmark_bounce(email: str, bounce_type: str = "HardBounce", **fields: Any) -> dict[str, Any]:
    return {
        "RecordType": "Bounce",
        "ID": secrets.randbelow(10**9),
        "Type": bounce_type,
        "TypeCode": 1,
        "Name": "Hard bounce",
        "Tag": "digest",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "Metadata": {"delivery_id": "42"},
        "ServerID": 23,
        "MessageStream": "outbound",
        "Description": "The server was unable to deliver your message (ex: unknown user, "
        "mailbox not found).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": email,
        "From": "digest@news.example.com",
        "BouncedAt": "2026-08-13T16:28:50.1779385-04:00",
        "DumpAvailable": True,
        "Inactive": True,
        "CanActivate": True,
        "Subject": "Daily AI Insights",
        **fields,
    }


def test_a_postmark_hard_bounce_suppresses_the_reader(post: Post) -> None:
    reader("bounced@example.com")

    assert post(POSTMARK, postmark_bounce("bounced@example.com")).status_code == 200

    bounced = Subscriber.objects.get(email="bounced@example.com")
    assert bounced.status == Status.BOUNCED
    assert "Postmark bounced" in bounced.suppressed_reason
    assert "unable to deliver your message" in bounced.suppressed_reason
    assert EmailEvent.objects.get().tags == ["digest"]


def test_a_postmark_spam_complaint_marks_the_reader_complained(post: Post) -> None:
    reader("angry@example.com")
    complaint = postmark_bounce(
        "angry@example.com",
        "SpamComplaint",
        RecordType="SpamComplaint",
        TypeCode=512,
        Name="Spam complaint",
        Description="The subscriber explicitly marked this message as spam.",
    )

    assert post(POSTMARK, complaint).status_code == 200

    assert status_of("angry@example.com") == Status.COMPLAINED


def test_a_postmark_subscription_change_unsubscribes_the_reader(post: Post) -> None:
    reader("leaving@example.com")
    change = {
        "RecordType": "SubscriptionChange",
        "MessageID": "00000000-0000-0000-0000-000000000000",
        "ServerID": 23,
        "MessageStream": "outbound",
        "ChangedAt": "2026-08-13T10:53:34.416071Z",
        "Recipient": "leaving@example.com",
        "Origin": "Recipient",
        "SuppressSending": True,
        "SuppressionReason": "ManualSuppression",
        "Tag": "digest",
        "Metadata": {"delivery_id": "42"},
    }

    assert post(POSTMARK, change).status_code == 200
    # Postmark gives no id for this event: a retry of the same post is recognised all the same.
    assert post(POSTMARK, change).status_code == 200

    assert status_of("leaving@example.com") == Status.UNSUBSCRIBED
    event = EmailEvent.objects.get()
    assert event.event_id.startswith("sha256:")


def test_a_postmark_soft_bounce_is_counted_not_suppressed(post: Post) -> None:
    reader("full@example.com")

    post(POSTMARK, postmark_bounce("full@example.com", "SoftBounce", Name="Soft bounce"))

    full = Subscriber.objects.get(email="full@example.com")
    assert (full.status, full.soft_bounce_count) == (Status.ACTIVE, 1)


@pytest.mark.parametrize("auth", [None, "esp-hooks:wrong"], ids=["no auth", "wrong auth"])
def test_a_postmark_post_without_the_webhook_secret_changes_nothing(
    post: Post, auth: str | None
) -> None:
    reader("bounced@example.com")
    before = snapshot()

    assert post(POSTMARK, postmark_bounce("bounced@example.com"), auth=auth).status_code == 400
    assert snapshot() == before


def test_malformed_json_to_postmark_changes_nothing(post: Post, client: Client) -> None:
    reader("bounced@example.com")
    before = snapshot()

    # Without the secret the post is refused before its body is read.
    assert post(POSTMARK, '{"RecordType": "Bounce", ', auth=None).status_code == 400
    # With it, anymail's Postmark view fails to parse and answers 500 (the ESP retries later).
    client.raise_request_exception = False
    assert post(POSTMARK, '{"RecordType": "Bounce", ').status_code == 500
    assert snapshot() == before


# --- Amazon SES (through SNS) ----------------------------------------------------------------


def sns_notification(ses_event: dict[str, Any], *, message_id: str | None = None) -> dict[str, Any]:
    return {
        "Type": "Notification",
        "MessageId": message_id or "19ba9823-d7f2-53c1-860e-cb10e0d13dfc",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:SES_Events",
        "Subject": "Amazon SES Email Event Notification",
        "Message": json.dumps(ses_event) + "\n",
        "Timestamp": "2026-08-13T17:58:59.675Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLE-SIGNATURE==",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&Sub=arn",
    }


def ses_mail(*destination: str) -> dict[str, Any]:
    return {
        "timestamp": "2026-08-13T17:58:38.237Z",
        "source": "digest@news.example.com",
        "messageId": "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa0680-000000",
        "destination": list(destination),
        "headers": [
            {"name": "From", "value": "Daily AI Insights <digest@news.example.com>"},
            {"name": "X-Tag", "value": "digest"},
            {"name": "X-Metadata", "value": '{"delivery_id": "42"}'},
        ],
    }


def ses_bounce(bounce_type: str, *recipients: str) -> dict[str, Any]:
    return {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": bounce_type,
            "bounceSubType": "General",
            "bouncedRecipients": [
                {
                    "emailAddress": email,
                    "status": "5.1.1",
                    "action": "failed",
                    "diagnosticCode": f"smtp; 550 5.1.1 <{email}>... User unknown",
                }
                for email in recipients
            ],
            "timestamp": "2026-08-13T17:58:44.101Z",
            "feedbackId": "00000138111222aa-44455566-cccc-cccc-cccc-ddddaaaa068a-000000",
            "reportingMTA": "dns; email.example.com",
        },
        "mail": ses_mail(*recipients, "mary@example.com"),
    }


def sns_headers(message: dict[str, Any]) -> dict[str, str]:
    return {
        "content_type": "text/plain; charset=UTF-8",  # SNS posts its JSON as text/plain
        "HTTP_X_AMZ_SNS_MESSAGE_TYPE": message["Type"],
        "HTTP_X_AMZ_SNS_MESSAGE_ID": message["MessageId"],
    }


def test_an_ses_permanent_bounce_suppresses_each_bounced_recipient(post: Post) -> None:
    for email in ("jane@example.com", "richard@example.com", "mary@example.com"):
        reader(email)
    message = sns_notification(ses_bounce("Permanent", "jane@example.com", "richard@example.com"))

    assert post(AMAZON_SES, message, **sns_headers(message)).status_code == 200

    assert status_of("jane@example.com") == Status.BOUNCED
    assert status_of("richard@example.com") == Status.BOUNCED
    assert status_of("mary@example.com") == Status.ACTIVE  # delivered to, not bounced
    assert (
        "Amazon SES bounced" in Subscriber.objects.get(email="jane@example.com").suppressed_reason
    )
    # One SNS message names two recipients: one row each, both carrying the message's metadata.
    events = EmailEvent.objects.order_by("recipient")
    assert [e.recipient for e in events] == ["jane@example.com", "richard@example.com"]
    assert {e.metadata["delivery_id"] for e in events} == {"42"}


def test_an_ses_complaint_marks_the_reader_complained(post: Post) -> None:
    reader("richard@example.com")
    complaint = {
        "notificationType": "Complaint",
        "complaint": {
            "userAgent": "AnyCompany Feedback Loop (V0.01)",
            "complainedRecipients": [{"emailAddress": "richard@example.com"}],
            "complaintFeedbackType": "abuse",
            "timestamp": "2026-08-13T18:00:00.000Z",
            "feedbackId": "000001378603177f-18c07c78-fa81-4a58-9dd1-fedc3cb8f49a-000000",
        },
        "mail": ses_mail("richard@example.com"),
    }
    message = sns_notification(complaint)

    assert post(AMAZON_SES, message, **sns_headers(message)).status_code == 200

    assert status_of("richard@example.com") == Status.COMPLAINED


def test_an_ses_transient_bounce_is_counted_not_suppressed(post: Post) -> None:
    reader("full@example.com")
    message = sns_notification(ses_bounce("Transient", "full@example.com"))

    post(AMAZON_SES, message, **sns_headers(message))

    full = Subscriber.objects.get(email="full@example.com")
    assert (full.status, full.soft_bounce_count) == (Status.ACTIVE, 1)


def test_an_sns_subscription_confirmation_is_confirmed_with_sns(
    post: Post, fake_sns: FakeSNS
) -> None:
    before = snapshot()
    confirmation = {
        "Type": "SubscriptionConfirmation",
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a7",
        "TopicArn": "arn:aws:sns:us-west-2:123456789012:SES_Notifications",
        "Message": "You have chosen to subscribe to the topic ...\nTo confirm the subscription, "
        "visit the SubscribeURL included in this message.",
        "SubscribeURL": "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&T=1",
        "Timestamp": "2026-08-13T20:45:04.751Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLE-SIGNATURE==",
        "SigningCertURL": "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-1.pem",
    }

    assert post(AMAZON_SES, confirmation, **sns_headers(confirmation)).status_code == 200

    [call] = fake_sns.calls
    assert call["Action"] == ["ConfirmSubscription"]
    assert call["TopicArn"] == [confirmation["TopicArn"]]
    assert call["Token"] == [confirmation["Token"]]
    assert snapshot() == before


def test_an_sns_post_without_basic_auth_is_asked_for_it_and_changes_nothing(
    post: Post, fake_sns: FakeSNS
) -> None:
    reader("jane@example.com")
    before = snapshot()
    message = sns_notification(ses_bounce("Permanent", "jane@example.com"))

    response = post(AMAZON_SES, message, auth=None, **sns_headers(message))

    # SNS sends basic auth only after a 401 that asks for it.
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Basic realm="Anymail WEBHOOK_SECRET"'
    assert snapshot() == before
    assert fake_sns.calls == []


def test_an_sns_post_with_a_wrong_secret_changes_nothing(post: Post) -> None:
    reader("jane@example.com")
    before = snapshot()
    message = sns_notification(ses_bounce("Permanent", "jane@example.com"))

    response = post(AMAZON_SES, message, auth="esp-hooks:wrong", **sns_headers(message))

    assert response.status_code == 400
    assert snapshot() == before


def test_an_sns_post_whose_headers_contradict_its_body_changes_nothing(post: Post) -> None:
    reader("jane@example.com")
    before = snapshot()
    message = sns_notification(ses_bounce("Permanent", "jane@example.com"))
    headers = {**sns_headers(message), "HTTP_X_AMZ_SNS_MESSAGE_ID": "another-message"}

    assert post(AMAZON_SES, message, **headers).status_code == 400
    assert snapshot() == before


def test_an_event_for_an_unknown_address_is_recorded_and_ignored(post: Post) -> None:
    reader("jane@example.com")

    post(MAILGUN, mailgun_signed(mailgun_failed("stranger@example.com")))

    event = EmailEvent.objects.get()
    assert (event.recipient, event.applied_at is not None) == ("stranger@example.com", True)
    assert Subscriber.objects.filter(email="stranger@example.com").exists() is False
    assert status_of("jane@example.com") == Status.ACTIVE


def mailgun_temporary_failure_on(day: int) -> dict[str, Any]:
    data = mailgun_failed("full@example.com", severity="temporary")
    return mailgun_signed({**data, "timestamp": 1786000000 + day * 86400})


def test_soft_bounces_on_three_days_suppress_the_reader_as_bounced(post: Post) -> None:
    reader("full@example.com")

    for day in (0, 1):
        post(MAILGUN, mailgun_temporary_failure_on(day))
    assert status_of("full@example.com") == Status.ACTIVE
    post(MAILGUN, mailgun_temporary_failure_on(2))

    full = Subscriber.objects.get(email="full@example.com")
    assert (full.status, full.soft_bounce_count) == (Status.BOUNCED, 3)
    assert full.suppressed_reason.startswith("3 soft bounces, the last: Mailgun deferred")


def test_retries_of_one_day_count_as_one_soft_bounce(post: Post) -> None:
    reader("full@example.com")

    for _ in range(5):  # Mailgun reports each retry of the same message
        post(MAILGUN, mailgun_temporary_failure_on(0))

    full = Subscriber.objects.get(email="full@example.com")
    assert (full.status, full.soft_bounce_count) == (Status.ACTIVE, 1)
    assert EmailEvent.objects.count() == 5


def test_a_delivery_ends_a_run_of_soft_bounces(post: Post) -> None:
    reader("full@example.com")
    for day in (0, 1):
        post(MAILGUN, mailgun_temporary_failure_on(day))
    delivered = {
        "event": "delivered",
        "recipient": "full@example.com",
        "timestamp": 1786000000 + 2 * 86400,
        "delivery-status": {"code": 250, "message": "OK", "description": ""},
    }
    post(MAILGUN, mailgun_signed(delivered))
    post(MAILGUN, mailgun_temporary_failure_on(3))

    full = Subscriber.objects.get(email="full@example.com")
    assert (full.status, full.soft_bounce_count) == (Status.ACTIVE, 1)


# --- System checks ----------------------------------------------------------------------------


def check_ids(
    settings: Any, *, backend: str, anymail: dict[str, Any], debug: bool = False
) -> list[str]:
    from subscribers.checks import check_webhook_security

    settings.DEBUG = debug
    settings.EMAIL_BACKEND = backend
    settings.ANYMAIL = anymail
    return [message.id for message in check_webhook_security()]


MAILGUN_BACKEND = "anymail.backends.mailgun.EmailBackend"


def test_production_with_an_esp_and_no_webhook_secret_is_an_error(settings: Any) -> None:
    backend = "anymail.backends.postmark.EmailBackend"
    assert check_ids(settings, backend=backend, anymail={}) == ["subscribers.E001"]
    assert check_ids(settings, backend=backend, anymail={"WEBHOOK_SECRET": ""}) == [
        "subscribers.E001"
    ]


def test_a_webhook_secret_that_is_not_user_colon_password_is_an_error(settings: Any) -> None:
    anymail = {"WEBHOOK_SECRET": "just-a-password", "MAILGUN_WEBHOOK_SIGNING_KEY": "k"}
    assert check_ids(settings, backend=MAILGUN_BACKEND, anymail=anymail) == ["subscribers.E002"]


def test_a_good_webhook_secret_and_mailgun_signing_key_pass(settings: Any) -> None:
    anymail = {"WEBHOOK_SECRET": WEBHOOK_SECRET, "MAILGUN_WEBHOOK_SIGNING_KEY": "k"}
    assert check_ids(settings, backend=MAILGUN_BACKEND, anymail=anymail) == []


def test_development_and_local_email_need_no_webhook_secret(settings: Any) -> None:
    assert check_ids(settings, backend=MAILGUN_BACKEND, anymail={}, debug=True) == []
    local = "django.core.mail.backends.filebased.EmailBackend"
    assert check_ids(settings, backend=local, anymail={}) == []


def test_mailgun_without_its_webhook_signing_key_is_warned_about(settings: Any) -> None:
    anymail = {"WEBHOOK_SECRET": WEBHOOK_SECRET, "MAILGUN_API_KEY": "api-key"}
    assert check_ids(settings, backend=MAILGUN_BACKEND, anymail=anymail) == ["subscribers.W002"]


def test_sendgrid_without_its_signing_key_is_warned_about(settings: Any) -> None:
    backend = "anymail.backends.sendgrid.EmailBackend"
    anymail: dict[str, Any] = {"WEBHOOK_SECRET": WEBHOOK_SECRET}
    assert check_ids(settings, backend=backend, anymail=anymail) == ["subscribers.W001"]
    anymail["SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY"] = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE"
    assert check_ids(settings, backend=backend, anymail=anymail) == []


def test_a_mailgun_bounce_marks_the_digest_delivery_it_reports_on(post: Post) -> None:
    from digests.models import Digest
    from subscribers.models import Delivery

    jane = reader("jane@example.com")
    digest = Digest.objects.create(date="2026-08-13", title="t", status=Digest.Status.SENT)
    delivery = Delivery.objects.create(
        digest=digest, subscriber=jane, email=jane.email, variant="1", status="sent"
    )
    payload = mailgun_failed("jane@example.com")
    payload["user-variables"] = {"delivery_id": str(delivery.pk)}

    post(MAILGUN, mailgun_signed(payload))

    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.BOUNCED
    assert "5.1.1" in delivery.error


# --- Webhooks of ESPs that are not configured --------------------------------------------------


def test_the_webhook_of_an_esp_that_is_not_configured_answers_404(
    post: Post, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.EMAIL_WEBHOOK_ESPS = []
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    reader("jane@example.com")
    caplog.set_level(logging.ERROR)

    response = post(MAILGUN, mailgun_signed(mailgun_failed("jane@example.com")))

    assert response.status_code == 404
    assert Subscriber.objects.get(email="jane@example.com").status == Status.ACTIVE
    assert EmailEvent.objects.count() == 0
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert post("/anymail/sparkpost/tracking/", []).status_code == 404
    assert post("/anymail/mailgun/inbound/", {}).status_code == 404  # inbound is not routed


def test_the_sending_esps_webhook_is_routed_and_keeps_its_authentication(
    post: Post, settings: Any
) -> None:
    settings.EMAIL_WEBHOOK_ESPS = []
    settings.EMAIL_BACKEND = "anymail.backends.mailgun.EmailBackend"
    reader("jane@example.com")

    unsigned = post(MAILGUN, mailgun_signed(mailgun_failed("jane@example.com")), auth=None)
    assert unsigned.status_code == 400  # anymail refuses a post without the basic auth
    assert Subscriber.objects.get(email="jane@example.com").status == Status.ACTIVE
    assert post(SENDGRID, []).status_code == 404  # another ESP's
    response = post(MAILGUN, mailgun_signed(mailgun_failed("jane@example.com")))

    assert response.status_code == 200
    assert Subscriber.objects.get(email="jane@example.com").status == Status.BOUNCED
