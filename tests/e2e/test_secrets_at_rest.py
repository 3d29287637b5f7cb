"""Secrets at rest: no access key secret is kept readable in the store, a store
an older barged wrote (plain-text secrets) is sealed on the next start and
keeps working, and the files barged writes the admin key to are 0600. The
SQLite file's bytes, and PostgreSQL's rows, are searched for the secrets
themselves."""
import glob
import json
import os
import sqlite3
import stat

import pytest

from conftest import Barged, postgres
from pg_fixture import pg_bin_dir

sqlite_only = pytest.mark.skipif(os.environ.get("BARGE_TEST_STORE", "sqlite") != "sqlite",
                                 reason="reads the SQLite file")


def store_bytes(data_dir):
    """The bytes of the store file and whatever WAL it has left."""
    out = b""
    for path in glob.glob(os.path.join(data_dir, "barge.db*")):
        with open(path, "rb") as f:
            out += f.read()
    return out


def key_doc(data_dir, akid):
    db = sqlite3.connect(os.path.join(data_dir, "barge.db"))
    try:
        row = db.execute("SELECT doc FROM objects WHERE kind = 'accesskey' AND key = ?",
                         (akid,)).fetchone()
    finally:
        db.close()
    return json.loads(row[0]) if row else None


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@sqlite_only
def test_no_access_key_secret_in_the_store(tmp_path, monkeypatch):
    creds = tmp_path / "aws" / "credentials"
    config = tmp_path / "aws" / "config"
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    data = str(tmp_path / "data")
    b = Barged(data)
    b.no_profile = False
    b.start()
    try:
        b.client().list_clusters()
        iam = b.client("iam")
        iam.create_user(UserName="ci")
        user_key = iam.create_access_key(UserName="ci")["AccessKey"]
        assert b.client("sts", access_key=user_key["AccessKeyId"],
                        secret_key=user_key["SecretAccessKey"]).get_caller_identity()
        session = b.client("sts").get_session_token()["Credentials"]
    finally:
        b.stop()
    blob = store_bytes(data)
    assert blob, "no store file"
    for secret in (b.secret_key, user_key["SecretAccessKey"], session["SecretAccessKey"]):
        assert secret.encode() not in blob
    assert "sealedSecret" in key_doc(data, b.access_key)
    assert "secretAccessKey" not in key_doc(data, b.access_key)
    # The places the key is meant to be: readable by its owner only.
    assert mode(os.path.join(data, "admin-credentials")) == 0o600
    assert mode(creds) == 0o600
    assert b.secret_key in creds.read_text()
    assert mode(config) == 0o600


@sqlite_only
def test_plain_text_secrets_of_an_older_store_are_sealed(tmp_path):
    data = str(tmp_path / "data")
    b = Barged(data).start()
    b.stop()
    # What barged wrote before secrets were sealed: the admin key's secret in
    # the clear, and per-task execution credentials likewise.
    task_akid, task_secret = "ASIAOLDPLAINTEXTKEY1", "oldTaskSecretInPlainText0123456789abcdef"
    db = sqlite3.connect(os.path.join(data, "barge.db"))
    with db:
        db.execute("UPDATE objects SET doc = ? WHERE kind = 'accesskey' AND key = ?",
                   (json.dumps({"secretAccessKey": b.secret_key, "user": "admin",
                                "createdAt": 1.0}), b.access_key))
        db.execute("INSERT INTO objects(kind, key, doc) VALUES ('accesskey', ?, ?)",
                   (task_akid, json.dumps({"secretAccessKey": task_secret,
                                           "sessionToken": "t" * 128, "user": "task-execution",
                                           "task": "default/none", "createdAt": 1.0,
                                           "expiresAt": 2.0, "policy": []})))
    db.close()
    assert b.secret_key.encode() in store_bytes(data)

    b.start()
    try:
        # The migrated admin key still signs requests.
        assert "clusterArns" in b.client().list_clusters()
    finally:
        b.stop()
    with open(b.log_path) as f:
        assert "sealed 2 access key secrets" in f.read()
    blob = store_bytes(data)
    assert b.secret_key.encode() not in blob
    assert task_secret.encode() not in blob
    assert "sealedSecret" in key_doc(data, b.access_key)
    doc = key_doc(data, task_akid)
    if doc is not None:  # the reaper may have removed the expired key
        assert "secretAccessKey" not in doc

    # Nothing left to seal: a second start writes nothing of the kind.
    b.start()
    try:
        b.client().list_clusters()
    finally:
        b.stop()
    with open(b.log_path) as f:
        assert f.read().count("access key secrets that were stored in plain text") == 1


@pytest.mark.skipif(pg_bin_dir() is None, reason="no postgresql package")
def test_postgres_rows_hold_no_access_key_secret(tmp_path):
    pg = postgres()
    uri = pg.new_database()
    db = uri.rsplit("/", 1)[1]
    b = Barged(str(tmp_path / "data"), store=uri).start()
    try:
        iam = b.client("iam")
        iam.create_user(UserName="ci")
        user_key = iam.create_access_key(UserName="ci")["AccessKey"]
    finally:
        b.stop()
    # As an older barged left it: the admin key's secret in the clear.
    plain = json.dumps({"secretAccessKey": b.secret_key, "user": "admin", "createdAt": 1.0})
    pg.psql("UPDATE objects SET doc = '%s' WHERE kind = 'accesskey' AND key = '%s'"
            % (plain, b.access_key), db=db)
    rows = "SELECT key || ' ' || doc FROM objects WHERE kind = 'accesskey'"
    assert b.secret_key in pg.psql(rows, db=db)
    b.start()
    try:
        assert "clusterArns" in b.client().list_clusters()
    finally:
        b.stop()
    text = pg.psql(rows, db=db)
    assert b.access_key in text and user_key["AccessKeyId"] in text
    assert b.secret_key not in text and user_key["SecretAccessKey"] not in text
    assert "secretAccessKey" not in text
