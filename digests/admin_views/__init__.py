"""The editors' pages of the Digest admin beyond the change form, one module per concern.

Each module exposes `urlpatterns(model_admin)` (views wrapped in `admin_site.admin_view`, URL
names `digests_digest_<name>`), which DigestAdmin.get_urls includes, and, where the digest's
change page shows something of it, a context function that DigestAdmin.change_view calls:

- `editing`: the Markdown preview endpoint of the summary editor.
- `regenerate`: regenerate a section's summary (a background task), its progress, revisions
  and restoring one; `section_tools_html(section)` for the section inline.
- `workflow`: approve with a send time, cancel/unapprove; `workflow_context(request, digest)`;
  the helpers the pages of the Digest admin share.

The email's preview, test sends, the deliveries panel and the dashboard are the audience's:
subscribers/admin_views/, added to this admin by a subclass (subscribers/admin.py).
"""
