"""Image pulls against a real registry: Debian's docker-registry on loopback
with test images from tests/images/mkimage, pulled by the image module through
build/tests/test_image_pull (see the top of tests/unit/test_image_pull.c for
the environment it takes). Covers single-platform OCI and Docker schema 2
images, an OCI index, layers with whiteouts, uncompressed layers, the layer
cache (reuse, offline by digest, concurrent pulls), digest verification,
missing images, basic auth, bearer tokens and retries."""

import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import tarfile
import tempfile

import pytest

import ociimage
from conftest import wait_task
from registry_fixture import (REPO_ROOT, Front, TokenFront, auth_registry,  # noqa: F401
                              free_port, registry, token_registry)

BIN_DIR = os.environ.get("BARGE_BIN_DIR", os.path.join(REPO_ROOT, "build"))
PULL = os.path.join(BIN_DIR, "tests", "test_image_pull")


@pytest.fixture
def cache():
    d = tempfile.mkdtemp(prefix="barge-image-cache-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def pull(registry_host, image, cache_dir, expect_error=None, **env):
    """Runs the pull driver; returns its JSON report."""
    assert os.access(PULL, os.X_OK), "%s is missing: run `make unit` first" % PULL
    e = dict(os.environ)
    e.update(BARGE_TEST_REGISTRY=registry_host, BARGE_TEST_IMAGE=image,
             BARGE_TEST_CACHE=cache_dir)
    if expect_error:
        e["BARGE_TEST_EXPECT_ERROR"] = expect_error
    e.update({"BARGE_TEST_" + k.upper(): str(v) for k, v in env.items()})
    r = subprocess.run([PULL], env=e, capture_output=True, text=True, timeout=300)
    reports = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert r.returncode == 0, "pull of %s failed:\n%s\n%s" % (image, r.stdout, r.stderr)
    assert len(reports) == 1, r.stdout
    return reports[0]


def registry_digest(reg, name, ref):
    body, _ = reg.manifest(name, ref)
    return "sha256:" + hashlib.sha256(body).hexdigest()


@pytest.fixture(scope="module")
def images(registry):
    """Pushes the module's images once: name -> reference."""
    return {
        "busybox": registry.push_test_image("busybox", "latest"),
        "multi": registry.push_test_image("multi", "latest", index="amd64,arm64/v8"),
        "docker": registry.push_test_image("docker-v2", "latest", fmt="v2s2",
                                           env=["FLAVOUR=docker"]),
        "layers": registry.push_test_image(
            "layers", "latest",
            layer=["file:/etc/motd=hello;dir:/data;file:/data/a=1;file:/data/b=2",
                   "whiteout:/bin/wget;whiteout:/etc/motd;opaque:/data;file:/data/c=3"],
            cmd='["httpd","-f"]', workdir="/data", user="65534", expose=["8080"]),
        "plain": registry.push_test_image("plain", "v1", compression="none",
                                          env=["PLAIN=1"]),
        # skopeo reuses the base layer's gzip blob already in the registry; the
        # extra layer is new, so it goes up as zstd
        "zstd": registry.push_test_image("zstd", "latest", compress="zstd",
                                         layer=["file:/zstd=compressed"], env=["ZSTD=1"]),
    }


def test_pull_single_platform(registry, images, cache):
    rep = pull(registry.host, images["busybox"], cache)
    img = rep["image"]
    assert img["reference"] == images["busybox"]
    assert img["repository"] == "busybox"
    assert img["manifest_digest"] == registry_digest(registry, "busybox", "latest")
    assert img["digest"] == img["manifest_digest"]
    assert img["config"]["config"]["Cmd"] == ["sh"]
    assert img["config"]["config"]["Env"][0].startswith("PATH=")
    assert len(img["layers"]) == 1
    layer = img["layers"][0]
    assert layer.startswith(os.path.join(cache, "layers") + "/")
    st = os.lstat(os.path.join(layer, "bin", "busybox"))
    assert stat.S_ISREG(st.st_mode) and st.st_mode & 0o777 == 0o755 and st.st_uid == 0
    assert os.readlink(os.path.join(layer, "bin", "sh")) == "busybox"
    assert os.lstat(os.path.join(layer, "tmp")).st_mode & 0o7777 == 0o1777
    assert img["size"] > 500000
    # nothing left behind in the cache's scratch area
    assert os.listdir(os.path.join(cache, "tmp")) == []


def test_pull_cached_then_offline_by_digest(registry, images, cache):
    first = pull(registry.host, images["busybox"], cache)
    assert any(m.startswith("pulling layer") for m in first["progress"])
    again = pull(registry.host, images["busybox"], cache)
    assert not any(m.startswith("pulling layer") for m in again["progress"])
    assert any(m.endswith("already present") for m in again["progress"])
    assert again["image"]["layers"] == first["image"]["layers"]

    # by digest, with nothing listening: manifest, config and layers all cached
    digest = first["image"]["manifest_digest"]
    dead = "127.0.0.1:%d" % free_port()
    offline = pull(dead, "%s/busybox@%s" % (dead, digest), cache)
    assert offline["image"]["manifest_digest"] == digest
    assert offline["image"]["layers"] == first["image"]["layers"]


def test_pull_index_picks_platform(registry, images, cache):
    rep = pull(registry.host, images["multi"], cache)
    img = rep["image"]
    assert img["digest"] == registry_digest(registry, "multi", "latest")
    assert img["manifest_digest"] != img["digest"]
    assert img["config"]["architecture"] == "amd64"
    with open(os.path.join(img["layers"][0], "etc", "arch")) as f:
        assert f.read().strip() == "amd64"

    arm = pull(registry.host, images["multi"], cache, arch="arm64", variant="v8")["image"]
    assert arm["config"]["architecture"] == "arm64"
    with open(os.path.join(arm["layers"][0], "etc", "arch")) as f:
        assert f.read().strip() == "arm64/v8"

    rep = pull(registry.host, images["multi"], cache, expect_error="no matching manifest",
               arch="s390x")
    assert "linux/s390x" in rep["error"]
    assert rep["code"] == "not found"


def test_pull_docker_schema2(registry, images, cache):
    body, ctype = registry.manifest("docker-v2", "latest")
    assert ctype == "application/vnd.docker.distribution.manifest.v2+json"
    img = pull(registry.host, images["docker"], cache)["image"]
    assert "FLAVOUR=docker" in img["config"]["config"]["Env"]
    assert os.path.exists(os.path.join(img["layers"][0], "bin", "busybox"))


def test_pull_uncompressed_layers(registry, images, cache):
    img = pull(registry.host, images["plain"], cache)["image"]
    assert "PLAIN=1" in img["config"]["config"]["Env"]
    assert os.path.exists(os.path.join(img["layers"][0], "bin", "busybox"))


def test_pull_zstd_layers(registry, images, cache):
    body, _ = registry.manifest("zstd", "latest")
    assert json.loads(body)["layers"][1]["mediaType"].endswith("+zstd")
    img = pull(registry.host, images["zstd"], cache)["image"]
    assert "ZSTD=1" in img["config"]["config"]["Env"]
    assert os.path.exists(os.path.join(img["layers"][0], "bin", "busybox"))
    with open(os.path.join(img["layers"][1], "zstd")) as f:
        assert f.read() == "compressed"


def test_pull_layers_with_whiteouts(registry, images, cache):
    img = pull(registry.host, images["layers"], cache)["image"]
    cfg = img["config"]["config"]
    assert cfg["Cmd"] == ["httpd", "-f"]
    assert cfg["WorkingDir"] == "/data"
    assert cfg["User"] == "65534"
    assert cfg["ExposedPorts"] == {"8080/tcp": {}}
    base, middle, top = img["layers"]
    assert os.path.exists(os.path.join(base, "bin", "wget"))
    with open(os.path.join(middle, "etc", "motd")) as f:
        assert f.read() == "hello"
    for victim in ("bin/wget", "etc/motd"):
        st = os.lstat(os.path.join(top, victim))
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0, victim
        assert not os.path.exists(os.path.join(top, os.path.dirname(victim),
                                               ".wh." + os.path.basename(victim)))
    assert os.getxattr(os.path.join(top, "data"), "trusted.overlay.opaque") == b"y"
    assert os.listdir(os.path.join(top, "data")) == ["c"]


def test_missing_image_and_tag(registry, images, cache):
    name = "%s/does-not-exist:latest" % registry.host
    rep = pull(registry.host, name, cache, expect_error="not found")
    assert name in rep["error"]
    assert "MANIFEST_UNKNOWN" in rep["error"] or "NAME_UNKNOWN" in rep["error"]
    assert rep["code"] == "not found"

    rep = pull(registry.host, "%s/busybox:no-such-tag" % registry.host, cache,
               expect_error="manifest for '%s/busybox:no-such-tag' not found" % registry.host)
    assert "registry answered 404" in rep["error"]

    rep = pull(registry.host, "%s/Bad:Name" % registry.host, cache,
               expect_error="invalid reference format")


def test_corrupt_layer_blob_is_refused(registry, cache):
    ref = registry.push_test_image("corrupt", "latest", layer=["file:/victim=precious data"])
    body, _ = registry.manifest("corrupt", "latest")
    layer_digest = json.loads(body)["layers"][-1]["digest"]
    path = registry.blob_path(layer_digest)
    with open(path, "r+b") as f:
        data = bytearray(f.read())
        data[len(data) // 2] ^= 0xFF
        f.seek(0)
        f.write(data)
    rep = pull(registry.host, ref, cache, expect_error="failed digest verification")
    assert layer_digest in rep["error"]
    assert ref in rep["error"]
    # the bad layer is nowhere in the cache, and no scratch files remain
    assert not os.path.exists(os.path.join(cache, "layers", layer_digest.split(":")[1]))
    assert os.listdir(os.path.join(cache, "tmp")) == []


def test_oversized_layer_is_cut_off(registry, cache):
    ref = registry.push_test_image("oversized", "latest", layer=["file:/big=small"])
    body, _ = registry.manifest("oversized", "latest")
    layer = json.loads(body)["layers"][-1]
    with open(registry.blob_path(layer["digest"]), "ab") as f:
        f.write(b"\0" * 100000)
    rep = pull(registry.host, ref, cache, expect_error="registry sent more than the %d bytes"
               % layer["size"])
    assert os.listdir(os.path.join(cache, "tmp")) == []


def test_concurrent_pulls_fetch_each_layer_once(registry, images, cache):
    rep = pull(registry.host, images["layers"], cache, threads=8)
    pulled = [m for m in rep["progress"] if m.startswith("pulling layer")]
    assert len(pulled) == len(rep["image"]["layers"]) == 3
    assert len(set(pulled)) == 3


def test_basic_auth(auth_registry, cache):
    ref = auth_registry.push_test_image("private", "latest")
    user, password = next(iter(auth_registry.users.items()))
    img = pull(auth_registry.host, ref, cache, username=user, password=password)["image"]
    assert img["manifest_digest"] == registry_digest(auth_registry, "private", "latest")

    rep = pull(auth_registry.host, ref, cache, expect_error="pull access denied")
    assert "may require authorization" in rep["error"]
    assert "registry answered 401" in rep["error"]
    assert rep["code"] == "access denied"

    rep = pull(auth_registry.host, ref, cache, expect_error="pull access denied",
               username=user, password="wrong")
    assert password not in rep["error"] and "wrong" not in rep["error"]


def test_bearer_token(registry, images, token_registry, cache):
    front = token_registry
    ref = images["busybox"].replace(registry.host, front.host)
    before = front.token_requests
    img = pull(front.host, ref, cache, username=front.user, password=front.password)["image"]
    assert img["manifest_digest"] == registry_digest(registry, "busybox", "latest")
    assert front.token_requests > before

    rep = pull(front.host, ref, cache, expect_error="pull access denied")
    assert "token server refused anonymous access" in rep["error"]
    rep = pull(front.host, ref, cache, expect_error="pull access denied",
               username=front.user, password="nope")
    assert "incorrect username or password" in rep["error"]


def test_expired_token_is_renewed(registry, images, cache):
    # every token is good for one request: each request meets a fresh 401
    with TokenFront(registry, token_uses=1) as front:
        ref = images["layers"].replace(registry.host, front.host)
        img = pull(front.host, ref, cache, username=front.user, password=front.password)["image"]
        assert len(img["layers"]) == 3
        assert front.token_requests >= 5  # manifest HEAD and GET, config, layers


def test_corrupt_manifest_is_refused(registry, cache):
    ref = registry.push_test_image("badmanifest", "latest", env=["MANIFEST=corrupt"])
    body, _ = registry.manifest("badmanifest", "latest")
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    # keep it valid JSON the registry will still serve: change one hex digit
    config_hex = json.loads(body)["config"]["digest"].split(":")[1]
    flipped = config_hex[:10] + ("0" if config_hex[10] != "0" else "1") + config_hex[11:]
    with open(registry.blob_path(digest), "wb") as f:
        f.write(body.replace(config_hex.encode(), flipped.encode()))
    rep = pull(registry.host, ref, cache, expect_error="manifest failed digest verification")
    assert digest in rep["error"]
    by_digest = "%s/badmanifest@%s" % (registry.host, digest)
    rep = pull(registry.host, by_digest, cache, expect_error="manifest failed digest verification")
    assert not os.listdir(os.path.join(cache, "blobs", "sha256"))


def test_unreachable_registry_is_retried(cache):
    dead = "127.0.0.1:%d" % free_port()
    rep = pull(dead, "%s/busybox:latest" % dead, cache, expect_error="cannot reach registry")
    assert "after 3 attempt(s)" in rep["error"]
    assert sum("retrying" in m for m in rep["progress"]) == 2


def test_server_errors_are_retried(registry, images, cache):
    # two 503s, then the real answers: the third attempt succeeds
    with Front(registry, fail_first=2) as front:
        ref = images["busybox"].replace(registry.host, front.host)
        rep = pull(front.host, ref, cache)
        assert sum("answered 503" in m for m in rep["progress"]) == 2
    # more failures than attempts: the registry's last answer is reported
    with Front(registry, fail_first=100) as front:
        ref = images["busybox"].replace(registry.host, front.host)
        rep = pull(front.host, ref, cache, expect_error="registry answered 503")
        assert "UNAVAILABLE: injected failure" in rep["error"]
        assert front.requests == 3 + 3  # HEAD and GET of the manifest, 3 attempts each


def zeros_layer(size):
    """(gzip blob, diff_id) of a tar holding one file of size zero bytes:
    200 MiB of zeros compress to about 200 KiB. Streamed, never held whole."""
    raw_sha = hashlib.sha256()
    out = io.BytesIO()
    gz = gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9, mtime=0)

    class Tee:
        def write(self, b):
            raw_sha.update(b)
            gz.write(b)
            return len(b)

    class Zeros:
        def __init__(self):
            self.left = size

        def read(self, n=-1):
            n = self.left if n < 0 else min(n, self.left)
            self.left -= n
            return bytes(n)

    with tarfile.open(fileobj=Tee(), mode="w|", format=tarfile.PAX_FORMAT) as tf:
        ti = tarfile.TarInfo("zeros")
        ti.size = size
        ti.mode = 0o644
        tf.addfile(ti, Zeros())
    gz.close()
    return out.getvalue(), "sha256:" + raw_sha.hexdigest()


def push_layout(reg, name, layers):
    """Pushes an image of the given (blob, raw or diff_id, media type) layers;
    returns its reference and the layer digests."""
    d = tempfile.mkdtemp(prefix="barge-oci-")
    try:
        lay = ociimage.Layout(d)
        info = lay.add_image(layers)
        lay.close()
        return reg.push(d, "latest", name), [desc["digest"] for desc in info["layers"]]
    finally:
        shutil.rmtree(d, ignore_errors=True)


def assert_nothing_left(cache, digest):
    assert not os.path.exists(os.path.join(cache, "layers", digest.split(":")[1]))
    assert os.listdir(os.path.join(cache, "tmp")) == []


def test_decompression_bomb_is_refused(registry, cache):
    blob, diff_id = zeros_layer(200 << 20)
    assert len(blob) < 1 << 20
    ref, (digest,) = push_layout(registry, "bomb",
                                 [(blob, diff_id, ociimage.MT_LAYER_GZIP)])
    rep = pull(registry.host, ref, cache, max_layer_bytes=64 << 20,
               expect_error="unpacks to more than 67108864 bytes")
    assert digest in rep["error"] and ref in rep["error"]
    assert rep["code"] == "limit"
    assert_nothing_left(cache, digest)
    # under a cap it fits, the same layer unpacks (and its diff_id checks out)
    img = pull(registry.host, ref, cache, max_layer_bytes=256 << 20)["image"]
    assert os.path.getsize(os.path.join(img["layers"][0], "zeros")) == 200 << 20


def test_short_disk_is_refused(registry, images, cache):
    rep = pull(registry.host, images["busybox"], cache, min_free_bytes=1 << 60,
               expect_error="not enough free space to unpack")
    assert rep["code"] == "limit"
    assert os.listdir(os.path.join(cache, "layers")) == []
    assert os.listdir(os.path.join(cache, "tmp")) == []


def test_wrong_diff_id_is_refused(registry, cache):
    blob, raw = ociimage.busybox_layer()
    wrong = ociimage.sha256(raw + b"\0" * 1024)
    ref, (digest,) = push_layout(registry, "wrongdiff",
                                 [(blob, wrong, ociimage.MT_LAYER_GZIP)])
    rep = pull(registry.host, ref, cache, expect_error="failed diff_id verification")
    assert wrong in rep["error"] and ociimage.sha256(raw) in rep["error"]
    assert digest in rep["error"]
    assert_nothing_left(cache, digest)

    # the right diff_id pulls; a config naming another for the cached layer
    # is still refused
    good, _ = push_layout(registry, "rightdiff", [(blob, raw, ociimage.MT_LAYER_GZIP)])
    pull(registry.host, good, cache)
    rep = pull(registry.host, ref, cache, expect_error="failed diff_id verification")
    assert wrong in rep["error"]


def test_config_without_diff_ids_is_refused(registry, cache):
    blob, raw = ociimage.busybox_layer()
    d = os.path.join(registry.images, "nodiffs")
    lay = ociimage.Layout(d)  # the registry fixture removes its images dir
    info = lay.add_image([(blob, raw, ociimage.MT_LAYER_GZIP),
                          (blob, raw, ociimage.MT_LAYER_GZIP)])
    # a second manifest that lists the layer twice against a one-entry config
    cfg = json.loads(open(os.path.join(d, "blobs", "sha256",
                                       info["config"]["digest"].split(":")[1])).read())
    cfg["rootfs"]["diff_ids"] = cfg["rootfs"]["diff_ids"][:1]
    cbytes = json.dumps(cfg).encode()
    manifest = {"schemaVersion": 2, "mediaType": ociimage.MT_MANIFEST,
                "config": {"mediaType": ociimage.MT_CONFIG, "digest": lay.blob(cbytes),
                           "size": len(cbytes)},
                "layers": info["layers"]}
    mbytes = json.dumps(manifest).encode()
    lay.index["manifests"] = [{"mediaType": ociimage.MT_MANIFEST, "digest": lay.blob(mbytes),
                               "size": len(mbytes),
                               "annotations": {"org.opencontainers.image.ref.name": "latest"}}]
    lay.close()
    ref = registry.push(d, "latest", "nodiffs")
    rep = pull(registry.host, ref, cache, expect_error="lists 1 diff_ids for 2 layers")
    assert os.listdir(os.path.join(cache, "layers")) == []


def test_bomb_becomes_the_stopped_reason(test_registry, agent_factory, barged):
    blob, diff_id = zeros_layer(200 << 20)
    ref, (digest,) = push_layout(test_registry, "agentbomb",
                                 [(blob, diff_id, ociimage.MT_LAYER_GZIP)])
    agent = agent_factory(extra_args=["--max-layer-size", "64M"])
    ecs = barged.client("ecs")
    td = ecs.register_task_definition(family="bomb", containerDefinitions=[
        {"name": "m", "image": ref, "memory": 16, "command": ["true"]}]
    )["taskDefinition"]["taskDefinitionArn"]
    arn = ecs.run_task(cluster="default", taskDefinition=td)["tasks"][0]["taskArn"]
    task = wait_task(ecs, "default", arn)
    assert task["stopCode"] == "TaskFailedToStart"
    reason = task["stoppedReason"]
    assert reason.startswith("CannotPullContainerError: "), reason
    assert "layer '%s'" % digest in reason and "unpacks to more than 67108864 bytes" in reason
    cache = os.path.join(agent.data_dir, "images")
    assert_nothing_left(cache, digest)
