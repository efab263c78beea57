"""The day's integrity on the issue's page, and fetching a suspect day again.

- The panel (`integrity_context`): per arXiv category, what the feeds gave against what the
  listing shows or the category's usual count, and why it is suspect (digests/integrity.py,
  as the last build stored it on `Digest.integrity`).
- Re-fetch (`<id>/refetch/`, POST, `digests.change_digest`, drafts only): enqueues
  `digests.tasks.refetch_day`, which reads the feeds again and rebuilds the same issue.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from digests.admin_views.workflow import change_url, digest_for, digest_url, issue_urlpatterns, log
from digests.editor_text import text_shown, texts_shown
from digests.models import Digest
from digests.refetch import RefetchRefused, refetch_check
from digests.tasks import refetch_enqueue

REFETCH_PERMISSION = "digests.change_digest"


def counts_text(counts: dict[str, Any] | None) -> str:
    if not counts:
        return "-"
    return " / ".join("?" if counts.get(k) is None else str(counts[k]) for k in KINDS)


KINDS = ("new", "cross", "replaced")


def usual_text(usual: dict[str, Any]) -> str:
    if usual.get("median") is None:
        return gettext("no history yet")
    return gettext("%(median)s new (median of %(days)s days)") % {
        "median": f"{usual['median']:g}",
        "days": usual["days"],
    }


def category_row(category: dict[str, Any]) -> dict[str, Any]:
    received = category.get("received") or {}
    entries = received.get("new", 0) + received.get("cross", 0)
    return {
        "name": category.get("category", ""),
        "received": counts_text(received),
        "expected": counts_text(category.get("expected")),
        "usual": usual_text(category.get("usual") or {}),
        "known": gettext("%(known)s of %(entries)s")
        % {"known": category.get("known", 0), "entries": entries},
        "suspect": bool(category.get("suspect")),
        "reasons": texts_shown(category.get("reasons"), category.get("reason_texts")),
    }


def integrity_context(request: HttpRequest, digest: Digest) -> dict[str, Any]:
    """The integrity panel of the digest's page (templates/admin/digests/digest/
    _integrity.html)."""
    judged = digest.integrity or {}
    site_name = getattr(request.resolver_match, "namespace", "") or "admin"
    rows = [category_row(c) for c in judged.get("categories", [])]
    rows.sort(key=lambda row: not row["suspect"])  # the suspect ones first
    suspect = bool(judged.get("suspect"))
    panel = {
        "judged": bool(judged),
        "kind": judged.get("kind", ""),
        "suspect": suspect,
        "summary": text_shown(judged.get("summary_text"), judged.get("summary", "")),
        "rows": rows,
        "suspect_count": sum(1 for row in rows if row["suspect"]),
        "feeds": [
            {
                "feed": p.get("feed", ""),
                "problem": text_shown(p.get("problem_text"), p.get("problem", "")),
            }
            for p in judged.get("feeds", [])
        ],
        "draft": digest.status == Digest.Status.DRAFT,
        "can_refetch": suspect
        and digest.status == Digest.Status.DRAFT
        and request.user.has_perm(REFETCH_PERMISSION),
        "refetch_url": digest_url(site_name, "refetch", digest),
    }
    return {"integrity": panel}


@require_POST
def refetch_view(request: HttpRequest, digest_id: int, *, model_admin: Any) -> HttpResponse:
    digest = digest_for(model_admin, request, digest_id)
    if not request.user.has_perm(REFETCH_PERMISSION):
        raise PermissionDenied
    back = HttpResponseRedirect(change_url(model_admin, digest))
    try:
        refetch_check(digest=digest)
    except RefetchRefused as refused:
        messages.error(request, str(refused))
        return back
    refetch_enqueue(digest.date)
    messages.success(
        request,
        gettext(
            "Fetching the feeds again for %(day)s: the papers they add join this issue and its "
            "integrity is judged again. Reload this page in a minute."
        )
        % {"day": digest.date},
    )
    log(request, digest, "Asked to fetch the day's feeds again and rebuild the draft.")
    return back


def urlpatterns(model_admin: Any) -> list[URLPattern]:
    return issue_urlpatterns(model_admin, [("refetch/", refetch_view, "refetch")])
