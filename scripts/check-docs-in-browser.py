#!/usr/bin/env python3
"""Loads every article and tutorial page of the documentation site in headless Chromium.

For each Markdown page of Sources/*/*.docc (other than a module's landing page, which is checked
too under the module's own path) it opens the rendered page and checks that
  - the page's title (the Markdown's first `# ` heading) and the first sentence of its first
    paragraph appear in the rendered text, so the page is DocC's rendered article and not the
    "enable JavaScript" shell or a "page not found" view;
  - every <img> on the page finished loading with a non-zero natural width (DocC inserts images
    with JavaScript, so this needs a real browser, not a static HTML check).

Chromium is driven through the DevTools protocol over a pipe (--remote-debugging-pipe), so the
script needs only the Python standard library. The site is served by http.server on 127.0.0.1.

Usage: scripts/check-docs-in-browser.py [SITE_DIR]
With no SITE_DIR, scripts/build-docs.sh builds the site into a temporary folder first.
Environment: CHROMIUM (the browser binary; default: chromium, chromium-browser or google-chrome
on PATH), PAGE_TIMEOUT (seconds to wait for a page to render; default 30).
"""
import fcntl
import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGE_TIMEOUT = float(os.environ.get("PAGE_TIMEOUT", "30"))


def fail(message):
    print(f"check-docs-in-browser: {message}", file=sys.stderr)
    sys.exit(1)


# MARK: - The pages to expect, from the catalogs' Markdown


def plain(markdown):
    """The text a reader sees for a line of DocC Markdown: links, code spans and emphasis
    reduced to their words."""
    text = re.sub(r"``([^`]+)``", lambda m: m.group(1).split("/")[-1], markdown)
    text = re.sub(r"<doc:([^>]+)>", "", text)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = text.replace("`", "")
    text = re.sub(r"(\*\*|__|\*|_)(\S.*?\S|\S)\1", r"\2", text)
    return re.sub(r"\s+", " ", text).strip()


def expected_pages():
    """(module, URL path, title, first sentence) for each Markdown page of every catalog."""
    pages = []
    sources = os.path.join(ROOT, "Sources")
    for target in sorted(os.listdir(sources)):
        catalog = os.path.join(sources, target, f"{target}.docc")
        if not os.path.isdir(catalog):
            continue
        module = target.lower()
        for name in sorted(os.listdir(catalog)):
            if not name.endswith((".md", ".tutorial")):
                continue
            with open(os.path.join(catalog, name), encoding="utf-8") as f:
                lines = f.read().split("\n")
            heading = next((l for l in lines if l.startswith("# ")), None)
            if heading is None:
                continue
            title = heading[2:].strip()
            if title == f"``{target}``":
                path, title = f"/documentation/{module}", target
            else:
                path = f"/documentation/{module}/{os.path.splitext(name)[0].lower()}"
            # The abstract: the first paragraph after the title that is prose.
            start = lines.index(heading) + 1
            paragraph = []
            for line in lines[start:]:
                if not line.strip():
                    if paragraph:
                        break
                    continue
                if line.startswith(("@", "#", "|", "```", "-", ">", "<")) and not paragraph:
                    continue
                paragraph.append(line.strip())
            sentence = plain(" ".join(paragraph))
            sentence = re.split(r"(?<=[.:;!?])\s", sentence)[0][:60]
            pages.append((module, path, plain(title), sentence))
    # The combined site's start page links both modules.
    modules = sorted({title for module, path, title, _ in pages if path == f"/documentation/{module}"})
    if len(modules) > 1:
        pages.insert(0, ("", "/documentation", modules[0], modules[-1]))
    return pages


# MARK: - A static server for the site


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    failures = []

    def log_message(self, format, *args):
        pass

    def log_request(self, code="-", size="-"):
        if str(code) not in ("200", "304"):
            QuietHandler.failures.append(f"{code} {self.path}")

    def send_head(self):
        # DocC's static hosting serves /documentation/x/y from documentation/x/y/index.html,
        # which SimpleHTTPRequestHandler finds by itself once the path ends with a slash.
        path = self.translate_path(self.path)
        if os.path.isdir(path) and not self.path.split("?")[0].endswith("/"):
            self.path = self.path.split("?")[0] + "/"
        return super().send_head()


def serve(site):
    handler = functools.partial(QuietHandler, directory=site)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# MARK: - Chromium over the DevTools protocol (a pipe: NUL-terminated JSON messages)


class Browser:
    def __init__(self, binary):
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def child_fds():
            # Chromium reads commands on fd 3 and writes replies on fd 4; copy both ends above
            # them first so that neither dup2 overwrites the other's source.
            read_end = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)
            write_end = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)

        self.profile = tempfile.mkdtemp(prefix="docs-browser-")
        arguments = [binary, "--headless=new", "--remote-debugging-pipe", "--no-sandbox",
                     "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                     "--disable-extensions", "--mute-audio", "--window-size=1280,900",
                     f"--user-data-dir={self.profile}", "about:blank"]
        self.process = subprocess.Popen(arguments, preexec_fn=child_fds,
                                        close_fds=False, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self._events = []

    def _read_message(self, deadline):
        while b"\0" not in self._buffer:
            if time.time() > deadline:
                raise TimeoutError("no answer from the browser")
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                error = self.process.stderr.read().decode(errors="replace")[-2000:]
                raise RuntimeError(f"the browser closed its pipe: {error}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method, params=None, session=None, timeout=30):
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.time() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._events.append(reply)

    def wait_for_event(self, method, session, timeout):
        deadline = time.time() + timeout
        while True:
            for i, event in enumerate(self._events):
                if event.get("method") == method and event.get("sessionId") == session:
                    del self._events[i]
                    return event
            self._events.append(self._read_message(deadline))

    def evaluate(self, expression, session):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True}, session)
        if "exceptionDetails" in result:
            raise RuntimeError(f"script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def close(self):
        try:
            self.send("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


# The text of the rendered page, once DocC's app has put the article in <main>.
RENDERED_TEXT = "(document.querySelector('main') || document.body).innerText"

# Makes every image load (DocC marks them lazy) and reports each one's state once all settled.
# A request for an image that failed also shows in the server's log, which check_page reports.
IMAGES = """
(async () => {
  const images = Array.from(document.images);
  for (const image of images) { image.loading = 'eager'; image.scrollIntoView(); }
  const settle = image => image.complete ? Promise.resolve() : new Promise(done => {
    image.addEventListener('load', done, {once: true});
    image.addEventListener('error', done, {once: true});
    setTimeout(done, 10000);
  });
  await Promise.all(images.map(settle));
  // DocC swaps an image that failed for a placeholder picture titled "Image failed to load".
  const source = image => image.currentSrc || image.src || '';
  return images.map(image => ({src: source(image).startsWith('data:')
                                    ? `DocC's placeholder for "${image.alt}"` : source(image),
                               loaded: image.complete && image.naturalWidth > 0
                                       && image.title !== 'Image failed to load',
                               width: image.naturalWidth}));
})()
"""


# The renderer prints straight quotes as typographic ones.
TYPOGRAPHIC = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})

# Files DocC's renderer asks for that a site may leave out: a 404 for them is not a broken page.
OPTIONAL_FILES = ("/favicon.ico", "/theme-settings.json")


def check_page(browser, session, url, title, sentence):
    """Problems with one page (an empty list when it rendered with all its images)."""
    browser.send("Page.navigate", {"url": url}, session)
    browser.wait_for_event("Page.loadEventFired", session, PAGE_TIMEOUT)
    deadline = time.time() + PAGE_TIMEOUT
    text = ""
    while time.time() < deadline:
        text = re.sub(r"\s+", " ", browser.evaluate(RENDERED_TEXT, session) or "")
        text = text.translate(TYPOGRAPHIC)
        if title in text and sentence in text:
            break
        time.sleep(0.2)
    # Then until the page stops growing (DocC fills sections in after the first paint), so
    # that every image is in the document before they are checked.
    while time.time() < deadline:
        time.sleep(0.3)
        settled = browser.evaluate(RENDERED_TEXT, session) or ""
        if len(re.sub(r"\s+", " ", settled)) == len(text):
            break
        text = re.sub(r"\s+", " ", settled).translate(TYPOGRAPHIC)
    problems = []
    if title not in text:
        problems.append(f"title {title!r} not rendered")
    if sentence not in text:
        problems.append(f"first sentence {sentence!r} not rendered")
    if "enable JavaScript" in text or "page you're looking for" in text.lower():
        problems.append("DocC's fallback page instead of the content")
    images = browser.evaluate(IMAGES, session) or []
    for image in images:
        if not image["loaded"]:
            problems.append(f"image did not load: {image['src']}")
    return problems, len(images), len(text)


def main():
    started = time.time()
    pages = expected_pages()
    if not pages:
        fail("no .docc Markdown pages found under Sources/")
    if len(sys.argv) > 1:
        site = sys.argv[1]
    else:
        site = tempfile.mkdtemp(prefix="docs-site-")
        subprocess.run([os.path.join(ROOT, "scripts", "build-docs.sh"), site], check=True)
    if not os.path.isfile(os.path.join(site, "index.html")):
        fail(f"{site} has no index.html: not a statically hosted DocC site")

    binary = os.environ.get("CHROMIUM") or next(
        (b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
    if binary is None or shutil.which(binary) is None:
        fail("no Chromium found: install it (Debian: apt-get install -y chromium) or set CHROMIUM")

    server = serve(site)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    browser = Browser(binary)
    failures = 0
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        browser.send("Page.enable", session=session)
        browser.send("Runtime.enable", session=session)
        for module, path, title, sentence in pages:
            QuietHandler.failures.clear()
            try:
                problems, images, characters = check_page(browser, session, base + path, title, sentence)
            except (RuntimeError, TimeoutError) as error:
                problems, images, characters = [str(error)[:300]], 0, 0
            problems += [f"HTTP {line}" for line in QuietHandler.failures
                         if not line.split(" ", 1)[1].endswith(OPTIONAL_FILES)]
            status = "ok  " if not problems else "FAIL"
            print(f"{status} {path}  ({characters} characters, {images} image{'s' if images != 1 else ''})")
            for problem in problems:
                print(f"       {problem}")
            failures += bool(problems)
    finally:
        browser.close()
        server.shutdown()
    print(f"{len(pages) - failures} of {len(pages)} pages rendered with all images "
          f"in {time.time() - started:.0f} s")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
