"""Secrets Manager served by barged (issue 7): every operation through Debian's
aws CLI and boto3, staging labels, ARNs with AWS's random suffix, deletion with
a recovery window, and no secret value in the database file."""
import base64
import os
import re

import pytest
from botocore.exceptions import ClientError

from conftest import error_code, raw_call, sqlite_store


def test_lifecycle_with_the_cli(barged, awscli):
    secret = '{"username":"app","password":"Tr0ub4dor&3-5e1c"}'
    out = awscli.json("secretsmanager", "create-secret", "--name", "prod/db",
                      "--description", "database", "--secret-string", secret,
                      "--tags", "Key=team,Value=core")
    arn = out["ARN"]
    assert re.fullmatch(r"arn:aws:secretsmanager:us-east-1:000000000000:secret:prod/db-"
                        r"[A-Za-z0-9]{6}", arn), arn
    v1 = out["VersionId"]
    got = awscli.json("secretsmanager", "get-secret-value", "--secret-id", "prod/db")
    assert got["SecretString"] == secret and got["VersionStages"] == ["AWSCURRENT"]
    assert got["ARN"] == arn and got["VersionId"] == v1
    # by full ARN and by partial ARN (without the suffix)
    assert awscli.json("secretsmanager", "get-secret-value", "--secret-id",
                       arn)["SecretString"] == secret
    assert awscli.json("secretsmanager", "get-secret-value", "--secret-id",
                       arn[:-7])["Name"] == "prod/db"

    new = '{"username":"app","password":"second-7f2a"}'
    put = awscli.json("secretsmanager", "put-secret-value", "--secret-id", "prod/db",
                      "--secret-string", new)
    assert put["VersionStages"] == ["AWSCURRENT"]
    v2 = put["VersionId"]
    assert awscli.json("secretsmanager", "get-secret-value", "--secret-id",
                       "prod/db")["SecretString"] == new
    prev = awscli.json("secretsmanager", "get-secret-value", "--secret-id", "prod/db",
                       "--version-stage", "AWSPREVIOUS")
    assert prev["SecretString"] == secret and prev["VersionId"] == v1
    by_id = awscli.json("secretsmanager", "get-secret-value", "--secret-id", "prod/db",
                        "--version-id", v1)
    assert by_id["VersionStages"] == ["AWSPREVIOUS"]

    desc = awscli.json("secretsmanager", "describe-secret", "--secret-id", "prod/db")
    assert desc["VersionIdsToStages"] == {v1: ["AWSPREVIOUS"], v2: ["AWSCURRENT"]}
    assert desc["Description"] == "database" and desc["Tags"] == [{"Key": "team",
                                                                   "Value": "core"}]
    awscli.run("secretsmanager", "update-secret", "--secret-id", "prod/db", "--description",
               "primary database")
    awscli.run("secretsmanager", "tag-resource", "--secret-id", "prod/db", "--tags",
               "Key=env,Value=prod")
    awscli.run("secretsmanager", "untag-resource", "--secret-id", "prod/db", "--tag-keys",
               "team")
    desc = awscli.json("secretsmanager", "describe-secret", "--secret-id", arn)
    assert desc["Description"] == "primary database"
    assert desc["Tags"] == [{"Key": "env", "Value": "prod"}]
    lst = awscli.json("secretsmanager", "list-secrets")["SecretList"]
    assert [s["Name"] for s in lst] == ["prod/db"]
    assert lst[0]["SecretVersionsToStages"][v2] == ["AWSCURRENT"]

    # update-secret with a value makes a new current version
    third = '{"password":"third-0c1d"}'
    upd = awscli.json("secretsmanager", "update-secret", "--secret-id", "prod/db",
                      "--secret-string", third)
    assert awscli.json("secretsmanager", "get-secret-value", "--secret-id",
                       "prod/db")["VersionId"] == upd["VersionId"]

    # deletion with a recovery window, then restore, then for good
    d = awscli.json("secretsmanager", "delete-secret", "--secret-id", "prod/db",
                    "--recovery-window-in-days", "7")
    assert d["Name"] == "prod/db" and "DeletionDate" in d
    r = awscli.run("secretsmanager", "get-secret-value", "--secret-id", "prod/db", check=False)
    assert "InvalidRequestException" in r.stderr
    assert awscli.json("secretsmanager", "list-secrets")["SecretList"] == []
    assert len(awscli.json("secretsmanager", "list-secrets", "--include-planned-deletion")
               ["SecretList"]) == 1
    r = awscli.run("secretsmanager", "create-secret", "--name", "prod/db", "--secret-string",
                   "x", check=False)
    assert "InvalidRequestException" in r.stderr
    awscli.run("secretsmanager", "restore-secret", "--secret-id", "prod/db")
    assert awscli.json("secretsmanager", "get-secret-value", "--secret-id",
                       "prod/db")["SecretString"] == third
    awscli.run("secretsmanager", "delete-secret", "--secret-id", "prod/db",
               "--force-delete-without-recovery")
    r = awscli.run("secretsmanager", "describe-secret", "--secret-id", "prod/db", check=False)
    assert "ResourceNotFoundException" in r.stderr

    # at rest: nothing in the clear
    for name in os.listdir(barged.data_dir):
        if name.startswith("barge.db"):
            data = open(os.path.join(barged.data_dir, name), "rb").read()
            for value in (b"Tr0ub4dor&3-5e1c", b"second-7f2a", b"third-0c1d"):
                assert value not in data
    log = open(barged.log_path).read()
    assert "Tr0ub4dor" not in log and "second-7f2a" not in log


def test_errors_binary_and_idempotency(barged):
    sm = barged.client("secretsmanager")
    with pytest.raises(ClientError) as e:
        sm.get_secret_value(SecretId="nope")
    assert error_code(e) == "ResourceNotFoundException"
    assert e.value.response["Error"]["Message"] == \
        "Secrets Manager can't find the specified secret."
    token = "a" * 32
    out = sm.create_secret(Name="bin", SecretBinary=b"\x00\x01\xfe\xff", ClientRequestToken=token)
    assert out["VersionId"] == token
    # the same request again is fine; another value under that token is not
    again = sm.create_secret(Name="bin", SecretBinary=b"\x00\x01\xfe\xff",
                             ClientRequestToken=token)
    assert again["ARN"] == out["ARN"]
    with pytest.raises(ClientError) as e:
        sm.create_secret(Name="bin", SecretString="other")
    assert error_code(e) == "ResourceExistsException"
    got = sm.get_secret_value(SecretId="bin")
    assert got["SecretBinary"] == b"\x00\x01\xfe\xff" and "SecretString" not in got
    with pytest.raises(ClientError) as e:
        sm.put_secret_value(SecretId="bin", SecretString="x", ClientRequestToken=token)
    assert error_code(e) == "ResourceExistsException"

    with pytest.raises(ClientError) as e:
        sm.create_secret(Name="both", SecretString="a", SecretBinary=b"b")
    assert error_code(e) == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        sm.create_secret(Name="bad name!", SecretString="a")
    assert error_code(e) == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        sm.delete_secret(SecretId="bin", RecoveryWindowInDays=3)
    assert error_code(e) == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        sm.delete_secret(SecretId="bin", RecoveryWindowInDays=7, ForceDeleteWithoutRecovery=True)
    assert error_code(e) == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        sm.get_secret_value(SecretId="bin", VersionStage="AWSPENDING")
    assert error_code(e) == "ResourceNotFoundException"

    # a secret without a value yet, then custom stages
    sm.create_secret(Name="empty")
    with pytest.raises(ClientError) as e:
        sm.get_secret_value(SecretId="empty")
    assert error_code(e) == "ResourceNotFoundException"
    p = sm.put_secret_value(SecretId="empty", SecretString="pending-value",
                            VersionStages=["AWSPENDING"])
    assert p["VersionStages"] == ["AWSPENDING"]
    assert sm.get_secret_value(SecretId="empty", VersionStage="AWSPENDING")["SecretString"] == \
        "pending-value"
    versions = sm.list_secret_version_ids(SecretId="empty")["Versions"]
    assert [v["VersionStages"] for v in versions] == [["AWSPENDING"]]


def test_list_filters_and_paging(barged):
    sm = barged.client("secretsmanager")
    for i in range(5):
        sm.create_secret(Name=f"app/s{i}", SecretString="v",
                         Tags=[{"Key": "idx", "Value": str(i)}])
    sm.create_secret(Name="other", SecretString="v", Description="Other one")
    names = [s["Name"] for s in sm.list_secrets(
        Filters=[{"Key": "name", "Values": ["app/"]}])["SecretList"]]
    assert sorted(names) == [f"app/s{i}" for i in range(5)]
    names = [s["Name"] for s in sm.list_secrets(
        Filters=[{"Key": "description", "Values": ["other"]}])["SecretList"]]
    assert names == ["other"]
    names = [s["Name"] for s in sm.list_secrets(
        Filters=[{"Key": "tag-value", "Values": ["3"]}])["SecretList"]]
    assert names == ["app/s3"]
    seen, token = [], None
    while True:
        kw = {"NextToken": token} if token else {}
        page = sm.list_secrets(MaxResults=2, SortOrder="asc", **kw)
        seen += [s["Name"] for s in page["SecretList"]]
        token = page.get("NextToken")
        if not token:
            break
    assert seen == [f"app/s{i}" for i in range(5)] + ["other"]
    # SortBy is newer than Debian's botocore: a raw call
    status, out = raw_call(barged, "secretsmanager.ListSecrets",
                           {"SortBy": "name", "SortOrder": "desc"}, service="secretsmanager")
    assert status == 200
    by_name = [s["Name"] for s in out["SecretList"]]
    assert by_name == sorted(by_name, reverse=True) and len(by_name) == 6


def test_regions_and_arns(barged):
    import boto3
    import botocore.config
    west = boto3.client("secretsmanager", endpoint_url=barged.endpoint, region_name="eu-west-1",
                        aws_access_key_id=barged.access_key,
                        aws_secret_access_key=barged.secret_key,
                        config=botocore.config.Config(retries={"max_attempts": 1}))
    arn = west.create_secret(Name="w", SecretString="west-value")["ARN"]
    assert ":eu-west-1:" in arn
    east = barged.client("secretsmanager")
    with pytest.raises(ClientError) as e:
        east.get_secret_value(SecretId="w")
    assert error_code(e) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        east.get_secret_value(SecretId=arn)
    assert error_code(e) == "ResourceNotFoundException"
    assert west.get_secret_value(SecretId=arn)["SecretString"] == "west-value"
    assert base64  # imported for the binary test above


def test_recovery_window_end_removes_the_secret(barged):
    """When the recovery window has passed, housekeeping removes the secret
    (the window is moved into the past in the database, as time travel)."""
    import sqlite3
    import time
    sm = barged.client("secretsmanager")
    sm.create_secret(Name="doomed", SecretString="v")
    sm.create_secret(Name="spared", SecretString="v")
    sm.delete_secret(SecretId="doomed", RecoveryWindowInDays=7)
    sm.delete_secret(SecretId="spared", RecoveryWindowInDays=7)
    sm.restore_secret(SecretId="spared")
    db = sqlite3.connect(sqlite_store(barged), timeout=30)
    with db:
        db.execute("UPDATE objects SET doc = json_set(doc, '$.deletedDate', 1.0) "
                   "WHERE kind = 'smsecret' AND key = 'us-east-1|doomed'")
        db.execute("UPDATE objects SET doc = json_set(doc, '$.at', 1.0) WHERE kind = 'smpurge'")
    db.close()
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            sm.describe_secret(SecretId="doomed")
        except ClientError as e:
            assert e.response["Error"]["Code"] == "ResourceNotFoundException"
            break
        time.sleep(0.5)
    else:
        raise AssertionError("the secret outlived its recovery window")
    assert sm.get_secret_value(SecretId="spared")["SecretString"] == "v"
