"""ELBv2 redirect and fixed-response actions (issue 17) on application load
balancers: as listener default actions and as rule actions, with real HTTP
traffic through the HAProxy that barged runs, switching between action types
with ModifyListener and ModifyRule, and ELB's validation errors."""
import http.client
import subprocess

import pytest
from botocore.exceptions import ClientError

from conftest import error_code, error_message
from lbtraffic import free_port
from test_elbv2 import backends, elb, health, wait_for  # noqa: F401 (fixtures)
from test_elbv2_tls import acm, attempt, backend, import_cert, make_cert, tls_get  # noqa: F401

pytestmark = pytest.mark.skipif(
    subprocess.run(["sh", "-c", "command -v haproxy"], capture_output=True).returncode != 0,
    reason="haproxy is not installed (scripts/setup installs it)")

MAINTENANCE = '<p class="down">Back soon: 100% sure \\o/ # ${HOME}\n\'quoted\'</p>'


def request(port, path, host=None):
    """(status, headers as a dict in lower case, body) of GET path, without
    following a redirect; None while nothing listens."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", path, headers={"Host": host or f"127.0.0.1:{port}"})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode()
    except OSError:
        return None
    finally:
        c.close()


def wait_status(port, path, status, host=None):
    return wait_for(lambda: (lambda r: r if r and r[0] == status else None)(
        request(port, path, host)), what=f"{path} answering {status}")


def alb(elb, name):
    return elb.create_load_balancer(Name=name, Type="application",
                                    Scheme="internal")["LoadBalancers"][0]


def target_group(elb, name, port):
    return elb.create_target_group(
        Name=name, Protocol="HTTP", Port=port, TargetType="ip", HealthCheckPath="/health",
        HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2, HealthyThresholdCount=2,
        Matcher={"HttpCode": "200"})["TargetGroups"][0]


def redirect(status="HTTP_301", **config):
    return [{"Type": "redirect", "RedirectConfig": dict(StatusCode=status, **config)}]


def fixed(status, body=None, content_type="text/plain"):
    config = {"StatusCode": status, "ContentType": content_type}
    if body is not None:
        config["MessageBody"] = body
    return [{"Type": "fixed-response", "FixedResponseConfig": config}]


def test_http_listener_redirects_to_https(barged, elb):
    lb = alb(elb, "redir")
    port = free_port()
    listener = elb.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port,
        DefaultActions=redirect(Protocol="HTTPS", Port="443"))["Listeners"][0]
    # ELB fills the components left out with the request's own.
    assert listener["DefaultActions"] == [{"Type": "redirect", "RedirectConfig": {
        "Protocol": "HTTPS", "Port": "443", "Host": "#{host}", "Path": "/#{path}",
        "Query": "#{query}", "StatusCode": "HTTP_301"}}]
    assert elb.describe_listeners(ListenerArns=[listener["ListenerArn"]])["Listeners"][0][
        "DefaultActions"] == listener["DefaultActions"]

    status, headers, _ = wait_status(port, "/shop/cart?id=7&x=a%20b", 301,
                                     host=f"www.example.com:{port}")
    assert headers["location"] == "https://www.example.com:443/shop/cart?id=7&x=a%20b"
    status, headers, _ = request(port, "/", host="www.example.com")
    assert status == 301 and headers["location"] == "https://www.example.com:443/"

    # A rule redirects elsewhere with every component templated.
    rule = elb.create_rule(
        ListenerArn=listener["ListenerArn"], Priority=5,
        Conditions=[{"Field": "path-pattern", "Values": ["/old/*"]}],
        Actions=redirect("HTTP_302", Protocol="#{protocol}", Port="#{port}",
                         Host="new.#{host}", Path="/v2/#{path}",
                         Query="from=#{port}&#{query}"))["Rules"][0]
    assert rule["Actions"][0]["RedirectConfig"]["Host"] == "new.#{host}"
    status, headers, _ = wait_status(port, "/old/page?q=1", 302, host="example.com")
    assert headers["location"] == f"http://new.example.com:{port}/v2/old/page?from={port}&q=1"
    status, headers, _ = request(port, "/old/page", host="example.com")
    assert headers["location"] == f"http://new.example.com:{port}/v2/old/page?from={port}&"
    rules = elb.describe_rules(ListenerArn=listener["ListenerArn"])["Rules"]
    assert [r["Actions"][0]["Type"] for r in rules] == ["redirect", "redirect"]
    assert rules[1]["Actions"] == listener["DefaultActions"]


def test_redirect_to_a_real_https_listener(barged, acm, elb, backend):
    pem, key, _, _ = make_cert("www.example.test")
    cert = import_cert(acm, pem, key)
    lb = alb(elb, "to-https")
    tg = target_group(elb, "to-https-tg", backend.port)
    elb.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": "127.0.0.1"}])
    plain, secure = free_port(), free_port()
    https = elb.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTPS", Port=secure,
        Certificates=[{"CertificateArn": cert}],
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}])[
        "Listeners"][0]
    redirecting = elb.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=plain,
        DefaultActions=redirect(Protocol="HTTPS", Port=str(secure)))["Listeners"][0]
    # On an HTTPS listener #{protocol} is https.
    elb.create_rule(ListenerArn=https["ListenerArn"], Priority=1, Conditions=[
        {"Field": "path-pattern", "Values": ["/old/*"]}], Actions=redirect(Path="/new/#{path}"))

    _, headers, _ = wait_status(plain, "/old/x?y=1", 301, host="www.example.test")
    location = headers["location"]
    assert location == f"https://www.example.test:{secure}/old/x?y=1"
    # Following it: the HTTPS listener's rule redirects once more, then its
    # default forwards.
    answer = wait_for(lambda: (lambda r: r if r and r[0] == 301 else None)(
        attempt(tls_get, secure, pem, "www.example.test", "/old/x?y=1")), 90, "HTTPS redirect")
    assert answer[1]["location"] == f"https://www.example.test:{secure}/new/old/x?y=1"
    answer = wait_for(lambda: attempt(tls_get, secure, pem, "www.example.test", "/new/old/x"),
                      30, "HTTPS answer")
    assert answer[:3:2] == (200, "a https")

    with pytest.raises(ClientError) as e:
        elb.modify_listener(ListenerArn=https["ListenerArn"],
                            DefaultActions=redirect(Protocol="HTTP"))
    assert error_code(e) == "InvalidLoadBalancerAction" and "HTTPS to HTTP" in error_message(e)
    # An HTTP listener that redirects to HTTPS on its own port would loop
    # once it is HTTPS itself.
    elb.modify_listener(ListenerArn=redirecting["ListenerArn"], DefaultActions=redirect(Protocol="HTTPS"))
    with pytest.raises(ClientError) as e:
        elb.modify_listener(ListenerArn=redirecting["ListenerArn"], Protocol="HTTPS",
                            Certificates=[{"CertificateArn": cert}])
    assert error_code(e) == "InvalidLoadBalancerAction" and "loop" in error_message(e)
    assert elb.describe_listeners(ListenerArns=[redirecting["ListenerArn"]])["Listeners"][0][
        "Protocol"] == "HTTP"
    # So would a rule's.
    elb.modify_listener(ListenerArn=redirecting["ListenerArn"], DefaultActions=fixed("404"))
    rule = elb.create_rule(ListenerArn=redirecting["ListenerArn"], Priority=1, Conditions=[
        {"Field": "host-header", "Values": ["*"]}], Actions=redirect(Protocol="HTTPS"))["Rules"][0]
    with pytest.raises(ClientError) as e:
        elb.modify_listener(ListenerArn=redirecting["ListenerArn"], Protocol="HTTPS",
                            Certificates=[{"CertificateArn": cert}])
    assert error_code(e) == "InvalidLoadBalancerAction" and rule["RuleArn"] in error_message(e)
    elb.delete_rule(RuleArn=rule["RuleArn"])
    assert elb.modify_listener(ListenerArn=redirecting["ListenerArn"], Protocol="HTTPS",
                               Certificates=[{"CertificateArn": cert}])["Listeners"][0][
        "Protocol"] == "HTTPS"
    wait_for(lambda: (lambda r: r and r[0] == 404)(attempt(tls_get, plain, pem,
                                                            "www.example.test")),
             90, "the listener serving HTTPS")


def test_fixed_responses_and_forward_rules(barged, elb, backends):
    a, _ = backends
    lb = alb(elb, "fixed")
    tg = target_group(elb, "fixed-api", a.port)
    port = free_port()
    listener = elb.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port,
        DefaultActions=fixed("404", "no such page"))["Listeners"][0]
    larn = listener["ListenerArn"]
    assert listener["DefaultActions"] == [{"Type": "fixed-response", "FixedResponseConfig": {
        "StatusCode": "404", "ContentType": "text/plain", "MessageBody": "no such page"}}]
    api = elb.create_rule(ListenerArn=larn, Priority=10, Conditions=[
        {"Field": "path-pattern", "Values": ["/api/*"]}],
        Actions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}])["Rules"][0]
    maintenance = elb.create_rule(ListenerArn=larn, Priority=20, Conditions=[
        {"Field": "path-pattern", "Values": ["/shop/*", "/api/shop/*"]}],
        Actions=fixed("503", MAINTENANCE, "text/html"))["Rules"][0]
    assert maintenance["Actions"][0]["FixedResponseConfig"]["MessageBody"] == MAINTENANCE
    elb.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": "127.0.0.1"}])
    wait_for(lambda: [h["State"] for h in health(elb, tg["TargetGroupArn"]).values()] ==
             ["healthy"], what="target healthy")

    status, headers, body = wait_status(port, "/nothing/here", 404)
    assert body == "no such page" and headers["content-type"] == "text/plain"
    status, headers, body = wait_status(port, "/api/users", 200)
    assert body == "a"
    status, headers, body = request(port, "/shop/cart")
    assert (status, body, headers["content-type"]) == (503, MAINTENANCE, "text/html")
    # The forward rule's higher priority wins over the maintenance page.
    assert request(port, "/api/shop/x")[:3:2] == (200, "a")

    # The maintenance is over: the rule forwards; the API goes into
    # maintenance instead, before the forward rule.
    elb.modify_rule(RuleArn=maintenance["RuleArn"],
                    Actions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}])
    wait_status(port, "/shop/cart", 200)
    elb.set_rule_priorities(RulePriorities=[{"RuleArn": maintenance["RuleArn"], "Priority": 30}])
    elb.modify_rule(RuleArn=api["RuleArn"], Actions=fixed("503", "api down", "application/json"))
    status, headers, body = wait_status(port, "/api/users", 503)
    assert body == "api down" and headers["content-type"] == "application/json"
    assert request(port, "/shop/cart")[:3:2] == (200, "a")

    # The default action moves from a fixed response to a redirect and then
    # to a forward, and back to a fixed response through the default rule.
    elb.modify_listener(ListenerArn=larn, DefaultActions=redirect(Host="www.example.com"))
    status, headers, _ = wait_status(port, "/nothing?a=1", 301, host="example.com")
    assert headers["location"] == f"http://www.example.com:{port}/nothing?a=1"
    elb.modify_listener(ListenerArn=larn, DefaultActions=[
        {"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}])
    assert wait_status(port, "/nothing", 200)[2] == "a"
    default = elb.describe_rules(ListenerArn=larn)["Rules"][-1]
    assert default["IsDefault"] and default["Actions"][0]["Type"] == "forward"
    elb.modify_rule(RuleArn=default["RuleArn"], Actions=fixed("200", ""))
    status, _, body = wait_status(port, "/nothing", 200)
    wait_for(lambda: request(port, "/nothing")[2] == "", what="empty fixed response")
    assert elb.describe_listeners(ListenerArns=[larn])["Listeners"][0]["DefaultActions"] == [
        {"Type": "fixed-response", "FixedResponseConfig": {
            "StatusCode": "200", "ContentType": "text/plain", "MessageBody": ""}}]
    # A target group no action forwards to any more is free to go.
    elb.modify_rule(RuleArn=maintenance["RuleArn"], Actions=fixed("410"))
    elb.delete_rule(RuleArn=api["RuleArn"])
    elb.delete_target_group(TargetGroupArn=tg["TargetGroupArn"])


def test_action_validation(barged, elb):
    lb = alb(elb, "checks")
    port = free_port()
    larn = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port,
                               DefaultActions=fixed("404"))["Listeners"][0]["ListenerArn"]

    def refused(actions, code, *words, rule=False):
        with pytest.raises(ClientError) as e:
            if rule:
                elb.create_rule(ListenerArn=larn, Priority=1, Actions=actions, Conditions=[
                    {"Field": "path-pattern", "Values": ["/x"]}])
            else:
                elb.modify_listener(ListenerArn=larn, DefaultActions=actions)
        assert error_code(e) == code, error_message(e)
        for w in words:
            assert w in error_message(e)

    # A redirect back to where the request came from loops.
    refused(redirect(), "InvalidLoadBalancerAction", "loop")
    refused(redirect(Protocol="HTTP", Port=str(port), Query="changed"),
            "InvalidLoadBalancerAction", "loop", rule=True)
    refused(redirect("HTTP_307", Protocol="HTTPS"), "ValidationError", "'HTTP_307'")
    refused(redirect(Protocol="FTP"), "ValidationError", "'FTP'")
    refused(redirect(Port="0"), "ValidationError", "'0'")
    refused(redirect(Port="#{host}"), "ValidationError", "'#{host}'")
    refused(redirect(Path="no-slash"), "ValidationError", "'no-slash'")
    refused(redirect(Host="#{query}.example.com"), "ValidationError", "Host")
    refused(redirect(Path="/a b"), "ValidationError", "'/a b'")
    refused([{"Type": "redirect"}], "ValidationError", "RedirectConfig")
    refused(fixed("302"), "ValidationError", "'302'")
    refused(fixed("404", "x", "image/png"), "ValidationError", "'image/png'")
    refused(fixed("404", "x" * 1025), "ValidationError", "1024")
    refused([{"Type": "fixed-response"}], "ValidationError", "FixedResponseConfig")
    refused([{"Type": "authenticate-oidc", "Order": 1, "AuthenticateOidcConfig": {
        "Issuer": "https://idp", "AuthorizationEndpoint": "https://idp/a",
        "TokenEndpoint": "https://idp/t", "UserInfoEndpoint": "https://idp/u",
        "ClientId": "c"}}] + [dict(fixed("404")[0], Order=2)],
        "InvalidLoadBalancerAction", "'authenticate-oidc'", "OIDC")
    refused(fixed("404") + fixed("503"), "InvalidLoadBalancerAction", "2 actions")
    # 1024 characters (not bytes) fit.
    elb.modify_listener(ListenerArn=larn, DefaultActions=fixed("404", "é" * 1024))
    assert len(elb.describe_listeners(ListenerArns=[larn])["Listeners"][0]["DefaultActions"][0][
        "FixedResponseConfig"]["MessageBody"]) == 1024
    # Order is kept as given.
    ordered = elb.modify_listener(ListenerArn=larn, DefaultActions=[
        dict(fixed("404")[0], Order=3)])["Listeners"][0]["DefaultActions"]
    assert ordered[0]["Order"] == 3

    # Network load balancers only forward.
    nlb = elb.create_load_balancer(Name="checks-nlb", Type="network")["LoadBalancers"][0]
    with pytest.raises(ClientError) as e:
        elb.create_listener(LoadBalancerArn=nlb["LoadBalancerArn"], Protocol="TCP",
                            Port=free_port(), DefaultActions=fixed("503"))
    assert error_code(e) == "ValidationError" and "'TCP'" in error_message(e)
    assert elb.describe_listeners(LoadBalancerArn=nlb["LoadBalancerArn"])["Listeners"] == []
