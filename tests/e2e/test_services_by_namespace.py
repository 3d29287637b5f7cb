"""ListServicesByNamespace: services of every cluster whose Service Connect
namespace (their own, or their cluster's serviceConnectDefaults) matches,
with paging; an unknown namespace is a NamespaceNotFoundException."""
import pytest
from botocore.exceptions import ClientError

from conftest import error_code, error_message

TD = {"family": "ns", "containerDefinitions": [{"name": "c", "image": "busybox", "memory": 16}]}


def service(ecs, cluster, name, sc=None):
    kw = {"serviceConnectConfiguration": sc} if sc is not None else {}
    return ecs.create_service(cluster=cluster, serviceName=name, taskDefinition="ns",
                              desiredCount=0, **kw)["service"]


def test_list_services_by_namespace(barged, ecs):
    ecs.register_task_definition(**TD)
    # Service Connect's namespaces are Cloud Map namespaces
    sd = barged.client("servicediscovery")
    for name in ("corp", "other"):
        sd.create_http_namespace(Name=name)
    ecs.create_cluster(clusterName="a", serviceConnectDefaults={"namespace": "corp"})
    ecs.create_cluster(clusterName="b")
    s1 = service(ecs, "a", "web", {"enabled": True})
    s2 = service(ecs, "b", "api", {"enabled": True, "namespace": "corp"})
    s3 = service(ecs, "b", "batch", {"enabled": True, "namespace": "other"})
    service(ecs, "a", "plain")
    service(ecs, "a", "off", {"enabled": False})
    assert s1["deployments"][0]["serviceConnectConfiguration"]["namespace"] == "corp"

    got = ecs.list_services_by_namespace(namespace="corp")["serviceArns"]
    assert sorted(got) == sorted([s1["serviceArn"], s2["serviceArn"]])
    assert ecs.list_services_by_namespace(namespace="other")["serviceArns"] == [s3["serviceArn"]]

    first = ecs.list_services_by_namespace(namespace="corp", maxResults=1)
    rest = ecs.list_services_by_namespace(namespace="corp", maxResults=1,
                                          nextToken=first["nextToken"])
    assert len(first["serviceArns"]) == 1 and "nextToken" not in rest
    assert sorted(first["serviceArns"] + rest["serviceArns"]) == sorted(got)

    # moving a service to another namespace starts a deployment and moves it
    u = ecs.update_service(cluster="b", service="api",
                           serviceConnectConfiguration={"enabled": True,
                                                        "namespace": "other"})["service"]
    assert len(u["deployments"]) == 2
    assert ecs.list_services_by_namespace(namespace="corp")["serviceArns"] == [s1["serviceArn"]]
    # a deleted service leaves the list
    ecs.delete_service(cluster="b", service="batch")
    assert ecs.list_services_by_namespace(namespace="other")["serviceArns"] == [s2["serviceArn"]]


def test_namespace_errors(ecs):
    ecs.register_task_definition(**TD)
    ecs.create_cluster(clusterName="plain")
    with pytest.raises(ClientError) as e:
        ecs.list_services_by_namespace(namespace="nowhere")
    assert error_code(e) == "NamespaceNotFoundException"
    assert "'nowhere'" in error_message(e)
    with pytest.raises(ClientError) as e:
        service(ecs, "plain", "x", {"enabled": True})
    assert error_code(e) == "InvalidParameterException"
    assert "namespace" in error_message(e) and "'plain'" in error_message(e)
    # a cluster's default namespace exists even before a service uses it
    ecs.create_cluster(clusterName="d", serviceConnectDefaults={"namespace": "empty"})
    assert ecs.list_services_by_namespace(namespace="empty")["serviceArns"] == []
