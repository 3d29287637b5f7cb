"""The AWS JSON 1.1 framing and SigV4 authentication, exercised with raw HTTP
requests signed by botocore's own signer (and deliberately broken)."""
import datetime
import json
import urllib.error
import urllib.parse
import urllib.request
from unittest import mock

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

TARGET = "AmazonEC2ContainerServiceV20141113."


def send(barged, op, body, sign=True, key=None, secret=None, service="ecs", region="us-east-1",
         mutate=None, when=None, target=None, raw_body=None):
    data = raw_body if raw_body is not None else json.dumps(body).encode()
    headers = {"Content-Type": "application/x-amz-json-1.1",
               "X-Amz-Target": target or TARGET + op}
    req = AWSRequest(method="POST", url=barged.endpoint + "/", data=data, headers=headers)
    if sign:
        creds = Credentials(key or barged.access_key, secret or barged.secret_key)
        signer = SigV4Auth(creds, service, region)
        if when:
            with mock.patch("botocore.auth.datetime") as dt:
                dt.datetime.utcnow.return_value = when
                dt.datetime.now.return_value = when
                signer.add_auth(req)
        else:
            signer.add_auth(req)
    if mutate:
        mutate(req)
    prepared = req.prepare()
    r = urllib.request.Request(prepared.url, data=prepared.body, method="POST",
                               headers=dict(prepared.headers))
    try:
        with urllib.request.urlopen(r, timeout=10) as resp:
            return resp.status, dict(resp.headers), json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read() or b"{}")


def test_success_framing(barged):
    status, headers, body = send(barged, "ListClusters", {})
    assert status == 200
    assert headers["Content-Type"] == "application/x-amz-json-1.1"
    assert len(headers["x-amzn-RequestId"]) == 36
    assert body == {"clusterArns": []}


def test_request_ids_differ(barged):
    ids = {send(barged, "ListClusters", {})[1]["x-amzn-RequestId"] for _ in range(3)}
    assert len(ids) == 3


def test_unsigned_request(barged):
    status, headers, body = send(barged, "ListClusters", {}, sign=False)
    assert status == 403
    assert body["__type"] == "MissingAuthenticationTokenException"
    assert "x-amzn-RequestId" in headers


def test_unknown_key(barged):
    status, _, body = send(barged, "ListClusters", {}, key="AKIAUNKNOWNKEY000000")
    assert status == 400
    assert body["__type"] == "UnrecognizedClientException"


def test_wrong_secret(barged):
    status, _, body = send(barged, "ListClusters", {}, secret="x" * 40)
    assert status == 400
    assert body["__type"] == "InvalidSignatureException"
    assert "signature" in body["message"]


def test_tampered_body(barged):
    def mutate(req):
        req.data = json.dumps({"maxResults": 5}).encode()
    status, _, body = send(barged, "ListClusters", {}, mutate=mutate)
    assert body["__type"] == "InvalidSignatureException"


def test_clock_skew(barged):
    old = datetime.datetime.utcnow() - datetime.timedelta(minutes=20)
    status, _, body = send(barged, "ListClusters", {}, when=old)
    assert body["__type"] == "InvalidSignatureException"
    assert "expired" in body["message"].lower()


def test_wrong_region_and_service(barged):
    # every region is served (issue 22); a scope naming no region is refused
    _, _, body = send(barged, "ListClusters", {}, region="eu-west-1")
    assert body == {"clusterArns": []}
    _, _, body = send(barged, "ListClusters", {}, region="mars")
    assert body["__type"] == "InvalidSignatureException"
    assert "mars" in body["message"]
    _, _, body = send(barged, "ListClusters", {}, service="ssm")
    assert body["__type"] == "InvalidSignatureException"
    assert "'ecs'" in body["message"]


def test_malformed_authorization(barged):
    def mutate(req):
        req.headers.replace_header("Authorization", "AWS4-HMAC-SHA256 Credential=abc")
    status, _, body = send(barged, "ListClusters", {}, mutate=mutate)
    assert status == 400
    assert body["__type"] == "IncompleteSignatureException"


def test_malformed_json(barged):
    status, _, body = send(barged, "ListClusters", None, raw_body=b"{not json")
    assert status == 400
    assert body["__type"] == "SerializationException"


def test_wrong_json_type(barged):
    status, _, body = send(barged, "ListClusters", {"maxResults": "ten"})
    assert status == 400
    assert body["__type"] == "SerializationException"
    assert "maxResults" in body["message"]


def test_non_object_body(barged):
    status, _, body = send(barged, "ListClusters", [1, 2])
    assert body["__type"] == "SerializationException"


def test_missing_required_member(barged):
    status, _, body = send(barged, "DescribeTaskDefinition", {})
    assert status == 400
    assert body["__type"] == "InvalidParameterException"
    assert "taskDefinition" in body["message"]


def test_unknown_operation(barged):
    _, _, body = send(barged, "FlyToTheMoon", {})
    assert body["__type"] == "UnknownOperationException"
    _, _, body = send(barged, "x", {}, target="NoSuchService_2020.Op")
    assert body["__type"] == "UnknownOperationException"


def test_garbage_does_not_crash(barged):
    payloads = [b"", b"null", b"\x00\xff\xfe", b"{" * 10000, b'{"clusters": [' + b"1," * 5000 + b"1]}",
                json.dumps({"clusters": ["a" * 100000]}).encode(),
                json.dumps({"family": "x", "containerDefinitions": [{}] * 50}).encode()]
    for p in payloads:
        for op in ("DescribeClusters", "RegisterTaskDefinition"):
            status, _, body = send(barged, op, None, raw_body=p)
            assert status in (200, 400), (p[:40], body)
    assert send(barged, "ListClusters", {})[0] == 200


def send_query(barged, form):
    """A CloudWatch query-protocol call (form in, XML out), SigV4-signed."""
    data = urllib.parse.urlencode(form).encode()
    req = AWSRequest(method="POST", url=barged.endpoint + "/", data=data,
                     headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    SigV4Auth(Credentials(barged.access_key, barged.secret_key), "monitoring",
              "us-east-1").add_auth(req)
    prepared = req.prepare()
    r = urllib.request.Request(prepared.url, data=prepared.body, method="POST",
                               headers=dict(prepared.headers))
    try:
        with urllib.request.urlopen(r, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_unknown_operation_per_protocol(barged):
    """Routing failures keep each protocol's own error shape and words."""
    status, _, body = send(barged, "FlyToTheMoon", {})
    assert status == 400
    assert body["message"] == f"unknown operation '{TARGET}FlyToTheMoon'"

    status, text = send_query(barged, {"Action": "FlyToTheMoon", "Version": "2010-08-01"})
    assert status == 400
    assert "<Code>InvalidAction</Code>" in text
    assert "<Message>The action FlyToTheMoon is not valid for this web service.</Message>" in text

    status, text = send_query(barged, {"Version": "2010-08-01"})
    assert status == 400
    assert "<Message>The action (none) is not valid for this web service.</Message>" in text

    status, text = send_query(barged, {"Action": "DescribeAlarms", "Version": "1999-01-01"})
    assert status == 400
    assert "unknown API version &apos;1999-01-01&apos;" in text

    status, text = send_query(barged, {"Action": "DescribeAlarms", "Version": "2010-08-01"})
    assert status == 200
    assert "<DescribeAlarmsResponse" in text
