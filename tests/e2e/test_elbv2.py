"""Elastic Load Balancing v2 on HAProxy (issue 17, first slice): the API
subset through boto3's elbv2 client (the query protocol), and real HTTP
traffic through the HAProxy that barged runs for each load balancer, to two
python http.server backends on 127.0.0.1."""
import http.server
import socketserver
import subprocess
import threading
import time
import urllib.request

import pytest
from botocore.exceptions import ClientError

from conftest import error_code, error_message
from lbtraffic import Load, free_port, get

pytestmark = pytest.mark.skipif(
    subprocess.run(["sh", "-c", "command -v haproxy"], capture_output=True).returncode != 0,
    reason="haproxy is not installed (scripts/setup installs it)")


def wait_for(pred, timeout=60, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class Backend:
    """An HTTP server in this process that answers with its name; /health
    answers 200 until failing is set."""

    def __init__(self, name):
        outer = self
        self.failing = False
        self.release = threading.Event()

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                if self.path == "/slow":
                    outer.release.wait(60)
                code = 500 if (self.path == "/health" and outer.failing) else 200
                body = name.encode()
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def elb(barged):
    return barged.client("elbv2")


@pytest.fixture
def backends():
    made = [Backend("a"), Backend("b")]
    yield made
    for b in made:
        try:
            b.stop()
        except Exception:
            pass


def haproxy_pids(data_dir):
    """The HAProxy processes that run a configuration under data_dir."""
    out = subprocess.run(["pgrep", "-a", "haproxy"], capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in out.splitlines() if data_dir in line]


def make_stack(elb, lb_port, target_port, name="web", interval=5, **tg):
    lb = elb.create_load_balancer(Name=name, Type="application",
                                  Scheme="internal")["LoadBalancers"][0]
    group = elb.create_target_group(
        Name=name + "-tg", Protocol="HTTP", Port=target_port, TargetType="ip",
        HealthCheckPath="/health", HealthCheckIntervalSeconds=interval,
        HealthCheckTimeoutSeconds=2, HealthyThresholdCount=2, UnhealthyThresholdCount=2,
        Matcher={"HttpCode": "200-299"}, **tg)["TargetGroups"][0]
    listener = elb.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=lb_port,
        DefaultActions=[{"Type": "forward",
                         "TargetGroupArn": group["TargetGroupArn"]}])["Listeners"][0]
    return lb, group, listener


def health(elb, tg_arn):
    d = elb.describe_target_health(TargetGroupArn=tg_arn)["TargetHealthDescriptions"]
    return {(t["Target"]["Id"], t["Target"]["Port"]): t["TargetHealth"] for t in d}


def test_api_crud_and_errors(barged, elb):
    lb = elb.create_load_balancer(Name="api-lb", Scheme="internal",
                                  Tags=[{"Key": "team", "Value": "a"}])["LoadBalancers"][0]
    assert lb["LoadBalancerName"] == "api-lb"
    assert lb["Type"] == "application" and lb["Scheme"] == "internal"
    assert lb["State"]["Code"] == "active"
    assert lb["DNSName"] == "127.0.0.1"
    assert lb["LoadBalancerArn"].startswith(
        "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/api-lb/")
    net = elb.create_load_balancer(Name="api-nlb", Type="network")["LoadBalancers"][0]
    assert net["Type"] == "network" and net["Scheme"] == "internet-facing"
    assert "/net/api-nlb/" in net["LoadBalancerArn"]

    with pytest.raises(ClientError) as e:
        elb.create_load_balancer(Name="api-lb")
    assert error_code(e) == "DuplicateLoadBalancerName"
    with pytest.raises(ClientError) as e:
        elb.create_load_balancer(Name="-bad")
    assert error_code(e) == "ValidationError" and "'-bad'" in error_message(e)
    with pytest.raises(ClientError) as e:
        elb.create_load_balancer(Name="gw", Type="gateway")
    assert error_code(e) == "ValidationError" and "'gateway'" in error_message(e)

    names = [x["LoadBalancerName"] for x in elb.describe_load_balancers()["LoadBalancers"]]
    assert names == ["api-lb", "api-nlb"]
    assert [x["LoadBalancerName"] for x in elb.describe_load_balancers(
        LoadBalancerArns=[net["LoadBalancerArn"]])["LoadBalancers"]] == ["api-nlb"]
    with pytest.raises(ClientError) as e:
        elb.describe_load_balancers(Names=["nope"])
    assert error_code(e) == "LoadBalancerNotFound"
    first = elb.describe_load_balancers(PageSize=1)
    assert [x["LoadBalancerName"] for x in first["LoadBalancers"]] == ["api-lb"]
    rest = elb.describe_load_balancers(PageSize=1, Marker=first["NextMarker"])
    assert [x["LoadBalancerName"] for x in rest["LoadBalancers"]] == ["api-nlb"]
    assert "NextMarker" not in rest
    assert [x["LoadBalancerName"] for p in elb.get_paginator("describe_load_balancers").paginate(
        PaginationConfig={"PageSize": 1}) for x in p["LoadBalancers"]] == ["api-lb", "api-nlb"]
    with pytest.raises(ClientError) as e:
        elb.describe_load_balancers(Marker="bogus!")
    assert error_code(e) == "ValidationError" and "'bogus!'" in error_message(e)

    tg = elb.create_target_group(Name="api-tg", Protocol="HTTP", Port=8080, TargetType="ip",
                                 HealthCheckPath="/ping",
                                 Matcher={"HttpCode": "200,202"})["TargetGroups"][0]
    assert tg["HealthCheckPath"] == "/ping" and tg["Matcher"] == {"HttpCode": "200,202"}
    assert (tg["HealthCheckIntervalSeconds"], tg["HealthCheckTimeoutSeconds"],
            tg["HealthyThresholdCount"], tg["UnhealthyThresholdCount"]) == (30, 5, 5, 2)
    assert tg["HealthCheckPort"] == "traffic-port" and tg["TargetType"] == "ip"
    inst = elb.create_target_group(Name="api-inst", Protocol="TCP", Port=80)["TargetGroups"][0]
    assert [x["TargetGroupName"] for p in elb.get_paginator("describe_target_groups").paginate(
        PaginationConfig={"PageSize": 1}) for x in p["TargetGroups"]] == ["api-inst", "api-tg"]
    assert inst["TargetType"] == "instance" and inst["HealthCheckProtocol"] == "TCP"
    assert "HealthCheckPath" not in inst
    with pytest.raises(ClientError) as e:
        elb.create_target_group(Name="api-tg", Protocol="HTTP", Port=8080)
    assert error_code(e) == "DuplicateTargetGroupName"
    with pytest.raises(ClientError) as e:
        elb.create_target_group(Name="m", Protocol="HTTP", Port=80, Matcher={"HttpCode": "600"})
    assert error_code(e) == "ValidationError" and "'600'" in error_message(e)
    with pytest.raises(ClientError) as e:
        elb.create_target_group(Name="t", Protocol="HTTP", Port=80,
                                HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=5)
    assert error_code(e) == "ValidationError"

    # Listeners: protocol rules, one port per listener.
    with pytest.raises(ClientError) as e:
        elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=18080,
                            DefaultActions=[{"Type": "forward",
                                             "TargetGroupArn": inst["TargetGroupArn"]}])
    assert error_code(e) == "IncompatibleProtocols"
    port = free_port()
    lis = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port,
                              DefaultActions=[{"Type": "forward",
                                               "TargetGroupArn": tg["TargetGroupArn"]}]
                              )["Listeners"][0]
    assert lis["Port"] == port and lis["DefaultActions"][0]["TargetGroupArn"] == tg[
        "TargetGroupArn"]
    with pytest.raises(ClientError) as e:
        elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port,
                            DefaultActions=[{"Type": "forward",
                                             "TargetGroupArn": tg["TargetGroupArn"]}])
    assert error_code(e) == "DuplicateListener"
    assert [x["ListenerArn"] for x in elb.describe_listeners(
        LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]] == [lis["ListenerArn"]]
    assert elb.describe_target_groups(LoadBalancerArn=lb["LoadBalancerArn"])["TargetGroups"][0][
        "LoadBalancerArns"] == [lb["LoadBalancerArn"]]

    # Targets.
    with pytest.raises(ClientError) as e:
        elb.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": "not-an-ip"}])
    assert error_code(e) == "ValidationError" and "'not-an-ip'" in error_message(e)
    with pytest.raises(ClientError) as e:
        elb.register_targets(TargetGroupArn=inst["TargetGroupArn"], Targets=[{"Id": "i-1"}])
    assert error_code(e) == "InvalidTarget"
    missing = tg["TargetGroupArn"].replace("/api-tg/", "/gone/")
    with pytest.raises(ClientError) as e:
        elb.register_targets(TargetGroupArn=missing, Targets=[{"Id": "127.0.0.1"}])
    assert error_code(e) == "TargetGroupNotFound"
    with pytest.raises(ClientError) as e:
        elb.deregister_targets(TargetGroupArn=tg["TargetGroupArn"],
                               Targets=[{"Id": "127.0.0.9"}])
    assert error_code(e) == "InvalidTarget"
    with pytest.raises(ClientError) as e:
        elb.describe_target_health(TargetGroupArn=missing)
    assert error_code(e) == "TargetGroupNotFound"
    assert health(elb, inst["TargetGroupArn"]) == {}
    with pytest.raises(ClientError) as e:  # no such container instance
        elb.register_targets(TargetGroupArn=inst["TargetGroupArn"],
                             Targets=[{"Id": "i-0123456789abcdef0", "Port": 80}])
    assert error_code(e) == "InvalidTarget"
    assert "'i-0123456789abcdef0'" in error_message(e)

    # Deleting: a target group in use cannot go; a load balancer takes its
    # listeners with it; all of it survives a restart of barged.
    with pytest.raises(ClientError) as e:
        elb.delete_target_group(TargetGroupArn=tg["TargetGroupArn"])
    assert error_code(e) == "ResourceInUse"
    barged.restart()
    elb = barged.client("elbv2")
    assert len(elb.describe_load_balancers()["LoadBalancers"]) == 2
    elb.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])
    elb.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])  # gone already: fine
    with pytest.raises(ClientError) as e:
        elb.describe_listeners(ListenerArns=[lis["ListenerArn"]])
    assert error_code(e) == "ListenerNotFound"
    elb.delete_target_group(TargetGroupArn=tg["TargetGroupArn"])
    assert [x["TargetGroupName"] for x in elb.describe_target_groups()["TargetGroups"]] == [
        "api-inst"]
    with pytest.raises(ClientError) as e:
        elb.delete_target_group(TargetGroupArn=tg["TargetGroupArn"])
    assert error_code(e) == "TargetGroupNotFound"


def test_traffic_draining_and_health(barged, elb, backends):
    a, b = backends
    port = free_port()
    lb, tg, _ = make_stack(elb, port, a.port)
    arn = tg["TargetGroupArn"]
    elb.register_targets(TargetGroupArn=arn, Targets=[{"Id": "127.0.0.1"},
                                                       {"Id": "127.0.0.1", "Port": b.port}])
    wait_for(lambda: len(haproxy_pids(barged.data_dir)) == 1, what="haproxy running")
    states = health(elb, arn)
    assert set(states) == {("127.0.0.1", a.port), ("127.0.0.1", b.port)}
    wait_for(lambda: all(h["State"] == "healthy" for h in health(elb, arn).values()),
             what="both targets healthy")
    assert {get(port)[1] for _ in range(20)} == {"a", "b"}

    # Deregistering b under constant load: it drains, leaves, and can then be
    # stopped without a single request failing.
    load = Load(port)
    wait_for(lambda: load.count() > 20, what="load running")
    elb.deregister_targets(TargetGroupArn=arn, Targets=[{"Id": "127.0.0.1", "Port": b.port}])
    wait_for(lambda: ("127.0.0.1", b.port) not in health(elb, arn), what="b deregistered")
    b.stop()
    after = load.count()
    wait_for(lambda: load.count() > after + 50, what="more requests")
    load.stop()
    assert load.failures == []
    assert load.seen[-50:] == ["a"] * 50

    # A target that answers its health check with an unexpected code, then one
    # that stopped answering at all, are taken out as unhealthy.
    a.failing = True
    wait_for(lambda: health(elb, arn)[("127.0.0.1", a.port)]["State"] == "unhealthy",
             what="a unhealthy")
    assert health(elb, arn)[("127.0.0.1", a.port)]["Reason"] == "Target.ResponseCodeMismatch"
    c = Backend("c")
    try:
        elb.register_targets(TargetGroupArn=arn, Targets=[{"Id": "127.0.0.1", "Port": c.port}])
        assert health(elb, arn)[("127.0.0.1", c.port)]["State"] == "initial"
        wait_for(lambda: health(elb, arn)[("127.0.0.1", c.port)]["State"] == "healthy",
                 what="c healthy")
        assert get(port)[1] == "c"
        c.stop()
        wait_for(lambda: health(elb, arn)[("127.0.0.1", c.port)]["State"] == "unhealthy",
                 what="c unhealthy")
        assert health(elb, arn)[("127.0.0.1", c.port)]["Reason"] in (
            "Target.FailedHealthChecks", "Target.Timeout")
    finally:
        try:
            c.stop()
        except Exception:
            pass

    # Without its last listener, the load balancer's HAProxy goes.
    elb.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])
    wait_for(lambda: haproxy_pids(barged.data_dir) == [], what="haproxy stopped")


def test_deregistration_delay_attribute(barged, elb, backends):
    a, _ = backends
    port = free_port()
    _, tg, _ = make_stack(elb, port, a.port)
    arn = tg["TargetGroupArn"]
    attrs = elb.describe_target_group_attributes(TargetGroupArn=arn)["Attributes"]
    assert {"Key": "deregistration_delay.timeout_seconds", "Value": "300"} in attrs
    for bad in ("3601", "-1", "soon"):
        with pytest.raises(ClientError) as e:
            elb.modify_target_group_attributes(TargetGroupArn=arn, Attributes=[
                {"Key": "deregistration_delay.timeout_seconds", "Value": bad}])
        assert error_code(e) == "ValidationError"
        assert f"'{bad}'" in error_message(e)
    with pytest.raises(ClientError) as e:
        elb.modify_target_group_attributes(TargetGroupArn=arn, Attributes=[
            {"Key": "no_such.attribute", "Value": "1"}])
    assert error_code(e) == "ValidationError"
    assert "'no_such.attribute'" in error_message(e)
    with pytest.raises(ClientError) as e:
        elb.describe_target_group_attributes(TargetGroupArn=arn + "x")
    assert error_code(e) == "TargetGroupNotFound"
    out = elb.modify_target_group_attributes(TargetGroupArn=arn, Attributes=[
        {"Key": "deregistration_delay.timeout_seconds", "Value": "1"}])["Attributes"]
    assert {"Key": "deregistration_delay.timeout_seconds", "Value": "1"} in out
    attrs = elb.describe_target_group_attributes(TargetGroupArn=arn)["Attributes"]
    assert {"Key": "deregistration_delay.timeout_seconds", "Value": "1"} in attrs

    # A request still in flight keeps a draining target only for the delay
    # (300 s by default), not until it completes.
    elb.register_targets(TargetGroupArn=arn, Targets=[{"Id": "127.0.0.1"}])
    wait_for(lambda: health(elb, arn).get(("127.0.0.1", a.port), {}).get("State") == "healthy",
             what="a healthy")
    slow = threading.Thread(target=lambda: get(port, "/slow"), daemon=True)
    try:
        slow.start()
        time.sleep(0.5)  # let the request reach a (not a timing assertion)
        elb.deregister_targets(TargetGroupArn=arn, Targets=[{"Id": "127.0.0.1"}])
        wait_for(lambda: ("127.0.0.1", a.port) not in health(elb, arn), timeout=30,
                 what="a deregistered while its request is still open")
        assert slow.is_alive()
    finally:
        a.release.set()
        slow.join(timeout=10)


def test_haproxy_follows_barged(barged, elb, backends):
    a, _ = backends
    port = free_port()
    _, tg, _ = make_stack(elb, port, a.port, name="keep")
    elb.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": "127.0.0.1"}])
    pids = wait_for(lambda: haproxy_pids(barged.data_dir), what="haproxy running")
    wait_for(lambda: health(elb, tg["TargetGroupArn"])[("127.0.0.1", a.port)]["State"] ==
             "healthy", what="a healthy")
    # A killed barged leaves its load balancer serving; the next one takes
    # the HAProxy over (a new process replaces the old one gracefully).
    barged.kill()
    assert get(port)[1] == "a"
    barged.start()
    wait_for(lambda: haproxy_pids(barged.data_dir) not in ([], pids), what="haproxy taken over")
    wait_for(lambda: len(haproxy_pids(barged.data_dir)) == 1, what="old haproxy gone")
    assert get(port)[1] == "a"
    # A barged that stops stops its HAProxy.
    barged.stop()
    assert haproxy_pids(barged.data_dir) == []


def test_network_load_balancer(barged, elb, backends):
    a, b = backends
    port = free_port()
    lb = elb.create_load_balancer(Name="tcp", Type="network")["LoadBalancers"][0]
    tg = elb.create_target_group(Name="tcp-tg", Protocol="TCP", Port=a.port, TargetType="ip",
                                 HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
                                 HealthyThresholdCount=2,
                                 UnhealthyThresholdCount=2)["TargetGroups"][0]
    with pytest.raises(ClientError) as e:
        elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port,
                            DefaultActions=[{"Type": "forward",
                                             "TargetGroupArn": tg["TargetGroupArn"]}])
    assert error_code(e) == "ValidationError" and "'HTTP'" in error_message(e)
    elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="TCP", Port=port,
                        DefaultActions=[{"Type": "forward",
                                         "TargetGroupArn": tg["TargetGroupArn"]}])
    elb.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": "127.0.0.1"}])
    wait_for(lambda: health(elb, tg["TargetGroupArn"])[("127.0.0.1", a.port)]["State"] ==
             "healthy", what="a healthy")
    assert get(port) == (200, "a")
    # A weighted forward of a TCP listener picks a group per connection.
    tg_b = elb.create_target_group(Name="tcp-b", Protocol="TCP", Port=b.port, TargetType="ip",
                                   HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
                                   HealthyThresholdCount=2)["TargetGroups"][0]
    elb.register_targets(TargetGroupArn=tg_b["TargetGroupArn"], Targets=[{"Id": "127.0.0.1"}])
    both = free_port()
    elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="TCP", Port=both,
                        DefaultActions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": [
                            {"TargetGroupArn": tg["TargetGroupArn"], "Weight": 1},
                            {"TargetGroupArn": tg_b["TargetGroupArn"], "Weight": 1}]}}])
    wait_for(lambda: health(elb, tg_b["TargetGroupArn"])[("127.0.0.1", b.port)]["State"] ==
             "healthy", what="b healthy")
    assert {get(both)[1] for _ in range(100)} == {"a", "b"}


def get_host(port, path, host):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Host": host})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read().decode()


def test_rules_route_by_path_and_host(barged, elb, backends):
    a, b = backends
    port = free_port()
    lb, tg_a, listener = make_stack(elb, port, a.port, name="rules")
    tg_b = elb.create_target_group(Name="rules-b", Protocol="HTTP", Port=b.port, TargetType="ip",
                                   HealthCheckPath="/health", HealthCheckIntervalSeconds=5,
                                   HealthCheckTimeoutSeconds=2, HealthyThresholdCount=2
                                   )["TargetGroups"][0]
    larn = listener["ListenerArn"]
    fwd_b = [{"Type": "forward", "TargetGroupArn": tg_b["TargetGroupArn"]}]
    by_path = elb.create_rule(ListenerArn=larn, Priority=10, Actions=fwd_b, Conditions=[
        {"Field": "path-pattern", "Values": ["/b/*", "/x.y?"]}])["Rules"][0]
    assert by_path["Priority"] == "10" and by_path["IsDefault"] is False
    assert by_path["Conditions"][0]["PathPatternConfig"]["Values"] == ["/b/*", "/x.y?"]
    elb.create_rule(ListenerArn=larn, Priority=20, Actions=fwd_b, Conditions=[
        {"Field": "host-header", "HostHeaderConfig": {"Values": ["API.example.com"]}}])
    with pytest.raises(ClientError) as e:
        elb.create_rule(ListenerArn=larn, Priority=10, Actions=fwd_b, Conditions=[
            {"Field": "path-pattern", "Values": ["/c"]}])
    assert error_code(e) == "PriorityInUse"
    with pytest.raises(ClientError) as e:
        elb.create_rule(ListenerArn=larn, Priority=30, Actions=fwd_b, Conditions=[
            {"Field": "path-pattern", "Values": ["/it's"]}])
    assert error_code(e) == "ValidationError" and "'/it's'" in error_message(e)
    with pytest.raises(ClientError) as e:
        elb.create_rule(ListenerArn=larn, Priority=30, Actions=fwd_b, Conditions=[
            {"Field": "source-ip", "Values": ["10.0.0.0/8"]}])
    assert error_code(e) == "ValidationError" and "'source-ip'" in error_message(e)
    rules = elb.describe_rules(ListenerArn=larn)["Rules"]
    assert [r["Priority"] for r in rules] == ["10", "20", "default"]
    assert rules[-1]["IsDefault"] and rules[-1]["Actions"][0]["TargetGroupArn"] == tg_a[
        "TargetGroupArn"]
    with pytest.raises(ClientError) as e:
        elb.delete_rule(RuleArn=rules[-1]["RuleArn"])
    assert error_code(e) == "OperationNotPermitted"
    assert elb.describe_target_groups(TargetGroupArns=[tg_b["TargetGroupArn"]])[
        "TargetGroups"][0]["LoadBalancerArns"] == [lb["LoadBalancerArn"]]
    with pytest.raises(ClientError) as e:
        elb.delete_target_group(TargetGroupArn=tg_b["TargetGroupArn"])
    assert error_code(e) == "ResourceInUse"

    elb.register_targets(TargetGroupArn=tg_a["TargetGroupArn"], Targets=[{"Id": "127.0.0.1"}])
    elb.register_targets(TargetGroupArn=tg_b["TargetGroupArn"], Targets=[{"Id": "127.0.0.1"}])
    for tg in (tg_a, tg_b):
        wait_for(lambda: [h["State"] for h in health(elb, tg["TargetGroupArn"]).values()] ==
                 ["healthy"], what="targets healthy")
    assert get(port, "/")[1] == "a"
    assert get(port, "/b/thing")[1] == "b"
    assert get(port, "/x.yz")[1] == "b"
    assert get(port, "/xayz")[1] == "a"  # '.' is a literal dot
    assert get(port, "/b")[1] == "a"
    assert get_host(port, "/", "api.EXAMPLE.com:80") == "b"
    assert get_host(port, "/", "www.example.com") == "a"

    elb.delete_rule(RuleArn=by_path["RuleArn"])
    wait_for(lambda: get(port, "/b/thing")[1] == "a", what="rule gone from haproxy")
    assert [r["Priority"] for r in elb.describe_rules(ListenerArn=larn)["Rules"]] == [
        "20", "default"]
    elb.delete_listener(ListenerArn=larn)
    with pytest.raises(ClientError) as e:
        elb.describe_rules(ListenerArn=larn)
    assert error_code(e) == "ListenerNotFound"
    elb.delete_target_group(TargetGroupArn=tg_b["TargetGroupArn"])


def try_get(port, path="/"):
    try:
        return get(port, path)[1]
    except OSError:
        return None


def second_group(elb, name, port):
    return elb.create_target_group(
        Name=name, Protocol="HTTP", Port=port, TargetType="ip", HealthCheckPath="/health",
        HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2, HealthyThresholdCount=2,
        UnhealthyThresholdCount=2)["TargetGroups"][0]


def test_weighted_forward_across_target_groups(barged, elb, backends):
    a, b = backends
    port = free_port()
    lb, tg_a, _ = make_stack(elb, free_port(), a.port, name="wa")
    tg_b = second_group(elb, "wb", b.port)
    for tg in (tg_a, tg_b):
        elb.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": "127.0.0.1"}])
    weighted = [{"Type": "forward", "ForwardConfig": {"TargetGroups": [
        {"TargetGroupArn": tg_a["TargetGroupArn"], "Weight": 3},
        {"TargetGroupArn": tg_b["TargetGroupArn"], "Weight": 1}]}}]
    for bad, field in (([{"TargetGroupArn": tg_a["TargetGroupArn"], "Weight": 1000}], "'1000'"),
                       ([{"TargetGroupArn": tg_a["TargetGroupArn"]}] * 2, tg_a["TargetGroupArn"])):
        with pytest.raises(ClientError) as e:
            elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port,
                                DefaultActions=[{"Type": "forward",
                                                 "ForwardConfig": {"TargetGroups": bad}}])
        assert error_code(e) == "ValidationError" and field in error_message(e)
    listener = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP",
                                   Port=port, DefaultActions=weighted)["Listeners"][0]
    action = listener["DefaultActions"][0]
    assert "TargetGroupArn" not in action
    assert [(g["TargetGroupArn"], g["Weight"]) for g in action["ForwardConfig"]["TargetGroups"]] \
        == [(tg_a["TargetGroupArn"], 3), (tg_b["TargetGroupArn"], 1)]
    assert elb.describe_target_groups(TargetGroupArns=[tg_b["TargetGroupArn"]])[
        "TargetGroups"][0]["LoadBalancerArns"] == [lb["LoadBalancerArn"]]
    with pytest.raises(ClientError) as e:
        elb.delete_target_group(TargetGroupArn=tg_b["TargetGroupArn"])
    assert error_code(e) == "ResourceInUse"
    for tg in (tg_a, tg_b):
        wait_for(lambda: [h["State"] for h in health(elb, tg["TargetGroupArn"]).values()] ==
                 ["healthy"], what="targets healthy")
    # Both groups answer, the heavier one more often; the split itself is
    # random, so only that both take part is asserted.
    seen = [get(port)[1] for _ in range(200)]
    assert set(seen) == {"a", "b"}

    # A rule with a sticky weighted forward: the cookie HAProxy hands out
    # keeps a client on the group it first reached.
    sticky = [{"Type": "forward", "ForwardConfig": {
        "TargetGroups": [{"TargetGroupArn": tg_a["TargetGroupArn"], "Weight": 1},
                         {"TargetGroupArn": tg_b["TargetGroupArn"], "Weight": 1}],
        "TargetGroupStickinessConfig": {"Enabled": True, "DurationSeconds": 300}}}]
    serving = haproxy_pids(barged.data_dir)
    rule = elb.create_rule(ListenerArn=listener["ListenerArn"], Priority=5, Actions=sticky,
                           Conditions=[{"Field": "path-pattern", "Values": ["/s*"]}])["Rules"][0]
    assert rule["Actions"][0]["ForwardConfig"]["TargetGroupStickinessConfig"] == {
        "Enabled": True, "DurationSeconds": 300}

    wait_for(lambda: len(set(haproxy_pids(barged.data_dir)) - set(serving)) == 1 and
             len(haproxy_pids(barged.data_dir)) == 1, what="haproxy replaced")

    def sticky_get():
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/s", timeout=10) as r:
            return r.read().decode(), r.headers.get("Set-Cookie", "")

    body, cookie = wait_for(lambda: (lambda r: r if "AWSALBTG=" in r[1] else None)(sticky_get()),
                            what="stickiness cookie")
    jar = cookie.split(";")[0]
    for _ in range(20):
        req = urllib.request.Request(f"http://127.0.0.1:{port}/s", headers={"Cookie": jar})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.read().decode() == body
    # Weight 0 takes a group out of the forward.
    before = haproxy_pids(barged.data_dir)
    elb.delete_rule(RuleArn=rule["RuleArn"])
    elb.delete_listener(ListenerArn=listener["ListenerArn"])
    only_b = [{"Type": "forward", "ForwardConfig": {"TargetGroups": [
        {"TargetGroupArn": tg_a["TargetGroupArn"], "Weight": 0},
        {"TargetGroupArn": tg_b["TargetGroupArn"], "Weight": 5}]}}]
    elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port,
                        DefaultActions=only_b)
    # The process that served the old listener is gone once the new one runs.
    wait_for(lambda: len(set(haproxy_pids(barged.data_dir)) - set(before)) == 1 and
             len(haproxy_pids(barged.data_dir)) == 1, what="haproxy replaced")
    wait_for(lambda: try_get(port) == "b", what="listener back")
    assert {get(port)[1] for _ in range(30)} == {"b"}


def test_same_name_in_two_regions_runs_two_haproxy(barged, elb, backends):
    import boto3
    import botocore.config
    west = boto3.client("elbv2", endpoint_url=barged.endpoint, region_name="eu-west-1",
                        aws_access_key_id=barged.access_key,
                        aws_secret_access_key=barged.secret_key,
                        config=botocore.config.Config(retries={"max_attempts": 1}))
    a, b = backends
    east_port, west_port = free_port(), free_port()
    _, tg_east, _ = make_stack(elb, east_port, a.port, name="same")
    west_lb, tg_west, _ = make_stack(west, west_port, b.port, name="same")
    assert ":eu-west-1:" in west_lb["LoadBalancerArn"]
    elb.register_targets(TargetGroupArn=tg_east["TargetGroupArn"], Targets=[{"Id": "127.0.0.1"}])
    west.register_targets(TargetGroupArn=tg_west["TargetGroupArn"], Targets=[{"Id": "127.0.0.1"}])
    wait_for(lambda: health(elb, tg_east["TargetGroupArn"])[("127.0.0.1", a.port)]["State"] ==
             "healthy", what="east target healthy")
    wait_for(lambda: health(west, tg_west["TargetGroupArn"])[("127.0.0.1", b.port)]["State"] ==
             "healthy", what="west target healthy")
    assert get(east_port)[1] == "a" and get(west_port)[1] == "b"
    assert len(haproxy_pids(barged.data_dir)) == 2
    # One host, one address: a port is taken whichever region's listener has it.
    with pytest.raises(ClientError) as e:
        west.create_listener(LoadBalancerArn=west_lb["LoadBalancerArn"], Protocol="HTTP",
                             Port=east_port, DefaultActions=[
                                 {"Type": "forward", "TargetGroupArn": tg_west["TargetGroupArn"]}])
    assert error_code(e) == "InvalidConfigurationRequest" and str(east_port) in error_message(e)
    # Deregistration completes in the target group's own region.
    west.deregister_targets(TargetGroupArn=tg_west["TargetGroupArn"],
                            Targets=[{"Id": "127.0.0.1"}])
    wait_for(lambda: health(west, tg_west["TargetGroupArn"]) == {}, what="west target gone")
    west.delete_load_balancer(LoadBalancerArn=west_lb["LoadBalancerArn"])
    wait_for(lambda: len(haproxy_pids(barged.data_dir)) == 1, what="west haproxy stopped")
    assert get(east_port)[1] == "a"


def test_tags_on_every_resource(barged, elb):
    lb = elb.create_load_balancer(Name="tagged", Tags=[{"Key": "team", "Value": "web"}])[
        "LoadBalancers"][0]
    tg = elb.create_target_group(Name="tagged-tg", Protocol="HTTP", Port=80, TargetType="ip",
                                 Tags=[{"Key": "env", "Value": "prod"}])["TargetGroups"][0]
    listener = elb.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=free_port(),
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}],
        Tags=[{"Key": "l", "Value": "1"}])["Listeners"][0]
    rule = elb.create_rule(ListenerArn=listener["ListenerArn"], Priority=1, Conditions=[
        {"Field": "path-pattern", "Values": ["/r"]}], Actions=[
        {"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}])["Rules"][0]
    arns = [lb["LoadBalancerArn"], tg["TargetGroupArn"], listener["ListenerArn"],
            rule["RuleArn"]]

    def tags():
        return {d["ResourceArn"]: {t["Key"]: t["Value"] for t in d["Tags"]}
                for d in elb.describe_tags(ResourceArns=arns)["TagDescriptions"]}

    assert tags() == {arns[0]: {"team": "web"}, arns[1]: {"env": "prod"}, arns[2]: {"l": "1"},
                      arns[3]: {}}
    elb.add_tags(ResourceArns=arns, Tags=[{"Key": "team", "Value": "api"},
                                          {"Key": "cost", "Value": ""}])
    elb.remove_tags(ResourceArns=[arns[1]], TagKeys=["env", "absent"])
    assert tags() == {arns[0]: {"team": "api", "cost": ""},
                      arns[1]: {"team": "api", "cost": ""},
                      arns[2]: {"l": "1", "team": "api", "cost": ""},
                      arns[3]: {"team": "api", "cost": ""}}
    with pytest.raises(ClientError) as e:
        elb.add_tags(ResourceArns=[arns[0]], Tags=[{"Key": "a", "Value": "1"},
                                                   {"Key": "a", "Value": "2"}])
    assert error_code(e) == "DuplicateTagKeys" and "'a'" in error_message(e)
    with pytest.raises(ClientError) as e:
        elb.add_tags(ResourceArns=[arns[0]], Tags=[{"Key": "aws:x", "Value": "1"}])
    assert error_code(e) == "ValidationError" and "'aws:x'" in error_message(e)
    with pytest.raises(ClientError) as e:
        elb.add_tags(ResourceArns=[arns[0]],
                     Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(49)])
    assert error_code(e) == "TooManyTags"
    with pytest.raises(ClientError) as e:
        elb.create_load_balancer(Name="badtags", Tags=[{"Key": "aws:y", "Value": "1"}])
    assert error_code(e) == "ValidationError"
    missing = tg["TargetGroupArn"].replace("tagged-tg", "nope")
    with pytest.raises(ClientError) as e:
        elb.describe_tags(ResourceArns=[missing])
    assert error_code(e) == "TargetGroupNotFound"
    with pytest.raises(ClientError) as e:
        elb.describe_tags(ResourceArns=["arn:aws:s3:::bucket"])
    assert error_code(e) == "ValidationError" and "arn:aws:s3:::bucket" in error_message(e)

    # Rule priorities move together and stay unique.
    second = elb.create_rule(ListenerArn=listener["ListenerArn"], Priority=2, Conditions=[
        {"Field": "path-pattern", "Values": ["/s"]}], Actions=[
        {"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}])["Rules"][0]
    with pytest.raises(ClientError) as e:
        elb.set_rule_priorities(RulePriorities=[{"RuleArn": rule["RuleArn"], "Priority": 2}])
    assert error_code(e) == "PriorityInUse"
    swapped = elb.set_rule_priorities(RulePriorities=[
        {"RuleArn": rule["RuleArn"], "Priority": 2},
        {"RuleArn": second["RuleArn"], "Priority": 1}])["Rules"]
    assert {r["RuleArn"]: r["Priority"] for r in swapped} == {rule["RuleArn"]: "2",
                                                              second["RuleArn"]: "1"}
    assert [r["RuleArn"] for r in elb.describe_rules(ListenerArn=listener["ListenerArn"])[
        "Rules"]][:2] == [second["RuleArn"], rule["RuleArn"]]

    # Stored settings without a data plane behind them.
    assert elb.set_security_groups(LoadBalancerArn=arns[0], SecurityGroups=["sg-1"])[
        "SecurityGroupIds"] == ["sg-1"]
    with pytest.raises(ClientError) as e:
        elb.set_security_groups(LoadBalancerArn=arns[0], SecurityGroups=["web"])
    assert error_code(e) == "InvalidSecurityGroup"
    elb.set_subnets(LoadBalancerArn=arns[0], Subnets=["subnet-1", "subnet-2"])
    described = elb.describe_load_balancers(LoadBalancerArns=[arns[0]])["LoadBalancers"][0]
    assert described["SecurityGroups"] == ["sg-1"]
    assert [z["SubnetId"] for z in described["AvailabilityZones"]] == ["subnet-1", "subnet-2"]
    with pytest.raises(ClientError) as e:
        elb.set_ip_address_type(LoadBalancerArn=arns[0], IpAddressType="dualstack")
    assert error_code(e) == "ValidationError" and "'dualstack'" in error_message(e)
    limits = {x["Name"]: x["Max"] for x in elb.describe_account_limits()["Limits"]}
    assert limits["target-groups-per-action-on-application-load-balancer"] == "5"
    assert "ELBSecurityPolicy-2016-08" in [
        p["Name"] for p in elb.describe_ssl_policies()["SslPolicies"]]
    with pytest.raises(ClientError) as e:
        elb.describe_ssl_policies(Names=["nope"])
    assert error_code(e) == "SSLPolicyNotFound"


def test_load_balancer_attributes(barged, elb, backends):
    a, _ = backends
    port = free_port()
    lb, tg, _ = make_stack(elb, port, a.port, name="attrs")
    arn = lb["LoadBalancerArn"]

    def attrs():
        return {x["Key"]: x["Value"] for x in
                elb.describe_load_balancer_attributes(LoadBalancerArn=arn)["Attributes"]}

    assert attrs()["deletion_protection.enabled"] == "false"
    assert attrs()["idle_timeout.timeout_seconds"] == "60"
    for key, value in (("idle_timeout.timeout_seconds", "0"),
                       ("deletion_protection.enabled", "yes"),
                       ("routing.http.desync_mitigation_mode", "lax"),
                       ("no.such.attribute", "1")):
        with pytest.raises(ClientError) as e:
            elb.modify_load_balancer_attributes(LoadBalancerArn=arn,
                                                Attributes=[{"Key": key, "Value": value}])
        assert error_code(e) == "ValidationError" and f"'{key}'" in error_message(e)
    out = elb.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=[
        {"Key": "deletion_protection.enabled", "Value": "true"},
        {"Key": "routing.http2.enabled", "Value": "false"}])["Attributes"]
    assert {x["Key"]: x["Value"] for x in out}["routing.http2.enabled"] == "false"
    with pytest.raises(ClientError) as e:
        elb.delete_load_balancer(LoadBalancerArn=arn)
    assert error_code(e) == "OperationNotPermitted" and arn in error_message(e)
    assert elb.describe_load_balancers(LoadBalancerArns=[arn])["LoadBalancers"]

    # The idle timeout is HAProxy's: an idle connection is closed after it.
    elb.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": "127.0.0.1"}])
    wait_for(lambda: health(elb, tg["TargetGroupArn"])[("127.0.0.1", a.port)]["State"] ==
             "healthy", what="a healthy")
    pids = haproxy_pids(barged.data_dir)
    elb.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=[
        {"Key": "idle_timeout.timeout_seconds", "Value": "1"}])
    wait_for(lambda: len(haproxy_pids(barged.data_dir)) == 1 and
             not set(haproxy_pids(barged.data_dir)) & set(pids), what="haproxy replaced")
    wait_for(lambda: try_get(port) == "a", what="served again")
    import socket
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        # Closed by HAProxy (after a 408 answer) long before 30 s.
        while s.recv(4096):
            pass

    elb.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=[
        {"Key": "deletion_protection.enabled", "Value": "false"}])
    elb.delete_load_balancer(LoadBalancerArn=arn)


def test_modify_target_group_health_check(barged, elb, backends):
    a, _ = backends
    port = free_port()
    _, tg, _ = make_stack(elb, port, a.port, name="mod")
    arn = tg["TargetGroupArn"]
    elb.register_targets(TargetGroupArn=arn, Targets=[{"Id": "127.0.0.1"}])
    wait_for(lambda: health(elb, arn)[("127.0.0.1", a.port)]["State"] == "healthy",
             what="a healthy")
    with pytest.raises(ClientError) as e:
        elb.modify_target_group(TargetGroupArn=arn, HealthCheckTimeoutSeconds=10)
    assert error_code(e) == "ValidationError" and "'10'" in error_message(e)
    with pytest.raises(ClientError) as e:
        elb.modify_target_group(TargetGroupArn=arn, HealthCheckPath="health")
    assert error_code(e) == "ValidationError" and "'health'" in error_message(e)
    # The backend answers 200: a matcher of 202 makes the target unhealthy.
    out = elb.modify_target_group(TargetGroupArn=arn, Matcher={"HttpCode": "202"},
                                  HealthyThresholdCount=3)["TargetGroups"][0]
    assert out["Matcher"] == {"HttpCode": "202"} and out["HealthyThresholdCount"] == 3
    assert out["HealthCheckPath"] == "/health" and out["HealthCheckIntervalSeconds"] == 5
    wait_for(lambda: health(elb, arn)[("127.0.0.1", a.port)]["State"] == "unhealthy",
             what="a unhealthy under the new matcher")
    elb.modify_target_group(TargetGroupArn=arn, Matcher={"HttpCode": "200-202"})
    wait_for(lambda: health(elb, arn)[("127.0.0.1", a.port)]["State"] == "healthy",
             what="a healthy again")
    assert get(port)[1] == "a"
