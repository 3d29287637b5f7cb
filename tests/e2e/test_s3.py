"""The S3 subset served by barged (issue 7): `aws s3` and `aws s3api` from
Debian's aws CLI, boto3, presigned URLs, virtual-host addressing, ranges,
multipart uploads and the aws-chunked encoding newer SDKs send (signed and
unsigned chunks, trailing checksums)."""
import base64
import hashlib
import os
import urllib.error
import urllib.request
import zlib

import pytest
from botocore.exceptions import ClientError

from conftest import Barged, error_code


def s3_client(barged, **cfg):
    import boto3
    import botocore.config
    return boto3.client("s3", endpoint_url=barged.endpoint, region_name="us-east-1",
                        aws_access_key_id=barged.access_key,
                        aws_secret_access_key=barged.secret_key,
                        config=botocore.config.Config(retries={"max_attempts": 1},
                                                      s3={"addressing_style": "path"},
                                                      signature_version="s3v4", **cfg))


def test_aws_s3_cp_ls_rm(barged, awscli, tmp_path):
    src = tmp_path / "app.env"
    src.write_text("A=1\nB=two words\n")
    awscli.run("s3", "mb", "s3://configs")
    awscli.run("s3", "cp", str(src), "s3://configs/prod/app.env")
    ls = awscli.run("s3", "ls", "s3://configs/").stdout
    assert "PRE prod/" in ls
    ls = awscli.run("s3", "ls", "s3://configs/prod/").stdout
    assert "app.env" in ls and " 16 " in ls
    assert "configs" in awscli.run("s3", "ls").stdout
    dst = tmp_path / "back.env"
    awscli.run("s3", "cp", "s3://configs/prod/app.env", str(dst))
    assert dst.read_text() == src.read_text()
    out = awscli.run("s3", "cp", "s3://configs/prod/app.env", "-").stdout
    assert out == src.read_text()
    # a file above the CLI's multipart threshold (8 MiB) goes up in parts
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(9 * 1024 * 1024 + 123))
    awscli.run("s3", "cp", str(big), "s3://configs/big.bin")
    head = awscli.json("s3api", "head-object", "--bucket", "configs", "--key", "big.bin")
    assert head["ContentLength"] == big.stat().st_size and head["ETag"].endswith('-2"')
    back = tmp_path / "big.back"
    awscli.run("s3", "cp", "s3://configs/big.bin", str(back))
    assert back.read_bytes() == big.read_bytes()
    awscli.run("s3", "rm", "s3://configs/prod/app.env")
    r = awscli.run("s3", "rb", "s3://configs", check=False)
    assert r.returncode != 0 and "BucketNotEmpty" in r.stderr
    awscli.run("s3", "rb", "s3://configs", "--force")
    assert "configs" not in awscli.run("s3", "ls").stdout
    # nothing left behind on disk
    objects = os.path.join(barged.data_dir, "s3", "objects")
    assert [f for _, _, fs in os.walk(objects) for f in fs] == []
    assert os.listdir(os.path.join(barged.data_dir, "s3", "uploads")) == []


def test_s3api_operations(barged, awscli, tmp_path):
    awscli.json("s3api", "create-bucket", "--bucket", "api-bucket")
    body = tmp_path / "b.txt"
    body.write_bytes(b"0123456789abcdef")
    put = awscli.json("s3api", "put-object", "--bucket", "api-bucket", "--key", "dir/b.txt",
                      "--body", str(body), "--content-type", "text/plain",
                      "--metadata", "owner=ops")
    assert put["ETag"] == '"%s"' % hashlib.md5(b"0123456789abcdef").hexdigest()
    head = awscli.json("s3api", "head-object", "--bucket", "api-bucket", "--key", "dir/b.txt")
    assert head["ContentLength"] == 16 and head["ContentType"] == "text/plain"
    assert head["Metadata"] == {"owner": "ops"}
    out = tmp_path / "range.out"
    got = awscli.json("s3api", "get-object", "--bucket", "api-bucket", "--key", "dir/b.txt",
                      "--range", "bytes=4-7", str(out))
    assert out.read_bytes() == b"4567" and got["ContentRange"] == "bytes 4-7/16"
    lst = awscli.json("s3api", "list-objects-v2", "--bucket", "api-bucket")
    assert [c["Key"] for c in lst["Contents"]] == ["dir/b.txt"]
    assert awscli.json("s3api", "list-buckets")["Buckets"][0]["Name"] == "api-bucket"
    assert awscli.json("s3api", "get-bucket-location", "--bucket",
                       "api-bucket")["LocationConstraint"] is None
    awscli.run("s3api", "delete-object", "--bucket", "api-bucket", "--key", "dir/b.txt")
    r = awscli.run("s3api", "head-object", "--bucket", "api-bucket", "--key", "dir/b.txt",
                   check=False)
    assert r.returncode != 0 and "404" in r.stderr
    r = awscli.run("s3api", "get-object", "--bucket", "api-bucket", "--key", "dir/b.txt",
                   str(out), check=False)
    assert "NoSuchKey" in r.stderr
    awscli.run("s3api", "delete-bucket", "--bucket", "api-bucket")
    r = awscli.run("s3api", "delete-bucket", "--bucket", "api-bucket", check=False)
    assert "NoSuchBucket" in r.stderr


def test_listing_delimiters_and_paging(barged):
    s3 = s3_client(barged)
    s3.create_bucket(Bucket="list")
    keys = ["a/1", "a/2", "a/b/3", "c", "d/4", "e+f g", "ü/5"]
    for k in keys:
        s3.put_object(Bucket="list", Key=k, Body=k.encode())
    top = s3.list_objects_v2(Bucket="list", Delimiter="/")
    assert [c["Key"] for c in top["Contents"]] == ["c", "e+f g"]
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["a/", "d/", "ü/"]
    sub = s3.list_objects_v2(Bucket="list", Prefix="a/", Delimiter="/")
    assert [c["Key"] for c in sub["Contents"]] == ["a/1", "a/2"]
    assert [p["Prefix"] for p in sub["CommonPrefixes"]] == ["a/b/"]
    seen, token = [], None
    while True:
        kw = {"ContinuationToken": token} if token else {}
        page = s3.list_objects_v2(Bucket="list", MaxKeys=2, Delimiter="/", **kw)
        seen += [c["Key"] for c in page.get("Contents", [])]
        seen += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        if not page["IsTruncated"]:
            break
        token = page["NextContinuationToken"]
    assert sorted(seen) == ["a/", "c", "d/", "e+f g", "ü/"]
    v1 = s3.list_objects(Bucket="list", Prefix="a/")
    assert [c["Key"] for c in v1["Contents"]] == ["a/1", "a/2", "a/b/3"]
    after = s3.list_objects_v2(Bucket="list", StartAfter="c")
    assert [c["Key"] for c in after["Contents"]] == ["d/4", "e+f g", "ü/5"]
    assert s3.get_object(Bucket="list", Key="e+f g")["Body"].read() == b"e+f g"
    deleted = s3.delete_objects(Bucket="list", Delete={"Objects": [{"Key": k} for k in keys]})
    assert sorted(d["Key"] for d in deleted["Deleted"]) == sorted(keys)
    assert s3.list_objects_v2(Bucket="list")["KeyCount"] == 0


def test_errors_and_validation(barged):
    s3 = s3_client(barged)
    for bad in ("ab", "Upper", "a..b", "-x-", "192.168.1.1", "agent"):
        with pytest.raises(ClientError) as e:
            s3.create_bucket(Bucket=bad)
        assert error_code(e) == "InvalidBucketName", bad
    s3.create_bucket(Bucket="errs")
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket="errs")
    assert error_code(e) == "BucketAlreadyOwnedByYou"
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket="nobucket", Key="k", Body=b"x")
    assert error_code(e) == "NoSuchBucket"
    s3.put_object(Bucket="errs", Key="k", Body=b"hello")
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="errs", Key="k", Range="bytes=10-20")
    assert error_code(e) == "InvalidRange"
    assert s3.get_object(Bucket="errs", Key="k", Range="bytes=-3")["Body"].read() == b"llo"
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket="errs", Key="k", Body=b"hello",
                      ContentMD5=base64.b64encode(hashlib.md5(b"other").digest()).decode())
    assert error_code(e) == "BadDigest"
    with pytest.raises(ClientError) as e:
        s3.get_bucket_acl(Bucket="errs")
    assert error_code(e) == "NotImplemented"
    etag = s3.head_object(Bucket="errs", Key="k")["ETag"]
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="errs", Key="k", IfNoneMatch=etag)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="errs", Key="k", IfMatch='"0000"')
    assert error_code(e) == "PreconditionFailed"
    # a wrong secret key: SignatureDoesNotMatch; unknown key: InvalidAccessKeyId
    import boto3
    wrong = boto3.client("s3", endpoint_url=barged.endpoint, region_name="us-east-1",
                         aws_access_key_id=barged.access_key, aws_secret_access_key="x" * 40)
    with pytest.raises(ClientError) as e:
        wrong.list_buckets()
    assert error_code(e) == "SignatureDoesNotMatch"
    unknown = boto3.client("s3", endpoint_url=barged.endpoint, region_name="us-east-1",
                           aws_access_key_id="AKIANOTKNOWN00000000", aws_secret_access_key="x")
    with pytest.raises(ClientError) as e:
        unknown.list_buckets()
    assert error_code(e) == "InvalidAccessKeyId"
    # unsigned: AccessDenied as XML
    try:
        urllib.request.urlopen(barged.endpoint + "/errs/k")
        raise AssertionError("unsigned request served")
    except urllib.error.HTTPError as e:
        body = e.read().decode()
        assert e.code == 403 and "<Code>AccessDenied</Code>" in body


def test_presigned_and_copy(barged):
    s3 = s3_client(barged)
    s3.create_bucket(Bucket="pre")
    s3.put_object(Bucket="pre", Key="file.txt", Body=b"presigned body")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "pre", "Key": "file.txt"},
                                    ExpiresIn=60)
    assert urllib.request.urlopen(url).read() == b"presigned body"
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": "pre", "Key": "up.txt"},
                                        ExpiresIn=60)
    req = urllib.request.Request(put_url, data=b"uploaded", method="PUT")
    assert urllib.request.urlopen(req).status == 200
    assert s3.get_object(Bucket="pre", Key="up.txt")["Body"].read() == b"uploaded"
    s3.copy_object(Bucket="pre", Key="copy.txt", CopySource={"Bucket": "pre", "Key": "up.txt"})
    assert s3.get_object(Bucket="pre", Key="copy.txt")["Body"].read() == b"uploaded"
    # a tampered presigned URL is refused
    try:
        urllib.request.urlopen(url.replace("file.txt", "up.txt"))
        raise AssertionError("tampered URL served")
    except urllib.error.HTTPError as e:
        assert e.code == 403 and b"SignatureDoesNotMatch" in e.read()


def test_virtual_host_style(tmp_path):
    b = Barged(str(tmp_path / "vh"), extra_args=["--s3-host", "s3.barge.test"]).start()
    try:
        s3 = s3_client(b)
        s3.create_bucket(Bucket="vhost")
        s3.put_object(Bucket="vhost", Key="dir/obj", Body=b"virtual")
        # sign a request for http://vhost.s3.barge.test:<port>/dir/obj, send it to 127.0.0.1
        from botocore.auth import S3SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
        host = f"vhost.s3.barge.test:{b.port}"
        req = AWSRequest(method="GET", url=f"http://{host}/dir/obj")
        S3SigV4Auth(Credentials(b.access_key, b.secret_key), "s3", "us-east-1").add_auth(req)
        headers = dict(req.prepare().headers)
        r = urllib.request.Request(f"{b.endpoint}/dir/obj", headers=headers)
        r.add_header("Host", host)
        assert urllib.request.urlopen(r).read() == b"virtual"
    finally:
        b.stop()


def chunked_put(barged, bucket, key, payload, chunk=5, signed=False, trailer=True,
                corrupt=False):
    """PutObject with Content-Encoding: aws-chunked, as newer SDKs send it:
    unsigned chunks with a trailing CRC32, or signed chunks (optionally with a
    signed trailer)."""
    import hmac
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    crc = base64.b64encode(zlib.crc32(payload).to_bytes(4, "big")).decode()
    if corrupt:
        crc = base64.b64encode(b"\0\0\0\0").decode()
    if signed:
        mode = ("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" if trailer
                else "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
    else:
        mode = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    headers = {"Content-Encoding": "aws-chunked", "X-Amz-Content-SHA256": mode,
               "X-Amz-Decoded-Content-Length": str(len(payload))}
    if trailer:
        headers["X-Amz-Trailer"] = "x-amz-checksum-crc32"
    url = f"{barged.endpoint}/{bucket}/{key}"
    req = AWSRequest(method="PUT", url=url, headers=headers)

    class Streaming(S3SigV4Auth):
        def payload(self, request):
            return mode
    Streaming(Credentials(barged.access_key, barged.secret_key), "s3", "us-east-1").add_auth(req)
    prepared = {k: v for k, v in req.prepare().headers.items() if k != "Content-Length"}
    seed = prepared["Authorization"].split("Signature=")[1]
    amz_date = prepared["X-Amz-Date"]
    scope = f"{amz_date[:8]}/us-east-1/s3/aws4_request"

    def key_for():
        k = ("AWS4" + barged.secret_key).encode()
        for part in (amz_date[:8], "us-east-1", "s3", "aws4_request"):
            k = hmac.new(k, part.encode(), hashlib.sha256).digest()
        return k
    skey = key_for()
    empty = hashlib.sha256(b"").hexdigest()
    prev = seed
    body = b""
    pieces = [payload[i:i + chunk] for i in range(0, len(payload), chunk)] + [b""]
    for p in pieces:
        if signed:
            sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, prev, empty,
                             hashlib.sha256(p).hexdigest()])
            prev = hmac.new(skey, sts.encode(), hashlib.sha256).hexdigest()
            body += b"%x;chunk-signature=%s\r\n" % (len(p), prev.encode())
        else:
            body += b"%x\r\n" % len(p)
        if p:
            body += p + b"\r\n"
    if trailer:
        line = f"x-amz-checksum-crc32:{crc}"
        body += line.encode() + b"\r\n"
        if signed:
            sts = "\n".join(["AWS4-HMAC-SHA256-TRAILER", amz_date, scope, prev,
                             hashlib.sha256((line + "\n").encode()).hexdigest()])
            tsig = hmac.new(skey, sts.encode(), hashlib.sha256).hexdigest()
            body += f"x-amz-trailer-signature:{tsig}\r\n".encode()
    body += b"\r\n"
    r = urllib.request.Request(url, data=body, method="PUT", headers=prepared)
    try:
        with urllib.request.urlopen(r) as resp:
            return resp.status, resp.read().decode(), dict(resp.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), dict(e.headers)


def test_aws_chunked_uploads(barged):
    s3 = s3_client(barged)
    s3.create_bucket(Bucket="chunks")
    payload = b"hello aws-chunked world, " * 7
    status, body, headers = chunked_put(barged, "chunks", "unsigned", payload)
    assert status == 200, body
    assert s3.get_object(Bucket="chunks", Key="unsigned")["Body"].read() == payload
    got = s3.get_object(Bucket="chunks", Key="unsigned", ChecksumMode="ENABLED")
    assert got["ResponseMetadata"]["HTTPHeaders"]["x-amz-checksum-crc32"] == \
        base64.b64encode(zlib.crc32(payload).to_bytes(4, "big")).decode()
    assert "ContentEncoding" not in got
    status, body, _ = chunked_put(barged, "chunks", "bad", payload, corrupt=True)
    assert status == 400 and "BadDigest" in body
    status, body, _ = chunked_put(barged, "chunks", "signed", payload, signed=True,
                                  trailer=False)
    assert status == 200, body
    assert s3.get_object(Bucket="chunks", Key="signed")["Body"].read() == payload
    status, body, _ = chunked_put(barged, "chunks", "signed-trailer", payload, signed=True)
    assert status == 200, body
    assert s3.get_object(Bucket="chunks", Key="signed-trailer")["Body"].read() == payload


def test_newest_sdk_checksums(barged):
    """The pip botocore on these machines sends CRC32 checksums by default."""
    import subprocess
    from conftest import newest_aws
    aws = newest_aws()
    if not aws:
        pytest.skip("no newer aws CLI/botocore here")
    python = open(aws).readline()[2:].strip()
    script = f"""
import boto3, botocore.config
s3 = boto3.client("s3", endpoint_url="{barged.endpoint}", region_name="us-east-1",
    aws_access_key_id="{barged.access_key}", aws_secret_access_key="{barged.secret_key}",
    config=botocore.config.Config(s3={{"addressing_style": "path"}}))
s3.create_bucket(Bucket="newsdk")
s3.put_object(Bucket="newsdk", Key="k", Body=b"x" * 100000)
import io
s3.upload_fileobj(io.BytesIO(b"y" * 200000), "newsdk", "k2")
assert s3.get_object(Bucket="newsdk", Key="k", ChecksumMode="ENABLED")["Body"].read() == b"x" * 100000
assert s3.get_object(Bucket="newsdk", Key="k2")["Body"].read() == b"y" * 200000
print("ok")
"""
    p = subprocess.run([python, "-c", script], capture_output=True, text=True, timeout=120)
    if "No module named" in p.stderr:
        pytest.skip("boto3 is not installed for " + python)
    assert p.stdout.strip() == "ok", p.stderr
