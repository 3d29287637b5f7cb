"""IAM users, their access keys and the identity policies barged evaluates on
every request of a non-admin principal: deny by default, an explicit Deny
wins, Action and Resource wildcards, over JSON (ECS, SSM, Secrets Manager),
query (IAM) and REST-XML (S3). The admin key stays all-powerful."""
import json
import os

import boto3
import botocore.config
import pytest
from botocore.exceptions import ClientError

from conftest import REGION, error_code, error_message

ACCOUNT = "000000000000"
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
    "Action": "sts:AssumeRole"}]})


def policy(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action, resource="*"):
    return {"Effect": "Allow", "Action": action, "Resource": resource}


def client(barged, service, creds):
    cfg = botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"})
    return boto3.client(service, endpoint_url=barged.endpoint, region_name=REGION,
                        aws_access_key_id=creds["AccessKeyId"],
                        aws_secret_access_key=creds["SecretAccessKey"],
                        aws_session_token=creds.get("SessionToken"), config=cfg)


def make_user(barged, name, *statements):
    iam = barged.client("iam")
    iam.create_user(UserName=name)
    if statements:
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=policy(*statements))
    return iam.create_access_key(UserName=name)["AccessKey"]


def denied(call, code="AccessDeniedException"):
    with pytest.raises(ClientError) as e:
        call()
    assert error_code(e) == code, e.value.response
    return error_message(e)


def test_users_and_access_keys(barged):
    iam = barged.client("iam")
    user = iam.create_user(UserName="ci", Path="/bots/")["User"]
    assert user["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/bots/ci"
    assert user["UserId"].startswith("AIDA")
    assert iam.get_user(UserName="ci")["User"]["UserId"] == user["UserId"]
    with pytest.raises(ClientError) as e:
        iam.create_user(UserName="CI")
    assert error_code(e) == "EntityAlreadyExists"
    with pytest.raises(ClientError) as e:
        iam.create_user(UserName="no spaces")
    assert error_code(e) == "ValidationError" and "no spaces" in str(e.value)
    assert [u["UserName"] for u in iam.list_users(PathPrefix="/bots/")["Users"]] == ["ci"]

    key = iam.create_access_key(UserName="ci")["AccessKey"]
    assert key["AccessKeyId"].startswith("AKIA") and len(key["SecretAccessKey"]) == 40
    iam.create_access_key(UserName="ci")
    with pytest.raises(ClientError) as e:
        iam.create_access_key(UserName="ci")
    assert error_code(e) == "LimitExceeded"
    listed = iam.list_access_keys(UserName="ci")["AccessKeyMetadata"]
    assert key["AccessKeyId"] in [k["AccessKeyId"] for k in listed]
    assert all("SecretAccessKey" not in k and k["Status"] == "Active" for k in listed)

    # The key authenticates on every service; with no policy it may do
    # nothing but ask who it is.
    me = client(barged, "sts", key).get_caller_identity()
    assert me["Arn"] == user["Arn"] and me["UserId"] == user["UserId"]
    msg = denied(lambda: client(barged, "ecs", key).list_clusters())
    assert msg == (f"User: {user['Arn']} is not authorized to perform: ecs:ListClusters on "
                   "resource: * because no identity-based policy allows the ecs:ListClusters "
                   "action")
    denied(lambda: client(barged, "iam", key).list_users(), "AccessDenied")
    denied(lambda: client(barged, "s3", key).list_buckets(), "AccessDenied")

    # The secret is stored sealed: not in the database, not in the log.
    for name in os.listdir(barged.data_dir):
        if name.startswith(("barge.db", "barged.log")):
            data = open(os.path.join(barged.data_dir, name), "rb").read()
            assert key["SecretAccessKey"].encode() not in data

    # An Inactive key is refused like an unknown one, until reactivated.
    iam.update_access_key(UserName="ci", AccessKeyId=key["AccessKeyId"], Status="Inactive")
    assert "Inactive" in [k["Status"] for k in iam.list_access_keys(UserName="ci")
                          ["AccessKeyMetadata"]]
    with pytest.raises(ClientError) as e:
        client(barged, "sts", key).get_caller_identity()
    assert error_code(e) == "InvalidClientTokenId"
    iam.update_access_key(UserName="ci", AccessKeyId=key["AccessKeyId"], Status="Active")
    client(barged, "sts", key).get_caller_identity()

    with pytest.raises(ClientError) as e:
        iam.delete_user(UserName="ci")
    assert error_code(e) == "DeleteConflict"
    for k in iam.list_access_keys(UserName="ci")["AccessKeyMetadata"]:
        iam.delete_access_key(UserName="ci", AccessKeyId=k["AccessKeyId"])
    with pytest.raises(ClientError) as e:
        client(barged, "sts", key).get_caller_identity()
    assert error_code(e) == "InvalidClientTokenId"
    iam.delete_user(UserName="ci")
    with pytest.raises(ClientError) as e:
        iam.get_user(UserName="ci")
    assert error_code(e) == "NoSuchEntity"


def test_inline_policies_are_validated_and_listed(barged):
    iam = barged.client("iam")
    iam.create_user(UserName="u")
    doc = policy(allow("ecs:List*"))
    iam.put_user_policy(UserName="u", PolicyName="read", PolicyDocument=doc)
    assert iam.list_user_policies(UserName="u")["PolicyNames"] == ["read"]
    got = iam.get_user_policy(UserName="u", PolicyName="read")
    assert got["PolicyDocument"] == json.loads(doc) and got["UserName"] == "u"
    bad = {
        "{not json": "Syntax errors",
        policy({"Effect": "Maybe", "Action": "ecs:*", "Resource": "*"}): "Effect",
        policy({"Effect": "Allow", "Resource": "*"}): "Action",
        policy({"Effect": "Allow", "Action": "ecs:*"}): "resources",
        policy({"Effect": "Allow", "Action": "ListClusters", "Resource": "*"}): "ListClusters",
        policy({"Effect": "Allow", "Action": "ecs:*", "Resource": "*",
                "Principal": "*"}): "principal",
        json.dumps({"Version": "2012-10-17", "Statement": []}): "Statement",
    }
    for text, word in bad.items():
        with pytest.raises(ClientError) as e:
            iam.put_user_policy(UserName="u", PolicyName="bad", PolicyDocument=text)
        assert error_code(e) == "MalformedPolicyDocument", text
        assert word in error_message(e), (text, error_message(e))
    with pytest.raises(ClientError) as e:
        iam.get_user_policy(UserName="u", PolicyName="bad")
    assert error_code(e) == "NoSuchEntity"
    iam.delete_user_policy(UserName="u", PolicyName="read")
    assert iam.list_user_policies(UserName="u")["PolicyNames"] == []
    with pytest.raises(ClientError) as e:
        iam.put_user_policy(UserName="nobody", PolicyName="p", PolicyDocument=doc)
    assert error_code(e) == "NoSuchEntity"


def test_a_limited_key_may_do_exactly_what_its_policy_says(barged):
    admin_ssm = barged.client("ssm")
    for name in ("/app/db-url", "/app/sub/x", "/other/secret"):
        admin_ssm.put_parameter(Name=name, Value="v", Type="String")
    key = make_user(
        barged, "limited",
        allow("ecs:ListClusters"),
        allow(["ssm:GetParameter", "SSM:getparameters"],
              f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/app/*"),
        allow("ecs:Describe*", f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/team-?"),
        allow("s3:GetObject", "arn:aws:s3:::shared/public/*"))
    ecs, ssm = client(barged, "ecs", key), client(barged, "ssm", key)

    ecs.list_clusters()
    denied(lambda: ecs.create_cluster(clusterName="mine"))
    assert ssm.get_parameter(Name="/app/db-url")["Parameter"]["Value"] == "v"
    assert ssm.get_parameter(Name="/app/sub/x")["Parameter"]["Value"] == "v"
    msg = denied(lambda: ssm.get_parameter(Name="/other/secret"))
    assert f"parameter/other/secret" in msg and "ssm:GetParameter" in msg
    assert len(ssm.get_parameters(Names=["/app/db-url"])["Parameters"]) == 1
    denied(lambda: ssm.get_parameters(Names=["/app/db-url", "/other/secret"]))
    denied(lambda: ssm.put_parameter(Name="/app/new", Value="v", Type="String"))
    denied(lambda: ssm.describe_parameters())

    # Resource wildcards against the cluster the request names.
    barged.client("ecs").create_cluster(clusterName="team-a")
    barged.client("ecs").create_cluster(clusterName="team-bb")
    ecs.describe_services(cluster="team-a", services=["none"])
    denied(lambda: ecs.describe_services(cluster="team-bb", services=["none"]))
    # A request that names no resource barge can tell only matches "*".
    denied(lambda: ecs.describe_clusters(clusters=["team-a"]))

    s3 = barged.client("s3")
    s3.create_bucket(Bucket="shared")
    s3.put_object(Bucket="shared", Key="public/a.txt", Body=b"a")
    s3.put_object(Bucket="shared", Key="private/b.txt", Body=b"b")
    ls3 = client(barged, "s3", key)
    assert ls3.get_object(Bucket="shared", Key="public/a.txt")["Body"].read() == b"a"
    denied(lambda: ls3.get_object(Bucket="shared", Key="private/b.txt"), "AccessDenied")
    denied(lambda: ls3.put_object(Bucket="shared", Key="public/c", Body=b"c"), "AccessDenied")

    # The admin key is unaffected by all of this.
    barged.client("ecs").create_cluster(clusterName="admin-made")
    admin_ssm.get_parameter(Name="/other/secret")


def test_explicit_deny_wins(barged):
    barged.client("ssm").put_parameter(Name="/app/a", Value="v", Type="String")
    barged.client("ssm").put_parameter(Name="/app/admin-only", Value="v", Type="String")
    key = make_user(
        barged, "denied",
        allow("*"),
        {"Effect": "Deny", "Action": "ssm:Get*",
         "Resource": f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/app/admin-*"},
        {"Effect": "Deny", "NotAction": ["ecs:List*", "ssm:*", "sts:*"], "Resource": "*"})
    ssm = client(barged, "ssm", key)
    ssm.get_parameter(Name="/app/a")
    msg = denied(lambda: ssm.get_parameter(Name="/app/admin-only"))
    assert "with an explicit deny in an identity-based policy" in msg
    client(barged, "ecs", key).list_clusters()
    denied(lambda: client(barged, "ecs", key).create_cluster(clusterName="x"))
    denied(lambda: client(barged, "secretsmanager", key).list_secrets())


def test_role_sessions_get_the_role_policies(barged):
    iam = barged.client("iam")
    role = iam.create_role(RoleName="reader", AssumeRolePolicyDocument=TRUST)["Role"]
    creds = barged.client("sts").assume_role(RoleArn=role["Arn"],
                                             RoleSessionName="ro")["Credentials"]
    ecs = client(barged, "ecs", creds)
    # Deny by default, then what the role's policy allows, as soon as it is put.
    denied(lambda: ecs.list_clusters())
    iam.put_role_policy(RoleName="reader", PolicyName="ecs-read",
                        PolicyDocument=policy(allow("ecs:List*")))
    assert iam.list_role_policies(RoleName="reader")["PolicyNames"] == ["ecs-read"]
    assert iam.get_role_policy(RoleName="reader",
                               PolicyName="ecs-read")["PolicyDocument"]["Statement"]
    ecs.list_clusters()
    msg = denied(lambda: ecs.create_cluster(clusterName="by-role"))
    assert msg.startswith(f"User: arn:aws:sts::{ACCOUNT}:assumed-role/reader/ro is not "
                          "authorized to perform: ecs:CreateCluster on resource: "
                          f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/by-role")
    iam.delete_role_policy(RoleName="reader", PolicyName="ecs-read")
    denied(lambda: ecs.list_clusters())

    # A limited user's own session (GetSessionToken) keeps the user's rights.
    key = make_user(barged, "u2", allow("ecs:ListClusters"))
    sess = client(barged, "sts", key).get_session_token()["Credentials"]
    client(barged, "ecs", sess).list_clusters()
    denied(lambda: client(barged, "ecs", sess).create_cluster(clusterName="y"))


def signed_get(barged, path, creds):
    import urllib.error
    import urllib.request
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    req = AWSRequest(method="GET", url=barged.endpoint + path)
    SigV4Auth(Credentials(creds["AccessKeyId"], creds["SecretAccessKey"]), "ecs",
              REGION).add_auth(req)
    p = req.prepare()
    try:
        with urllib.request.urlopen(urllib.request.Request(p.url, headers=dict(p.headers)),
                                    timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_barged_own_endpoints_need_their_actions(barged):
    admin = {"AccessKeyId": barged.access_key, "SecretAccessKey": barged.secret_key}
    assert signed_get(barged, "/barge/v1/usage", admin)[0] == 200
    key = make_user(barged, "ecs-only", allow("ecs:*"))
    status, body = signed_get(barged, "/barge/v1/usage", key)
    assert status in (400, 403) and b"barge:GetUsage" in body, body
    status, body = signed_get(barged, "/barge/v1/join-tokens", key)
    assert status in (400, 403) and b"barge:ManageJoinTokens" in body, body
    barged.client("iam").put_user_policy(UserName="ecs-only", PolicyName="usage",
                                         PolicyDocument=policy(allow("barge:GetUsage")))
    assert signed_get(barged, "/barge/v1/usage", key)[0] == 200


def test_managed_policies(barged):
    iam = barged.client("iam")
    doc = policy(allow("ecs:ListClusters"))
    pol = iam.create_policy(PolicyName="ListEcs", Path="/team/", PolicyDocument=doc,
                            Description="list clusters")["Policy"]
    assert pol["Arn"] == f"arn:aws:iam::{ACCOUNT}:policy/team/ListEcs"
    assert pol["DefaultVersionId"] == "v1" and pol["AttachmentCount"] == 0
    with pytest.raises(ClientError) as e:
        iam.create_policy(PolicyName="listecs", PolicyDocument=doc)
    assert error_code(e) == "EntityAlreadyExists"
    with pytest.raises(ClientError) as e:
        iam.create_policy(PolicyName="bad", PolicyDocument=policy({"Effect": "Allow"}))
    assert error_code(e) == "MalformedPolicyDocument"
    version = iam.get_policy_version(PolicyArn=pol["Arn"], VersionId="v1")["PolicyVersion"]
    assert version["Document"] == json.loads(doc) and version["IsDefaultVersion"]

    key = make_user(barged, "managed")
    role = iam.create_role(RoleName="managed-role", AssumeRolePolicyDocument=TRUST)["Role"]
    creds = barged.client("sts").assume_role(RoleArn=role["Arn"],
                                             RoleSessionName="mr")["Credentials"]
    denied(lambda: client(barged, "ecs", key).list_clusters())
    denied(lambda: client(barged, "ecs", creds).list_clusters())
    iam.attach_user_policy(UserName="managed", PolicyArn=pol["Arn"])
    iam.attach_role_policy(RoleName="managed-role", PolicyArn=pol["Arn"])
    client(barged, "ecs", key).list_clusters()
    client(barged, "ecs", creds).list_clusters()
    denied(lambda: client(barged, "ecs", key).create_cluster(clusterName="no"))
    assert iam.list_attached_user_policies(UserName="managed")["AttachedPolicies"] == \
        [{"PolicyName": "ListEcs", "PolicyArn": pol["Arn"]}]
    assert iam.list_attached_role_policies(RoleName="managed-role")["AttachedPolicies"]
    assert iam.get_policy(PolicyArn=pol["Arn"])["Policy"]["AttachmentCount"] == 2
    assert [p["PolicyName"] for p in iam.list_policies(OnlyAttached=True)["Policies"]] == \
        ["ListEcs"]
    with pytest.raises(ClientError) as e:
        iam.delete_policy(PolicyArn=pol["Arn"])
    assert error_code(e) == "DeleteConflict"
    with pytest.raises(ClientError) as e:
        iam.attach_user_policy(UserName="managed",
                               PolicyArn=f"arn:aws:iam::{ACCOUNT}:policy/Nope")
    assert error_code(e) == "NoSuchEntity"

    iam.detach_user_policy(UserName="managed", PolicyArn=pol["Arn"])
    denied(lambda: client(barged, "ecs", key).list_clusters())
    iam.detach_role_policy(RoleName="managed-role", PolicyArn=pol["Arn"])
    with pytest.raises(ClientError) as e:
        iam.detach_role_policy(RoleName="managed-role", PolicyArn=pol["Arn"])
    assert error_code(e) == "NoSuchEntity"
    iam.delete_policy(PolicyArn=pol["Arn"])
    assert iam.list_policies(Scope="Local")["Policies"] == []

    # The AWS managed policies barge knows can be attached too.
    admin = "arn:aws:iam::aws:policy/AdministratorAccess"
    assert iam.get_policy(PolicyArn=admin)["Policy"]["PolicyName"] == "AdministratorAccess"
    iam.attach_user_policy(UserName="managed", PolicyArn=admin)
    client(barged, "ecs", key).create_cluster(clusterName="now-allowed")
    execution = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
    assert iam.get_policy(PolicyArn=execution)["Policy"]["Path"] == "/service-role/"
    iam.attach_role_policy(RoleName="managed-role", PolicyArn=execution)
    client(barged, "ecr", creds).get_authorization_token()
    denied(lambda: client(barged, "ecs", creds).list_clusters())
    with pytest.raises(ClientError) as e:
        iam.delete_policy(PolicyArn=admin)
    assert error_code(e) == "InvalidInput"


def test_source_ip_conditions(barged):
    # Every test client connects from 127.0.0.1.
    key = make_user(
        barged, "from-here",
        {**allow("ecs:ListClusters"), "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}},
        {**allow("ecs:CreateCluster"), "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}},
        {**allow("ecs:DescribeClusters"),
         "Condition": {"StringEquals": {"aws:username": "from-here"}}},
        {**allow("ecs:ListServices"), "Condition": {"StringEquals": {"ecs:cluster": "x"}}})
    ecs = client(barged, "ecs", key)
    ecs.list_clusters()
    ecs.describe_clusters(clusters=["default"])
    denied(lambda: ecs.create_cluster(clusterName="elsewhere"))
    # A condition key barge does not evaluate never allows.
    denied(lambda: ecs.list_services(cluster="default"))
    with pytest.raises(ClientError) as e:
        barged.client("iam").put_user_policy(
            UserName="from-here", PolicyName="bad",
            PolicyDocument=policy({**allow("*"), "Condition": {"IpAddress": "10.0.0.0/8"}}))
    assert error_code(e) == "MalformedPolicyDocument"


def test_a_recreated_user_is_another_principal(barged):
    iam = barged.client("iam")
    key = make_user(barged, "again", allow("ecs:ListClusters"))
    sess = client(barged, "sts", key).get_session_token()["Credentials"]
    client(barged, "ecs", sess).list_clusters()
    iam.delete_access_key(UserName="again", AccessKeyId=key["AccessKeyId"])
    iam.delete_user_policy(UserName="again", PolicyName="p")
    iam.delete_user(UserName="again")
    make_user(barged, "again", allow("ecs:ListClusters"))
    # The old user's session does not inherit the new user's rights.
    denied(lambda: client(barged, "ecs", sess).list_clusters())
