"""STS and the IAM roles it assumes, served by barged: GetCallerIdentity,
AssumeRole and GetSessionToken with boto3 and the aws CLI, and the temporary
credentials they return verified by every service."""
import json
import os
import sqlite3
import subprocess

import boto3
import botocore.config
import pytest
from botocore.exceptions import ClientError

from conftest import REGION, error_code, sqlite_store

TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:root"},
    "Action": "sts:AssumeRole"}]})


def temp_client(barged, service, creds, token=True):
    cfg = botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"})
    return boto3.client(service, endpoint_url=barged.endpoint, region_name=REGION,
                        aws_access_key_id=creds["AccessKeyId"],
                        aws_secret_access_key=creds["SecretAccessKey"],
                        aws_session_token=creds["SessionToken"] if token is True else token,
                        config=cfg)


ALL = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Action": "*", "Resource": "*"}]})


def make_role(barged, name="deployer", **kw):
    """A role whose sessions may do anything (roles deny by default)."""
    iam = barged.client("iam")
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST, **kw)["Role"]
    iam.put_role_policy(RoleName=name, PolicyName="all", PolicyDocument=ALL)
    return role


def test_caller_identity_of_the_admin_key(barged):
    sts = barged.client("sts")
    me = sts.get_caller_identity()
    assert me["Account"] == "000000000000"
    assert me["Arn"] == "arn:aws:iam::000000000000:user/admin"
    assert me["UserId"].startswith("AIDA") and len(me["UserId"]) == 21
    assert sts.get_caller_identity()["UserId"] == me["UserId"]


def test_iam_roles(barged):
    iam = barged.client("iam")
    role = make_role(barged, Path="/ci/", Description="deploys", MaxSessionDuration=7200)
    assert role["Arn"] == "arn:aws:iam::000000000000:role/ci/deployer"
    assert role["RoleId"].startswith("AROA") and role["Path"] == "/ci/"
    got = iam.get_role(RoleName="deployer")["Role"]
    # botocore decodes the URL-encoded policy document IAM answers with.
    assert got["AssumeRolePolicyDocument"] == json.loads(TRUST)
    assert got["MaxSessionDuration"] == 7200 and got["Description"] == "deploys"
    with pytest.raises(ClientError) as e:
        make_role(barged, name="DEPLOYER")
    assert error_code(e) == "EntityAlreadyExists"
    with pytest.raises(ClientError) as e:
        iam.create_role(RoleName="bad name", AssumeRolePolicyDocument=TRUST)
    assert error_code(e) == "ValidationError" and "bad name" in str(e.value)
    with pytest.raises(ClientError) as e:
        iam.create_role(RoleName="x", AssumeRolePolicyDocument="{not json")
    assert error_code(e) == "MalformedPolicyDocument"
    for i in range(3):
        make_role(barged, name=f"r{i}")
    page = iam.list_roles(MaxItems=2)
    assert page["IsTruncated"] and len(page["Roles"]) == 2
    rest = iam.list_roles(Marker=page["Marker"])
    names = [r["RoleName"] for r in page["Roles"] + rest["Roles"]]
    assert sorted(names) == ["deployer", "r0", "r1", "r2"] and not rest["IsTruncated"]
    assert [r["RoleName"] for r in iam.list_roles(PathPrefix="/ci/")["Roles"]] == ["deployer"]
    # A role with policies cannot be deleted.
    with pytest.raises(ClientError) as e:
        iam.delete_role(RoleName="deployer")
    assert error_code(e) == "DeleteConflict"
    iam.delete_role_policy(RoleName="deployer", PolicyName="all")
    iam.delete_role(RoleName="deployer")
    with pytest.raises(ClientError) as e:
        iam.get_role(RoleName="deployer")
    assert error_code(e) == "NoSuchEntity" and "deployer" in str(e.value)


def test_assume_role_credentials_work_everywhere(barged):
    role = make_role(barged)
    sts = barged.client("sts")
    out = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="ci-run")
    creds = out["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA")
    assert out["AssumedRoleUser"]["Arn"] == \
        "arn:aws:sts::000000000000:assumed-role/deployer/ci-run"
    assert out["AssumedRoleUser"]["AssumedRoleId"] == role["RoleId"] + ":ci-run"
    # The default duration is an hour (compared with the issue time the
    # store recorded, not with this machine's clock).
    db = sqlite3.connect(sqlite_store(barged), timeout=30)
    created, = db.execute("SELECT json_extract(doc, '$.createdAt') FROM objects "
                          "WHERE kind = 'accesskey' AND key = ?",
                          (creds["AccessKeyId"],)).fetchone()
    db.close()
    assert round(creds["Expiration"].timestamp() - created) == 3600
    me = temp_client(barged, "sts", creds).get_caller_identity()
    assert me["Arn"] == "arn:aws:sts::000000000000:assumed-role/deployer/ci-run"
    assert me["UserId"] == role["RoleId"] + ":ci-run"
    # Every protocol: JSON 1.1 (ECS, SSM), REST-XML (S3), query (IAM).
    temp_client(barged, "ecs", creds).create_cluster(clusterName="by-role")
    assert barged.client("ecs").describe_clusters(clusters=["by-role"])["clusters"]
    temp_client(barged, "ssm", creds).put_parameter(Name="/p", Value="v", Type="String")
    temp_client(barged, "s3", creds).create_bucket(Bucket="role-bucket")
    assert temp_client(barged, "iam", creds).get_role(RoleName="deployer")["Role"]
    # The secret never reaches the store or the log in plaintext.
    # (sqlite's write-ahead log included).
    files = [n for n in os.listdir(barged.data_dir) if n.startswith(("barge.db", "barged.log"))]
    assert "barge.db" in files
    for name in files:
        path = os.path.join(barged.data_dir, name)
        assert creds["SecretAccessKey"].encode() not in open(path, "rb").read()


def test_temporary_keys_need_their_token(barged):
    make_role(barged)
    creds = barged.client("sts").assume_role(
        RoleArn="arn:aws:iam::000000000000:role/deployer",
        RoleSessionName="s1")["Credentials"]
    with pytest.raises(ClientError) as e:
        temp_client(barged, "ecs", creds, token=None).list_clusters()
    assert error_code(e) == "UnrecognizedClientException"
    with pytest.raises(ClientError) as e:
        temp_client(barged, "ecs", creds, token="not-the-token").list_clusters()
    assert error_code(e) == "UnrecognizedClientException"
    with pytest.raises(ClientError) as e:
        temp_client(barged, "sts", creds, token="not-the-token").get_caller_identity()
    assert error_code(e) == "InvalidClientTokenId"
    # The admin's long-term key with a made-up token is refused too.
    with pytest.raises(ClientError) as e:
        boto3.client("sts", endpoint_url=barged.endpoint, region_name=REGION,
                     aws_access_key_id=barged.access_key,
                     aws_secret_access_key=barged.secret_key,
                     aws_session_token="forged").get_caller_identity()
    assert error_code(e) == "InvalidClientTokenId"


def test_expired_credentials_are_refused(barged):
    make_role(barged)
    creds = barged.client("sts").assume_role(
        RoleArn="arn:aws:iam::000000000000:role/deployer",
        RoleSessionName="s1", DurationSeconds=900)["Credentials"]
    temp_client(barged, "ecs", creds).list_clusters()
    # Time travel: the session's expiry is moved into the past in the store.
    db = sqlite3.connect(sqlite_store(barged), timeout=30)
    with db:
        n = db.execute("UPDATE objects SET doc = json_set(doc, '$.expiresAt', 1.0) "
                       "WHERE kind = 'accesskey' AND key = ?",
                       (creds["AccessKeyId"],)).rowcount
    db.close()
    assert n == 1
    with pytest.raises(ClientError) as e:
        temp_client(barged, "ecs", creds).list_clusters()
    assert error_code(e) == "ExpiredTokenException"
    with pytest.raises(ClientError) as e:
        temp_client(barged, "sts", creds).get_caller_identity()
    assert error_code(e) == "ExpiredToken"


def test_assume_role_validation(barged):
    # botocore's own checks are off: barged must refuse what they would.
    sts = boto3.client("sts", endpoint_url=barged.endpoint, region_name=REGION,
                       aws_access_key_id=barged.access_key,
                       aws_secret_access_key=barged.secret_key,
                       config=botocore.config.Config(parameter_validation=False,
                                                     retries={"max_attempts": 1}))
    make_role(barged, Path="/ci/")
    arn = "arn:aws:iam::000000000000:role/ci/deployer"
    with pytest.raises(ClientError) as e:
        sts.assume_role(RoleArn="arn:aws:iam::000000000000:role/nobody", RoleSessionName="s1")
    assert error_code(e) == "AccessDenied"
    assert "role/nobody" in str(e.value) and "user/admin" in str(e.value)
    # The path is part of the ARN; another account's role is not barged's.
    for other in ("arn:aws:iam::000000000000:role/deployer",
                  "arn:aws:iam::123456789012:role/ci/deployer"):
        with pytest.raises(ClientError) as e:
            sts.assume_role(RoleArn=other, RoleSessionName="s1")
        assert error_code(e) == "AccessDenied"
    with pytest.raises(ClientError) as e:
        sts.assume_role(RoleArn="arn:aws:s3:::not-a-role-arn", RoleSessionName="s1")
    assert error_code(e) == "ValidationError" and "not-a-role-arn" in str(e.value)
    with pytest.raises(ClientError) as e:
        sts.assume_role(RoleArn=arn, RoleSessionName="has space")
    assert error_code(e) == "ValidationError" and "has space" in str(e.value)
    with pytest.raises(ClientError) as e:
        sts.assume_role(RoleArn=arn, RoleSessionName="x")
    assert error_code(e) == "ValidationError" and "rolesessionname" in str(e.value).lower()
    for bad in (899, 43201):
        with pytest.raises(ClientError) as e:
            sts.assume_role(RoleArn=arn, RoleSessionName="s1", DurationSeconds=bad)
        assert error_code(e) == "ValidationError" and "durationseconds" in str(e.value).lower()
    # More than the role's MaxSessionDuration (an hour by default).
    with pytest.raises(ClientError) as e:
        sts.assume_role(RoleArn=arn, RoleSessionName="s1", DurationSeconds=7200)
    assert error_code(e) == "ValidationError" and "MaxSessionDuration" in str(e.value)
    with pytest.raises(ClientError) as e:
        sts.assume_role(RoleArn=arn, RoleSessionName="s1", Policy="{}")
    assert error_code(e) == "ValidationError" and "Policy" in str(e.value)


def test_get_session_token(barged):
    sts = barged.client("sts")
    unchecked = boto3.client("sts", endpoint_url=barged.endpoint, region_name=REGION,
                             aws_access_key_id=barged.access_key,
                             aws_secret_access_key=barged.secret_key,
                             config=botocore.config.Config(parameter_validation=False,
                                                           retries={"max_attempts": 1}))
    creds = sts.get_session_token(DurationSeconds=900)["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA")
    me = temp_client(barged, "sts", creds).get_caller_identity()
    assert me == {**me, **{k: v for k, v in sts.get_caller_identity().items()
                           if k in ("Arn", "UserId", "Account")}}
    temp_client(barged, "ecs", creds).list_clusters()
    with pytest.raises(ClientError) as e:
        temp_client(barged, "sts", creds).get_session_token()
    assert error_code(e) == "AccessDenied"
    with pytest.raises(ClientError) as e:
        unchecked.get_session_token(DurationSeconds=129601)
    assert error_code(e) == "ValidationError"


def test_aws_cli(barged, awscli):
    me = awscli.json("sts", "get-caller-identity")
    assert me["Arn"] == "arn:aws:iam::000000000000:user/admin"
    role = awscli.json("iam", "create-role", "--role-name", "cli-role",
                       "--assume-role-policy-document", TRUST)["Role"]
    out = awscli.json("sts", "assume-role", "--role-arn", role["Arn"],
                      "--role-session-name", "from-cli")
    assert out["AssumedRoleUser"]["Arn"].endswith(":assumed-role/cli-role/from-cli")
    c = out["Credentials"]
    env = dict(awscli.env, AWS_ACCESS_KEY_ID=c["AccessKeyId"],
               AWS_SECRET_ACCESS_KEY=c["SecretAccessKey"], AWS_SESSION_TOKEN=c["SessionToken"],
               AWS_DEFAULT_REGION=REGION)
    p = subprocess.run([awscli.binary, "--endpoint-url", barged.endpoint, "--output", "json",
                        "sts", "get-caller-identity"], env=env, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["Arn"] == \
        "arn:aws:sts::000000000000:assumed-role/cli-role/from-cli"


def test_role_chaining_is_limited_to_an_hour(barged):
    make_role(barged, name="first")
    make_role(barged, name="second", MaxSessionDuration=7200)
    sts = barged.client("sts")
    first = sts.assume_role(RoleArn="arn:aws:iam::000000000000:role/first",
                            RoleSessionName="one")["Credentials"]
    chained = temp_client(barged, "sts", first)
    arn = "arn:aws:iam::000000000000:role/second"
    # The admin key may take the role's whole MaxSessionDuration, a session not.
    sts.assume_role(RoleArn=arn, RoleSessionName="direct", DurationSeconds=7200)
    with pytest.raises(ClientError) as e:
        chained.assume_role(RoleArn=arn, RoleSessionName="two", DurationSeconds=7200)
    assert error_code(e) == "ValidationError" and "role chaining" in str(e.value)
    second = chained.assume_role(RoleArn=arn, RoleSessionName="two")["Credentials"]
    assert temp_client(barged, "sts", second).get_caller_identity()["Arn"] == \
        "arn:aws:sts::000000000000:assumed-role/second/two"


def test_trust_policies_and_identity_policies_both_decide(barged):
    iam = barged.client("iam")
    acct = "000000000000"

    def trust(principal, **extra):
        return json.dumps({"Version": "2012-10-17", "Statement": [dict({
            "Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}, **extra)]})

    iam.create_user(UserName="ci")
    key = iam.create_access_key(UserName="ci")["AccessKey"]
    ci_sts = temp_client(barged, "sts", key, token=None)
    ci_arn = f"arn:aws:iam::{acct}:user/ci"
    only_ci = iam.create_role(RoleName="only-ci",
                              AssumeRolePolicyDocument=trust({"AWS": ci_arn}))["Role"]
    tasks = iam.create_role(RoleName="tasks", AssumeRolePolicyDocument=trust(
        {"Service": "ecs-tasks.amazonaws.com"}))["Role"]
    external = iam.create_role(RoleName="external", AssumeRolePolicyDocument=trust(
        {"AWS": f"arn:aws:iam::{acct}:root"},
        Condition={"StringEquals": {"sts:ExternalId": "s3cret"}}))["Role"]

    # The admin is not named by these trust policies.
    for role in (only_ci, tasks):
        with pytest.raises(ClientError) as e:
            barged.client("sts").assume_role(RoleArn=role["Arn"], RoleSessionName="s1")
        assert error_code(e) == "AccessDenied"
        assert e.value.response["Error"]["Message"] == (
            f"User: arn:aws:iam::{acct}:user/admin is not authorized to perform: "
            f"sts:AssumeRole on resource: {role['Arn']}")
    # The trusted user still needs sts:AssumeRole in its own policies.
    with pytest.raises(ClientError) as e:
        ci_sts.assume_role(RoleArn=only_ci["Arn"], RoleSessionName="s1")
    assert error_code(e) == "AccessDenied" and ci_arn in str(e.value)
    iam.put_user_policy(UserName="ci", PolicyName="assume", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Resource": only_ci["Arn"]}]}))
    got = ci_sts.assume_role(RoleArn=only_ci["Arn"], RoleSessionName="s1")
    assert got["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{acct}:assumed-role/only-ci/s1"
    # Allowed for one role only: the external one is refused by the identity policy.
    with pytest.raises(ClientError) as e:
        ci_sts.assume_role(RoleArn=external["Arn"], RoleSessionName="s1", ExternalId="s3cret")
    assert error_code(e) == "AccessDenied"

    # The account's root principal trusts the admin, with the right external id only.
    sts = barged.client("sts")
    for bad in ({}, {"ExternalId": "guess"}):
        with pytest.raises(ClientError) as e:
            sts.assume_role(RoleArn=external["Arn"], RoleSessionName="s1", **bad)
        assert error_code(e) == "AccessDenied"
    sts.assume_role(RoleArn=external["Arn"], RoleSessionName="s1", ExternalId="s3cret")

    # A new trust policy is in force for the next AssumeRole.
    iam.update_assume_role_policy(RoleName="tasks", PolicyDocument=trust(
        {"AWS": f"arn:aws:iam::{acct}:root"}))
    assert iam.get_role(RoleName="tasks")["Role"]["AssumeRolePolicyDocument"]["Statement"][0][
        "Principal"] == {"AWS": f"arn:aws:iam::{acct}:root"}
    sts.assume_role(RoleArn=tasks["Arn"], RoleSessionName="s1")
    with pytest.raises(ClientError) as e:
        iam.update_assume_role_policy(RoleName="tasks", PolicyDocument="{nope")
    assert error_code(e) == "MalformedPolicyDocument"
    with pytest.raises(ClientError) as e:
        iam.update_assume_role_policy(RoleName="nope", PolicyDocument=trust("*"))
    assert error_code(e) == "NoSuchEntity"
