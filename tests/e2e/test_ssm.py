"""SSM Parameter Store served by barged (issue 7): every operation through
Debian's aws CLI and boto3, SecureString values that stay opaque without
WithDecryption and never reach the database file in the clear, hierarchies,
versions, ARNs and regions."""
import os

import pytest
from botocore.exceptions import ClientError

from conftest import REGION, error_code


def test_put_get_versions_and_types(awscli):
    out = awscli.json("ssm", "put-parameter", "--name", "/app/prod/db/url",
                      "--value", "postgres://db:5432/app", "--type", "String")
    assert out == {"Version": 1, "Tier": "Standard"}
    p = awscli.json("ssm", "get-parameter", "--name", "/app/prod/db/url")["Parameter"]
    assert p["Value"] == "postgres://db:5432/app" and p["Type"] == "String"
    assert p["ARN"] == "arn:aws:ssm:us-east-1:000000000000:parameter/app/prod/db/url"
    assert p["Version"] == 1 and p["DataType"] == "text"

    # no overwrite: ParameterAlreadyExists; with it: version 2
    r = awscli.run("ssm", "put-parameter", "--name", "/app/prod/db/url", "--value", "x",
                   "--type", "String", check=False)
    assert r.returncode != 0 and "ParameterAlreadyExists" in r.stderr
    assert awscli.json("ssm", "put-parameter", "--name", "/app/prod/db/url", "--value",
                       "postgres://db2:5432/app", "--overwrite")["Version"] == 2
    p = awscli.json("ssm", "get-parameter", "--name", "/app/prod/db/url")["Parameter"]
    assert p["Value"] == "postgres://db2:5432/app" and p["Version"] == 2
    # a version selector reads the old value
    p = awscli.json("ssm", "get-parameter", "--name", "/app/prod/db/url:1")["Parameter"]
    assert p["Value"] == "postgres://db:5432/app" and p["Selector"] == ":1"

    awscli.json("ssm", "put-parameter", "--name", "hosts", "--value", "a,b,c",
                "--type", "StringList")
    assert awscli.json("ssm", "get-parameter", "--name", "hosts")["Parameter"]["Type"] == \
        "StringList"

    by_path = awscli.json("ssm", "get-parameters-by-path", "--path", "/app", "--recursive")
    assert [p["Name"] for p in by_path["Parameters"]] == ["/app/prod/db/url"]
    assert awscli.json("ssm", "get-parameters-by-path", "--path", "/app")["Parameters"] == []

    hist = awscli.json("ssm", "get-parameter-history", "--name", "/app/prod/db/url")
    assert [h["Version"] for h in hist["Parameters"]] == [1, 2]
    assert hist["Parameters"][0]["Value"] == "postgres://db:5432/app"
    assert hist["Parameters"][1]["LastModifiedUser"].endswith(":user/admin")


def test_secure_string_is_opaque_without_decryption(barged, awscli):
    secret = "pa55-Word-9d1f3c"
    awscli.json("ssm", "put-parameter", "--name", "/app/secret", "--value", secret,
                "--type", "SecureString", "--description", "db password")
    p = awscli.json("ssm", "get-parameter", "--name", "/app/secret")["Parameter"]
    assert p["Type"] == "SecureString" and p["Value"] != secret and secret not in p["Value"]
    p = awscli.json("ssm", "get-parameter", "--name", "/app/secret",
                    "--with-decryption")["Parameter"]
    assert p["Value"] == secret
    ps = awscli.json("ssm", "get-parameters", "--names", "/app/secret", "/nope",
                     "--with-decryption")
    assert [x["Value"] for x in ps["Parameters"]] == [secret]
    assert ps["InvalidParameters"] == ["/nope"]
    hist = awscli.json("ssm", "get-parameter-history", "--name", "/app/secret")
    assert hist["Parameters"][0]["Value"] != secret
    assert hist["Parameters"][0]["KeyId"] == "alias/aws/ssm"
    desc = awscli.json("ssm", "describe-parameters")["Parameters"]
    assert [d["Name"] for d in desc] == ["/app/secret"]
    assert desc[0]["Description"] == "db password" and "Value" not in desc[0]
    # at rest: the master key file is private and the store holds no plaintext
    key = os.path.join(barged.data_dir, "master.key")
    assert os.stat(key).st_mode & 0o777 == 0o600
    for name in os.listdir(barged.data_dir):
        if name.startswith("barge.db"):
            assert secret.encode() not in open(os.path.join(barged.data_dir, name), "rb").read()
    assert secret not in open(barged.log_path).read()


def test_get_parameters_names_and_arns(barged, awscli):
    for n in ("/a/one", "/a/two", "flat"):
        awscli.json("ssm", "put-parameter", "--name", n, "--value", "v" + n, "--type", "String")
    arn = "arn:aws:ssm:us-east-1:000000000000:parameter/a/two"
    flat_arn = "arn:aws:ssm:us-east-1:000000000000:parameter/flat"
    other_region = "arn:aws:ssm:eu-west-1:000000000000:parameter/a/one"
    ps = awscli.json("ssm", "get-parameters", "--names", "/a/one", arn, flat_arn, other_region,
                     "/a/missing")
    got = sorted((p["Name"], p["Value"]) for p in ps["Parameters"])
    assert got == [("/a/one", "v/a/one"), ("/a/two", "v/a/two"), ("flat", "vflat")]
    assert sorted(ps["InvalidParameters"]) == sorted([other_region, "/a/missing"])
    assert awscli.json("ssm", "get-parameter", "--name", arn)["Parameter"]["Name"] == "/a/two"


def test_get_parameters_by_path_recursive_and_paging(barged):
    ssm = barged.client("ssm")
    names = ["/svc/a", "/svc/b", "/svc/sub/c", "/svc/sub/deep/d", "/other/x", "top"]
    for n in names:
        ssm.put_parameter(Name=n, Value="v", Type="String")
    one = ssm.get_parameters_by_path(Path="/svc")["Parameters"]
    assert sorted(p["Name"] for p in one) == ["/svc/a", "/svc/b"]
    rec = ssm.get_parameters_by_path(Path="/svc/", Recursive=True)["Parameters"]
    assert sorted(p["Name"] for p in rec) == ["/svc/a", "/svc/b", "/svc/sub/c", "/svc/sub/deep/d"]
    # paging with MaxResults
    seen, token = [], None
    while True:
        kw = {"NextToken": token} if token else {}
        page = ssm.get_parameters_by_path(Path="/", Recursive=True, MaxResults=2, **kw)
        assert len(page["Parameters"]) <= 2
        seen += [p["Name"] for p in page["Parameters"]]
        token = page.get("NextToken")
        if not token:
            break
    assert sorted(seen) == sorted(names)
    # filters
    f = ssm.describe_parameters(ParameterFilters=[
        {"Key": "Path", "Option": "Recursive", "Values": ["/svc/sub"]}])["Parameters"]
    assert sorted(p["Name"] for p in f) == ["/svc/sub/c", "/svc/sub/deep/d"]
    f = ssm.describe_parameters(ParameterFilters=[
        {"Key": "Name", "Option": "BeginsWith", "Values": ["/svc/s"]}])["Parameters"]
    assert sorted(p["Name"] for p in f) == ["/svc/sub/c", "/svc/sub/deep/d"]
    with pytest.raises(ClientError) as e:
        ssm.get_parameters_by_path(Path="/svc", ParameterFilters=[
            {"Key": "Name", "Values": ["x"]}])
    assert error_code(e) == "InvalidFilterKey"
    with pytest.raises(ClientError) as e:
        ssm.get_parameters_by_path(Path="/svc", NextToken="bm90LWEtdG9rZW4=")
    assert error_code(e) == "InvalidNextToken"


def test_delete_tags_and_errors(barged, awscli):
    ssm = barged.client("ssm")
    ssm.put_parameter(Name="/t/p", Value="v", Type="String",
                      Tags=[{"Key": "team", "Value": "core"}])
    tags = awscli.json("ssm", "list-tags-for-resource", "--resource-type", "Parameter",
                       "--resource-id", "/t/p")["TagList"]
    assert tags == [{"Key": "team", "Value": "core"}]
    awscli.run("ssm", "add-tags-to-resource", "--resource-type", "Parameter", "--resource-id",
               "/t/p", "--tags", "Key=env,Value=prod")
    awscli.run("ssm", "remove-tags-from-resource", "--resource-type", "Parameter",
               "--resource-id", "/t/p", "--tag-keys", "team")
    tags = ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId="/t/p")["TagList"]
    assert tags == [{"Key": "env", "Value": "prod"}]
    with pytest.raises(ClientError) as e:
        ssm.put_parameter(Name="/t/p", Value="v2", Overwrite=True,
                          Tags=[{"Key": "a", "Value": "b"}])
    assert error_code(e) == "ValidationException"

    awscli.run("ssm", "delete-parameter", "--name", "/t/p")
    r = awscli.run("ssm", "get-parameter", "--name", "/t/p", check=False)
    assert r.returncode != 0 and "ParameterNotFound" in r.stderr
    r = awscli.run("ssm", "delete-parameter", "--name", "/t/p", check=False)
    assert "ParameterNotFound" in r.stderr
    ssm.put_parameter(Name="/t/q", Value="v", Type="String")
    out = awscli.json("ssm", "delete-parameters", "--names", "/t/q", "/t/none")
    assert out["DeletedParameters"] == ["/t/q"] and out["InvalidParameters"] == ["/t/none"]

    for bad in ("aws-thing", "/ssm/x", "a/b", "/a//b", "/bad name", "/a/"):
        with pytest.raises(ClientError) as e:
            ssm.put_parameter(Name=bad, Value="v", Type="String")
        assert error_code(e) == "ValidationException", bad
    deep = "/" + "/".join(f"l{i}" for i in range(16))
    with pytest.raises(ClientError) as e:
        ssm.put_parameter(Name=deep, Value="v", Type="String")
    assert error_code(e) == "HierarchyLevelLimitExceededException"
    with pytest.raises(ClientError) as e:
        ssm.put_parameter(Name="/t/new", Value="v")
    assert error_code(e) == "ValidationException"  # a new parameter needs a Type
    with pytest.raises(ClientError) as e:
        ssm.put_parameter(Name="/t/big", Value="x" * 4097, Type="String")
    assert error_code(e) == "ValidationException"
    assert ssm.put_parameter(Name="/t/big", Value="x" * 4097, Type="String",
                             Tier="Advanced")["Tier"] == "Advanced"
    with pytest.raises(ClientError) as e:
        ssm.put_parameter(Name="/t/pat", Value="abc", Type="String", AllowedPattern="^[0-9]+$")
    assert error_code(e) == "ParameterPatternMismatchException"
    ssm.put_parameter(Name="/t/pat", Value="123", Type="String", AllowedPattern="^[0-9]+$")
    with pytest.raises(ClientError) as e:
        ssm.get_parameter(Name="/t/pat:7")
    assert error_code(e) == "ParameterVersionNotFound"


def test_regions_are_separate(barged):
    east = barged.client("ssm")
    import boto3
    import botocore.config
    west = boto3.client("ssm", endpoint_url=barged.endpoint, region_name="us-west-2",
                        aws_access_key_id=barged.access_key,
                        aws_secret_access_key=barged.secret_key,
                        config=botocore.config.Config(retries={"max_attempts": 1}))
    west.put_parameter(Name="/only/west", Value="w", Type="String")
    with pytest.raises(ClientError) as e:
        east.get_parameter(Name="/only/west")
    assert error_code(e) == "ParameterNotFound"
    p = west.get_parameter(Name="/only/west")["Parameter"]
    assert p["ARN"] == "arn:aws:ssm:us-west-2:000000000000:parameter/only/west"
    assert REGION == "us-east-1"


def test_wrong_master_key_refuses_to_start(tmp_path):
    from conftest import Barged
    b = Barged(str(tmp_path / "d")).start()
    b.client("ssm").put_parameter(Name="/k", Value="v", Type="SecureString")
    b.stop()
    with open(os.path.join(b.data_dir, "master.key"), "w") as f:
        f.write("00" * 32 + "\n")
    again = Barged(b.data_dir, store=b.store)
    try:
        with pytest.raises(RuntimeError) as e:
            again.start()
    finally:
        again.stop()  # had it started, it must not outlive the test
    assert "master key" in str(e.value)
