"""DNS SRV records of Cloud Map services answered by the agent's DNS server
inside containers (ECS services registering their tasks' ports), and ECS
Service Connect."""
import os

import pytest

import nethelpers
from conftest import wait_task
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


def task_output(ecs, agent, family, container):
    """Runs a one-off task of family and returns its container's output."""
    arn = ecs.run_task(cluster="default", taskDefinition=family)["tasks"][0]["taskArn"]
    task = wait_task(ecs, "default", arn)
    log = open(os.path.join(agent.data_dir, "logs", arn.split("/")[-1],
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

    ecs.delete_service(cluster="default", service="web", force=True)
    wait_for(lambda: not sd.list_instances(ServiceId=csvc["Id"])["Instances"],
             what="every task deregistered")
