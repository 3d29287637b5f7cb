"""The embedded registry end to end: skopeo pushes a busybox OCI image into
barged with the token from ecr get-authorization-token and pulls it back by tag
and by digest; the distribution API by hand (monolithic, chunked and corrupted
uploads, ranges, mounts, manifest rules, deletes, pagination, auth); every ECR
operation through boto3 and the aws CLI; immutable tags; lifecycle policies
and the garbage collector; restarts."""
import base64
import hashlib
import http.client
import json
import os
import socket
import subprocess
import tarfile
import time

import pytest
from botocore.exceptions import ClientError

import ociimage
from conftest import AwsCli, Barged, error_code

SKOPEO = "/usr/bin/skopeo"
MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar"

# Lifecycle policies and the collector run every second (barged's housekeeping
# ticks every few seconds), and blobs become collectable 3 s after last use.
FAST_GC = ["--registry-gc-interval", "1", "--registry-gc-grace", "3"]


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def wait_for(pred, timeout=40, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


class Registry:
    """barged's registry as a client sees it: the ECR API, the token, raw
    distribution calls and skopeo."""

    def __init__(self, barged):
        self.barged = barged
        self.ecr = barged.client("ecr")
        auth = self.ecr.get_authorization_token()["authorizationData"][0]
        self.auth = auth
        self.user, self.password = base64.b64decode(auth["authorizationToken"]).decode().split(
            ":", 1)
        self.host = f"127.0.0.1:{barged.port}"

    @property
    def creds(self):
        return f"{self.user}:{self.password}"

    def basic(self, user=None, password=None):
        pair = f"{user or self.user}:{password or self.password}"
        return "Basic " + base64.b64encode(pair.encode()).decode()

    def call(self, method, path, body=None, headers=None, auth=True):
        """One request; returns (status, headers dict (lower-case names), body)."""
        h = dict(headers or {})
        if auth is True:
            h["Authorization"] = self.basic()
        elif auth:
            h["Authorization"] = auth
        conn = http.client.HTTPConnection("127.0.0.1", self.barged.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            data = r.read()
            hdrs = {}
            for k, v in r.getheaders():
                hdrs.setdefault(k.lower(), []).append(v)
            return r.status, {k: v[0] if len(v) == 1 else v for k, v in hdrs.items()}, data
        finally:
            conn.close()

    def error(self, body):
        return json.loads(body)["errors"][0]["code"]

    def upload(self, repo, data):
        """A monolithic upload; returns the digest."""
        d = sha256(data)
        st, h, b = self.call("POST", f"/v2/{repo}/blobs/uploads/?digest={d}", body=data,
                             headers={"Content-Type": "application/octet-stream"})
        assert st == 201, b
        assert h["docker-content-digest"] == d
        return d

    def image(self, repo, payload=b"layer", label="x"):
        """Uploads a one-layer image's blobs; returns (manifest bytes, config
        digest, layer digest)."""
        layer = payload
        config = json.dumps({"architecture": "amd64", "os": "linux",
                             "config": {"Labels": {"l": label}},
                             "rootfs": {"type": "layers",
                                        "diff_ids": [sha256(layer)]}}).encode()
        cd, ld = self.upload(repo, config), self.upload(repo, layer)
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": MT_OCI_MANIFEST,
            "config": {"mediaType": MT_OCI_CONFIG, "digest": cd, "size": len(config)},
            "layers": [{"mediaType": MT_LAYER, "digest": ld, "size": len(layer)}]}).encode()
        return manifest, cd, ld

    def put_manifest(self, repo, ref, manifest, media_type=MT_OCI_MANIFEST):
        return self.call("PUT", f"/v2/{repo}/manifests/{ref}", body=manifest,
                         headers={"Content-Type": media_type})

    def skopeo(self, *args, check=True):
        p = subprocess.run([SKOPEO, "--insecure-policy", *args], capture_output=True, text=True,
                           timeout=300)
        if check and p.returncode != 0:
            raise AssertionError(f"skopeo {' '.join(args)} failed: {p.stderr}")
        return p

    def push(self, layout, repo, tag, src_tag="latest", check=True):
        return self.skopeo("copy", "--dest-creds", self.creds, "--dest-tls-verify=false",
                           f"oci:{layout}:{src_tag}", f"docker://{self.host}/{repo}:{tag}",
                           check=check)

    def pull(self, ref, dest, check=True):
        return self.skopeo("copy", "--src-creds", self.creds, "--src-tls-verify=false",
                           f"docker://{self.host}/{ref}", f"oci:{dest}:pulled", check=check)

    def inspect(self, ref, creds=True, check=True):
        args = ["inspect", "--tls-verify=false"]
        if creds:
            args += ["--creds", self.creds]
        p = self.skopeo(*args, f"docker://{self.host}/{ref}", check=check)
        return json.loads(p.stdout) if p.returncode == 0 else p

    def blob_path(self, digest):
        hexd = digest.split(":", 1)[1]
        return os.path.join(self.barged.data_dir, "registry", "blobs", "sha256", hexd[:2], hexd)

    def uploads(self):
        return os.listdir(os.path.join(self.barged.data_dir, "registry", "uploads"))


def start(tmp_path, *args):
    return Barged(str(tmp_path / "data"), extra_args=list(args)).start()


@pytest.fixture
def reg(tmp_path):
    b = start(tmp_path, *FAST_GC)
    yield Registry(b)
    b.stop()


@pytest.fixture
def busybox(tmp_path):
    path = str(tmp_path / "busybox-oci")
    info = ociimage.busybox_image(path)
    info["path"] = path
    return info


def layer_files(layout, manifest_digest):
    """Names in the layer tar of a one-layer image in an OCI layout."""
    def blob(d):
        with open(os.path.join(layout, "blobs", "sha256", d.split(":")[1]), "rb") as f:
            return f.read()
    m = json.loads(blob(manifest_digest))
    path = os.path.join(layout, "blobs", "sha256", m["layers"][0]["digest"].split(":")[1])
    with tarfile.open(path) as tf:
        return {ti.name: ti for ti in tf.getmembers()}


def pulled_manifest(layout):
    with open(os.path.join(layout, "index.json")) as f:
        return json.load(f)["manifests"][0]["digest"]


# --- skopeo ---------------------------------------------------------------


def test_skopeo_push_then_pull_by_tag_and_digest(reg, busybox, tmp_path):
    repo = reg.ecr.create_repository(repositoryName="tools/busybox")["repository"]
    assert repo["repositoryUri"] == f"{reg.host}/tools/busybox"
    assert reg.auth["proxyEndpoint"] == f"http://{reg.host}"
    reg.push(busybox["path"], "tools/busybox", "latest")

    by_tag = reg.inspect("tools/busybox:latest")
    assert by_tag["Digest"] == busybox["manifest"]
    assert by_tag["RepoTags"] == ["latest"]
    assert by_tag["Os"] == "linux" and by_tag["Architecture"] == "amd64"
    by_digest = reg.inspect(f"tools/busybox@{busybox['manifest']}")
    assert by_digest["Digest"] == busybox["manifest"]
    assert by_digest["Layers"] == [busybox["layers"][0]["digest"]]

    for ref, name in ((f"tools/busybox@{busybox['manifest']}", "by-digest"),
                      ("tools/busybox:latest", "by-tag")):
        out = str(tmp_path / name)
        reg.pull(ref, out)
        # The manifest comes back byte for byte: same digest.
        assert pulled_manifest(out) == busybox["manifest"]
        files = layer_files(out, busybox["manifest"])
        assert files["bin/busybox"].size == os.path.getsize("/bin/busybox")
        assert files["bin/sh"].issym() and files["bin/sh"].linkname == "busybox"

    d = reg.ecr.describe_images(repositoryName="tools/busybox")["imageDetails"]
    assert len(d) == 1
    assert d[0]["imageDigest"] == busybox["manifest"]
    assert d[0]["imageTags"] == ["latest"]
    assert d[0]["imageManifestMediaType"] == MT_OCI_MANIFEST
    assert d[0]["artifactMediaType"] == MT_OCI_CONFIG
    assert d[0]["imageSizeInBytes"] == busybox["size"]
    got = reg.ecr.batch_get_image(repositoryName="tools/busybox",
                                  imageIds=[{"imageTag": "latest"}])["images"]
    assert got[0]["imageManifest"].encode() == busybox["manifest_bytes"]


def test_push_to_missing_repository_is_name_unknown(reg, busybox):
    p = reg.push(busybox["path"], "nothere", "latest", check=False)
    assert p.returncode != 0
    st, _, body = reg.call("POST", "/v2/nothere/blobs/uploads/")
    assert st == 404 and reg.error(body) == "NAME_UNKNOWN"
    st, _, body = reg.call("GET", "/v2/nothere/tags/list")
    assert st == 404 and reg.error(body) == "NAME_UNKNOWN"
    st, _, body = reg.call("GET", "/v2/Bad_Name/tags/list")
    assert st == 400 and reg.error(body) == "NAME_INVALID"


# --- authentication --------------------------------------------------------


def test_pull_without_token_is_refused(reg, busybox):
    reg.ecr.create_repository(repositoryName="busybox")
    reg.push(busybox["path"], "busybox", "latest")
    st, h, body = reg.call("GET", "/v2/", auth=False)
    assert st == 401
    challenges = h["www-authenticate"]
    assert any(c.startswith("Basic realm=") for c in challenges)
    assert any(c.startswith(f'Bearer realm="http://{reg.host}/v2/token"') for c in challenges)
    assert h["docker-distribution-api-version"] == "registry/2.0"
    for path in (f"/v2/busybox/manifests/latest",
                 f"/v2/busybox/blobs/{busybox['layers'][0]['digest']}", "/v2/_catalog"):
        st, _, body = reg.call("GET", path, auth=False)
        assert st == 401 and reg.error(body) == "UNAUTHORIZED"
    # A forged or tampered token, a wrong user, a wrong secret: all refused.
    bad = [reg.basic(password=reg.password[:-1] + ("0" if reg.password[-1] != "0" else "1")),
           reg.basic(password="b1.AKIAXXXXXXXXXXXXXXXX.9999999999." + "0" * 64),
           reg.basic(user=reg.barged.access_key, password="wrong-secret"),
           "Bearer not-a-token"]
    for a in bad:
        st, _, body = reg.call("GET", "/v2/busybox/manifests/latest", auth=a)
        assert st == 401, a
    p = reg.inspect("busybox:latest", creds=False, check=False)
    assert p.returncode != 0 and "unauthorized" in p.stderr.lower()
    # An unauthenticated push sends nothing into the store.
    st, _, _ = reg.call("POST", "/v2/busybox/blobs/uploads/?digest=" + sha256(b"x"), body=b"x",
                        auth=False)
    assert st == 401
    assert not os.path.exists(reg.blob_path(sha256(b"x")))
    # With the token (or the access key pair) it works.
    st, _, _ = reg.call("GET", "/v2/busybox/manifests/latest")
    assert st == 200
    st, _, _ = reg.call("GET", "/v2/", auth=reg.basic(reg.barged.access_key,
                                                     reg.barged.secret_key))
    assert st == 200


def test_bearer_token_flow(reg):
    reg.ecr.create_repository(repositoryName="app")
    st, h, _ = reg.call("GET", "/v2/app/tags/list", auth=False)
    bearer = [c for c in h["www-authenticate"] if c.startswith("Bearer")][0]
    assert 'scope="repository:app:pull"' in bearer
    st, _, body = reg.call("GET", "/v2/token?service=x&scope=repository:app:pull")
    assert st == 200
    tok = json.loads(body)
    assert tok["token"] == tok["access_token"]
    assert 0 < tok["expires_in"] <= 12 * 3600
    st, _, body = reg.call("GET", "/v2/app/tags/list", auth="Bearer " + tok["token"])
    assert st == 200 and json.loads(body) == {"name": "app", "tags": []}
    # A key pair gets a fresh token; no credentials get none.
    st, _, body = reg.call("GET", "/v2/token",
                           auth=reg.basic(reg.barged.access_key, reg.barged.secret_key))
    assert st == 200
    st, _, _ = reg.call("GET", "/v2/app/tags/list", auth="Bearer " + json.loads(body)["token"])
    assert st == 200
    st, _, _ = reg.call("GET", "/v2/token", auth=False)
    assert st == 401


# --- uploads and blobs -----------------------------------------------------


def test_monolithic_upload_head_get_and_ranges(reg):
    reg.ecr.create_repository(repositoryName="blobs")
    data = os.urandom(100000)
    d = reg.upload("blobs", data)
    st, h, body = reg.call("HEAD", f"/v2/blobs/blobs/{d}")
    assert st == 200 and h["content-length"] == str(len(data)) and body == b""
    assert h["docker-content-digest"] == d
    st, h, body = reg.call("GET", f"/v2/blobs/blobs/{d}")
    assert st == 200 and body == data
    st, h, body = reg.call("GET", f"/v2/blobs/blobs/{d}", headers={"Range": "bytes=10-19"})
    assert st == 206 and body == data[10:20]
    assert h["content-range"] == f"bytes 10-19/{len(data)}"
    st, h, body = reg.call("GET", f"/v2/blobs/blobs/{d}", headers={"Range": "bytes=-5"})
    assert st == 206 and body == data[-5:]
    st, h, _ = reg.call("GET", f"/v2/blobs/blobs/{d}", headers={"Range": "bytes=200000-"})
    assert st == 416 and h["content-range"] == f"bytes */{len(data)}"
    missing = sha256(b"missing")
    st, _, body = reg.call("GET", f"/v2/blobs/blobs/{missing}")
    assert st == 404 and reg.error(body) == "BLOB_UNKNOWN"
    st, _, body = reg.call("GET", "/v2/blobs/blobs/sha256:1234")
    assert st == 400 and reg.error(body) == "DIGEST_INVALID"
    st, _, body = reg.call("DELETE", f"/v2/blobs/blobs/{d}")
    assert st == 405 and reg.error(body) == "UNSUPPORTED"


def test_chunked_upload_with_status_and_content_range(reg):
    reg.ecr.create_repository(repositoryName="chunks")
    data = os.urandom(300000)
    parts = [data[:65536], data[65536:200000], data[200000:]]
    st, h, _ = reg.call("POST", "/v2/chunks/blobs/uploads/")
    assert st == 202 and h["range"] == "0-0"
    loc, uuid = h["location"], h["docker-upload-uuid"]
    assert loc == f"/v2/chunks/blobs/uploads/{uuid}"
    off = 0
    for i, part in enumerate(parts[:2]):
        st, h, _ = reg.call("PATCH", loc, body=part, headers={
            "Content-Range": f"{off}-{off + len(part) - 1}",
            "Content-Type": "application/octet-stream"})
        off += len(part)
        assert st == 202 and h["range"] == f"0-{off - 1}"
    st, h, _ = reg.call("GET", loc)
    assert st == 204 and h["range"] == f"0-{off - 1}" and h["docker-upload-uuid"] == uuid
    # A chunk that does not continue where the upload stands is refused.
    st, h, body = reg.call("PATCH", loc, body=b"xx", headers={"Content-Range": "5-6"})
    assert st == 416 and reg.error(body) == "BLOB_UPLOAD_INVALID"
    assert h["range"] == f"0-{off - 1}"
    # Nothing is visible before the final PUT.
    d = sha256(data)
    st, _, _ = reg.call("HEAD", f"/v2/chunks/blobs/{d}")
    assert st == 404
    st, h, _ = reg.call("PUT", f"{loc}?digest={d}", body=parts[2], headers={
        "Content-Range": f"{off}-{len(data) - 1}"})
    assert st == 201 and h["location"] == f"/v2/chunks/blobs/{d}"
    assert h["docker-content-digest"] == d
    st, _, body = reg.call("GET", f"/v2/chunks/blobs/{d}")
    assert body == data
    assert reg.uploads() == []
    st, _, body = reg.call("GET", loc)
    assert st == 404 and reg.error(body) == "BLOB_UPLOAD_UNKNOWN"


def test_corrupted_upload_is_digest_invalid(reg):
    reg.ecr.create_repository(repositoryName="corrupt")
    good = os.urandom(50000)
    bad = bytearray(good)
    bad[1234] ^= 0xFF
    d = sha256(good)
    # chunked
    st, h, _ = reg.call("POST", "/v2/corrupt/blobs/uploads/")
    loc = h["location"]
    reg.call("PATCH", loc, body=bytes(bad))
    st, _, body = reg.call("PUT", f"{loc}?digest={d}")
    assert st == 400 and reg.error(body) == "DIGEST_INVALID"
    st, _, body = reg.call("GET", loc)
    assert st == 404 and reg.error(body) == "BLOB_UPLOAD_UNKNOWN"
    # monolithic
    st, _, body = reg.call("POST", f"/v2/corrupt/blobs/uploads/?digest={d}", body=bytes(bad))
    assert st == 400 and reg.error(body) == "DIGEST_INVALID"
    # a digest of another algorithm
    st, _, body = reg.call("POST", "/v2/corrupt/blobs/uploads/?digest=sha512:abcd", body=b"x")
    assert st == 400 and reg.error(body) == "DIGEST_INVALID"
    st, _, _ = reg.call("HEAD", f"/v2/corrupt/blobs/{d}")
    assert st == 404
    assert not os.path.exists(reg.blob_path(d))
    assert reg.uploads() == []


def test_cancelled_and_interrupted_uploads_leave_nothing(reg):
    reg.ecr.create_repository(repositoryName="gone")
    st, h, _ = reg.call("POST", "/v2/gone/blobs/uploads/")
    loc = h["location"]
    reg.call("PATCH", loc, body=b"partial")
    st, _, _ = reg.call("DELETE", loc)
    assert st == 204
    st, _, _ = reg.call("GET", loc)
    assert st == 404
    assert reg.uploads() == []
    # A monolithic upload whose client goes away mid-body.
    data = os.urandom(1 << 20)
    d = sha256(data)
    s = socket.create_connection(("127.0.0.1", reg.barged.port))
    s.sendall((f"POST /v2/gone/blobs/uploads/?digest={d} HTTP/1.1\r\nHost: {reg.host}\r\n"
               f"Authorization: {reg.basic()}\r\nContent-Length: {len(data)}\r\n\r\n").encode()
              + data[:300000])
    time.sleep(0.3)
    s.close()
    wait_for(lambda: reg.uploads() == [], timeout=10, what="the broken upload to go")
    assert not os.path.exists(reg.blob_path(d))


def test_abandoned_upload_is_cleaned_up(tmp_path):
    b = start(tmp_path, "--registry-upload-timeout", "1")
    try:
        r = Registry(b)
        r.ecr.create_repository(repositoryName="slow")
        st, h, _ = r.call("POST", "/v2/slow/blobs/uploads/")
        loc = h["location"]
        st, _, _ = r.call("PATCH", loc, body=b"some bytes")
        assert st == 202 and len(r.uploads()) == 1
        wait_for(lambda: r.uploads() == [], what="the idle upload to be removed")
        st, _, body = r.call("GET", loc)
        assert st == 404 and r.error(body) == "BLOB_UPLOAD_UNKNOWN"
    finally:
        b.stop()


def test_cross_repository_mount(reg):
    reg.ecr.create_repository(repositoryName="src")
    reg.ecr.create_repository(repositoryName="dst")
    d = reg.upload("src", b"shared layer")
    st, h, _ = reg.call("POST", f"/v2/dst/blobs/uploads/?mount={d}&from=src")
    assert st == 201 and h["location"] == f"/v2/dst/blobs/{d}"
    assert h["docker-content-digest"] == d
    st, _, body = reg.call("GET", f"/v2/dst/blobs/{d}")
    assert st == 200 and body == b"shared layer"
    # A mount that cannot be done starts an ordinary upload.
    st, h, _ = reg.call("POST", f"/v2/dst/blobs/uploads/?mount={d}&from=nowhere")
    assert st == 202 and "/blobs/uploads/" in h["location"]
    st, h, _ = reg.call("POST", f"/v2/dst/blobs/uploads/?mount={sha256(b'no')}&from=src")
    assert st == 202


# --- manifests ---------------------------------------------------------------


def test_manifest_rules_index_head_and_delete(reg):
    reg.ecr.create_repository(repositoryName="mf")
    manifest, cd, ld = reg.image("mf", b"layer one")
    md = sha256(manifest)
    # Blobs must exist.
    missing = manifest.replace(ld.encode(), sha256(b"absent").encode())
    st, _, body = reg.put_manifest("mf", "v1", missing)
    assert st == 400 and reg.error(body) == "MANIFEST_BLOB_UNKNOWN"
    # By digest, the digest must be the body's.
    st, _, body = reg.put_manifest("mf", sha256(b"other"), manifest)
    assert st == 400 and reg.error(body) == "DIGEST_INVALID"
    st, _, body = reg.put_manifest("mf", "v1", b"{not json")
    assert st == 400 and reg.error(body) == "MANIFEST_INVALID"
    st, _, body = reg.put_manifest("mf", "bad/tag", manifest)
    assert st in (400, 404)
    st, h, _ = reg.put_manifest("mf", md, manifest)
    assert st == 201 and h["docker-content-digest"] == md
    assert h["location"] == f"/v2/mf/manifests/{md}"
    st, h, _ = reg.put_manifest("mf", "v1", manifest)
    assert st == 201

    st, h, body = reg.call("HEAD", "/v2/mf/manifests/v1")
    assert st == 200 and body == b""
    assert h["content-type"] == MT_OCI_MANIFEST
    assert h["docker-content-digest"] == md
    assert h["content-length"] == str(len(manifest))
    st, h, body = reg.call("GET", f"/v2/mf/manifests/{md}")
    assert st == 200 and body == manifest

    # An index needs its children in the repository.
    m2, _, _ = reg.image("mf", b"layer two", label="arm")
    index = json.dumps({"schemaVersion": 2, "mediaType": MT_OCI_INDEX, "manifests": [
        {"mediaType": MT_OCI_MANIFEST, "digest": md, "size": len(manifest),
         "platform": {"os": "linux", "architecture": "amd64"}},
        {"mediaType": MT_OCI_MANIFEST, "digest": sha256(m2), "size": len(m2),
         "platform": {"os": "linux", "architecture": "arm64"}}]}).encode()
    st, _, body = reg.put_manifest("mf", "multi", index, MT_OCI_INDEX)
    assert st == 400 and reg.error(body) == "MANIFEST_BLOB_UNKNOWN"
    assert reg.put_manifest("mf", sha256(m2), m2)[0] == 201
    st, _, _ = reg.put_manifest("mf", "multi", index, MT_OCI_INDEX)
    assert st == 201
    st, h, body = reg.call("GET", "/v2/mf/manifests/multi")
    assert h["content-type"] == MT_OCI_INDEX and body == index
    # A child the index lists cannot go before the index.
    st, _, body = reg.call("DELETE", f"/v2/mf/manifests/{md}")
    assert st == 409
    st, _, _ = reg.call("DELETE", f"/v2/mf/manifests/{sha256(index)}")
    assert st == 202
    st, _, body = reg.call("GET", "/v2/mf/manifests/multi")
    assert st == 404 and reg.error(body) == "MANIFEST_UNKNOWN"
    # Deleting by digest takes the tags along.
    st, _, _ = reg.call("DELETE", f"/v2/mf/manifests/{md}")
    assert st == 202
    st, _, body = reg.call("GET", "/v2/mf/manifests/v1")
    assert st == 404 and reg.error(body) == "MANIFEST_UNKNOWN"
    st, _, _ = reg.call("DELETE", f"/v2/mf/manifests/{md}")
    assert st == 404


def test_tags_list_pagination_and_catalog(reg):
    for name in ("zeta", "alpha", "mid/dle"):
        reg.ecr.create_repository(repositoryName=name)
    manifest, _, _ = reg.image("alpha")
    for t in ("t3", "t0", "t4", "t1", "t2"):
        assert reg.put_manifest("alpha", t, manifest)[0] == 201
    st, h, body = reg.call("GET", "/v2/alpha/tags/list")
    assert json.loads(body) == {"name": "alpha", "tags": ["t0", "t1", "t2", "t3", "t4"]}
    assert "link" not in h
    st, h, body = reg.call("GET", "/v2/alpha/tags/list?n=2")
    assert json.loads(body)["tags"] == ["t0", "t1"]
    assert h["link"] == '</v2/alpha/tags/list?n=2&last=t1>; rel="next"'
    st, h, body = reg.call("GET", "/v2/alpha/tags/list?n=2&last=t1")
    assert json.loads(body)["tags"] == ["t2", "t3"]
    st, h, body = reg.call("GET", "/v2/alpha/tags/list?n=2&last=t3")
    assert json.loads(body)["tags"] == ["t4"] and "link" not in h
    st, _, body = reg.call("GET", "/v2/alpha/tags/list?n=-1")
    assert st == 400 and reg.error(body) == "PAGINATION_NUMBER_INVALID"
    st, _, body = reg.call("GET", "/v2/_catalog")
    assert json.loads(body) == {"repositories": ["alpha", "mid/dle", "zeta"]}
    st, h, body = reg.call("GET", "/v2/_catalog?n=1&last=alpha")
    assert json.loads(body) == {"repositories": ["mid/dle"]}
    assert h["link"] == '</v2/_catalog?n=1&last=mid/dle>; rel="next"'
    # DELETE of a tag removes just the tag.
    st, _, _ = reg.call("DELETE", "/v2/alpha/manifests/t0")
    assert st == 202
    st, _, body = reg.call("GET", "/v2/alpha/tags/list")
    assert json.loads(body)["tags"] == ["t1", "t2", "t3", "t4"]


# --- immutable tags --------------------------------------------------------


def test_immutable_tag_repush_is_refused(reg, tmp_path):
    reg.ecr.create_repository(repositoryName="frozen", imageTagMutability="IMMUTABLE")
    one = str(tmp_path / "one")
    two = str(tmp_path / "two")
    i1 = ociimage.busybox_image(one, labels={"build": "1"})
    i2 = ociimage.busybox_image(two, labels={"build": "2"})
    assert i1["manifest"] != i2["manifest"]
    reg.push(one, "frozen", "v1")
    # The same image again under the same tag is fine; another one is not.
    reg.push(one, "frozen", "v1")
    p = reg.push(two, "frozen", "v1", check=False)
    assert p.returncode != 0
    st, _, body = reg.put_manifest("frozen", "v1", i2["manifest_bytes"])
    assert st == 400 and reg.error(body) == "TAG_INVALID"
    with pytest.raises(ClientError) as e:
        reg.ecr.put_image(repositoryName="frozen", imageTag="v1",
                          imageManifest=i2["manifest_bytes"].decode())
    assert error_code(e) == "ImageTagAlreadyExistsException"
    assert reg.inspect("frozen:v1")["Digest"] == i1["manifest"]
    # New tags are fine, and MUTABLE again lets the tag move.
    reg.push(two, "frozen", "v2")
    r = reg.ecr.put_image_tag_mutability(repositoryName="frozen", imageTagMutability="MUTABLE")
    assert r["imageTagMutability"] == "MUTABLE"
    reg.push(two, "frozen", "v1")
    assert reg.inspect("frozen:v1")["Digest"] == i2["manifest"]


# --- the ECR API -------------------------------------------------------------


def test_ecr_repositories(reg):
    ecr = reg.ecr
    r = ecr.create_repository(repositoryName="team/web", imageTagMutability="IMMUTABLE",
                              tags=[{"Key": "team", "Value": "blue"}])["repository"]
    assert r["repositoryArn"] == "arn:aws:ecr:us-east-1:000000000000:repository/team/web"
    assert r["registryId"] == "000000000000"
    assert r["imageTagMutability"] == "IMMUTABLE"
    assert r["encryptionConfiguration"] == {"encryptionType": "AES256"}
    with pytest.raises(ClientError) as e:
        ecr.create_repository(repositoryName="team/web")
    assert error_code(e) == "RepositoryAlreadyExistsException"
    with pytest.raises(ClientError) as e:
        ecr.create_repository(repositoryName="Team/Web")
    assert error_code(e) == "InvalidParameterException"
    for n in ("b1", "a1", "c1"):
        ecr.create_repository(repositoryName=n)

    names = [x["repositoryName"] for x in ecr.describe_repositories()["repositories"]]
    assert names == ["a1", "b1", "c1", "team/web"]
    page = ecr.describe_repositories(maxResults=2)
    assert [x["repositoryName"] for x in page["repositories"]] == ["a1", "b1"]
    rest = ecr.describe_repositories(maxResults=2, nextToken=page["nextToken"])
    assert [x["repositoryName"] for x in rest["repositories"]] == ["c1", "team/web"]
    assert "nextToken" not in rest
    one = ecr.describe_repositories(repositoryNames=["team/web"])["repositories"]
    assert one[0]["repositoryUri"] == f"{reg.host}/team/web"
    with pytest.raises(ClientError) as e:
        ecr.describe_repositories(repositoryNames=["nope"])
    assert error_code(e) == "RepositoryNotFoundException"

    arn = r["repositoryArn"]
    assert ecr.list_tags_for_resource(resourceArn=arn)["tags"] == [
        {"Key": "team", "Value": "blue"}]
    ecr.tag_resource(resourceArn=arn, tags=[{"Key": "env", "Value": "prod"},
                                            {"Key": "team", "Value": "red"}])
    ecr.untag_resource(resourceArn=arn, tagKeys=["env"])
    assert ecr.list_tags_for_resource(resourceArn=arn)["tags"] == [
        {"Key": "team", "Value": "red"}]

    d = ecr.delete_repository(repositoryName="a1")["repository"]
    assert d["repositoryName"] == "a1"
    with pytest.raises(ClientError) as e:
        ecr.delete_repository(repositoryName="a1")
    assert error_code(e) == "RepositoryNotFoundException"


def test_ecr_images(reg):
    ecr = reg.ecr
    ecr.create_repository(repositoryName="img")
    manifest, cd, ld = reg.image("img", b"img layer")
    md = sha256(manifest)
    text = manifest.decode()
    # PutImage with the blobs in place; then the same again is refused.
    put = ecr.put_image(repositoryName="img", imageManifest=text, imageTag="v1",
                        imageManifestMediaType=MT_OCI_MANIFEST)["image"]
    assert put["imageId"] == {"imageDigest": md, "imageTag": "v1"}
    with pytest.raises(ClientError) as e:
        ecr.put_image(repositoryName="img", imageManifest=text, imageTag="v1")
    assert error_code(e) == "ImageAlreadyExistsException"
    ecr.put_image(repositoryName="img", imageManifest=text, imageTag="stable")
    with pytest.raises(ClientError) as e:
        ecr.put_image(repositoryName="img", imageManifest=text, imageTag="v9",
                      imageDigest=sha256(b"other"))
    assert error_code(e) == "ImageDigestDoesNotMatchException"
    bad = text.replace(ld, sha256(b"absent"))
    with pytest.raises(ClientError) as e:
        ecr.put_image(repositoryName="img", imageManifest=bad, imageTag="v9")
    assert error_code(e) == "LayersNotFoundException"
    with pytest.raises(ClientError) as e:
        ecr.put_image(repositoryName="nope", imageManifest=text)
    assert error_code(e) == "RepositoryNotFoundException"
    # An untagged second image.
    m2, _, _ = reg.image("img", b"second layer")
    ecr.put_image(repositoryName="img", imageManifest=m2.decode())

    ids = ecr.list_images(repositoryName="img")["imageIds"]
    assert sorted((i["imageDigest"], i.get("imageTag")) for i in ids) == sorted(
        [(md, "v1"), (md, "stable"), (sha256(m2), None)])
    tagged = ecr.list_images(repositoryName="img", filter={"tagStatus": "TAGGED"})["imageIds"]
    assert {i["imageTag"] for i in tagged} == {"v1", "stable"}
    untagged = ecr.list_images(repositoryName="img",
                               filter={"tagStatus": "UNTAGGED"})["imageIds"]
    assert untagged == [{"imageDigest": sha256(m2)}]
    page = ecr.list_images(repositoryName="img", maxResults=1)
    assert "nextToken" in page

    det = ecr.describe_images(repositoryName="img", imageIds=[{"imageTag": "stable"}])
    assert sorted(det["imageDetails"][0]["imageTags"]) == ["stable", "v1"]
    with pytest.raises(ClientError) as e:
        ecr.describe_images(repositoryName="img", imageIds=[{"imageTag": "missing"}])
    assert error_code(e) == "ImageNotFoundException"

    got = ecr.batch_get_image(repositoryName="img", imageIds=[
        {"imageTag": "v1"}, {"imageDigest": md}, {"imageTag": "nope"},
        {"imageTag": "v1", "imageDigest": sha256(m2)}])
    assert [i["imageId"] for i in got["images"]] == [
        {"imageDigest": md, "imageTag": "v1"}, {"imageDigest": md}]
    assert got["images"][0]["imageManifest"] == text
    assert sorted(f["failureCode"] for f in got["failures"]) == [
        "ImageNotFound", "ImageTagDoesNotMatchDigest"]
    none = ecr.batch_get_image(repositoryName="img", imageIds=[{"imageTag": "v1"}],
                               acceptedMediaTypes=[MT_OCI_INDEX])
    assert none["images"] == [] and none["failures"]

    avail = ecr.batch_check_layer_availability(repositoryName="img",
                                               layerDigests=[ld, sha256(b"absent")])
    assert avail["layers"][0]["layerAvailability"] == "AVAILABLE"
    assert avail["failures"][0]["failureCode"] == "MissingLayerDigest"

    # Deleting one of two tags keeps the image; its digest takes the rest.
    d = ecr.batch_delete_image(repositoryName="img", imageIds=[{"imageTag": "stable"}])
    assert d["imageIds"] == [{"imageDigest": md, "imageTag": "stable"}]
    assert ecr.describe_images(repositoryName="img", imageIds=[{"imageDigest": md}])[
        "imageDetails"][0]["imageTags"] == ["v1"]
    d = ecr.batch_delete_image(repositoryName="img", imageIds=[{"imageDigest": md},
                                                               {"imageTag": "gone"}])
    assert d["imageIds"] == [{"imageDigest": md, "imageTag": "v1"}]
    assert d["failures"][0]["failureCode"] == "ImageNotFound"
    st, _, _ = reg.call("GET", "/v2/img/manifests/v1")
    assert st == 404

    with pytest.raises(ClientError) as e:
        ecr.delete_repository(repositoryName="img")
    assert error_code(e) == "RepositoryNotEmptyException"
    ecr.delete_repository(repositoryName="img", force=True)
    assert ecr.describe_repositories()["repositories"] == []
    st, _, body = reg.call("GET", f"/v2/img/manifests/{sha256(m2)}")
    assert st == 404 and reg.error(body) == "NAME_UNKNOWN"


POLICY = {"rules": [{"rulePriority": 1, "description": "keep the newest image",
                     "selection": {"tagStatus": "any", "countType": "imageCountMoreThan",
                                   "countNumber": 1},
                     "action": {"type": "expire"}}]}


def test_lifecycle_policy_api(reg):
    ecr = reg.ecr
    ecr.create_repository(repositoryName="lc")
    with pytest.raises(ClientError) as e:
        ecr.get_lifecycle_policy(repositoryName="lc")
    assert error_code(e) == "LifecyclePolicyNotFoundException"
    bad = {"rules": [{"rulePriority": 1, "selection": {"tagStatus": "tagged",
                                                       "countType": "imageCountMoreThan",
                                                       "countNumber": 1},
                      "action": {"type": "expire"}}]}
    with pytest.raises(ClientError) as e:
        ecr.put_lifecycle_policy(repositoryName="lc", lifecyclePolicyText=json.dumps(bad))
    assert error_code(e) == "InvalidParameterException"
    text = json.dumps(POLICY)
    r = ecr.put_lifecycle_policy(repositoryName="lc", lifecyclePolicyText=text)
    assert r["lifecyclePolicyText"] == text and r["registryId"] == "000000000000"
    assert ecr.get_lifecycle_policy(repositoryName="lc")["lifecyclePolicyText"] == text
    ecr.delete_lifecycle_policy(repositoryName="lc")
    with pytest.raises(ClientError) as e:
        ecr.delete_lifecycle_policy(repositoryName="lc")
    assert error_code(e) == "LifecyclePolicyNotFoundException"


def test_lifecycle_expires_old_images_and_gc_frees_their_blobs(reg, tmp_path):
    ecr = reg.ecr
    ecr.create_repository(repositoryName="app")
    infos = []
    for i in range(3):
        path = str(tmp_path / f"img{i}")
        infos.append(ociimage.busybox_image(path, labels={"build": str(i)}))
        reg.push(path, "app", f"v{i}")
        time.sleep(0.05)
    # An image that only sinceImagePushed could catch; it is too young.
    ecr.create_repository(repositoryName="young")
    reg.push(str(tmp_path / "img0"), "young", "v0")
    ecr.put_lifecycle_policy(repositoryName="young", lifecyclePolicyText=json.dumps(
        {"rules": [{"rulePriority": 1, "selection": {
            "tagStatus": "any", "countType": "sinceImagePushed", "countUnit": "days",
            "countNumber": 1}, "action": {"type": "expire"}}]}))
    ecr.put_lifecycle_policy(repositoryName="app", lifecyclePolicyText=json.dumps(POLICY))

    def remaining():
        ids = ecr.list_images(repositoryName="app")["imageIds"]
        return ids if len(ids) == 1 else None
    ids = wait_for(remaining, what="the lifecycle policy to expire images")
    assert ids == [{"imageDigest": infos[2]["manifest"], "imageTag": "v2"}]
    assert "lastEvaluatedAt" in ecr.get_lifecycle_policy(repositoryName="app")
    assert len(ecr.list_images(repositoryName="young")["imageIds"]) == 1

    # The expired images' configs go once unused for the grace period; the
    # shared layer and the survivors' blobs stay.
    old = [infos[1]["config"]["digest"]]
    wait_for(lambda: not any(os.path.exists(reg.blob_path(d)) for d in old),
             what="the collector to free the expired images' blobs")
    st, _, body = reg.call("HEAD", f"/v2/app/blobs/{old[0]}")
    assert st == 404
    # infos[0]'s config is still used by the image in "young".
    for d in (infos[2]["config"]["digest"], infos[2]["layers"][0]["digest"],
              infos[0]["config"]["digest"]):
        assert os.path.exists(reg.blob_path(d)), d
    out = str(tmp_path / "after-gc")
    reg.pull("app:v2", out)
    assert pulled_manifest(out) == infos[2]["manifest"]


def test_gc_spares_blobs_in_use_and_frees_deleted_repositories(reg):
    reg.ecr.create_repository(repositoryName="keep")
    reg.ecr.create_repository(repositoryName="drop")
    mk, ck, lk = reg.image("keep", b"kept layer")
    assert reg.put_manifest("keep", "v1", mk)[0] == 201
    md, cdrop, ldrop = reg.image("drop", b"dropped layer")
    assert reg.put_manifest("drop", "v1", md)[0] == 201
    stray = reg.upload("keep", b"never referenced")
    reg.ecr.delete_repository(repositoryName="drop", force=True)
    wait_for(lambda: not os.path.exists(reg.blob_path(ldrop)) and
             not os.path.exists(reg.blob_path(stray)), what="unreferenced blobs to go")
    for d in (ck, lk):
        assert os.path.exists(reg.blob_path(d))
    st, _, body = reg.call("GET", "/v2/keep/manifests/v1")
    assert st == 200 and body == mk


def test_aws_cli_ecr_commands(reg, tmp_path):
    cli = AwsCli(reg.barged, str(tmp_path))
    r = cli.json("ecr", "create-repository", "--repository-name", "cli/app",
                 "--image-tag-mutability", "MUTABLE", "--tags", "Key=team,Value=blue")
    assert r["repository"]["repositoryUri"] == f"{reg.host}/cli/app"
    assert cli.json("ecr", "describe-repositories")["repositories"][0][
        "repositoryName"] == "cli/app"
    tok = cli.json("ecr", "get-authorization-token")["authorizationData"][0]
    assert base64.b64decode(tok["authorizationToken"]).startswith(b"AWS:")
    password = cli.run("ecr", "get-login-password").stdout.strip()
    st, _, _ = reg.call("GET", "/v2/", auth=reg.basic("AWS", password))
    assert st == 200

    manifest, _, _ = reg.image("cli/app", b"cli layer")
    mfile = tmp_path / "manifest.json"
    mfile.write_bytes(manifest)
    put = cli.json("ecr", "put-image", "--repository-name", "cli/app", "--image-tag", "v1",
                   "--image-manifest", f"file://{mfile}")
    assert put["image"]["imageId"]["imageDigest"] == sha256(manifest)
    assert cli.json("ecr", "list-images", "--repository-name", "cli/app")["imageIds"] == [
        {"imageDigest": sha256(manifest), "imageTag": "v1"}]
    det = cli.json("ecr", "describe-images", "--repository-name", "cli/app")["imageDetails"]
    assert det[0]["imageTags"] == ["v1"]
    got = cli.json("ecr", "batch-get-image", "--repository-name", "cli/app", "--image-ids",
                   "imageTag=v1")
    assert got["images"][0]["imageManifest"].encode() == manifest
    assert cli.json("ecr", "put-image-tag-mutability", "--repository-name", "cli/app",
                    "--image-tag-mutability", "IMMUTABLE")["imageTagMutability"] == "IMMUTABLE"
    pfile = tmp_path / "policy.json"
    pfile.write_text(json.dumps(POLICY))
    cli.json("ecr", "put-lifecycle-policy", "--repository-name", "cli/app",
             "--lifecycle-policy-text", f"file://{pfile}")
    assert json.loads(cli.json("ecr", "get-lifecycle-policy", "--repository-name", "cli/app")[
        "lifecyclePolicyText"]) == POLICY
    p = cli.run("ecr", "delete-repository", "--repository-name", "cli/app", check=False)
    assert p.returncode != 0 and "RepositoryNotEmptyException" in p.stderr
    d = cli.json("ecr", "batch-delete-image", "--repository-name", "cli/app", "--image-ids",
                 "imageTag=v1")
    assert d["imageIds"] == [{"imageDigest": sha256(manifest), "imageTag": "v1"}]
    cli.json("ecr", "delete-repository", "--repository-name", "cli/app", "--force")
    assert cli.json("ecr", "describe-repositories")["repositories"] == []


# --- configuration and durability -------------------------------------------


def test_registry_host_names_repositories_the_ecr_way(tmp_path):
    b = start(tmp_path, "--registry-host", "registry.example.test")
    try:
        ecr = b.client("ecr")
        r = ecr.create_repository(repositoryName="web")["repository"]
        host = "000000000000.dkr.ecr.us-east-1.registry.example.test"
        assert r["repositoryUri"] == f"{host}/web"
        auth = ecr.get_authorization_token()["authorizationData"][0]
        assert auth["proxyEndpoint"] == f"https://{host}"
    finally:
        b.stop()


def test_images_and_tokens_survive_a_restart(reg, busybox, tmp_path):
    reg.ecr.create_repository(repositoryName="durable")
    reg.push(busybox["path"], "durable", "v1")
    reg.barged.restart()
    reg.host = f"127.0.0.1:{reg.barged.port}"
    # The token issued before the restart still works.
    assert reg.inspect("durable:v1")["Digest"] == busybox["manifest"]
    out = str(tmp_path / "after-restart")
    reg.pull(f"durable@{busybox['manifest']}", out)
    assert pulled_manifest(out) == busybox["manifest"]
