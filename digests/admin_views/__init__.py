"""The editors' pages of the Digest admin beyond the change form, one module per concern.

Each module exposes `urlpatterns(model_admin)` (views wrapped in `admin_site.admin_view`, URL
names `digests_digest_<name>`), which DigestAdmin.get_urls includes, and, where the digest's
change page shows something of it, a context function that DigestAdmin.change_view calls:

- `editing`: the Markdown preview endpoint of the summary editor.
- `regenerate`: regenerate a section's summary (a background task), its progress, revisions
  and restoring one; `section_tools_html(section)` for the section inline.
- `workflow`: preview (by categories or subscriber, desktop/mobile/text, size), send a test,
  approve with a send time, cancel/unapprove; `workflow_context(request, digest)`.
- `watch`: deliveries by status with a chart, failures, resend to the unknown;
  `deliveries_context(request, digest)`; the dashboard (`dashboard_view`).
"""
