"""Drop script tags that appear twice on a page.

With Jupyter Book 1.0.4, sphinx-thebe's inline configuration (``const THEBE_JS_URL = ...``) is
added twice, and the second copy throws "Identifier 'THEBE_JS_URL' has already been declared"
in every browser console."""


def _dedupe(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for js in scripts:
        # An inline script has filename None or "" depending on who added it.
        key = (
            getattr(js, "filename", str(js)) or "",
            repr(sorted(getattr(js, "attributes", {}).items())),
        )
        if key not in seen:
            seen.add(key)
            kept.append(js)
    scripts[:] = kept


def setup(app):
    # First in line: a handler that returns a template name stops the handlers after it.
    app.connect("html-page-context", _dedupe, priority=1)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
