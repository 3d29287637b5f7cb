"""Cloud Map (`aws servicediscovery`) and service discovery for ECS services:
the API with Cloud Map's errors, ECS services with serviceRegistries
registering their RUNNING tasks as instances, and the agent's DNS server
answering <service>.<namespace> inside containers with RUNNING tasks only."""
import os

import boto3
import botocore.config
import pytest
from botocore.exceptions import ClientError

import nethelpers
from conftest import REGION, error_code, error_message, wait_task
from test_service_lb import wait_for


@pytest.fixture
def sd(barged):
    return barged.client("servicediscovery")


def discover(barged, **kw):
    # DiscoverInstances goes to the "data-" host in AWS; barged serves it on
    # the same endpoint.
    c = boto3.client("servicediscovery", endpoint_url=barged.endpoint, region_name=REGION,
                     aws_access_key_id=barged.access_key,
                     aws_secret_access_key=barged.secret_key,
                     config=botocore.config.Config(inject_host_prefix=False,
                                                   retries={"max_attempts": 1}))
    return c.discover_instances(**kw)


def private_ns(sd, name):
    op = sd.create_private_dns_namespace(Name=name, Vpc="vpc-1")["OperationId"]
    got = sd.get_operation(OperationId=op)["Operation"]
    assert got["Status"] == "SUCCESS" and got["Type"] == "CREATE_NAMESPACE"
    return got["Targets"]["NAMESPACE"]


def test_namespaces(sd):
    ns = private_ns(sd, "corp.local")
    got = sd.get_namespace(Id=ns)["Namespace"]
    assert got["Name"] == "corp.local" and got["Type"] == "DNS_PRIVATE"
    assert got["Arn"].endswith(":namespace/" + ns) and got["ServiceCount"] == 0
    assert got["Properties"]["DnsProperties"]["HostedZoneId"]
    http = sd.get_operation(
        OperationId=sd.create_http_namespace(Name="apps")["OperationId"])["Operation"]
    http_id = http["Targets"]["NAMESPACE"]
    assert sd.get_namespace(Id=http_id)["Namespace"]["Type"] == "HTTP"

    names = sorted(n["Name"] for n in sd.list_namespaces()["Namespaces"])
    assert names == ["apps", "corp.local"]
    only = sd.list_namespaces(Filters=[{"Name": "TYPE", "Values": ["HTTP"],
                                        "Condition": "EQ"}])["Namespaces"]
    assert [n["Id"] for n in only] == [http_id]
    page = sd.list_namespaces(MaxResults=1)
    rest = sd.list_namespaces(MaxResults=1, NextToken=page["NextToken"])
    assert len(page["Namespaces"]) == 1 and "NextToken" not in rest

    with pytest.raises(ClientError) as e:
        sd.create_http_namespace(Name="apps")
    assert error_code(e) == "NamespaceAlreadyExists" and "'apps'" in error_message(e)
    with pytest.raises(ClientError) as e:
        sd.create_public_dns_namespace(Name="example.com")
    assert error_code(e) == "InvalidInput" and "'example.com'" in error_message(e)
    with pytest.raises(ClientError) as e:
        sd.get_namespace(Id="ns-nothere")
    assert error_code(e) == "NamespaceNotFound" and "'ns-nothere'" in error_message(e)

    sd.delete_namespace(Id=http_id)
    with pytest.raises(ClientError) as e:
        sd.get_namespace(Id=http_id)
    assert error_code(e) == "NamespaceNotFound"


def test_services_instances_operations(barged, sd):
    ns = private_ns(sd, "corp.local")
    svc = sd.create_service(Name="web", NamespaceId=ns,
                            DnsConfig={"DnsRecords": [{"Type": "A", "TTL": 10}]},
                            HealthCheckCustomConfig={},
                            Tags=[{"Key": "team", "Value": "a"}])["Service"]
    sid = svc["Id"]
    assert svc["Arn"].endswith(":service/" + sid) and svc["Type"] == "DNS_HTTP"
    assert sd.get_namespace(Id=ns)["Namespace"]["ServiceCount"] == 1
    with pytest.raises(ClientError) as e:
        sd.create_service(Name="web", NamespaceId=ns,
                          DnsConfig={"DnsRecords": [{"Type": "A", "TTL": 10}]})
    assert error_code(e) == "ServiceAlreadyExists"
    with pytest.raises(ClientError) as e:
        sd.create_service(Name="x", NamespaceId="ns-nothere",
                          DnsConfig={"DnsRecords": [{"Type": "A", "TTL": 10}]})
    assert error_code(e) == "NamespaceNotFound"
    assert [s["Name"] for s in sd.list_services(
        Filters=[{"Name": "NAMESPACE_ID", "Values": [ns], "Condition": "EQ"}])["Services"]] == \
        ["web"]

    # A records need AWS_INSTANCE_IPV4
    with pytest.raises(ClientError) as e:
        sd.register_instance(ServiceId=sid, InstanceId="i1", Attributes={"x": "y"})
    assert error_code(e) == "InvalidInput" and "AWS_INSTANCE_IPV4" in error_message(e)
    with pytest.raises(ClientError) as e:
        sd.register_instance(ServiceId=sid, InstanceId="i1",
                             Attributes={"AWS_INSTANCE_IPV4": "10.0.0.300"})
    assert error_code(e) == "InvalidInput" and "'10.0.0.300'" in error_message(e)
    op = sd.register_instance(ServiceId=sid, InstanceId="i1",
                              Attributes={"AWS_INSTANCE_IPV4": "10.0.0.1", "color": "blue"})
    o = sd.get_operation(OperationId=op["OperationId"])["Operation"]
    assert o["Status"] == "SUCCESS" and o["Targets"] == {"INSTANCE": "i1", "SERVICE": sid}
    sd.register_instance(ServiceId=sid, InstanceId="i2",
                         Attributes={"AWS_INSTANCE_IPV4": "10.0.0.2", "color": "green"})
    assert sd.get_instance(ServiceId=sid, InstanceId="i1")["Instance"]["Attributes"] == \
        {"AWS_INSTANCE_IPV4": "10.0.0.1", "color": "blue"}
    assert sorted(i["Id"] for i in sd.list_instances(ServiceId=sid)["Instances"]) == ["i1", "i2"]
    assert sd.get_service(Id=sid)["Service"]["InstanceCount"] == 2

    got = discover(barged, NamespaceName="corp.local", ServiceName="web")
    assert sorted(i["InstanceId"] for i in got["Instances"]) == ["i1", "i2"]
    # (Debian's botocore predates InstancesRevision)
    rev = got.get("InstancesRevision", 0)
    blue = discover(barged, NamespaceName="corp.local", ServiceName="web",
                    QueryParameters={"color": "blue"})["Instances"]
    assert [i["InstanceId"] for i in blue] == ["i1"]

    sd.update_instance_custom_health_status(ServiceId=sid, InstanceId="i2", Status="UNHEALTHY")
    assert sd.get_instances_health_status(ServiceId=sid)["Status"] == \
        {"i1": "HEALTHY", "i2": "UNHEALTHY"}
    healthy = discover(barged, NamespaceName="corp.local", ServiceName="web")
    assert [i["InstanceId"] for i in healthy["Instances"]] == ["i1"]
    assert healthy.get("InstancesRevision", 1) > rev
    every = discover(barged, NamespaceName="corp.local", ServiceName="web", HealthStatus="ALL")
    assert len(every["Instances"]) == 2
    with pytest.raises(ClientError) as e:
        discover(barged, NamespaceName="corp.local", ServiceName="nothere")
    assert error_code(e) == "ServiceNotFound"

    # tags
    assert sd.list_tags_for_resource(ResourceARN=svc["Arn"])["Tags"] == \
        [{"Key": "team", "Value": "a"}]
    sd.tag_resource(ResourceARN=svc["Arn"], Tags=[{"Key": "env", "Value": "prod"}])
    sd.untag_resource(ResourceARN=svc["Arn"], TagKeys=["team"])
    assert sd.list_tags_for_resource(ResourceARN=svc["Arn"])["Tags"] == \
        [{"Key": "env", "Value": "prod"}]
    with pytest.raises(ClientError) as e:
        sd.list_tags_for_resource(ResourceARN=svc["Arn"] + "x")
    assert error_code(e) == "ResourceNotFoundException"

    # in use: a namespace with services, a service with instances
    with pytest.raises(ClientError) as e:
        sd.delete_namespace(Id=ns)
    assert error_code(e) == "ResourceInUse"
    with pytest.raises(ClientError) as e:
        sd.delete_service(Id=sid)
    assert error_code(e) == "ResourceInUse"
    sd.deregister_instance(ServiceId=sid, InstanceId="i1")
    sd.deregister_instance(ServiceId=sid, InstanceId="i2")
    with pytest.raises(ClientError) as e:
        sd.deregister_instance(ServiceId=sid, InstanceId="i2")
    assert error_code(e) == "InstanceNotFound"
    ops = sd.list_operations(Filters=[{"Name": "TYPE", "Values": ["DEREGISTER_INSTANCE"],
                                       "Condition": "EQ"}])["Operations"]
    assert len(ops) == 2 and all(o["Status"] == "SUCCESS" for o in ops)

    sd.update_service(Id=sid, Service={"Description": "the web tier",
                                       "DnsConfig": {"DnsRecords": [{"Type": "A", "TTL": 60}]}})
    s = sd.get_service(Id=sid)["Service"]
    assert s["Description"] == "the web tier" and s["DnsConfig"]["DnsRecords"][0]["TTL"] == 60
    sd.delete_service(Id=sid)
    with pytest.raises(ClientError) as e:
        sd.get_service(Id=sid)
    assert error_code(e) == "ServiceNotFound" and sid in error_message(e)
    sd.delete_namespace(Id=ns)


# ---- ECS services with serviceRegistries, and DNS inside containers ----

@pytest.fixture(scope="module")
def scope(tmp_path_factory):
    return nethelpers.free_scope("bargesd", 220, tmp_path_factory.getbasetemp())


def task_ip(task):
    details = task["attachments"][0]["details"]
    return [d["value"] for d in details if d["name"] == "privateIPv4Address"][0]


def running_tasks(ecs):
    arns = ecs.list_tasks(cluster="default", serviceName="web",
                          desiredStatus="RUNNING")["taskArns"]
    tasks = ecs.describe_tasks(cluster="default", tasks=arns)["tasks"] if arns else []
    return [t for t in tasks if t["lastStatus"] == "RUNNING"]


def lookup(ecs, agent, busybox, name):
    """The addresses busybox nslookup finds for name in a bridge container."""
    arn = ecs.run_task(cluster="default", taskDefinition="dig")["tasks"][0]["taskArn"]
    task = wait_task(ecs, "default", arn)
    log = open(os.path.join(agent.data_dir, "logs", arn.split("/")[-1], "dig.log")).read()
    # conmon's k8s-file lines: "<time> stdout F <text>"
    text = [line.split(" ", 3)[3] for line in log.splitlines() if line.count(" ") >= 3]
    assert task["containers"][0]["exitCode"] is not None, log
    answer = "\n".join(text).split("Name:", 1)
    if len(answer) < 2:
        return set(), "\n".join(text)
    return {line.split()[-1] for line in answer[1].splitlines()
            if line.startswith("Address") and "#" not in line}, "\n".join(text)


@pytest.mark.skipif(not os.path.exists("/usr/sbin/dnsmasq"),
                    reason="dnsmasq is not installed (scripts/setup installs dnsmasq-base)")
def test_service_tasks_registered_and_resolvable(barged, agent_factory, busybox, scope, sd):
    agent = agent_factory(extra_args=scope.agent_args)
    ecs = barged.client("ecs")
    ns = private_ns(sd, "corp.local")
    csvc = sd.create_service(Name="web", NamespaceId=ns,
                             DnsConfig={"DnsRecords": [{"Type": "A", "TTL": 0}]},
                             HealthCheckCustomConfig={"FailureThreshold": 1})["Service"]
    ecs.register_task_definition(
        family="web", networkMode="awsvpc", containerDefinitions=[{
            "name": "web", "image": busybox, "memory": 16,
            "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.2; done"]}])
    ecs.register_task_definition(
        family="dig", containerDefinitions=[{
            "name": "dig", "image": busybox, "memory": 16,
            "command": ["sh", "-c", "cat /etc/resolv.conf; nslookup web.corp.local; true"]}])
    ecs.create_service(cluster="default", serviceName="web", taskDefinition="web",
                       desiredCount=2,
                       networkConfiguration={"awsvpcConfiguration": {"subnets": ["subnet-1"]}},
                       serviceRegistries=[{"registryArn": csvc["Arn"]}])

    def registered():
        tasks = running_tasks(ecs)
        insts = sd.list_instances(ServiceId=csvc["Id"])["Instances"]
        if len(tasks) != 2 or len(insts) != 2:
            return None
        return tasks, insts
    tasks, insts = wait_for(registered, what="two registered tasks")
    want = {t["taskArn"].split("/")[-1]: task_ip(t) for t in tasks}
    assert {i["Id"]: i["Attributes"]["AWS_INSTANCE_IPV4"] for i in insts} == want
    attrs = insts[0]["Attributes"]
    assert attrs["ECS_SERVICE_NAME"] == "web" and attrs["ECS_CLUSTER_NAME"] == "default"
    found = discover(barged, NamespaceName="corp.local", ServiceName="web")["Instances"]
    assert {i["InstanceId"] for i in found} == set(want)

    # inside another container, the name resolves to the RUNNING tasks
    got, out = wait_for(lambda: (lambda r: r if r[0] == set(want.values()) else None)(
        lookup(ecs, agent, busybox, "web.corp.local")), what="DNS answer")
    assert got == set(want.values()), out

    # scaling in stops one task: it leaves Cloud Map and DNS
    ecs.update_service(cluster="default", service="web", desiredCount=1)
    left = wait_for(lambda: (lambda t: t if len(t) == 1 else None)(
        running_tasks(ecs)), what="one task left")
    keep = left[0]["taskArn"].split("/")[-1]
    wait_for(lambda: [i["Id"] for i in sd.list_instances(ServiceId=csvc["Id"])["Instances"]]
             == [keep], what="the stopped task deregistered")
    got, out = lookup(ecs, agent, busybox, "web.corp.local")
    assert got == {want[keep]}, out

    # the DNS server outlives its agent, like the containers: a restarted
    # agent keeps it
    pid = int(open(os.path.join(agent.data_dir, "dns", "dnsmasq.pid")).read())
    agent.kill()
    assert os.path.exists(f"/proc/{pid}")
    agent.start()
    got, out = lookup(ecs, agent, busybox, "web.corp.local")
    assert got == {want[keep]}, out
    assert f"keeping dnsmasq (pid {pid})" in open(agent.log_path).read()

    # no task, no instance: the service can go, then the Cloud Map service
    ecs.delete_service(cluster="default", service="web", force=True)
    wait_for(lambda: not sd.list_instances(ServiceId=csvc["Id"])["Instances"],
             what="every task deregistered")
    sd.delete_service(Id=csvc["Id"])


def test_ecs_service_registries_checked_and_listed_by_namespace(barged, sd):
    ecs = barged.client("ecs")
    ns = private_ns(sd, "corp.local")
    ns_arn = sd.get_namespace(Id=ns)["Namespace"]["Arn"]
    a = sd.create_service(Name="a", NamespaceId=ns,
                          DnsConfig={"DnsRecords": [{"Type": "A", "TTL": 10}]})["Service"]
    srv = sd.create_service(Name="s", NamespaceId=ns,
                            DnsConfig={"DnsRecords": [{"Type": "SRV", "TTL": 10}]})["Service"]
    ecs.register_task_definition(family="br", containerDefinitions=[{
        "name": "c", "image": "busybox", "memory": 16,
        "portMappings": [{"containerPort": 80}]}])

    def create(name, regs):
        return ecs.create_service(cluster="default", serviceName=name, taskDefinition="br",
                                  desiredCount=0, serviceRegistries=regs)["service"]

    ecs.create_cluster(clusterName="default")
    for regs, words in (
            ([{"registryArn": a["Arn"]}, {"registryArn": srv["Arn"]}], "at most one"),
            ([{"registryArn": a["Arn"] + "x"}], a["Arn"] + "x"),
            ([{"registryArn": srv["Arn"]}], "SRV"),
            ([{"registryArn": srv["Arn"], "containerName": "nope", "containerPort": 80}],
             "nope")):
        with pytest.raises(ClientError) as e:
            create("bad", regs)
        assert error_code(e) == "InvalidParameterException", regs
        assert words in error_message(e)
    web = create("web", [{"registryArn": srv["Arn"], "containerName": "c",
                          "containerPort": 80}])
    assert web["serviceRegistries"][0]["registryArn"] == srv["Arn"]
    create("plain", [])

    # the Cloud Map namespace, by name or ARN, lists the services registering in it
    for name in ("corp.local", ns_arn):
        assert ecs.list_services_by_namespace(namespace=name)["serviceArns"] == \
            [web["serviceArn"]]
    # moving the service to another registry of the namespace keeps it listed
    u = ecs.update_service(cluster="default", service="web",
                           serviceRegistries=[{"registryArn": a["Arn"]}])["service"]
    assert u["serviceRegistries"] == [{"registryArn": a["Arn"]}]
    assert ecs.list_services_by_namespace(namespace=ns_arn)["serviceArns"] == \
        [web["serviceArn"]]
    # an empty Cloud Map namespace exists; an unknown one does not
    sd.create_http_namespace(Name="empty")
    assert ecs.list_services_by_namespace(namespace="empty")["serviceArns"] == []
    with pytest.raises(ClientError) as e:
        ecs.list_services_by_namespace(namespace=ns_arn.replace(ns, "ns-nothere"))
    assert error_code(e) == "NamespaceNotFoundException"
