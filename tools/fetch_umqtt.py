# Fetches umqtt/simple.py (PyPI micropython-umqtt.simple, sdist only) into build/ for the host runs.
# Finds the sdist through pip's configured index (PEP 503 simple API), checks its sha256, extracts.
"""Usage: python tools/fetch_umqtt.py [--dest build] [--force]

pip itself refuses this sdist ("not a Python project"), so this reads the index like pip does:
the index URLs come from `pip config list` (index-url, extra-index-url) or pip's own default,
the project page is <index>/micropython-umqtt-simple/ (PEP 503), the link fragment carries the
sha256 that the download must match. Only umqtt/simple.py is extracted.
"""

import argparse
import hashlib
import html.parser
import io
import os
import shlex
import ssl
import subprocess
import sys
import tarfile
import urllib.parse
import urllib.request

PROJECT = "micropython-umqtt-simple"  # PEP 503 normalised name of micropython-umqtt.simple
VERSION = "1.3.4"
MEMBER = "umqtt/simple.py"
TIMEOUT_S = 60


class _Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.links = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            for k, v in attrs:
                if k == "href" and v:
                    self.links.append(v)


def pip_settings():
    """(index URLs in pip's order, CA bundle or None) from pip's configuration."""
    index = None
    extra = []
    cert = None
    try:
        out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True,
                             text=True, timeout=TIMEOUT_S).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    for line in out.splitlines():
        key, _, value = line.partition("=")
        value = value.strip().strip("'\"")
        name = key.rsplit(".", 1)[-1]
        if name == "index-url":
            index = value
        elif name == "extra-index-url":
            extra.extend(shlex.split(value))
        elif name == "cert":
            cert = value
    index = os.environ.get("PIP_INDEX_URL", index)
    extra.extend(shlex.split(os.environ.get("PIP_EXTRA_INDEX_URL", "")))
    cert = os.environ.get("PIP_CERT", cert)
    if not index:
        index = default_index()
    urls = [index] + [u for u in extra if u != index]
    return urls, cert


def default_index():
    """pip's built-in default index (asked from pip, so no host name is written here)."""
    try:
        from pip._internal.models.index import PyPI

        return PyPI.simple_url
    except ImportError:
        out = subprocess.run([sys.executable, "-c", "from pip._internal.models.index import PyPI;"
                              "print(PyPI.simple_url)"], capture_output=True, text=True, timeout=TIMEOUT_S)
        return out.stdout.strip()


def _open(url, ctx):
    if url.startswith("file:"):
        path = urllib.request.url2pathname(urllib.parse.urlparse(url).path)
        if os.path.isdir(path):
            path = os.path.join(path, "index.html")
        with open(path, "rb") as f:
            return f.read()
    req = urllib.request.Request(url, headers={"Accept": "text/html"})
    with urllib.request.urlopen(req, timeout=TIMEOUT_S, context=ctx) as r:
        return r.read()


def find_sdist(index, ctx):
    """(url, sha256) of the wanted sdist on one index, None when the index does not have it."""
    page_url = index.rstrip("/") + "/" + PROJECT + "/"
    try:
        page = _open(page_url, ctx).decode("utf-8", "replace")
    except (OSError, ValueError) as e:
        print("fetch_umqtt: %s: %s" % (page_url, e), file=sys.stderr)
        return None
    p = _Links()
    p.feed(page)
    want = "-%s.tar.gz" % VERSION
    for href in p.links:
        url, _, frag = href.partition("#")
        fname = urllib.parse.unquote(url.rsplit("/", 1)[-1])
        if not fname.endswith(want):
            continue
        if not frag.startswith("sha256="):
            print("fetch_umqtt: %s has no sha256 fragment, skipped" % fname, file=sys.stderr)
            continue
        return urllib.parse.urljoin(page_url, url), frag[len("sha256="):]
    return None


def extract(blob, dest):
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        for m in tar.getmembers():
            if m.isfile() and m.name.endswith("/" + MEMBER):
                data = tar.extractfile(m).read()
                break
        else:
            raise SystemExit("fetch_umqtt: %s not in the sdist" % MEMBER)
    out_dir = os.path.join(dest, "umqtt")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "simple.py"), "wb") as f:
        f.write(data)
    init = os.path.join(out_dir, "__init__.py")
    if not os.path.exists(init):
        open(init, "w").close()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dest", default=os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                                   "build"))
    ap.add_argument("--force", action="store_true", help="fetch again even if present")
    args = ap.parse_args(argv)
    target = os.path.join(args.dest, MEMBER)
    stamp = os.path.join(args.dest, "umqtt", ".sdist-sha256")
    if not args.force and os.path.exists(target) and os.path.exists(stamp):
        return 0
    indexes, cert = pip_settings()
    ctx = ssl.create_default_context(cafile=cert if cert and os.path.exists(cert) else None)
    for index in indexes:
        found = find_sdist(index, ctx)
        if not found:
            continue
        url, sha = found
        try:
            blob = _open(url, ctx)
        except (OSError, ValueError) as e:
            print("fetch_umqtt: download failed: %s" % e, file=sys.stderr)
            continue
        got = hashlib.sha256(blob).hexdigest()
        if got != sha.lower():
            print("fetch_umqtt: sha256 mismatch for %s (got %s, index says %s)" % (url, got, sha),
                  file=sys.stderr)
            continue
        extract(blob, args.dest)
        with open(stamp, "w") as f:
            f.write(got + "\n")
        print("fetch_umqtt: %s %s -> %s (sha256 %s)" % (PROJECT, VERSION, target, got[:16]))
        return 0
    print("fetch_umqtt: %s %s not found on %s" % (PROJECT, VERSION, ", ".join(indexes)), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
