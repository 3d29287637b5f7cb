"""Security findings of issue 20: what a host's instance token can reach in
barged's registry, unsigned x-amz-* headers, the size of task definitions and
who may read /metrics. Each test talks to a real barged over HTTP."""
import base64
import hashlib
import json
import urllib.error
import urllib.request

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

REGION = "us-east-1"


def http(method, url, body=None, headers=None):
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
    status, _, out = http("POST", url, data, hdrs)
    assert status == 200, out
    return out["containerInstanceArn"], out["token"]


def registry_password(barged, instance_token):
    status, _, out = http("POST", barged.endpoint + "/agent/registry-auth", b"{}",
                          {"Authorization": "Bearer " + instance_token,
                           "Content-Type": "application/json"})
    assert status == 200, out
    return out["password"]


def v2(barged, method, path, password, body=None, headers=None, basic=False):
    auth = ("Basic " + base64.b64encode(f"AWS:{password}".encode()).decode()) if basic \
        else "Bearer " + password
    return http(method, barged.endpoint + "/v2/" + path, body,
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
