"""Bytes with several barged on one PostgreSQL database (issue 12): a blob or
an image pushed to the registry through one barged is served by the other,
which fetches it from the store and checks its digest; a manifest pushed
through one may name blobs uploaded through the other; a damaged store copy
is refused; the leader's collector removes the store's copy of a blob nobody
refers to; S3 objects are served and copied by either barged; and the store
holds no copy when it is SQLite (one barged)."""
import os
import secrets

import pytest

import ociimage
from conftest import Barged, postgres
from test_registry import FAST_GC, Registry, sha256, wait_for


def _sql(uri, sql):
    return postgres().psql(sql, db=uri.rsplit("/", 1)[1]).strip()


def _count_bytes(uri, digest):
    # digests are [a-z0-9:] only, so they can stand in the SQL text
    return int(_sql(uri, f"SELECT count(*) FROM bytes WHERE name = 'ecr-blob/{digest}'"))


@pytest.fixture
def pair(tmp_path):
    """Two barged on one fresh database, sharing the master key."""
    uri = postgres().new_database()
    key = tmp_path / "master.key"
    key.write_text(secrets.token_hex(32) + "\n")
    key.chmod(0o600)
    started = []
    try:
        for name in ("a", "b"):
            b = Barged(str(tmp_path / name), store=uri,
                       extra_args=["--master-key-file", str(key), *FAST_GC])
            started.append(b)
            b.start()
        yield uri, Registry(started[0]), Registry(started[1])
    finally:
        for b in started:
            b.stop()


def test_image_pushed_through_one_is_pulled_through_the_other(pair, tmp_path):
    uri, a, b = pair
    layout = str(tmp_path / "busybox-oci")
    ociimage.busybox_image(layout)
    a.ecr.create_repository(repositoryName="app")
    a.push(layout, "app", "v1")
    dest = str(tmp_path / "pulled")
    b.pull("app:v1", dest)
    manifest = b.inspect("app:v1")
    assert manifest["Layers"]
    for digest in manifest["Layers"]:
        assert os.path.exists(b.blob_path(digest))
        assert _count_bytes(uri, digest) == 1


def test_blobs_through_one_manifest_through_the_other(pair):
    _, a, b = pair
    a.ecr.create_repository(repositoryName="mixed")
    manifest, cd, ld = a.image("mixed", b"layer uploaded through a")
    assert not os.path.exists(b.blob_path(ld))
    st, _, body = b.put_manifest("mixed", "v1", manifest)
    assert st == 201, body
    st, h, body = b.call("GET", f"/v2/mixed/blobs/{ld}")
    assert st == 200 and body == b"layer uploaded through a"
    assert h["docker-content-digest"] == ld
    # a HEAD and a cross-repository mount through b work the same way
    b.ecr.create_repository(repositoryName="other")
    stray = a.upload("mixed", b"only in a so far")
    st, h, _ = b.call("POST", f"/v2/other/blobs/uploads/?mount={stray}&from=mixed")
    assert st == 201 and h["docker-content-digest"] == stray


def test_damaged_store_copy_is_refused(pair):
    uri, a, b = pair
    a.ecr.create_repository(repositoryName="bad")
    d = a.upload("bad", b"the real bytes")
    _sql(uri, f"UPDATE bytes SET data = 'other bytes'::bytea WHERE name = 'ecr-blob/{d}'")
    st, _, body = b.call("GET", f"/v2/bad/blobs/{d}")
    assert st >= 500, body
    assert not os.path.exists(b.blob_path(d))
    # the barged that has it whole still serves it
    st, _, body = a.call("GET", f"/v2/bad/blobs/{d}")
    assert st == 200 and body == b"the real bytes"


def test_collector_removes_unreferenced_store_copies(pair):
    """The leader collects the store's copies; every barged its own files."""
    uri, a, b = pair
    a.ecr.create_repository(repositoryName="gc")
    manifest, cd, ld = a.image("gc", b"kept layer")
    assert a.put_manifest("gc", "v1", manifest)[0] == 201
    stray = b.upload("gc", b"never referenced")
    assert _count_bytes(uri, stray) == 1
    wait_for(lambda: _count_bytes(uri, stray) == 0, timeout=60,
             what="the store's copy of the stray blob to go")
    # b is not the leader, yet it sweeps its own files too
    wait_for(lambda: not os.path.exists(b.blob_path(stray)), timeout=60,
             what="the follower's file of the stray blob to go")
    assert _count_bytes(uri, ld) == 1 and _count_bytes(uri, cd) == 1


def test_sqlite_store_keeps_no_copy(tmp_path):
    b = Barged(str(tmp_path / "one"), store=None).start()
    try:
        if b.store:
            pytest.skip("this run uses PostgreSQL for every barged")
        reg = Registry(b)
        reg.ecr.create_repository(repositoryName="solo")
        d = reg.upload("solo", b"local only")
        import sqlite3
        db = sqlite3.connect(os.path.join(b.data_dir, "barge.db"))
        assert db.execute("SELECT count(*) FROM bytes").fetchone()[0] == 0
        assert os.path.exists(reg.blob_path(d)) and d == sha256(b"local only")
    finally:
        b.stop()


def test_s3_objects_are_served_by_either_barged(pair):
    """S3 object bytes go the same way: an object put through one barged is
    read and copied through the other, and deleting it removes the store's
    copy."""
    uri, a, b = pair
    from test_s3 import s3_client
    sa, sb = s3_client(a.barged), s3_client(b.barged)
    sa.create_bucket(Bucket="shared")
    body = os.urandom(3 * 1024 * 1024 + 5)  # more than one chunk of the store
    sa.put_object(Bucket="shared", Key="env/app.env", Body=body)
    assert sb.get_object(Bucket="shared", Key="env/app.env")["Body"].read() == body
    sb.copy_object(Bucket="shared", Key="copy.env",
                   CopySource={"Bucket": "shared", "Key": "env/app.env"})
    assert sa.get_object(Bucket="shared", Key="copy.env")["Body"].read() == body
    assert int(_sql(uri, "SELECT count(DISTINCT name) FROM bytes WHERE name LIKE 's3/%'")) == 2
    sa.delete_object(Bucket="shared", Key="env/app.env")
    sb.delete_object(Bucket="shared", Key="copy.env")
    assert int(_sql(uri, "SELECT count(*) FROM bytes WHERE name LIKE 's3/%'")) == 0
