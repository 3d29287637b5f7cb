"""HTTPS listeners with ACM certificates, and listener attributes (issue 17):
certificates made here with python's cryptography and imported through
boto3's acm client, HTTPS traffic through the HAProxy barged runs, checked
with python's ssl against the imported certificate (SNI picks the second
one), and listener attributes through raw SigV4-signed query requests
(Debian's botocore predates those operations)."""
import datetime
import glob
import http.server
import os
import re
import socket
import socketserver
import ssl
import stat
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

import pytest
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from conftest import REGION, error_code, error_message
from lbtraffic import free_port

needs_haproxy = pytest.mark.skipif(
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


# ---- certificates ----

def make_key(kind="rsa"):
    if kind == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_cert(cn, sans=(), key=None, issuer=None, days=30, start_days=-1, ca=False):
    """(certificate PEM, key PEM, certificate, key) for cn, self-signed unless
    issuer is (certificate, key) of a CA."""
    key = key or make_key()
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "barge tests")])
    b = (x509.CertificateBuilder().subject_name(name)
         .issuer_name(issuer[0].subject if issuer else name)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now + datetime.timedelta(days=start_days))
         .not_valid_after(now + datetime.timedelta(days=days)))
    if ca:
        b = b.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    else:
        b = b.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName(n) for n in (cn,) + tuple(sans)]), critical=False)
    cert = b.sign(issuer[1] if issuer else key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem(key), cert, key


def serial_text(cert):
    h = format(cert.serial_number, "x")
    h = ("0" if len(h) % 2 else "") + h
    return ":".join(h[i:i + 2] for i in range(0, len(h), 2))


def key_lines(pem):
    """The base64 lines of a PEM key: what must never show up in clear."""
    return [line for line in pem.decode().splitlines() if line and not line.startswith("-----")]


def assert_key_hidden(barged, key_pems, answers=()):
    """No line of any key is in an API answer, barged's log or the store."""
    lines = [line for k in key_pems for line in key_lines(k)]
    for a in answers:
        text = repr(a)
        assert not any(line in text for line in lines)
    files = [barged.log_path] + glob.glob(os.path.join(barged.data_dir, "barge.db*"))
    for path in files:
        data = open(path, "rb").read()
        for line in lines:
            assert line.encode() not in data, f"a line of a private key is in {path} in clear"


# ---- traffic ----

class Backend:
    """An HTTP server that answers with its name and the X-Forwarded-Proto
    it was sent ("a https")."""

    def __init__(self, name):
        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                body = f"{name} {self.headers.get('X-Forwarded-Proto', '-')}".encode()
                self.send_response(200)
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
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def backend():
    b = Backend("a")
    yield b
    b.stop()


def read_response(sock):
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(lines[0].split()[1]), headers, body.decode()


def tls_get(port, cafile_pem, server_name, path="/"):
    """(status, headers, body, peer certificate DER) of GET path over TLS,
    verifying the peer against cafile_pem for server_name (sent by SNI)."""
    ctx = ssl.create_default_context(cadata=cafile_pem.decode())
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_name) as s:
            s.sendall(f"GET {path} HTTP/1.0\r\nHost: {server_name}\r\n\r\n".encode())
            der = s.getpeercert(binary_form=True)
            status, headers, body = read_response(s)
            return status, headers, body, der


def http_get(port, path="/"):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
        return read_response(s)


def attempt(fn, *a):
    try:
        return fn(*a)
    except (OSError, ssl.SSLError):
        return None


# ---- raw query calls (operations Debian's botocore lacks) ----

def elb_raw(barged, action, params):
    """A SigV4-signed ELBv2 query request. Returns (HTTP status, XML root)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    body = urllib.parse.urlencode(dict({"Action": action, "Version": "2015-12-01"}, **params))
    req = AWSRequest(method="POST", url=barged.endpoint + "/", data=body.encode(),
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    SigV4Auth(Credentials(barged.access_key, barged.secret_key), "elasticloadbalancing",
              REGION).add_auth(req)
    p = req.prepare()
    r = urllib.request.Request(p.url, data=p.body, method="POST", headers=dict(p.headers))
    try:
        with urllib.request.urlopen(r, timeout=30) as resp:
            return resp.status, ET.fromstring(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, ET.fromstring(e.read())


def strip_ns(root):
    for el in root.iter():
        el.tag = el.tag.split("}")[-1]
    return root


def attributes_of(root):
    return {m.findtext("Key"): m.findtext("Value")
            for m in strip_ns(root).iter("member") if m.find("Key") is not None}


def modify_listener_attributes(barged, arn, attrs):
    params = {"ListenerArn": arn}
    for i, (k, v) in enumerate(attrs.items(), 1):
        params[f"Attributes.member.{i}.Key"] = k
        params[f"Attributes.member.{i}.Value"] = v
    return elb_raw(barged, "ModifyListenerAttributes", params)


def error_of(root):
    strip_ns(root)
    return root.findtext(".//Code"), root.findtext(".//Message")


# ---- fixtures ----

@pytest.fixture
def acm(barged):
    return barged.client("acm")


@pytest.fixture
def elb(barged):
    return barged.client("elbv2")


def import_cert(acm, cert, key, chain=None, **kw):
    args = dict(Certificate=cert, PrivateKey=key, **kw)
    if chain:
        args["CertificateChain"] = chain
    return acm.import_certificate(**args)["CertificateArn"]


# ---- ACM ----

def test_acm_certificates(barged, acm):
    ca_pem, ca_key_pem, ca, ca_key = make_cert("barge test CA", ca=True, days=60)
    pem, kpem, cert, _ = make_cert("www.example.test", sans=("api.example.test",),
                                   issuer=(ca, ca_key))
    arn = import_cert(acm, pem, kpem, chain=ca_pem, Tags=[{"Key": "team", "Value": "web"}])
    assert re.fullmatch(r"arn:aws:acm:us-east-1:000000000000:certificate/[0-9a-f-]{36}", arn)

    d = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    assert d["DomainName"] == "www.example.test"
    assert d["SubjectAlternativeNames"] == ["www.example.test", "api.example.test"]
    assert d["Type"] == "IMPORTED" and d["Status"] == "ISSUED"
    assert d["KeyAlgorithm"] == "RSA_2048"
    assert d["Serial"] == serial_text(cert)
    assert d["Issuer"] == "barge tests"
    assert d["InUseBy"] == []
    assert d["SignatureAlgorithm"] == "SHA256WITHRSA"
    assert d["NotAfter"].timestamp() == pytest.approx(cert.not_valid_after.timestamp(), abs=1)
    assert d["NotBefore"].timestamp() == pytest.approx(cert.not_valid_before.timestamp(), abs=1)

    got = acm.get_certificate(CertificateArn=arn)
    assert got["Certificate"] == pem.decode() and got["CertificateChain"] == ca_pem.decode()
    assert "PrivateKey" not in got

    ec_pem, ec_kpem, _, _ = make_cert("ec.example.test", key=make_key("ec"))
    ec_arn = import_cert(acm, ec_pem, ec_kpem)
    assert acm.describe_certificate(
        CertificateArn=ec_arn)["Certificate"]["KeyAlgorithm"] == "EC_prime256v1"

    # ACM lists RSA_1024 and RSA_2048 certificates unless asked for others.
    listed = acm.list_certificates()["CertificateSummaryList"]
    assert [c["CertificateArn"] for c in listed] == [arn]
    assert listed[0]["Status"] == "ISSUED" and not listed[0]["InUse"]
    both = acm.list_certificates(Includes={"keyTypes": ["RSA_2048", "EC_prime256v1"]})
    assert {c["CertificateArn"] for c in both["CertificateSummaryList"]} == {arn, ec_arn}
    assert acm.list_certificates(CertificateStatuses=["EXPIRED"])["CertificateSummaryList"] == []
    only_ec = acm.list_certificates(Includes={"keyTypes": ["EC_prime256v1"]})
    assert [c["CertificateArn"] for c in only_ec["CertificateSummaryList"]] == [ec_arn]
    page = acm.list_certificates(MaxItems=1,
                                 Includes={"keyTypes": ["RSA_2048", "EC_prime256v1"]})
    assert len(page["CertificateSummaryList"]) == 1 and page["NextToken"]

    # Tags.
    assert acm.list_tags_for_certificate(CertificateArn=arn)["Tags"] == [
        {"Key": "team", "Value": "web"}]
    acm.add_tags_to_certificate(CertificateArn=arn, Tags=[{"Key": "env", "Value": "prod"}])
    acm.remove_tags_from_certificate(CertificateArn=arn, Tags=[{"Key": "team", "Value": "other"}])
    assert len(acm.list_tags_for_certificate(CertificateArn=arn)["Tags"]) == 2
    acm.remove_tags_from_certificate(CertificateArn=arn, Tags=[{"Key": "team"}])
    assert acm.list_tags_for_certificate(CertificateArn=arn)["Tags"] == [
        {"Key": "env", "Value": "prod"}]

    # Re-import in place: same ARN, the new certificate.
    pem2, kpem2, cert2, _ = make_cert("www.example.test")
    assert import_cert(acm, pem2, kpem2, CertificateArn=arn) == arn
    d2 = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    assert d2["Serial"] == serial_text(cert2) and d2["Issuer"] == "barge tests"
    assert "CertificateChain" not in acm.get_certificate(CertificateArn=arn)
    with pytest.raises(ClientError) as e:
        import_cert(acm, pem2, kpem2, CertificateArn=arn, Tags=[{"Key": "a", "Value": "b"}])
    assert error_code(e) == "InvalidParameterException"

    # What ACM refuses.
    other_key = key_pem(make_key())
    with pytest.raises(ClientError) as e:
        import_cert(acm, pem2, other_key)
    assert error_code(e) == "ValidationException" and "does not match" in error_message(e)
    with pytest.raises(ClientError) as e:
        import_cert(acm, b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
                    kpem2)
    assert error_code(e) == "ValidationException" and "PEM" in error_message(e)
    old_pem, old_kpem, _, _ = make_cert("old.example.test", days=-1, start_days=-10)
    with pytest.raises(ClientError) as e:
        import_cert(acm, old_pem, old_kpem)
    assert error_code(e) == "ValidationException" and "expired" in error_message(e)
    with pytest.raises(ClientError) as e:
        import_cert(acm, pem2, b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    assert error_code(e) == "ValidationException"
    missing = arn[:-12] + "000000000000"
    with pytest.raises(ClientError) as e:
        acm.describe_certificate(CertificateArn=missing)
    assert error_code(e) == "ResourceNotFoundException" and missing in error_message(e)
    with pytest.raises(ClientError) as e:
        acm.get_certificate(CertificateArn="arn:aws:acm:us-east-1:000000000000:certificate/x")
    assert error_code(e) == "InvalidArnException"

    acm.delete_certificate(CertificateArn=ec_arn)
    with pytest.raises(ClientError) as e:
        acm.describe_certificate(CertificateArn=ec_arn)
    assert error_code(e) == "ResourceNotFoundException"

    assert_key_hidden(barged, [kpem, kpem2, ec_kpem],
                      [d, d2, got, listed, acm.get_certificate(CertificateArn=arn)])


# ---- HTTPS listeners ----

def lb_dir(barged):
    return os.path.join(barged.data_dir, "lb")


def cert_files(barged):
    return sorted(glob.glob(os.path.join(lb_dir(barged), "*.tls", "*.pem")))


@needs_haproxy
def test_https_listener(barged, acm, elb, backend):
    a_pem, a_key, _, _ = make_cert("a.example.test")
    b_pem, b_key, _, _ = make_cert("b.example.test")
    a_arn = import_cert(acm, a_pem, a_key)
    b_arn = import_cert(acm, b_pem, b_key)

    lb = elb.create_load_balancer(Name="tls", Scheme="internal")["LoadBalancers"][0]
    tg = elb.create_target_group(
        Name="tls-tg", Protocol="HTTP", Port=backend.port, TargetType="ip",
        HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
        HealthyThresholdCount=2)["TargetGroups"][0]
    elb.register_targets(TargetGroupArn=tg["TargetGroupArn"],
                         Targets=[{"Id": "127.0.0.1", "Port": backend.port}])
    port = free_port()
    listener = elb.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTPS", Port=port,
        Certificates=[{"CertificateArn": a_arn}],
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}])[
        "Listeners"][0]
    assert listener["Protocol"] == "HTTPS"
    assert listener["Certificates"] == [{"CertificateArn": a_arn}]
    assert listener["SslPolicy"] == "ELBSecurityPolicy-2016-08"
    larn = listener["ListenerArn"]
    elb.add_listener_certificates(ListenerArn=larn, Certificates=[{"CertificateArn": b_arn}])
    certs = elb.describe_listener_certificates(ListenerArn=larn)["Certificates"]
    assert {(c["CertificateArn"], c["IsDefault"]) for c in certs} == {(a_arn, True),
                                                                       (b_arn, False)}

    # TLS ends in HAProxy; the backend is told the request came over https.
    def answer(name, ca):
        r = attempt(tls_get, port, ca, name)
        return r if r and r[0] == 200 else None

    status, _, body, _ = wait_for(lambda: answer("a.example.test", a_pem), 90, "HTTPS answer")
    assert body == "a https"
    # SNI picks the second certificate (verified against it alone).
    _, _, body, der = wait_for(lambda: answer("b.example.test", b_pem), 30, "SNI answer")
    assert body == "a https"
    assert x509.load_der_x509_certificate(der).subject.rfc4514_string().startswith(
        "O=barge tests,CN=b.example.test")
    # Any other name gets the default certificate, which b's CA does not sign.
    with pytest.raises(ssl.SSLError):
        tls_get(port, b_pem, "other.example.test")

    # The PEMs HAProxy reads are the load balancer's, 0600.
    files = cert_files(barged)
    assert len(files) == 2
    for f in files:
        assert stat.S_IMODE(os.stat(f).st_mode) == 0o600

    # A certificate in use stays.
    with pytest.raises(ClientError) as e:
        acm.delete_certificate(CertificateArn=a_arn)
    assert error_code(e) == "ResourceInUseException"
    assert acm.describe_certificate(CertificateArn=a_arn)["Certificate"]["InUseBy"] == [
        lb["LoadBalancerArn"]]
    assert acm.describe_certificate(CertificateArn=b_arn)["Certificate"]["InUseBy"] == [
        lb["LoadBalancerArn"]]

    # A re-imported certificate is served without a new listener.
    a2_pem, a2_key, a2, _ = make_cert("a.example.test")
    import_cert(acm, a2_pem, a2_key, CertificateArn=a_arn)
    wait_for(lambda: (answer("a.example.test", a2_pem) or (0, 0, 0, b""))[3] ==
             a2.public_bytes(serialization.Encoding.DER), 60, "the re-imported certificate")

    # The security policy decides the protocol versions: ELB's default one
    # stops at TLS 1.2, ELBSecurityPolicy-TLS13-1-2-2021-06 takes TLS 1.3.
    def tls13():
        ctx = ssl.create_default_context(cadata=a2_pem.decode())
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
                with ctx.wrap_socket(raw, server_hostname="a.example.test") as s:
                    return s.version()
        except ssl.SSLError:
            return "refused"
        except OSError:
            return None

    assert tls13() == "refused"
    elb.modify_listener(ListenerArn=larn, SslPolicy="ELBSecurityPolicy-TLS13-1-2-2021-06")
    wait_for(lambda: tls13() == "TLSv1.3", 60, "TLS 1.3 to be taken")
    assert answer("a.example.test", a2_pem)[2] == "a https"

    # Removing the SNI certificate, then the listener, frees them.
    elb.remove_listener_certificates(ListenerArn=larn, Certificates=[{"CertificateArn": b_arn}])
    with pytest.raises(ClientError) as e:
        elb.remove_listener_certificates(ListenerArn=larn,
                                         Certificates=[{"CertificateArn": a_arn}])
    assert error_code(e) == "OperationNotPermitted"
    acm.delete_certificate(CertificateArn=b_arn)
    elb.delete_listener(ListenerArn=larn)
    wait_for(lambda: not cert_files(barged), 30, "the certificate files to go")
    acm.delete_certificate(CertificateArn=a_arn)

    assert_key_hidden(barged, [a_key, b_key, a2_key])


@needs_haproxy
def test_listener_validation(barged, acm, elb):
    pem, key, _, _ = make_cert("v.example.test")
    arn = import_cert(acm, pem, key)
    lb = elb.create_load_balancer(Name="val", Scheme="internal")["LoadBalancers"][0]
    nlb = elb.create_load_balancer(Name="val-n", Type="network")["LoadBalancers"][0]
    tg = elb.create_target_group(Name="val-tg", Protocol="HTTP", Port=80,
                                 TargetType="ip")["TargetGroups"][0]
    tcp = elb.create_target_group(Name="val-tcp", Protocol="TCP", Port=80,
                                  TargetType="ip")["TargetGroups"][0]
    fwd = [{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}]

    def create(**kw):
        args = dict(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTPS", Port=free_port(),
                    DefaultActions=fwd)
        args.update(kw)
        return elb.create_listener(**args)

    with pytest.raises(ClientError) as e:
        create()
    assert error_code(e) == "CertificateNotFound"
    missing = arn[:-12] + "000000000000"
    with pytest.raises(ClientError) as e:
        create(Certificates=[{"CertificateArn": missing}])
    assert error_code(e) == "CertificateNotFound" and missing in error_message(e)
    with pytest.raises(ClientError) as e:
        create(Certificates=[{"CertificateArn": arn}], SslPolicy="ELBSecurityPolicy-nope")
    assert error_code(e) == "SSLPolicyNotFound" and "'ELBSecurityPolicy-nope'" in error_message(e)
    with pytest.raises(ClientError) as e:
        create(Protocol="HTTP", Certificates=[{"CertificateArn": arn}])
    assert error_code(e) == "ValidationError" and "'HTTP'" in error_message(e)
    with pytest.raises(ClientError) as e:
        create(Protocol="TLS", Certificates=[{"CertificateArn": arn}])
    assert error_code(e) == "ValidationError" and "'TLS'" in error_message(e)

    tls = elb.create_listener(
        LoadBalancerArn=nlb["LoadBalancerArn"], Protocol="TLS", Port=free_port(),
        Certificates=[{"CertificateArn": arn}],
        SslPolicy="ELBSecurityPolicy-TLS13-1-2-2021-06",
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tcp["TargetGroupArn"]}])[
        "Listeners"][0]
    assert tls["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    with pytest.raises(ClientError) as e:
        elb.modify_listener(ListenerArn=tls["ListenerArn"], Protocol="HTTPS")
    assert error_code(e) == "ValidationError"

    plain = create(Protocol="HTTP")["Listeners"][0]
    with pytest.raises(ClientError) as e:
        elb.add_listener_certificates(ListenerArn=plain["ListenerArn"],
                                      Certificates=[{"CertificateArn": arn}])
    assert error_code(e) == "ValidationError"
    # HTTP becomes HTTPS with a certificate.
    with pytest.raises(ClientError) as e:
        elb.modify_listener(ListenerArn=plain["ListenerArn"], Protocol="HTTPS")
    assert error_code(e) == "CertificateNotFound"
    up = elb.modify_listener(ListenerArn=plain["ListenerArn"], Protocol="HTTPS",
                             Certificates=[{"CertificateArn": arn}])["Listeners"][0]
    assert up["Protocol"] == "HTTPS" and up["Certificates"] == [{"CertificateArn": arn}]

    policies = elb.describe_ssl_policies(Names=["ELBSecurityPolicy-TLS13-1-2-2021-06"])
    p = policies["SslPolicies"][0]
    assert p["SslProtocols"] == ["TLSv1.2", "TLSv1.3"]
    assert {"Name": "TLS_AES_128_GCM_SHA256", "Priority": 1} in p["Ciphers"]


# ---- listener attributes ----

@needs_haproxy
def test_listener_attributes(barged, elb, backend):
    lb = elb.create_load_balancer(Name="attrs", Scheme="internal")["LoadBalancers"][0]
    tg = elb.create_target_group(
        Name="attrs-tg", Protocol="HTTP", Port=backend.port, TargetType="ip",
        HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
        HealthyThresholdCount=2)["TargetGroups"][0]
    elb.register_targets(TargetGroupArn=tg["TargetGroupArn"],
                         Targets=[{"Id": "127.0.0.1", "Port": backend.port}])
    port = free_port()
    larn = elb.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}])[
        "Listeners"][0]["ListenerArn"]

    status, root = elb_raw(barged, "DescribeListenerAttributes", {"ListenerArn": larn})
    assert status == 200
    attrs = attributes_of(root)
    assert attrs["routing.http.response.server.enabled"] == "true"
    assert "tcp.idle_timeout.seconds" not in attrs

    def ok():
        r = attempt(http_get, port)
        return r if r and r[0] == 200 else None

    _, headers, body = wait_for(ok, 90, "an answer")
    assert body == "a http"
    assert headers["server"].startswith("BaseHTTP")
    assert "strict-transport-security" not in headers

    hsts = "max-age=31536000; includeSubDomains"
    status, root = modify_listener_attributes(barged, larn, {
        "routing.http.response.server.enabled": "false",
        "routing.http.response.strict_transport_security.header_value": hsts,
        "routing.http.response.x_frame_options.header_value": "DENY"})
    assert status == 200, ET.tostring(root)
    attrs = attributes_of(root)
    assert attrs["routing.http.response.server.enabled"] == "false"
    _, root = elb_raw(barged, "DescribeListenerAttributes", {"ListenerArn": larn})
    assert attributes_of(root)[
        "routing.http.response.strict_transport_security.header_value"] == hsts

    def changed():
        r = ok()
        return r if r and "server" not in r[1] else None

    _, headers, _ = wait_for(changed, 60, "the Server header to go")
    assert headers["strict-transport-security"] == hsts
    assert headers["x-frame-options"] == "DENY"

    # Bad input names the key.
    status, root = modify_listener_attributes(barged, larn, {"routing.http.nonsense": "1"})
    assert status == 400 and error_of(root)[0] == "ValidationError"
    assert "'routing.http.nonsense'" in error_of(root)[1]
    status, root = modify_listener_attributes(barged, larn, {"tcp.idle_timeout.seconds": "120"})
    assert status == 400 and "'tcp.idle_timeout.seconds'" in error_of(root)[1]
    status, root = modify_listener_attributes(
        barged, larn, {"routing.http.response.server.enabled": "maybe"})
    assert status == 400 and "'maybe'" in error_of(root)[1]

    # The TCP idle timeout of a network load balancer's listener.
    nlb = elb.create_load_balancer(Name="attrs-n", Type="network")["LoadBalancers"][0]
    tcp = elb.create_target_group(Name="attrs-tcp", Protocol="TCP", Port=backend.port,
                                  TargetType="ip")["TargetGroups"][0]
    elb.register_targets(TargetGroupArn=tcp["TargetGroupArn"],
                         Targets=[{"Id": "127.0.0.1", "Port": backend.port}])
    nport = free_port()
    narn = elb.create_listener(
        LoadBalancerArn=nlb["LoadBalancerArn"], Protocol="TCP", Port=nport,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tcp["TargetGroupArn"]}])[
        "Listeners"][0]["ListenerArn"]
    _, root = elb_raw(barged, "DescribeListenerAttributes", {"ListenerArn": narn})
    assert attributes_of(root) == {"tcp.idle_timeout.seconds": "350"}
    status, root = modify_listener_attributes(barged, narn, {"tcp.idle_timeout.seconds": "30"})
    assert status == 400 and "'30'" in error_of(root)[1]
    status, root = modify_listener_attributes(barged, narn, {"tcp.idle_timeout.seconds": "120"})
    assert status == 200 and attributes_of(root) == {"tcp.idle_timeout.seconds": "120"}
    cfg = os.path.join(lb_dir(barged), "us-east-1.attrs-n.cfg")
    wait_for(lambda: os.path.exists(cfg) and "timeout tunnel 120s" in open(cfg).read(), 30,
             "HAProxy's tunnel timeout")
    wait_for(lambda: (attempt(http_get, nport) or (0,))[0] == 200, 60, "TCP traffic")
