"""Task state reports that change nothing write nothing: an agent repeats its
report (retries, a restarted agent adopting its containers), and each write
would bump the task's version and wake every poller. A host is simulated over
the agent channel, as barge-agent registers, so no container runs."""
import json
import urllib.request

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def post(url, body, headers):
    r = urllib.request.Request(url, data=body, method="POST", headers=headers)
    with urllib.request.urlopen(r, timeout=30) as resp:
        return json.loads(resp.read())


def register(barged, cluster):
    """(containerInstanceArn, agent channel token) of a simulated host."""
    body = json.dumps({"cluster": cluster, "cpu": 1024, "memory": 512, "hostname": "sim",
                       "agentVersion": "test"}).encode()
    req = AWSRequest(method="POST", url=barged.endpoint + "/agent/register", data=body,
                     headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(barged.access_key, barged.secret_key), "ecs",
              "us-east-1").add_auth(req)
    p = req.prepare()
    out = post(p.url, p.body, dict(p.headers))
    return out["containerInstanceArn"], out["token"]


def report(barged, token, body):
    return post(barged.endpoint + "/agent/state", json.dumps(body).encode(),
                {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})


def version(ecs, arn):
    return ecs.describe_tasks(cluster="sim", tasks=[arn])["tasks"][0]["version"]


def test_repeated_reports_keep_the_version(barged):
    ecs = barged.client("ecs")
    ecs.create_cluster(clusterName="sim")
    instance, token = register(barged, "sim")
    td = ecs.register_task_definition(
        family="sim", containerDefinitions=[{"name": "main", "image": "busybox", "memory": 16}]
    )["taskDefinition"]["taskDefinitionArn"]
    arn = ecs.start_task(cluster="sim", taskDefinition=td,
                         containerInstances=[instance])["tasks"][0]["taskArn"]
    running = {"taskArn": arn, "status": "RUNNING", "pullStartedAt": 1.0, "pullStoppedAt": 2.0,
               "containers": [{"name": "main", "lastStatus": "RUNNING", "runtimeId": "abc"}]}
    first = report(barged, token, running)["version"]
    assert version(ecs, arn) == first
    for _ in range(5):
        assert report(barged, token, running)["version"] == first
    assert version(ecs, arn) == first
    task = ecs.describe_tasks(cluster="sim", tasks=[arn])["tasks"][0]
    assert task["lastStatus"] == "RUNNING" and task["containers"][0]["runtimeId"] == "abc"

    # A report with news is written, and the version moves on.
    running["containers"][0]["healthStatus"] = "HEALTHY"
    second = report(barged, token, running)["version"]
    assert second > first and version(ecs, arn) == second

    # So is a stop, once; reports after it change nothing.
    stopped = {"taskArn": arn, "status": "STOPPED",
               "containers": [{"name": "main", "lastStatus": "STOPPED", "exitCode": 0}]}
    third = report(barged, token, stopped)["version"]
    assert third > second
    for _ in range(3):
        assert report(barged, token, stopped)["version"] == third
    task = ecs.describe_tasks(cluster="sim", tasks=[arn])["tasks"][0]
    assert task["version"] == third and task["lastStatus"] == "STOPPED"
    assert task["containers"][0]["exitCode"] == 0
