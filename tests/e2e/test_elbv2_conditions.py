"""ELBv2 rule conditions beyond path and host (issue 17): http-header,
query-string, http-request-method and source-ip, alone and together, with
real HTTP traffic through the HAProxy that barged runs. Each rule answers a
fixed response of its own, so the answer tells which rule matched; values
full of characters that HAProxy's configuration or a regex would read
specially must match only themselves. Also ELB's limits and validation
errors."""
import http.client
import subprocess

import pytest
from botocore.exceptions import ClientError

from conftest import error_code, error_message
from lbtraffic import free_port
from test_elbv2 import elb, wait_for  # noqa: F401 (fixtures)
from test_elbv2_actions import alb, fixed

pytestmark = pytest.mark.skipif(
    subprocess.run(["sh", "-c", "command -v haproxy"], capture_output=True).returncode != 0,
    reason="haproxy is not installed (scripts/setup installs it)")


def answer(port, path="/", method="GET", headers=(), source="127.0.0.1"):
    """The body of the fixed response that answers the request (the name of
    the rule that matched), or None while nothing listens."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    try:
        c.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers:
            c.putheader(name, value)
        c.endheaders()
        return c.getresponse().read().decode()
    except OSError:
        return None
    finally:
        c.close()


def listener(elb, name):
    lb = alb(elb, name)
    port = free_port()
    larn = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port,
                               DefaultActions=fixed("404", "default"))["Listeners"][0][
        "ListenerArn"]
    return port, larn


def rule(elb, larn, priority, name, conditions):
    return elb.create_rule(ListenerArn=larn, Priority=priority, Conditions=conditions,
                           Actions=fixed("200", name))["Rules"][0]


def settle(port, name, **request):
    """Waits until the new configuration answers request with rule name."""
    wait_for(lambda: answer(port, **request) == name, what=f"rule {name} in effect")


HOSTILE = "a b \"q\" 'x' #c %d $e (.+)^[x]{2}|\\"


def test_http_header_condition(barged, elb):
    port, larn = listener(elb, "hdr")
    r = rule(elb, larn, 1, "env", [{"Field": "http-header", "HttpHeaderConfig": {
        "HttpHeaderName": "X-Env", "Values": ["prod-*", "st?ge"]}}])
    assert r["Conditions"] == [{"Field": "http-header", "HttpHeaderConfig": {
        "HttpHeaderName": "X-Env", "Values": ["prod-*", "st?ge"]}}]
    rule(elb, larn, 2, "hostile", [{"Field": "http-header", "HttpHeaderConfig": {
        "HttpHeaderName": "X-Odd#'Name", "Values": [HOSTILE]}}])
    settle(port, "env", headers=[("X-Env", "prod-eu")])
    # Values match without regard to case; wildcards as ELB has them.
    assert answer(port, headers=[("x-env", "PROD-")]) == "env"
    assert answer(port, headers=[("X-Env", "StAgE")]) == "env"
    assert answer(port, headers=[("X-Env", "stge")]) == "default"
    assert answer(port, headers=[("X-Env", "preprod-eu")]) == "default"
    assert answer(port, headers=[("X-Other", "prod-eu")]) == "default"
    assert answer(port) == "default"
    # A value with a comma is one value.
    assert answer(port, headers=[("X-Env", "prod-a, b")]) == "env"
    # Every character of the hostile value stands for itself.
    assert answer(port, headers=[("X-Odd#'Name", HOSTILE)]) == "hostile"
    assert answer(port, headers=[("X-Odd#'Name", HOSTILE.upper())]) == "hostile"
    for near in (HOSTILE[:-1], HOSTILE + "x", HOSTILE.replace("(.+)", "(aa)"),
                 HOSTILE.replace("$e", "e")):
        assert answer(port, headers=[("X-Odd#'Name", near)]) == "default", near
    assert answer(port, headers=[("X-Odd", HOSTILE)]) == "default"


def test_query_string_condition(barged, elb):
    port, larn = listener(elb, "query")
    r = rule(elb, larn, 1, "v2", [{"Field": "query-string", "QueryStringConfig": {
        "Values": [{"Key": "version", "Value": "v2*"}, {"Value": "beta"}]}}])
    assert r["Conditions"][0]["QueryStringConfig"]["Values"] == [
        {"Key": "version", "Value": "v2*"}, {"Value": "beta"}]
    rule(elb, larn, 2, "odd", [{"Field": "query-string", "QueryStringConfig": {
        "Values": [{"Key": "k.(x)", "Value": "$1~%25"}]}}])
    settle(port, "v2", path="/?version=v2.1")
    assert answer(port, "/a/b?x=1&VERSION=V2&y=2") == "v2"
    assert answer(port, "/?other=beta") == "v2"
    assert answer(port, "/?beta") == "v2"
    assert answer(port, "/?version=v1") == "default"
    assert answer(port, "/?myversion=v2") == "default"
    assert answer(port, "/?version=xv2") == "default"
    assert answer(port, "/?other=betamax") == "default"
    assert answer(port, "/v2") == "default"
    assert answer(port, "/?k.(x)=$1~%25") == "odd"
    assert answer(port, "/?kx(x)=$1~%25") == "default"
    assert answer(port, "/?k.(x)=$1~%2") == "default"
    # A backslash makes a wildcard character literal in a query string.
    rule(elb, larn, 3, "star", [{"Field": "query-string", "QueryStringConfig": {
        "Values": [{"Key": "q", "Value": "a\\*b\\?"}]}}])
    settle(port, "star", path="/?q=a*b?")
    assert answer(port, "/?q=axb?") == "default"
    assert answer(port, "/?q=a*bc") == "default"


def test_method_and_source_conditions(barged, elb):
    port, larn = listener(elb, "method-ip")
    r = rule(elb, larn, 1, "write", [{"Field": "http-request-method",
                                      "HttpRequestMethodConfig": {"Values": ["POST", "PUT"]}}])
    assert r["Conditions"] == [{"Field": "http-request-method",
                                "HttpRequestMethodConfig": {"Values": ["POST", "PUT"]}}]
    rule(elb, larn, 2, "local2", [{"Field": "source-ip", "SourceIpConfig": {
        "Values": ["127.0.0.2/32", "10.0.0.0/8"]}}])
    settle(port, "write", method="POST")
    assert answer(port, method="PUT") == "write"
    # Methods are case-sensitive.
    assert answer(port, method="post") == "default"
    assert answer(port, method="GET") == "default"
    # The client address is the one HAProxy sees.
    assert answer(port, source="127.0.0.2") == "local2"
    assert answer(port, source="127.0.0.3") == "default"
    assert answer(port, method="PUT", source="127.0.0.2") == "write"


def test_conditions_combine(barged, elb):
    """ANDed across conditions (two http-header conditions both must hold),
    ORed within one, and rules in priority order."""
    port, larn = listener(elb, "combined")
    rule(elb, larn, 1, "all", [
        {"Field": "path-pattern", "PathPatternConfig": {"Values": ["/api/*"]}},
        {"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X-A",
                                                      "Values": ["1"]}},
        {"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X-B",
                                                      "Values": ["2", "3"]}},
        {"Field": "source-ip", "SourceIpConfig": {"Values": ["127.0.0.1/32"]}}])
    rule(elb, larn, 2, "api", [{"Field": "path-pattern", "Values": ["/api/*"]}])
    both = [("X-A", "1"), ("X-B", "3")]
    settle(port, "all", path="/api/x", headers=both)
    assert answer(port, "/api/x", headers=both[:1]) == "api"
    assert answer(port, "/api/x", headers=both[1:]) == "api"
    assert answer(port, "/api/x", headers=both, source="127.0.0.2") == "api"
    assert answer(port, "/api/x", headers=[("X-A", "1"), ("X-B", "2")]) == "all"
    assert answer(port, "/web", headers=both) == "default"
    # ModifyRule changes them like any others.
    r = elb.describe_rules(ListenerArn=larn)["Rules"][0]
    elb.modify_rule(RuleArn=r["RuleArn"], Conditions=[
        {"Field": "query-string", "QueryStringConfig": {"Values": [{"Key": "a", "Value": "1"}]}},
        {"Field": "query-string", "QueryStringConfig": {"Values": [{"Key": "b", "Value": "2"}]}}])
    settle(port, "all", path="/x?b=2&a=1")
    assert answer(port, "/x?a=1") == "default"
    assert answer(port, "/api/x?a=1", headers=both) == "api"


def test_condition_validation(barged, elb):
    _, larn = listener(elb, "cond-checks")

    def refused(conditions, *words):
        with pytest.raises(ClientError) as e:
            elb.create_rule(ListenerArn=larn, Priority=1, Conditions=conditions,
                            Actions=fixed("200"))
        assert error_code(e) == "ValidationError", error_message(e)
        for w in words:
            assert w in error_message(e), error_message(e)

    def header(name, *values):
        return {"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": name,
                                                             "Values": list(values)}}

    def method(*values):
        return {"Field": "http-request-method", "HttpRequestMethodConfig": {"Values": list(values)}}

    def source(*values):
        return {"Field": "source-ip", "SourceIpConfig": {"Values": list(values)}}

    refused([{"Field": "cookie", "Values": ["x"]}], "'cookie'")
    refused([header("X A", "1")], "'X A'")
    refused([header("X:A", "1")], "'X:A'")
    refused([header("X-" + "a" * 40, "1")], "HttpHeaderName")
    refused([header("X-A")], "'http-header'", "between 1 and 3")
    refused([header("X-A", "tab\there")], "'tab\there'")
    refused([header("X-A", "x" * 129)], "128")
    refused([{"Field": "http-header", "Values": ["1"]}], "HttpHeaderConfig")
    refused([method("get")], "'get'")
    refused([method("GET!")], "'GET!'")
    refused([method("GET"), method("PUT")], "'http-request-method'", "once")
    refused([source("10.0.0.1")], "'10.0.0.1'")
    refused([source("10.0.0.0/33")], "'10.0.0.0/33'")
    refused([source("300.0.0.0/8")], "'300.0.0.0/8'")
    refused([{"Field": "query-string", "QueryStringConfig": {
        "Values": [{"Key": "a&b", "Value": "1"}]}}], "'a&b=1'")
    refused([{"Field": "query-string", "QueryStringConfig": {"Values": [{"Key": "a"}]}}],
            "Value")
    # ELB's limits: 3 values a condition, 5 values and 5 wildcards a rule.
    refused([header("X-A", "1", "2", "3", "4")], "between 1 and 3")
    refused([header("X-A", "1", "2", "3"), header("X-B", "4", "5", "6")], "at most 5",
            "'http-header'")
    refused([header("X-A", "**", "**"), header("X-B", "??")], "at most 5 wildcards")
    # Escaped ones in a query string are no wildcards.
    elb.create_rule(ListenerArn=larn, Priority=2, Actions=fixed("200"), Conditions=[
        header("X-A", "**", "**"), {"Field": "query-string", "QueryStringConfig": {
            "Values": [{"Key": "\\*", "Value": "\\?\\*"}]}}])
    # At the limits it is fine.
    r = elb.create_rule(ListenerArn=larn, Priority=1, Actions=fixed("200"), Conditions=[
        header("X-A", "*", "?", "*"), source("10.0.0.0/8", "::1/128")])["Rules"][0]
    assert r["Conditions"][1] == source("10.0.0.0/8", "::1/128")
    assert elb.describe_rules(RuleArns=[r["RuleArn"]])["Rules"][0]["Conditions"] == r[
        "Conditions"]
