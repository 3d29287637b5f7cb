"""Fixtures for suites whose agents run on hosts of their own: each agent in
its own network namespace (netns_fixture.py), registered with its own
attributes, reaching barged and the test registry over the namespaces'
bridge. A test module imports the fixtures it uses:

    from netns_hosts import host_net, host_registry, hbarged, host_agents

    def test_x(hbarged, host_agents, host_registry):
        a = host_agents("h1", extra_args=["--availability-zone", "us-east-1a"])

hbarged is a barged listening on the bridge's address (the test reaches it
from the root namespace through the bridge); host_agents(name, ...) adds a
namespace and starts an agent in it, like conftest's agent_factory; the
registry on the bridge serves the busybox test image (host_registry is its
reference). Each test's agents, containers and namespaces are removed after
it, also when it fails; the bridge and the registry at the end of the module.
"""
import pytest

from conftest import Agent, Barged
from netns_fixture import HostNetwork
from registry_fixture import Registry


@pytest.fixture(scope="module")
def host_net():
    net = HostNetwork().start()
    try:
        yield net
    finally:
        net.close()


@pytest.fixture(scope="module")
def host_registry(host_net):
    """The busybox test image in a registry on the bridge."""
    reg = Registry(addr=host_net.gateway)
    try:
        reg.start()
        yield reg.push_test_image("busybox", "latest")
    finally:
        reg.close()


@pytest.fixture
def hbarged(host_net, tmp_path):
    b = Barged(str(tmp_path / "data"), host=host_net.gateway).start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def host_agents(hbarged, host_net, tmp_path):
    agents = []

    def make(name, cluster="default", extra_args=(), create_cluster=True):
        if create_cluster:
            hbarged.client("ecs").create_cluster(clusterName=cluster)
        host = host_net.add_host()
        a = Agent(hbarged, str(tmp_path / name), cluster=cluster, prefix=host.prefix,
                  extra_args=[*extra_args, "--insecure-registry", host_net.gateway])
        a.host = host
        agents.append(a)
        return a.start()

    try:
        yield make
    finally:
        try:
            for a in agents:
                a.close()
        finally:
            host_net.close_hosts()
