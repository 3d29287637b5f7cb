"""Test registries for the e2e suites: Debian's docker-registry on 127.0.0.1
(anonymous, or with htpasswd basic auth), an optional bearer-token front for
it, and pushing images made by tests/images/mkimage with skopeo.

Plain classes do the work, so any suite can use them directly; the pytest
fixtures at the bottom are thin wrappers. Everything started here is stopped
and every temporary directory removed on close(), also when a test fails.

    with Registry() as reg:
        ref = reg.push_test_image("busybox", "latest")   # "127.0.0.1:PORT/busybox:latest"
"""

import base64
import http.client
import http.server
import json
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import crypt  # bcrypt through glibc's libxcrypt; gone in Python 3.13
    except ImportError:
        crypt = None

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MKIMAGE = os.path.join(REPO_ROOT, "tests", "images", "mkimage")
REGISTRY_BIN = "/usr/bin/docker-registry"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bcrypt_hash(password):
    """docker-registry's htpasswd auth accepts only bcrypt hashes."""
    if crypt is not None:
        return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 5))
    # without the crypt module: apache2-utils' htpasswd
    out = subprocess.run(["htpasswd", "-nbB", "-C", "5", "x", password], check=True,
                         capture_output=True, text=True).stdout.strip()
    return out.split(":", 1)[1]


def mkimage(out_dir, tag="latest", **opts):
    """Runs tests/images/mkimage; opts map to its flags (layer=[...], env=[...],
    index="amd64,arm64", cmd='["sh"]', compression="none" ...). Returns the
    digest of what the tag names."""
    argv = [MKIMAGE, "--out", out_dir, "--tag", tag]
    for key, value in opts.items():
        flag = "--" + key.replace("_", "-")
        for v in value if isinstance(value, (list, tuple)) else [value]:
            argv += [flag, v]
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout.strip()


class Registry:
    """docker-registry serving 127.0.0.1:<random port> from a temporary
    directory. users={"name": "password"} turns on htpasswd basic auth; addr
    is another address of this machine to serve on (agents in network
    namespaces reach the registry at the address of their bridge)."""

    def __init__(self, users=None, addr="127.0.0.1"):
        self.users = users or {}
        self.addr = addr
        self.tmp = tempfile.mkdtemp(prefix="barge-registry-")
        self.storage = os.path.join(self.tmp, "storage")
        self.images = os.path.join(self.tmp, "images")
        self.port = None
        self.proc = None
        self.log = None

    @property
    def host(self):
        return "%s:%d" % (self.addr, self.port)

    def start(self):
        os.makedirs(self.storage)
        auth = ""
        if self.users:
            htpasswd = os.path.join(self.tmp, "htpasswd")
            with open(htpasswd, "w") as f:
                for user, password in self.users.items():
                    f.write("%s:%s\n" % (user, bcrypt_hash(password)))
            auth = "auth:\n  htpasswd:\n    realm: barge-test\n    path: %s\n" % htpasswd
        # A port can be taken between free_port() and the bind: retry a few times.
        for _ in range(5):
            self.port = free_port()
            config = os.path.join(self.tmp, "config.yml")
            with open(config, "w") as f:
                f.write(
                    "version: 0.1\n"
                    "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
                    "storage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\n"
                    "http:\n  addr: %s\n%s" % (self.storage, self.host, auth))
            self.log = open(os.path.join(self.tmp, "registry.log"), "ab")
            self.proc = subprocess.Popen([REGISTRY_BIN, "serve", config], stdout=self.log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
            if self._wait_ready():
                return self
            self._kill()
        raise RuntimeError("docker-registry did not start; log in %s" % self.tmp)

    def _wait_ready(self, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                urllib.request.urlopen("http://%s/v2/" % self.host, timeout=1).close()
                return True
            except urllib.error.HTTPError as e:
                if e.code == 401:
                    return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def _kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self.log:
            self.log.close()
            self.log = None

    def close(self):
        self._kill()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    def push(self, oci_dir, tag, name, dest_tag=None, all_platforms=False, fmt=None,
             creds=None, compress=None):
        """skopeo copy of oci:oci_dir:tag to this registry as name:dest_tag.
        fmt "v2s2" converts to Docker schema 2; compress "zstd" recompresses
        the layers. Returns the pushed reference."""
        dest = "%s/%s:%s" % (self.host, name, dest_tag or tag)
        argv = ["skopeo", "--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false"]
        if all_platforms:
            argv.append("--all")
        if fmt:
            argv += ["--format", fmt]
        if compress:
            argv += ["--dest-compress-format", compress]
        if creds or self.users:
            user, password = creds or next(iter(self.users.items()))
            argv += ["--dest-creds", "%s:%s" % (user, password)]
        argv += ["oci:%s:%s" % (oci_dir, tag), "docker://" + dest]
        subprocess.run(argv, check=True, capture_output=True, timeout=120)
        return dest

    def push_test_image(self, name, tag="latest", fmt=None, compress=None, **mkimage_opts):
        """Makes a busybox image with mkimage (see its flags) and pushes it.
        An index (index="amd64,arm64") is pushed with all its platforms."""
        out = os.path.join(self.images, "%s-%s" % (name.replace("/", "_"), tag))
        mkimage(out, tag, **mkimage_opts)
        return self.push(out, tag, name, all_platforms="index" in mkimage_opts, fmt=fmt,
                         compress=compress)

    def manifest(self, name, reference, creds=None):
        """The raw manifest (bytes) and its content type, straight from the registry."""
        req = urllib.request.Request(
            "http://%s/v2/%s/manifests/%s" % (self.host, name, reference),
            headers={"Accept": ", ".join([
                "application/vnd.oci.image.index.v1+json",
                "application/vnd.docker.distribution.manifest.list.v2+json",
                "application/vnd.oci.image.manifest.v1+json",
                "application/vnd.docker.distribution.manifest.v2+json"])})
        if creds or self.users:
            user, password = creds or next(iter(self.users.items()))
            token = base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
            req.add_header("Authorization", "Basic " + token)
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.read(), r.headers.get("Content-Type")

    def blob_path(self, digest):
        """Where the registry keeps a blob on disk (to corrupt it in tests)."""
        hexd = digest.split(":", 1)[1]
        return os.path.join(self.storage, "docker", "registry", "v2", "blobs", "sha256",
                            hexd[:2], hexd, "data")


class _TokenHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _send(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _token(self):
        front = self.server.front
        front.token_requests += 1
        got = self.headers.get("Authorization", "")
        want = "Basic " + base64.b64encode(
            ("%s:%s" % (front.user, front.password)).encode()).decode()
        if got != want:
            return self._send(401, b'{"errors":[{"code":"UNAUTHORIZED","message":'
                                   b'"incorrect username or password"}]}',
                              [("Content-Type", "application/json"),
                               ("WWW-Authenticate", 'Basic realm="barge-token"')])
        token = secrets.token_hex(16)
        with front.lock:
            front.tokens[token] = front.token_uses
        body = json.dumps({"token": token, "expires_in": 300}).encode()
        self._send(200, body, [("Content-Type", "application/json")])

    def _proxy(self):
        front = self.server.front
        with front.lock:
            front.requests += 1
            fail = front.fail_first > 0
            front.fail_first -= 1 if fail else 0
        if "/manifests/" in self.path and front.manifest_delay:
            time.sleep(front.manifest_delay)
        if fail:
            return self._send(front.fail_status, b'{"errors":[{"code":"UNAVAILABLE",'
                                                 b'"message":"injected failure"}]}',
                              [("Content-Type", "application/json")])
        auth = self.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else None
        with front.lock:
            valid = token in front.tokens
            if valid and front.token_uses:
                # a token good for token_uses requests, to mimic expiry
                front.tokens[token] -= 1
                if front.tokens[token] <= 0:
                    del front.tokens[token]
        if front.user and not valid:
            parts = self.path.split("/")
            name = "/".join(parts[2:-2]) if len(parts) > 4 else ""
            challenge = 'Bearer realm="http://%s/token",service="barge-test"' % front.host
            if name:
                challenge += ',scope="repository:%s:pull"' % name
            return self._send(401, b'{"errors":[{"code":"UNAUTHORIZED","message":'
                                   b'"authentication required"}]}',
                              [("Content-Type", "application/json"),
                               ("WWW-Authenticate", challenge)])
        conn = http.client.HTTPConnection(front.upstream_addr, front.upstream_port, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() in ("accept", "range")}
        conn.request(self.command, self.path, headers=headers)
        r = conn.getresponse()
        body = r.read()
        keep = [(k, v) for k, v in r.getheaders()
                if k.lower() in ("content-type", "docker-content-digest", "location")]
        if self.command == "HEAD":
            keep.append(("Content-Length", r.getheader("Content-Length", "0")))
            self.send_response(r.status)
            for k, v in keep:
                self.send_header(k, v)
            self.end_headers()
        else:
            self._send(r.status, body, keep)
        conn.close()

    def do_GET(self):
        if self.path.startswith("/token"):
            return self._token()
        return self._proxy()

    def do_HEAD(self):
        return self._proxy()


class Front:
    """An HTTP front for an anonymous Registry. With a user, /v2/ answers 401
    with a Bearer challenge whose realm is our /token, which hands out tokens
    for user:password (basic auth), and requests with a valid token are
    proxied; token_uses=N makes each token expire after N requests. fail_first=N
    answers the first N /v2/ requests with fail_status (to exercise retries);
    manifest_delay=S answers manifest requests S seconds late (a slow pull)."""

    def __init__(self, registry, user=None, password=None, fail_first=0, fail_status=503,
                 token_uses=0, manifest_delay=0):
        self.upstream_addr = registry.addr
        self.upstream_port = registry.port
        self.manifest_delay = manifest_delay
        self.user, self.password = user, password
        self.fail_first, self.fail_status = fail_first, fail_status
        self.lock = threading.Lock()
        self.requests = 0
        self.token_uses = token_uses
        self.tokens = {}
        self.token_requests = 0
        self.server = http.server.ThreadingHTTPServer((registry.addr, 0), _TokenHandler)
        self.server.daemon_threads = True
        self.server.front = self
        self.host = "%s:%d" % (registry.addr, self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class TokenFront(Front):
    """A Front that demands bearer tokens for tokenuser:tokenpass."""

    def __init__(self, registry, user="tokenuser", password="tokenpass", token_uses=0):
        super().__init__(registry, user, password, token_uses=token_uses)


# pytest fixtures (pytest is only needed when these are used)
try:
    import pytest
except ImportError:  # pragma: no cover
    pytest = None

if pytest:
    @pytest.fixture(scope="module")
    def registry():
        """An anonymous registry on loopback for the module's tests."""
        with Registry() as reg:
            yield reg

    @pytest.fixture(scope="module")
    def auth_registry():
        """A registry with basic auth; its user is reg.users."""
        with Registry(users={"barge": "s3cret-pass"}) as reg:
            yield reg

    @pytest.fixture(scope="module")
    def token_registry(registry):
        """A bearer-token front over `registry`."""
        front = TokenFront(registry)
        try:
            yield front
        finally:
            front.close()

