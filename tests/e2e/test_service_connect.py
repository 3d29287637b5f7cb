"""DNS SRV records of Cloud Map services answered by the agent's DNS server
inside containers (ECS services registering their tasks' ports), and ECS
Service Connect."""
import os

import pytest

import nethelpers
from botocore.exceptions import ClientError

from conftest import error_code, error_message, wait_task
from test_service_discovery import private_ns, running_tasks
from test_service_lb import wait_for

needs_dnsmasq = pytest.mark.skipif(
    not os.path.exists("/usr/sbin/dnsmasq"),
    reason="dnsmasq is not installed (scripts/setup installs dnsmasq-base)")


@pytest.fixture(scope="module")
def scope(tmp_path_factory):
    return nethelpers.free_scope("bargesc", 223, tmp_path_factory.getbasetemp())


@pytest.fixture
def sd(barged):
    return barged.client("servicediscovery")


def task_output(ecs, agent, family, container, agents=()):
    """Runs a one-off task of family and returns its container's output
    (from the log of whichever of agent and agents ran it)."""
    arn = ecs.run_task(cluster="default", taskDefinition=family)["tasks"][0]["taskArn"]
    task = wait_task(ecs, "default", arn)
    host = [a for a in (agent, *agents) if a.instance_arn == task["containerInstanceArn"]][0]
    log = open(os.path.join(host.data_dir, "logs", arn.split("/")[-1],
                            container + ".log")).read()
    assert task["containers"][0]["exitCode"] is not None, log
    # conmon's k8s-file lines: "<time> stdout F <text>"
    return "\n".join(line.split(" ", 3)[3] for line in log.splitlines()
                     if line.count(" ") >= 3)


def srv_answers(text):
    """{(port, target)} of busybox nslookup's "service = prio weight port
    target" lines."""
    out = set()
    for line in text.splitlines():
        if "service =" in line:
            prio, weight, port, target = line.split("service =")[1].split()
            assert (prio, weight) == ("1", "1"), line
            out.add((int(port), target.rstrip(".")))
    return out


def host_port(task):
    return task["containers"][0]["networkBindings"][0]["hostPort"]


@needs_dnsmasq
def test_srv_records_follow_running_tasks(barged, agent_factory, busybox, scope, sd):
    agent = agent_factory(extra_args=scope.agent_args)
    ecs = barged.client("ecs")
    ns = private_ns(sd, "corp.local")
    csvc = sd.create_service(Name="web", NamespaceId=ns,
                             DnsConfig={"DnsRecords": [{"Type": "SRV", "TTL": 0}]},
                             HealthCheckCustomConfig={"FailureThreshold": 1})["Service"]
    ecs.register_task_definition(
        family="web", containerDefinitions=[{
            "name": "web", "image": busybox, "memory": 16,
            "portMappings": [{"containerPort": 8080, "hostPort": 0}],
            "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.2; done"]}])
    ecs.register_task_definition(
        family="dig", containerDefinitions=[{
            "name": "dig", "image": busybox, "memory": 16,
            "command": ["sh", "-c", "nslookup -type=SRV web.corp.local; "
                        "for t in $(nslookup -type=SRV web.corp.local | "
                        "sed -n 's/.*service = [0-9]* [0-9]* [0-9]* //p'); do "
                        "nslookup $t | sed -n 's/^Address: /A /p'; done; true"]}])
    ecs.create_service(cluster="default", serviceName="web", taskDefinition="web",
                       desiredCount=2,
                       serviceRegistries=[{"registryArn": csvc["Arn"], "containerName": "web",
                                           "containerPort": 8080}])
    tasks = wait_for(lambda: (lambda t: t if len(t) == 2 else None)(running_tasks(ecs)),
                     what="two running tasks")
    want = {(host_port(t), t["taskArn"].split("/")[-1] + ".web.corp.local") for t in tasks}
    insts = wait_for(lambda: (lambda i: i if len(i) == 2 else None)(
        sd.list_instances(ServiceId=csvc["Id"])["Instances"]), what="two instances")
    assert {int(i["Attributes"]["AWS_INSTANCE_PORT"]) for i in insts} == \
        {p for p, _ in want}

    # the SRV answer gives each task's host port and a name that resolves to
    # its host's address
    out = wait_for(lambda: (lambda o: o if srv_answers(o) == want else None)(
        task_output(ecs, agent, "dig", "dig")), what="SRV answer")
    addrs = {line.split()[1] for line in out.splitlines() if line.startswith("A ")}
    assert addrs == {i["Attributes"]["AWS_INSTANCE_IPV4"] for i in insts}, out

    # scaling in takes the stopped task's record away
    ecs.update_service(cluster="default", service="web", desiredCount=1)
    left = wait_for(lambda: (lambda t: t if len(t) == 1 else None)(running_tasks(ecs)),
                    what="one task left")
    keep = {(host_port(left[0]), left[0]["taskArn"].split("/")[-1] + ".web.corp.local")}
    out = wait_for(lambda: (lambda o: o if srv_answers(o) == keep else None)(
        task_output(ecs, agent, "dig", "dig")), what="SRV answer after scale-in")

    # a restarted agent keeps the dnsmasq that reads its SRV records
    pid = int(open(os.path.join(agent.data_dir, "dns", "dnsmasq.pid")).read())
    agent.kill()
    agent.start()
    assert srv_answers(task_output(ecs, agent, "dig", "dig")) == keep
    assert f"keeping dnsmasq (pid {pid})" in open(agent.log_path).read()

    ecs.delete_service(cluster="default", service="web", force=True)
    wait_for(lambda: not sd.list_instances(ServiceId=csvc["Id"])["Instances"],
             what="every task deregistered")


# ---- Service Connect ----

HTTPD = ("mkdir -p /www && echo {text} > /www/index.html && "
         "trap 'exit 0' TERM; httpd -f -p {port} -h /www & wait")


def server_td(ecs, busybox, family, text, port=8080, mode="bridge"):
    ecs.register_task_definition(
        family=family, networkMode=mode, containerDefinitions=[{
            "name": family, "image": busybox, "memory": 16,
            "portMappings": [{"name": "http", "containerPort": port, "hostPort": 0}
                             if mode == "bridge" else
                             {"name": "http", "containerPort": port}],
            "command": ["sh", "-c", HTTPD.format(text=text, port=port)]}])


def fetch_td(ecs, busybox, urls):
    ecs.register_task_definition(
        family="fetch", containerDefinitions=[{
            "name": "fetch", "image": busybox, "memory": 16,
            "command": ["sh", "-c", "; ".join(fetch(u) for u in urls) + "; true"]}])


def fetch(url):
    """A shell command printing the body (one line) url answers. busybox's
    own resolver (nslookup) finds the alias's address, and nc asks: the
    static busybox's wget crashes in an image without /etc."""
    host, port = url.split("/")[2].split(":")
    return (f"a=$(nslookup {host} | sed -n 's/^Address: //p' | tail -n 1); "
            f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 $a {port} | tail -n 1 "
            f"| grep . || echo failed {url} at $a")


def tasks_of(ecs, service):
    arns = ecs.list_tasks(cluster="default", serviceName=service,
                          desiredStatus="RUNNING")["taskArns"]
    tasks = ecs.describe_tasks(cluster="default", tasks=arns)["tasks"] if arns else []
    return [t for t in tasks if t["lastStatus"] == "RUNNING"]


@needs_dnsmasq
@pytest.mark.skipif(not os.path.exists("/usr/sbin/haproxy"),
                    reason="haproxy is not installed")
def test_service_connect_aliases(barged, agent_factory, busybox, scope, sd):
    # Two hosts sharing this network namespace and its bridge, as in
    # test_networking: each agent runs its proxy (HAProxy's listeners share
    # the alias addresses), the first one's dnsmasq answers for both.
    agent = agent_factory("host1", extra_args=scope.agent_args)
    other = agent_factory("host2", extra_args=scope.agent_args)
    ecs = barged.client("ecs")
    ns_id = sd.get_operation(OperationId=sd.create_http_namespace(Name="corp")["OperationId"])[
        "Operation"]["Targets"]["NAMESPACE"]
    server_td(ecs, busybox, "web", "hello-from-web")
    server_td(ecs, busybox, "api", "hello-from-api", port=9090, mode="awsvpc")
    fetch_td(ecs, busybox, ["http://web.internal:80/", "http://api.internal:80/"])
    web = ecs.create_service(
        cluster="default", serviceName="web", taskDefinition="web", desiredCount=2,
        # one on each host, so a deployment replaces them one at a time
        placementConstraints=[{"type": "distinctInstance"}],
        deploymentConfiguration={"minimumHealthyPercent": 50, "maximumPercent": 100},
        serviceConnectConfiguration={"enabled": True, "namespace": "corp", "services": [{
            "portName": "http", "clientAliases": [{"port": 80, "dnsName": "web.internal"}]}]},
    )["service"]
    # the deployment shows the Cloud Map service the tasks register in
    res = web["deployments"][0]["serviceConnectResources"]
    assert [r["discoveryName"] for r in res] == ["http"]
    cm = sd.get_service(Id=res[0]["discoveryArn"].split("/")[-1])["Service"]
    assert cm["Name"] == "http" and cm["NamespaceId"] == ns_id
    # a second server on the same alias port, another name, in awsvpc mode
    ecs.create_service(
        cluster="default", serviceName="api", taskDefinition="api", desiredCount=1,
        networkConfiguration={"awsvpcConfiguration": {"subnets": ["subnet-1"]}},
        serviceConnectConfiguration={"enabled": True, "namespace": "corp", "services": [{
            "portName": "http", "discoveryName": "api",
            "clientAliases": [{"port": 80, "dnsName": "api.internal"}]}]})
    # a client only
    ecs.create_service(cluster="default", serviceName="client", taskDefinition="fetch",
                       desiredCount=0,
                       serviceConnectConfiguration={"enabled": True, "namespace": "corp"})

    web_tasks = wait_for(lambda: (lambda t: t if len(t) == 2 else None)(tasks_of(ecs, "web")),
                         what="web's tasks")
    assert {t["containerInstanceArn"] for t in web_tasks} == \
        {agent.instance_arn, other.instance_arn}
    wait_for(lambda: len(tasks_of(ecs, "api")) == 1, what="api's task")
    insts = wait_for(lambda: (lambda i: i if len(i) == 2 else None)(
        sd.list_instances(ServiceId=cm["Id"])["Instances"]), what="web's endpoints registered")
    assert all(i["Attributes"]["ECS_SERVICE_NAME"] == "web" for i in insts)

    want = "hello-from-web\nhello-from-api"
    out = wait_for(lambda: (lambda o: o if o.strip() == want else None)(
        task_output(ecs, agent, "fetch", "fetch", [other])), what="answers through the aliases")

    # a new deployment of web replaces both tasks; the alias follows them
    old = {t["taskArn"] for t in tasks_of(ecs, "web")}
    ecs.update_service(cluster="default", service="web", forceNewDeployment=True)
    wait_for(lambda: (lambda t: len(t) == 2 and not old & {x["taskArn"] for x in t})(
        tasks_of(ecs, "web")), timeout=180, what="web's new tasks")
    wait_for(lambda: {i["Id"] for i in sd.list_instances(ServiceId=cm["Id"])["Instances"]}
             .isdisjoint({a.split("/")[-1] for a in old}), what="old tasks deregistered")
    out = wait_for(lambda: (lambda o: o if o.strip() == want else None)(
        task_output(ecs, agent, "fetch", "fetch", [other])), what="answers after the deployment")
    assert "failed" not in out

    # the proxy outlives its agent, like the containers: a restarted agent
    # keeps it
    agent.kill()
    agent.start()
    assert "service connect: keeping HAProxy" in open(agent.log_path).read()
    out = wait_for(lambda: (lambda o: o if o.strip() == want else None)(
        task_output(ecs, agent, "fetch", "fetch", [other])),
        what="answers after the agent's restart")

    for name in ("web", "api", "client"):
        ecs.delete_service(cluster="default", service=name, force=True)
    wait_for(lambda: not sd.list_instances(ServiceId=cm["Id"])["Instances"],
             what="every task deregistered")


def test_service_connect_checked(barged, sd):
    ecs = barged.client("ecs")
    ecs.create_cluster(clusterName="default")
    sd.create_http_namespace(Name="corp")
    ecs.register_task_definition(family="br", containerDefinitions=[{
        "name": "c", "image": "busybox", "memory": 16,
        "portMappings": [{"name": "http", "containerPort": 80}, {"containerPort": 81}]}])
    ecs.register_task_definition(family="host", networkMode="host", containerDefinitions=[{
        "name": "c", "image": "busybox", "memory": 16,
        "portMappings": [{"name": "http", "containerPort": 80}]}])

    def create(td="br", **sc):
        cfg = {"enabled": True, "namespace": "corp", **sc}
        return ecs.create_service(cluster="default", serviceName="s", taskDefinition=td,
                                  desiredCount=0, serviceConnectConfiguration=cfg)["service"]

    alias = {"port": 80, "dnsName": "a.internal"}
    for kw, words in (
            ({"namespace": "nowhere"}, "'nowhere'"),
            ({"services": [{"portName": "nope"}]}, "'nope'"),
            ({"services": [{"portName": "", "clientAliases": [alias]}]}, "portName"),
            ({"services": [{"portName": "http", "clientAliases": [
                {"port": 70000, "dnsName": "a.internal"}]}]}, "'70000'"),
            ({"services": [{"portName": "http", "clientAliases": [
                {"port": 80, "dnsName": "a b"}]}]}, "'a b'"),
            ({"services": [{"portName": "http", "clientAliases": [alias, alias]}]},
             "'a.internal:80'"),
            ({"services": [{"portName": "http", "ingressPortOverride": 0}]}, "'0'"),
    ):
        with pytest.raises(ClientError) as e:
            create(**kw)
        assert error_code(e) == "InvalidParameterException", kw
        assert words in error_message(e), (kw, error_message(e))
    with pytest.raises(ClientError) as e:
        create(td="host", services=[{"portName": "http"}])
    assert error_code(e) == "InvalidParameterException" and "'host'" in error_message(e)

    # defaults: discoveryName is the port name, dnsName <discoveryName>.<namespace>
    s = create(services=[{"portName": "http", "clientAliases": [{"port": 80}]}])
    res = s["deployments"][0]["serviceConnectResources"]
    assert [r["discoveryName"] for r in res] == ["http"]
    assert s["deployments"][0]["serviceConnectConfiguration"]["services"][0]["portName"] == "http"
    # another service can neither take the discovery name nor an alias
    for sc, words in (([{"portName": "http"}], "'http'"),
                      ([{"portName": "http", "discoveryName": "other",
                         "clientAliases": [{"port": 80, "dnsName": "http.corp"}]}],
                       "'http.corp:80'")):
        with pytest.raises(ClientError) as e:
            ecs.create_service(cluster="default", serviceName="s2", taskDefinition="br",
                               desiredCount=0, serviceConnectConfiguration={
                                   "enabled": True, "namespace": "corp", "services": sc})
        assert error_code(e) == "InvalidParameterException"
        assert words in error_message(e) and s["serviceArn"] in error_message(e)
    # the service itself can keep them
    ecs.update_service(cluster="default", service="s", serviceConnectConfiguration={
        "enabled": True, "namespace": "corp",
        "services": [{"portName": "http", "clientAliases": [{"port": 80}, {"port": 81}]}]})
    # an update whose task definition lacks the port name is refused
    ecs.register_task_definition(family="br", containerDefinitions=[{
        "name": "c", "image": "busybox", "memory": 16}])
    with pytest.raises(ClientError) as e:
        ecs.update_service(cluster="default", service="s", taskDefinition="br:2")
    assert error_code(e) == "InvalidParameterException" and "'http'" in error_message(e)
