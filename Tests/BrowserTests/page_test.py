#!/usr/bin/env python3
"""The web page in a real browser: headless Chromium (Debian's package) drives the page served by `postersim serve`.

It builds a small store with `postersim ingest json` (generated posters, the tiny fixture checkpoints), starts the
server on a free loopback port, and talks to Chromium over the DevTools protocol through a pipe
(`--remote-debugging-pipe`: NUL-separated JSON on file descriptors 3 and 4), so only the standard library is needed.
Each step acts as a person would (typing, clicking at an element's position, picking a file) and asserts on the DOM,
never on pixels; a screenshot of each step is saved under the output folder.

    Tests/BrowserTests/page_test.py --postersim .build/debug/postersim --out .build/browser-test

Ends with the line "browser: N passed, M failed" and exits non-zero when a step failed.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request
import zlib
import base64

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURE_CHECKPOINTS = os.path.join(ROOT, "Tests", "Fixtures", "checkpoints")


# ---- Test data: generated posters and TMDB-shaped movie records ----

def write_png(path, width, height, pixel):
    """An RGB PNG from pixel(x, y) -> (r, g, b), written with zlib alone."""
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter type None
        for x in range(width):
            rows.extend(pixel(x, y))

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(rows), 6))
                + chunk(b"IEND", b""))


MOVIES = [
    ("Crimson Harbor", "2019-03-14", "A lighthouse keeper finds a ship that sank fifty years ago.", "en", [18, 9648]),
    ("Le Cœur Bleu", "2008-11-02", "Two sisters inherit a café in Lyon and a debt nobody mentioned.", "fr", [35, 18]),
    ("Night of the Long Tide", "1987-07-21", "A surf town fights a storm that will not pass.", "en", [28, 53]),
    ("Desert Signal", "2022-05-06", "A radio astronomer hears a voice in the noise.", "en", [878, 18]),
    ("Amélie's Garden", "2001-04-25", "A gardener plants one flower for each secret she keeps.", "fr", [35, 10749]),
    ("The Glass Orchard", "2015-09-18", "An orchard where the fruit shows the future.", "en", [14, 18]),
    ("Orbit Nine", "2024-01-12", "Nine astronauts, one lifeboat.", "en", [878, 53]),
    ("Kaze no Michi", "2011-08-30", "A courier crosses Japan on a bicycle in seven days.", "ja", [12, 18]),
    ("Paper Lanterns", "1996-12-24", "A family gathers for the last winter in the old house.", "en", [18, 10751]),
    ("Iron Meridian", "2018-06-01", "A train heist on the longest railway in the world.", "en", [28, 80]),
    ("Dune Runner", "2009-02-13", "A smuggler races across the dunes with a stolen map.", "en", [12, 28]),
    ("Silent Aurora", "2020-10-09", "The northern lights go dark for a whole night.", "en", [878, 9648]),
]


def poster_pixel(index):
    # Each poster gets its own palette and pattern, so the three models tell them apart.
    base = [(200, 40, 40), (40, 80, 200), (20, 120, 160), (220, 170, 60), (60, 170, 80), (150, 60, 170),
            (30, 30, 60), (230, 120, 30), (240, 200, 120), (90, 90, 90), (210, 180, 90), (40, 200, 200)][index]
    stripes = 3 + index

    def pixel(x, y):
        band = (x * stripes // 200 + y * (index % 4 + 1) // 60) % 2
        shade = y * 255 // 300
        r, g, b = base
        if band:
            return (min(255, r + shade // 3), min(255, g + shade // 4), min(255, b + shade // 5))
        return (r * (255 - shade) // 255, g * (255 - shade) // 255, b * (255 - shade) // 255)

    return pixel


def make_dataset(folder):
    # Laid out as the ingest's poster cache ({cache}/{size}/{file}), which the server's /posters route reads.
    cache = os.path.join(folder, "poster-cache")
    posters = os.path.join(cache, "original")
    os.makedirs(posters)
    records = []
    for i, (title, date, overview, language, genres) in enumerate(MOVIES):
        movie_id = 1000 + i
        poster_path = f"/poster{i:02d}.png"
        write_png(os.path.join(posters, poster_path.lstrip("/")), 200, 300, poster_pixel(i))
        records.append({
            "id": movie_id, "title": title, "original_title": title, "overview": overview, "release_date": date,
            "poster_path": poster_path, "backdrop_path": None, "genre_ids": genres, "original_language": language,
            "popularity": 100.0 - i, "vote_average": 5.0 + (i % 5) * 0.9, "vote_count": 100 + 37 * i,
            "adult": False, "video": False,
        })
    with open(os.path.join(folder, "not-an-image.png"), "w") as f:
        f.write("this is text, not a PNG")
    movies_file = os.path.join(folder, "movies.json")
    with open(movies_file, "w") as f:
        json.dump(records, f, ensure_ascii=False)
    return movies_file, cache, posters, records


# ---- Chromium over the DevTools protocol, through a pipe ----

class Browser:
    def __init__(self, executable, profile):
        # Chromium reads commands from fd 3 and writes replies and events to fd 4.
        to_browser_read, self._write_fd = os.pipe()
        self._read_fd, from_browser_write = os.pipe()
        args = [executable, "--headless=new", "--remote-debugging-pipe", f"--user-data-dir={profile}",
                "--no-first-run", "--no-default-browser-check", "--disable-gpu", "--disable-extensions",
                "--disable-dev-shm-usage", "--window-size=1280,1000", "--hide-scrollbars", "--mute-audio"]
        if os.geteuid() == 0:
            args.append("--no-sandbox")  # Chromium refuses to run its sandbox as root (CI runs as root).

        def child_fds():
            os.dup2(to_browser_read, 3)
            os.dup2(from_browser_write, 4)

        self.process = subprocess.Popen(args + ["about:blank"], preexec_fn=child_fds, pass_fds=(3, 4),
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._buffer = b""
        self._next_id = 0
        self.session = None
        self.events = []

    def send(self, method, params=None, session=True, timeout=30):
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self._write_fd, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def _read(self, deadline):
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("Chromium did not answer in time")
            import select
            ready, _, _ = select.select([self._read_fd], [], [], 0.5)
            if ready:
                data = os.read(self._read_fd, 1 << 20)
                if not data:
                    raise RuntimeError("Chromium closed the DevTools pipe")
                self._buffer += data
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def open_page(self):
        """A fresh tab (closing the previous one), so each step starts from a clean page; the profile, and with it
        the page's saved theme, is shared."""
        if self.session:
            self.send("Target.closeTarget", {"targetId": self.target}, session=False)
            self.session = None
        self.events = []
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.target = target
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 session=False)["sessionId"]
        self.send("Page.enable")
        self.send("Runtime.enable")
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": 1280, "height": 1000, "deviceScaleFactor": 1, "mobile": False})

    def evaluate(self, expression):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails'].get('text')}: {expression}")
        return result["result"].get("value")

    def wait_for(self, expression, timeout=30, what=None):
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what or expression} (last value {value!r})")

    def wait_event(self, method, timeout=30):
        """Waits for the DevTools event `method` and returns its params (events seen earlier are consumed first)."""
        deadline = time.monotonic() + timeout
        while True:
            for index, event in enumerate(self.events):
                if event.get("method") == method:
                    del self.events[index]
                    return event.get("params", {})
            self.events.append(self._read(deadline))

    def navigate(self, url):
        # Wait for the load event rather than polling the page: a script evaluated while the old document is being
        # torn down may never be answered.
        self.events = [e for e in self.events if e.get("method") != "Page.loadEventFired"]
        self.send("Page.navigate", {"url": url})
        self.wait_event("Page.loadEventFired")

    def click(self, selector):
        box = self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); if (!e) return null;"
            f" e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect();"
            f" return [r.left + r.width / 2, r.top + r.height / 2]; }})()")
        if not box:
            raise AssertionError(f"nothing to click at {selector}")
        x, y = box
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            params = {"type": kind, "x": x, "y": y}
            if kind != "mouseMoved":
                params.update(button="left", clickCount=1)
            self.send("Input.dispatchMouseEvent", params)

    def type_text(self, selector, text):
        self.click(selector)
        self.send("Input.insertText", {"text": text})

    def set_file(self, selector, path):
        document = self.send("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
        node = self.send("DOM.querySelector", {"nodeId": document, "selector": selector})["nodeId"]
        self.send("DOM.setFileInputFiles", {"nodeId": node, "files": [path]})

    def screenshot(self, path):
        data = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def close(self):
        try:
            self.send("Browser.close", session=False, timeout=5)
        except Exception:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        os.close(self._write_fd)
        os.close(self._read_fd)


# ---- The server ----

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def model_dirs():
    args = []
    for name in ("clip", "resnet50", "vgg16"):
        args += ["--model-dir", f"{name}={os.path.join(FIXTURE_CHECKPOINTS, name)}"]
    return args


def run(cmd, **kwargs):
    completed = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({completed.returncode}):\n{completed.stdout}\n{completed.stderr}")
    return completed.stdout


def start_server(postersim, db, poster_cache, port, log_path, public_dir=None):
    log = open(log_path, "w")
    extra = ["--public-dir", public_dir] if public_dir else []
    process = subprocess.Popen(
        [postersim, "serve", "--host", "127.0.0.1", "--port", str(port), "--db", db, "--poster-cache", poster_cache]
        + extra + model_dirs(), stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"postersim serve exited with {process.returncode}; see {log_path}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
                if response.status == 200:
                    return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"postersim serve was not ready after 120 s; see {log_path}")


# ---- The steps ----

def cards(browser, container="#results"):
    return browser.evaluate(
        f"Array.from(document.querySelectorAll('{container} .card')).map(c => ({{id: c.dataset.id,"
        f" title: c.querySelector('.title').textContent, score: c.querySelector('.score').textContent,"
        f" self: c.classList.contains('self'), poster: c.querySelector('.poster').getAttribute('src')}}))")


def steps(browser, base, records, posters, out):
    by_title = {r["title"]: r for r in records}
    expected_k = min(10, len(records))

    def shot(name):
        browser.screenshot(os.path.join(out, f"{name}.png"))

    def pick_movie():
        browser.navigate(base + "/")
        browser.wait_for("document.querySelector('#status').textContent.length > 0", what="the page's first status")
        browser.type_text("#search-input", "amelie")  # case- and accent-insensitive
        browser.wait_for("document.querySelectorAll('#suggestions li[role=option]').length > 0",
                         what="autocomplete suggestions")
        labels = browser.evaluate(
            "Array.from(document.querySelectorAll('#suggestions li[role=option]')).map(li => li.textContent)")
        assert labels == ["Amélie's Garden - 2001-04-25"], f"suggestions for 'amelie': {labels}"
        shot("1-autocomplete")
        browser.click("#suggestions li[role=option]")
        movie = str(by_title["Amélie's Garden"]["id"])
        browser.wait_for(f"document.querySelectorAll('#results .card').length === {expected_k}",
                         what=f"{expected_k} result cards")
        url = browser.evaluate("location.search")
        assert url == f"?movie={movie}&model=CLIP", f"URL after picking a movie: {url}"
        found = cards(browser)
        assert found[0]["id"] == movie and found[0]["self"], f"the picked movie should come first: {found[0]}"
        assert found[0]["score"].startswith("similarity 1.000"), f"its own score: {found[0]['score']}"
        assert found[0]["poster"] == by_title["Amélie's Garden"]["poster_path"].replace("/", "/posters/", 1)
        assert browser.evaluate("document.querySelector('#query-movie h2').textContent") == "Amélie's Garden"
        # The poster images load from the server's poster cache.
        browser.wait_for("Array.from(document.querySelectorAll('#results .poster')).every(i => i.complete"
                         " && i.naturalWidth === 200)", what="posters loaded from the local cache")
        shot("2-similar-clip")
        return movie

    def switch_model(movie):
        browser.navigate(base + f"/?movie={movie}&model=CLIP")
        browser.wait_for(f"document.querySelectorAll('#results .card').length === {expected_k}", what="CLIP cards")
        browser.click(".chip[data-model='ResNet-50']")
        browser.wait_for("location.search.includes('model=ResNet-50')", what="the URL to name ResNet-50")
        browser.wait_for("document.querySelector('#status').textContent.includes('ResNet-50')",
                         what="ResNet-50 results")
        found = cards(browser)
        assert len(found) == expected_k, f"{len(found)} cards under ResNet-50"
        assert found[0]["id"] == movie, f"first under ResNet-50: {found[0]}"
        assert all(c["score"].startswith("distance ") for c in found), [c["score"] for c in found]
        distances = [float(c["score"].split()[1]) for c in found]
        assert distances == sorted(distances) and distances[0] < distances[1], f"distances out of order: {distances}"
        assert browser.evaluate("document.querySelector(\".chip[data-model='ResNet-50']\")"
                                ".getAttribute('aria-checked')") == "true"
        shot("3-similar-resnet50")
        # State lives in the URL: reloading shows the same results; going back restores CLIP.
        before = [c["id"] for c in found]
        browser.navigate(base + f"/?movie={movie}&model=ResNet-50")
        browser.wait_for(f"document.querySelectorAll('#results .card').length === {expected_k}", what="reloaded cards")
        assert [c["id"] for c in cards(browser)] == before, "reloading the URL changed the results"
        browser.navigate(base + f"/?movie={movie}&model=VGG16")
        browser.wait_for("document.querySelector('#status').textContent.includes('VGG16')", what="VGG16 results")
        assert cards(browser)[0]["id"] == movie

    def compare(movie):
        browser.navigate(base + f"/?movie={movie}&model=CLIP")
        browser.wait_for(f"document.querySelectorAll('#results .card').length === {expected_k}", what="CLIP cards")
        browser.click("#compare-toggle")
        browser.wait_for("!document.querySelector('#compare').hidden && document.querySelectorAll("
                         f"'#compare .column .card').length === {3 * expected_k}", what="three columns of results")
        columns = browser.evaluate("Array.from(document.querySelectorAll('#compare .column')).map(c => c.dataset.model)")
        assert columns == ["CLIP", "ResNet-50", "VGG16"], columns
        assert "compare=1" in browser.evaluate("location.search")
        shot("4-compare")

    def upload_image():
        browser.navigate(base + "/")
        browser.click(".mode[data-mode='image']")
        browser.wait_for("!document.querySelector('#panel-image').hidden", what="the image panel")
        browser.click(".chip[data-model='VGG16']")
        record = by_title["Orbit Nine"]
        browser.set_file("#image-input", os.path.join(posters, record["poster_path"].lstrip("/")))
        browser.wait_for(f"document.querySelectorAll('#results .card').length === {expected_k}",
                         what="results for the uploaded image")
        found = cards(browser)
        assert found[0]["id"] == str(record["id"]), f"the uploaded poster should find its movie first: {found[0]}"
        assert float(found[0]["score"].split()[1]) < float(found[1]["score"].split()[1]), found[:2]
        assert "VGG16" in browser.evaluate("document.querySelector('#status').textContent")
        assert not browser.evaluate("document.querySelector('#image-preview').hidden")
        shot("5-image-search")
        # Not an image: the server's reason is shown, the page keeps working.
        # Written with the data set, well before it is picked: Chromium refuses to upload a file changed after that.
        bad = os.path.join(os.path.dirname(posters), "..", "not-an-image.png")
        browser.set_file("#image-input", os.path.abspath(bad))
        browser.wait_for("document.querySelector('#status').classList.contains('error')", what="an error status")
        message = browser.evaluate("document.querySelector('#status').textContent")
        assert "not a JPEG, PNG or WebP image" in message, f"the decoder's reason should be shown, got {message!r}"
        assert browser.evaluate("document.querySelectorAll('#results .card').length") == 0
        shot("6-image-error")

    def text_search():
        browser.navigate(base + "/")
        browser.click(".mode[data-mode='text']")
        browser.type_text("#text-input", "a lone astronaut on a red planet")
        browser.click("#text-submit")
        browser.wait_for(f"document.querySelectorAll('#results .card').length === {expected_k}",
                         what="text search results")
        search = browser.evaluate("location.search")
        assert search.startswith("?q=a+lone+astronaut"), search
        scores = [c["score"] for c in cards(browser)]
        assert all(s.startswith("similarity ") for s in scores), scores
        values = [float(s.split()[1]) for s in scores]
        assert values == sorted(values, reverse=True), f"text results out of order: {values}"
        shot("7-text-search")

    def theme():
        browser.navigate(base + "/?movie=1000&model=CLIP")
        browser.wait_for("document.querySelectorAll('#results .card').length > 0", what="cards")
        before = browser.evaluate("document.documentElement.dataset.theme")
        browser.click("#theme-toggle")
        after = browser.evaluate("document.documentElement.dataset.theme")
        assert {before, after} == {"dark", "light"}, (before, after)
        shot(f"8-theme-{after}")
        browser.navigate(base + "/?movie=1000&model=CLIP")  # the choice is remembered
        assert browser.evaluate("document.documentElement.dataset.theme") == after
        browser.click("#theme-toggle")

    def unknown_movie():
        browser.navigate(base + "/?movie=999999&model=CLIP")
        browser.wait_for("document.querySelector('#status').classList.contains('error')", what="an error status")
        message = browser.evaluate("document.querySelector('#status').textContent")
        assert message.strip(), "the error should be shown"
        assert browser.evaluate("document.querySelectorAll('#results .card').length") == 0
        shot("9-unknown-movie")

    state = {}
    return [
        ("pick a movie by autocomplete", lambda: state.setdefault("movie", pick_movie())),
        ("switch model, reload from the URL", lambda: switch_model(state["movie"])),
        ("compare the three models", lambda: compare(state["movie"])),
        ("upload an image", upload_image),
        ("search by text", text_search),
        ("toggle the theme", theme),
        ("unknown movie", unknown_movie),
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postersim", default=os.path.join(ROOT, ".build", "debug", "postersim"))
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument("--out", default=os.path.join(ROOT, ".build", "browser-test"))
    parser.add_argument("--public-dir", help="serve the page from this folder instead of the one built in")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="postersim-browser-")
    server = browser = None
    passed = failed = 0
    try:
        movies_file, cache, posters, records = make_dataset(work)
        db = os.path.join(work, "store.sqlite")
        run([args.postersim, "ingest", "json", movies_file, "--posters", posters, "--db", db, "--json"] + model_dirs())
        port = free_port()
        server = start_server(args.postersim, db, cache, port, os.path.join(args.out, "server.log"), args.public_dir)
        browser = Browser(args.chromium, os.path.join(work, "profile"))
        for name, step in steps(browser, f"http://127.0.0.1:{port}", records, posters, args.out):
            try:
                browser.open_page()
                step()
                passed += 1
                print(f"  ok    {name}")
            except Exception:
                failed += 1
                print(f"  FAIL  {name}")
                traceback.print_exc()
                try:
                    browser.screenshot(os.path.join(args.out, "failure-" + name.replace(" ", "-") + ".png"))
                except Exception:
                    pass
    except Exception:
        traceback.print_exc()
        failed += 1
    finally:
        if browser:
            browser.close()
        if server:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                print("  FAIL  the server did not stop within 20 s of SIGTERM")
                failed += 1
        shutil.rmtree(work, ignore_errors=True)
    print(f"screenshots: {args.out}")
    print(f"browser: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
