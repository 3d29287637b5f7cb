"""Security findings of issue 20: what a host's instance token can reach in
barged's registry, unsigned x-amz-* headers, the size of task definitions and
who may read /metrics. Each test talks to a real barged over HTTP."""
import base64
import hashlib
import http.client
import json
import re
import urllib.error
import urllib.request

import boto3
import botocore.config
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from conftest import Barged

REGION = "us-east-1"


def request(method, url, body=None, headers=None):
    """(status, headers, parsed JSON body or raw bytes) of one request."""
    r = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(r, timeout=30) as resp:
            status, hdrs, data = resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        status, hdrs, data = e.code, e.headers, e.read()
    try:
        return status, hdrs, json.loads(data)
    except ValueError:
        return status, hdrs, data


def signed(barged, method, path, body=b"", headers=None, service="ecs"):
    """A SigV4-signed request as botocore signs it: (url, body, headers)."""
    req = AWSRequest(method=method, url=barged.endpoint + path, data=body,
                     headers=dict(headers or {}))
    SigV4Auth(Credentials(barged.access_key, barged.secret_key), service, REGION).add_auth(req)
    p = req.prepare()
    return p.url, p.body, dict(p.headers)


def register_instance(barged, cluster):
    """A container instance registered over the agent channel as barge-agent
    does (it takes tasks until --agent-timeout passes); returns (arn, token)."""
    body = json.dumps({"cluster": cluster, "cpu": 1024, "memory": 512, "hostname": "sim",
                       "agentVersion": "test"}).encode()
    url, data, hdrs = signed(barged, "POST", "/agent/register", body,
                             {"Content-Type": "application/json"})
    status, _, out = request("POST", url, data, hdrs)
    assert status == 200, out
    return out["containerInstanceArn"], out["token"]


def registry_password(barged, instance_token):
    status, _, out = request("POST", barged.endpoint + "/agent/registry-auth", b"{}",
                          {"Authorization": "Bearer " + instance_token,
                           "Content-Type": "application/json"})
    assert status == 200, out
    return out["password"]


def v2(barged, method, path, password, body=None, headers=None, basic=False):
    auth = ("Basic " + base64.b64encode(f"AWS:{password}".encode()).decode()) if basic \
        else "Bearer " + password
    return request(method, barged.endpoint + "/v2/" + path, body,
                dict(headers or {}, Authorization=auth))


def denied(result):
    status, _, body = result
    assert status == 403, (status, body)
    assert body["errors"][0]["code"] == "DENIED", body


def test_instance_registry_token_pulls_only_its_tasks_repositories(barged):
    """An agent's registry token reads the repositories of the tasks assigned
    to its instance and nothing else: no push, no delete, no catalog, no other
    host's images; it dies with the instance's registration."""
    ecr, ecs = barged.client("ecr"), barged.client("ecs")
    uri = {n: ecr.create_repository(repositoryName=n)["repository"]["repositoryUri"]
           for n in ("apps/mine", "apps/theirs")}
    ecs.create_cluster(clusterName="one")
    ecs.create_cluster(clusterName="two")
    arn_a, token_a = register_instance(barged, "one")
    _, token_b = register_instance(barged, "two")
    for cluster, repo in (("one", "apps/mine"), ("two", "apps/theirs")):
        td = ecs.register_task_definition(family=cluster, containerDefinitions=[
            {"name": "main", "image": uri[repo] + ":v1", "memory": 16}])["taskDefinition"]
        r = ecs.run_task(cluster=cluster, taskDefinition=td["taskDefinitionArn"])
        assert len(r["tasks"]) == 1, r["failures"]
    pw = registry_password(barged, token_a)

    # its own task's repository: readable, by bearer token and by basic auth
    status, _, body = v2(barged, "GET", "apps/mine/tags/list", pw)
    assert status == 200 and body["name"] == "apps/mine", body
    status, _, body = v2(barged, "GET", "apps/mine/manifests/v1", pw, basic=True)
    assert status == 404 and body["errors"][0]["code"] == "MANIFEST_UNKNOWN", body
    # the bearer token endpoint hands back the same pull-only token
    status, _, body = v2(barged, "GET", "token?scope=repository:apps/mine:push", pw)
    assert status == 200 and body["token"] == pw

    # another host's repository, the catalog, and every write are denied
    denied(v2(barged, "GET", "apps/theirs/tags/list", pw))
    denied(v2(barged, "GET", "apps/theirs/manifests/v1", pw, basic=True))
    denied(v2(barged, "GET", "_catalog", pw))
    manifest = json.dumps({"schemaVersion": 2}).encode()
    ct = {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
    denied(v2(barged, "PUT", "apps/mine/manifests/v1", pw, manifest, ct))
    denied(v2(barged, "PUT", "apps/mine/manifests/v1", pw, manifest, ct, basic=True))
    denied(v2(barged, "DELETE", "apps/mine/manifests/v1", pw))
    denied(v2(barged, "POST", "apps/mine/blobs/uploads/", pw, b""))
    blob = b"overwrite"
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    denied(v2(barged, "POST", f"apps/mine/blobs/uploads/?digest={digest}", pw, blob,
              {"Content-Type": "application/octet-stream"}))

    # the other host reads its own repository, not this one's
    pw_b = registry_password(barged, token_b)
    assert v2(barged, "GET", "apps/theirs/tags/list", pw_b)[0] == 200
    denied(v2(barged, "GET", "apps/mine/tags/list", pw_b))

    # a deregistered instance's token no longer authenticates
    ecs.deregister_container_instance(cluster="one", containerInstance=arn_a, force=True)
    status, _, body = v2(barged, "GET", "apps/mine/tags/list", pw)
    assert status == 401 and body["errors"][0]["code"] == "UNAUTHORIZED", body


def test_unsigned_amz_headers_are_refused(barged):
    """A correctly signed request with an x-amz-* header added after signing
    is refused, on the JSON APIs and on S3; botocore's own requests, which
    sign every x-amz-* header they send, still pass."""
    ecs = barged.client("ecs")
    s3 = boto3.client("s3", endpoint_url=barged.endpoint, region_name=REGION,
                      aws_access_key_id=barged.access_key,
                      aws_secret_access_key=barged.secret_key,
                      config=botocore.config.Config(s3={"addressing_style": "path"},
                                                    signature_version="s3v4"))
    ecs.list_clusters()
    s3.create_bucket(Bucket="signed")
    s3.put_object(Bucket="signed", Key="k", Body=b"v", ACL="private")

    body = json.dumps({}).encode()
    hdrs = {"Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "AmazonEC2ContainerServiceV20141113.ListClusters"}
    url, data, signed_hdrs = signed(barged, "POST", "/", body, hdrs)
    status, _, out = request("POST", url, data, signed_hdrs)
    assert status == 200, out
    status, _, out = request("POST", url, data, dict(signed_hdrs, **{"X-Amz-Meta-Extra": "1"}))
    assert status == 400, out
    assert out["__type"] == "AccessDeniedException", out
    assert "not signed: 'x-amz-meta-extra'" in out["message"]

    # S3: an ACL slipped into a signed PutObject
    url, data, signed_hdrs = signed(barged, "PUT", "/signed/k2", b"v", service="s3",
                                    headers={"X-Amz-Content-SHA256": hashlib.sha256(b"v")
                                             .hexdigest()})
    status, _, out = request("PUT", url, data, dict(signed_hdrs, **{"x-amz-acl": "public-read"}))
    assert status == 403, out
    assert b"<Code>AccessDenied</Code>" in out and b"x-amz-acl" in out, out
    assert "Contents" not in s3.list_objects_v2(Bucket="signed", Prefix="k2")
    status, _, out = request("PUT", url, data, signed_hdrs)
    assert status == 200, out

    # a presigned URL takes no x-amz-* header its signer did not see
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "signed", "Key": "k"},
                                    ExpiresIn=300)
    assert request("GET", url)[0] == 200
    status, _, out = request("GET", url, headers={"X-Amz-Security-Token": "x"})
    assert status == 403 and b"AccessDenied" in out, out


def test_task_definition_size_is_capped(barged):
    """ECS takes task definitions of up to 64 KiB of JSON; a larger one is a
    ClientException naming both sizes, and nothing is stored."""
    ecs = barged.client("ecs")

    def register(family, value_bytes):
        env = [{"name": f"V{i}", "value": "x" * 1000} for i in range(value_bytes // 1000)]
        return ecs.register_task_definition(family=family, containerDefinitions=[
            {"name": "main", "image": "busybox", "memory": 16, "environment": env}])

    assert register("fits", 60000)["taskDefinition"]["revision"] == 1
    with pytest.raises(ClientError) as e:
        register("huge", 70000)
    assert e.value.response["Error"]["Code"] == "ClientException"
    msg = e.value.response["Error"]["Message"]
    assert "Max allowed length is '65536' bytes" in msg, msg
    actual = int(msg.split("'")[1])
    assert 70000 < actual < 75000, msg
    assert ecs.list_task_definitions(familyPrefix="huge")["taskDefinitionArns"] == []
    assert ecs.list_task_definition_families(familyPrefix="huge")["families"] == []


def test_oversized_ecs_request_is_refused_before_parsing(barged):
    """A body far beyond anything the ECS API takes gets 413 and a ClientException
    saying how large it was and what the limit is, whether its Content-Length
    announces it or it comes chunked."""
    hdrs = {"Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "AmazonEC2ContainerServiceV20141113.RegisterTaskDefinition"}
    body = b'{"family": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    status, _, out = request("POST", barged.endpoint + "/", body, hdrs)
    assert status == 413, out
    assert out["__type"] == "ClientException", out
    assert f"'{len(body)}' bytes" in out["message"] and "'1048576' bytes" in out["message"]

    conn = http.client.HTTPConnection("127.0.0.1", barged.port, timeout=30)
    conn.request("POST", "/", body=iter([body[:1 << 20], body[1 << 20:]]),
                 headers=hdrs, encode_chunked=True)
    resp = conn.getresponse()
    out = json.loads(resp.read())
    conn.close()
    assert resp.status == 413 and out["__type"] == "ClientException", out
    assert "'1048576' bytes" in out["message"]
    assert barged.client("ecs").list_task_definition_families()["families"] == []


def test_metrics_not_served_on_the_api_port(barged, tmp_path):
    """/metrics is not on the API listener, where anyone reaching the port
    could read it; --metrics-listen serves it on an address of its own."""
    for method in ("GET", "HEAD"):
        status, _, _ = request(method, barged.endpoint + "/metrics")
        assert status in (403, 404), (method, status)
    status, _, body = request("GET", barged.endpoint + "/metrics")
    assert b"barge_api_requests_total" not in body and b"barge_tasks" not in body
    assert b"<Code>AccessDenied</Code>" in body, body

    b = Barged(str(tmp_path / "with-metrics"),
               extra_args=["--metrics-listen", "127.0.0.1:0"]).start()
    try:
        port = None
        for line in open(b.log_path):
            m = re.search(r"serving /metrics on port (\d+)", line)
            if m:
                port = int(m.group(1))
        assert port and port != b.port
        status, hdrs, body = request("GET", f"http://127.0.0.1:{port}/metrics")
        assert status == 200 and b"barge_api_requests_total" in body
        assert request("GET", f"http://127.0.0.1:{port}/other")[0] == 404
        assert request("GET", b.endpoint + "/metrics")[0] == 403
    finally:
        b.stop()
