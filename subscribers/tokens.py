"""Signed, expiring links for readers: confirm a signup, open the preferences, unsubscribe.

A token is `django.core.signing.dumps` of `[subscriber id, email fingerprint, confirm nonce]`
with a salt per purpose, so a token made for one purpose fails for another. The fingerprint
(an HMAC of the address, so the token does not reveal a plain hash of it) makes a token fail
once the row is deleted and recreated or the address changes. The confirm nonce changes on
every signup, so an old confirmation link cannot re-activate a reader who left and came back.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterable
from datetime import timedelta
from functools import lru_cache
from typing import Any, Protocol

from django.conf import settings
from django.core import signing
from django.db import models
from django.urls import reverse
from django.utils.crypto import constant_time_compare, salted_hmac

from .models import Subscriber

# Longer strings are not tokens we made; refuse them before any work.
TOKEN_MAX_LENGTH = 400


class Purpose(models.TextChoices):
    CONFIRM = "confirm", "confirm"
    PREFERENCES = "preferences", "preferences"
    UNSUBSCRIBE = "unsubscribe", "unsubscribe"


URL_NAMES = {
    Purpose.CONFIRM: "subscribers:confirm",
    Purpose.PREFERENCES: "subscribers:preferences",
    Purpose.UNSUBSCRIBE: "subscribers:unsubscribe",
}


class TokenError(Exception):
    """The link cannot be used."""


class TokenInvalid(TokenError):
    """Forged, damaged, made for another purpose, or its reader no longer exists."""


class TokenExpired(TokenError):
    """Genuine but older than its purpose allows."""


def _salt(purpose: Purpose | str) -> str:
    # Purpose(...) also accepts the plain string ("confirm"), and rejects an unknown one.
    return f"subscribers.tokens.{Purpose(purpose).value}"


def _max_age(purpose: Purpose) -> timedelta:
    if purpose == Purpose.CONFIRM:
        return timedelta(days=settings.CONFIRM_TOKEN_MAX_AGE_DAYS)
    return timedelta(days=settings.PREFERENCES_TOKEN_MAX_AGE_DAYS)


def _email_fingerprint(email: str) -> str:
    return salted_hmac("subscribers.tokens.email", email.lower()).hexdigest()[:16]


@lru_cache(maxsize=16)
def _keyed(key_salt: str, secret: str, algorithm: str) -> Any:
    """An HMAC keyed as `salted_hmac(key_salt, ..., secret, algorithm=...)` keys it, to copy
    per value: the key is derived once instead of for every token."""
    hasher = getattr(hashlib, algorithm)
    return hmac.new(hasher((key_salt + secret).encode()).digest(), digestmod=hasher)


def _signed(payload: list[object], *, salt: str, timestamp: str) -> str:
    """`signing.dumps(payload, salt=salt)`, the same string (a test compares them), with the
    signer's key derived once per process rather than per token. (`compress=True` gives the
    same too: zlib cannot shorten a payload this short and random.)"""
    data = json.dumps(payload, separators=(",", ":")).encode("latin-1")
    value = f"{signing.b64_encode(data).decode()}:{timestamp}"
    mac = _keyed(salt + "signer", str(settings.SECRET_KEY), "sha256").copy()
    mac.update(value.encode())
    return f"{value}:{signing.b64_encode(mac.digest()).decode()}"


class TokenSubject(Protocol):
    """What a token is made from: a Subscriber, or the sending engine's light stand-in."""

    @property
    def pk(self) -> Any: ...

    @property
    def email(self) -> str: ...

    @property
    def confirm_nonce(self) -> str: ...


def _nonce(subscriber: TokenSubject, purpose: Purpose) -> str:
    return subscriber.confirm_nonce if purpose == Purpose.CONFIRM else ""


def token_make(*, subscriber: Subscriber, purpose: Purpose | str) -> str:
    purpose = Purpose(purpose)
    payload = [subscriber.pk, _email_fingerprint(subscriber.email), _nonce(subscriber, purpose)]
    return signing.dumps(payload, salt=_salt(purpose), compress=True)


def tokens_make(
    *, subscriber: TokenSubject, purposes: Iterable[Purpose | str]
) -> dict[Purpose, str]:
    """`token_make` for several purposes of one reader, the address fingerprint computed once.
    Each token is made by the same `signing.dumps` call, so it is the same token."""
    mac = _keyed("subscribers.tokens.email", str(settings.SECRET_KEY), "sha1").copy()
    mac.update(subscriber.email.lower().encode())
    fingerprint = mac.hexdigest()[:16]  # as _email_fingerprint
    timestamp = signing.b62_encode(int(time.time()))
    made: dict[Purpose, str] = {}
    for each in purposes:
        purpose = Purpose(each)
        payload = [subscriber.pk, fingerprint, _nonce(subscriber, purpose)]
        made[purpose] = _signed(payload, salt=_salt(purpose), timestamp=timestamp)
    return made


def _payload_load(token: str, purpose: Purpose) -> list[object]:
    if not isinstance(token, str) or not token or len(token) > TOKEN_MAX_LENGTH:
        raise TokenInvalid("not a token")
    try:
        payload = signing.loads(token, salt=_salt(purpose), max_age=_max_age(purpose))
    except signing.SignatureExpired:
        raise TokenExpired("expired") from None
    except (signing.BadSignature, ValueError, TypeError, UnicodeError):
        raise TokenInvalid("bad signature") from None
    if not isinstance(payload, list) or len(payload) != 3:
        raise TokenInvalid("unexpected payload")
    return payload


def token_read(*, token: str, purpose: Purpose) -> Subscriber:
    """The subscriber a token names, or TokenInvalid / TokenExpired."""
    subscriber_id, fingerprint, nonce = _payload_load(token, purpose)
    if not isinstance(subscriber_id, int) or not isinstance(fingerprint, str):
        raise TokenInvalid("unexpected payload")
    subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
    if subscriber is None:
        raise TokenInvalid("no such subscriber")
    if not constant_time_compare(fingerprint, _email_fingerprint(subscriber.email)):
        raise TokenInvalid("address changed")
    if not isinstance(nonce, str) or not constant_time_compare(nonce, _nonce(subscriber, purpose)):
        raise TokenInvalid("superseded by a newer signup")
    return subscriber


def token_url(*, subscriber: Subscriber, purpose: Purpose) -> str:
    """The absolute link (SITE_URL) of one purpose for one subscriber, for emails and headers."""
    token = token_make(subscriber=subscriber, purpose=purpose)
    return settings.SITE_URL + reverse(URL_NAMES[purpose], kwargs={"token": token})
