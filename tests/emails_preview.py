#!/usr/bin/env python3
"""Renders one email of each playbook kind, and every page an action link can
show, in headless Chromium at 375 and 1200 px and checks the layout (and the
pages' forms); writes screenshots and an index.html to look at.

usage: emails_preview.py OUTBOX_DIR[,DIR...] PREVIEW_DIR [PAGES_DIR]
       (the demo's outbox and its digest folder, where the weekly digest goes)
       emails_preview.py --self-test     (a deliberately broken email and page must fail)

Chromium is .venv/bin/chromium-headless (tests/chromium.sh), or $CHROMIUM,
driven by Playwright (in .venv): one browser page renders the emails, one
after another, and another the action pages. Exits 1 if any check fails.
"""
import email
import email.policy
import html
import json
import os
import re
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

KINDS = ("outreach", "follow-up", "csm-task", "leadership", "exec-sponsor", "owner-digest", "heads-up",
         "heads-up-champion", "weekly-digest", "task-over-sla", "task-raised-to-lead", "lapsed-reminder",
         "opportunity")
WIDTHS = (375, 1200)
MIN_FONT_PX = 12
MAX_COLUMN_PX = 700  # wider than this at 1200 px and lines get too long to read
MIN_COLUMN_PX = 300  # at 375 px the text should use most of the screen
MIN_PNG_BYTES = 5000
CHROMIUM = os.environ.get("CHROMIUM") or str(
    Path(__file__).resolve().parent.parent / ".venv/bin/chromium-headless")

# The email goes into an iframe of exactly the width under test (as it did
# when Chromium ran once per page: new headless Chromium will not make a
# window narrower than 500 px). A srcdoc iframe is same-origin with its
# parent, so this script can measure the email's document; it writes what it
# found into <pre id=out>.
MEASURE_JS = r"""
const W = %(width)d;
const name = e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
    [...e.classList].map(c => '.' + c).join('');
f.addEventListener('load', () => {
  const d = f.contentDocument, w = f.contentWindow, all = [...d.querySelectorAll('*')];
  const visible = e => { const r = e.getBoundingClientRect(), s = w.getComputedStyle(e);
    return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.opacity !== '0'; };
  // Elements that hold text themselves (not only through their children).
  const texts = all.filter(e => visible(e) &&
    [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim()));
  let font = null;
  for (const e of texts) {
    const px = parseFloat(w.getComputedStyle(e).fontSize);
    if (!font || px < font.px) font = {px, el: name(e), text: e.textContent.trim().slice(0, 40)};
  }
  // The main column: the innermost element that holds all of the text.
  let col = texts.length ? texts[0] : d.body;
  while (col !== d.body && !texts.every(t => col.contains(t))) col = col.parentElement;
  // Right edge of an element's box or of its own text (a long word overflows its box).
  const right = e => Math.max(e.getBoundingClientRect().right, ...[...e.childNodes]
    .filter(n => n.nodeType === 3).map(n => { const r = d.createRange();
      r.selectNodeContents(n); return r.getBoundingClientRect().right; }));
  const wide = all.filter(e => right(e) > W + 1);
  out.textContent = JSON.stringify({
    title: d.title.trim(),
    height: Math.ceil(d.documentElement.getBoundingClientRect().height),
    scrollWidth: Math.max(d.documentElement.scrollWidth, d.body.scrollWidth),
    font,
    column: {el: name(col), width: Math.round(col.getBoundingClientRect().width)},
    // Only the outermost offenders: their descendants stick out because they do.
    sticksOut: wide.filter(e => !wide.includes(e.parentElement)).slice(0, 3)
      .map(e => name(e) + ' to ' + Math.round(right(e)) + 'px'),
    badLinks: [...d.querySelectorAll('a')].map(a => a.getAttribute('href') || '(no href)')
      .filter(h => !/^(https:\/\/|mailto:)/i.test(h)),
    scripts: d.scripts.length,
    forms: [...d.forms].map(form => ({
      method: (form.getAttribute('method') || 'get').toLowerCase(),
      action: form.getAttribute('action') || '',
      submits: [...form.querySelectorAll('button, input[type=submit]')].filter(visible)
        .map(b => ({type: b.type, height: Math.round(b.getBoundingClientRect().height)})),
      fields: [...form.elements].filter(e => e.name).map(e => ({name: e.name,
        tag: e.tagName.toLowerCase(), maxlength: e.maxLength, options: e.options ? e.options.length : 0})),
    })),
  });
});
"""


def wrapper(email_html, width, height):
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"></head><body style="margin:0">'
            f'<iframe id="f" scrolling="no" style="border:0;display:block;width:{width}px;'
            f'height:{height}px" srcdoc="{html.escape(email_html)}"></iframe><pre id="out"></pre>'
            f'<script>{MEASURE_JS % {"width": width}}</script></body></html>')


def show(page, path, page_html, width, height):
    """`page_html`, from the file `path`, in the browser's page at width x
    height; once the measuring script has written what it found."""
    path.write_text(page_html)
    page.set_viewport_size({"width": width, "height": height})
    page.goto(path.as_uri())
    page.wait_for_function("document.getElementById('out').textContent.length > 0", timeout=30_000)


def measure(page, tmp, email_html, width):
    try:
        show(page, Path(tmp, "measure.html"), wrapper(email_html, width, 200), max(width, 500), 800)
    except PlaywrightError as e:
        raise RuntimeError(f"the measuring script wrote nothing (did the page load?): {e}") from e
    return json.loads(page.locator("#out").text_content())


def screenshot(page, tmp, email_html, width, height, png):
    show(page, Path(tmp, "shot.html"), wrapper(email_html, width, height), width, height)
    page.screenshot(path=str(png))


def problems(m, width, subject):
    bad = []
    if m["scrollWidth"] > width:
        bad.append(f"overflow: the email is {m['scrollWidth']}px wide, the screen {width}px")
    if m["sticksOut"]:
        bad.append(f"sticks out past {width}px: " + ", ".join(m["sticksOut"]))
    if m["font"] and m["font"]["px"] < MIN_FONT_PX:
        f = m["font"]
        bad.append(f"font: {f['px']:g}px < {MIN_FONT_PX}px in {f['el']} ({f['text']!r})")
    col = m["column"]
    if width >= 1000 and col["width"] > MAX_COLUMN_PX:
        bad.append(f"column: {col['el']} is {col['width']}px wide, over {MAX_COLUMN_PX}px")
    if width < 500 and col["width"] < MIN_COLUMN_PX:
        bad.append(f"column: {col['el']} is only {col['width']}px of {width}px")
    for href in m["badLinks"]:
        bad.append(f"link: href {href!r} is neither https:// nor mailto:")
    if not m["title"]:
        bad.append("title: the HTML has no <title>")
    elif subject and " ".join(subject.split()) != " ".join(m["title"].split()):
        bad.append(f"title: {m['title']!r} is not the Subject {subject!r}")
    return bad


# What each confirmation page's form must hold: the fields by name.
PAGE_FIELDS = {
    "confirm-done": {"outcome", "note"},
    "confirm-snooze_3": {"note"},
    "confirm-snooze_7": {"note"},
    "confirm-dismiss": {"note"},
    "confirm-confirm": {"note"},
    "confirm-pause": set(),
    "confirm-hold_sponsor": set(),
    "unsubscribe": set(),
}
MIN_BUTTON_PX = 36  # a finger's tap target
NOTE_MAX = 500


def page_problems(m, name):
    """A page's own checks: no script; a confirmation page has one POST form
    with a visible submit button and its fields; any other page no form."""
    bad = []
    if m["scripts"]:
        bad.append(f"script: the page has {m['scripts']} <script> (pages work without JavaScript)")
    expected = PAGE_FIELDS.get(name)
    if expected is None:
        if m["forms"]:
            bad.append("form: a page that reports what happened has a form")
        return bad
    if len(m["forms"]) != 1:
        return bad + [f"form: {len(m['forms'])} forms, expected 1"]
    form = m["forms"][0]
    if form["method"] != "post":
        bad.append(f"form: method {form['method']!r}, expected post (a GET must change nothing)")
    if not form["action"]:
        bad.append("form: no action")
    submits = [b for b in form["submits"] if b["type"] == "submit"]
    if len(submits) != 1:
        bad.append(f"form: {len(submits)} visible submit buttons, expected 1")
    elif submits[0]["height"] < MIN_BUTTON_PX:
        bad.append(f"form: the button is {submits[0]['height']}px tall, under {MIN_BUTTON_PX}px")
    fields = {f["name"]: f for f in form["fields"]}
    if set(fields) != expected:
        bad.append(f"form: fields {sorted(fields)}, expected {sorted(expected)}")
    if "note" in fields and fields["note"]["maxlength"] != NOTE_MAX:
        bad.append(f"form: the note takes {fields['note']['maxlength']} characters, not {NOTE_MAX}")
    if "outcome" in fields and fields["outcome"]["options"] < 2:
        bad.append("form: the outcome offers no choice")
    return bad


def png_problems(png, width):
    if not png.exists():
        return [f"screenshot: {png} was not written"]
    data = png.read_bytes()
    if not data.startswith(b"\x89PNG") or int.from_bytes(data[16:20], "big") != width:
        return [f"screenshot: {png} is not a {width}px wide PNG"]
    if len(data) < MIN_PNG_BYTES:
        return [f"screenshot: {png} is only {len(data)} bytes (blank page?)"]
    return []


def subject_of(html_path):
    eml = html_path.with_suffix(".eml")
    if not eml.exists():
        return None
    return email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)["Subject"]


def check_one(page, kind, path, width, preview, pages):
    """One email (or page) at one width: its measures, screenshot and problems."""
    with tempfile.TemporaryDirectory() as tmp:
        body = path.read_text(encoding="utf-8")
        png = preview / f"{kind}-{width}.png"
        png.unlink(missing_ok=True)
        try:
            m = measure(page, tmp, body, width)
            screenshot(page, tmp, body, width, m["height"], png)
            bad = problems(m, width, None if pages else subject_of(path)) + png_problems(png, width)
            if pages:
                bad += page_problems(m, kind)
        except (RuntimeError, PlaywrightError, ValueError) as e:
            m, bad = None, [f"chromium: {e}"]
    return kind, width, m, path.name, bad


def check(emails, preview, pages=False):
    """emails: {kind: path of its .html} (or, with `pages`, {page name: path}).
    Returns (table rows, failure lines). One browser page renders them all,
    one after another (a browser per page cost a second each)."""
    preview.mkdir(parents=True, exist_ok=True)
    jobs = [(kind, path, width) for kind, path in emails.items() for width in WIDTHS]
    with sync_playwright() as p:
        # Offline: anything remote fails at once instead of waiting on DNS.
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--host-resolver-rules=MAP * ~NOTFOUND"])
        try:
            page = browser.new_page(device_scale_factor=1)
            rows = []
            for job in jobs:
                row = check_one(page, *job, preview, pages)
                if row[2] is None:
                    # The browser failed on it (a renderer crash under load
                    # takes the page with it): once more, on a fresh page.
                    page = browser.new_page(device_scale_factor=1)
                    row = check_one(page, *job, preview, pages)
                rows.append(row)
        finally:
            browser.close()
    failures = [f"{kind} @{width}px: {b}" for kind, width, _, _, bad in rows for b in bad]
    return rows, failures


def write_index(preview, rows):
    cells = {}
    for kind, width, m, name, bad in rows:
        status = "<b style='color:#b42318'>" + "<br>".join(map(html.escape, bad)) + "</b>" if bad else "ok"
        cells.setdefault(kind, []).append(
            f"<figure><figcaption>{kind} @{width}px — {html.escape(name)} — {status}</figcaption>"
            f'<img src="{kind}-{width}.png" alt="{kind} at {width}px"></figure>')
    body = "".join(f'<h2>{k}</h2><div class="row">{"".join(c)}</div>' for k, c in cells.items())
    (preview / "index.html").write_text(
        "<!DOCTYPE html><meta charset='utf-8'><title>Milepost emails</title><style>"
        "body{font:14px sans-serif;margin:16px;background:#ddd}.row{display:flex;gap:24px;"
        "align-items:flex-start}figure{margin:0}img{display:block;border:1px solid #999}"
        f"</style><h1>Milepost emails at {' and '.join(f'{w}px' for w in WIDTHS)}</h1>" + body)


def print_table(rows):
    print(f"{'kind':<13} {'width':>5} {'height':>6} {'min font':>8} {'column':>6} overflow  file")
    for kind, width, m, name, _ in rows:
        if m is None:
            print(f"{kind:<13} {width:>5} {'-':>6} {'-':>8} {'-':>6} ?         {name}")
            continue
        font = f"{m['font']['px']:g}px" if m["font"] else "-"
        over = "yes" if m["scrollWidth"] > width or m["sticksOut"] else "no"
        print(f"{kind:<13} {width:>5} {m['height']:>6} {font:>8} {m['column']['width']:>6} "
              f"{over:<9} {name}")


def pick(outboxes):
    """The largest .html of each kind: longest content is likeliest to break."""
    files = {}
    outbox = ", ".join(str(o) for o in outboxes)
    for p in (p for o in outboxes for p in o.glob("*.html")):
        # Longest kind first: "heads-up-champion-…" is not a "heads-up".
        m = re.match(r"\d+-(%s)-" % "|".join(sorted(KINDS, key=len, reverse=True)), p.name)
        if m and (m[1] not in files or p.stat().st_size > files[m[1]].stat().st_size):
            files[m[1]] = p
    missing = [k for k in KINDS if k not in files]
    if missing:
        sys.exit(f"emails_preview: no {', '.join(missing)} email in {outbox} "
                 "(run the demo with more --accounts or --days)")
    return {k: files[k] for k in KINDS}


SELF_TEST_PAGE = """<!DOCTYPE html><html><head><title>Broken</title>
<meta name="viewport" content="width=device-width"></head><body>
<form method="get" action="x"><input name="nope"><button style="height:20px;padding:0">Go</button></form>
<script>1</script></body></html>"""

SELF_TEST_EMAIL = """<!DOCTYPE html><html><head><meta name="viewport" content="width=device-width">
</head><body><table width="900"><tr><td>A table 900px wide.</td></tr></table>
<p style="font-size:10px">Fine print.</p><p><a href="http://example.com/">Not https</a></p>
</body></html>"""


def self_test():
    """The checks must catch a broken email: each kind of problem is expected."""
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp, "000001-outreach-broken.html")
        page.write_text(SELF_TEST_EMAIL)
        rows, failures = check({"outreach": page}, Path(tmp, "preview"))
    print_table(rows)
    print("\n".join(failures))
    seen = {f.split(": ")[1] for f in failures}
    expected = {"overflow", "sticks out past 375px", "font", "column", "link", "title"}
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp, "confirm-done.html")
        page.write_text(SELF_TEST_PAGE)
        _, page_failures = check({"confirm-done": page}, Path(tmp, "preview"), pages=True)
    print("\n".join(page_failures))
    page_seen = " ".join(page_failures)
    page_missing = [w for w in ("script:", "method 'get'", "fields", "tall") if w not in page_seen]
    if expected <= seen and not page_missing:
        print("self-test passed: the broken email and page failed every check they should")
        return 0
    print(f"self-test FAILED: these checks did not fire: {sorted(expected - seen) + page_missing}")
    return 1


def main(argv):
    if not os.access(CHROMIUM, os.X_OK):
        sys.exit(f"emails_preview: {CHROMIUM} not found: run tests/chromium.sh (or set CHROMIUM)")
    if argv == ["--self-test"]:
        return self_test()
    if len(argv) not in (2, 3):
        sys.exit(__doc__)
    preview = Path(argv[1])
    rows, failures = check(pick([Path(d) for d in argv[0].split(",")]), preview)
    if len(argv) == 3:
        found = {p.stem: p for p in sorted(Path(argv[2]).glob("*.html"))}
        missing = [name for name in PAGE_FIELDS if name not in found]
        if missing or len(found) < 12:
            failures.append(f"pages: {len(found)} found in {argv[2]}; missing {missing}")
        page_rows, page_failures = check(found, preview, pages=True)
        rows += page_rows
        failures += page_failures
    write_index(preview, rows)
    print_table(rows)
    print(f"\nScreenshots: {preview / 'index.html'}")
    if failures:
        print(f"\n{len(failures)} problem(s):\n  " + "\n  ".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
