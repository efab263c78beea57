"""Mail headers the delivery code adds to every digest email."""

from __future__ import annotations

from django.conf import settings

from .models import Subscriber
from .tokens import Purpose, token_url


def list_unsubscribe_headers(*, subscriber: Subscriber) -> dict[str, str]:
    """RFC 2369 List-Unsubscribe with the https one-click URI, and RFC 8058 List-Unsubscribe-Post.

    No mailto: nothing here reads an unsubscribe mailbox, and RFC 8058 needs only the https URI.
    """
    url = token_url(subscriber=subscriber, purpose=Purpose.UNSUBSCRIBE)
    return {
        "List-Unsubscribe": f"<{url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def list_headers(*, subscriber: Subscriber) -> dict[str, str]:
    """List-Id (RFC 2919) plus the unsubscribe headers: what a digest email carries."""
    return {"List-Id": settings.LIST_ID, **list_unsubscribe_headers(subscriber=subscriber)}
