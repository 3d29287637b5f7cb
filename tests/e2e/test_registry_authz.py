"""The registry's /v2/ API for IAM principals: a token from
ecr:GetAuthorizationToken (or the key pair itself) pulls and pushes exactly
what its identity policies allow on each repository, with ECR's action names;
the admin key does everything."""
import base64
import json

import boto3
import botocore.config
import pytest

import ociimage
from conftest import REGION
from test_registry import FAST_GC, Registry, start

ACCOUNT = "000000000000"
PULL = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
PUSH = ["ecr:BatchCheckLayerAvailability", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart",
        "ecr:CompleteLayerUpload", "ecr:PutImage"]


class UserRegistry(Registry):
    """The registry as an IAM user sees it, logged in with its own token."""

    def __init__(self, barged, key):
        self.barged = barged
        cfg = botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"})
        self.ecr = boto3.client("ecr", endpoint_url=barged.endpoint, region_name=REGION,
                                aws_access_key_id=key["AccessKeyId"],
                                aws_secret_access_key=key["SecretAccessKey"], config=cfg)
        auth = self.ecr.get_authorization_token()["authorizationData"][0]
        self.user, self.password = base64.b64decode(auth["authorizationToken"]).decode().split(
            ":", 1)
        self.host = f"127.0.0.1:{barged.port}"


def repo_arn(name):
    return f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{name}"


def user(barged, name, *statements):
    iam = barged.client("iam")
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
            *statements]}))
    return iam.create_access_key(UserName=name)["AccessKey"]


@pytest.fixture
def setup(tmp_path):
    b = start(tmp_path, *FAST_GC)
    admin = Registry(b)
    layout = str(tmp_path / "busybox-oci")
    ociimage.busybox_image(layout)
    for repo in ("app", "other"):
        admin.ecr.create_repository(repositoryName=repo)
        admin.push(layout, repo, "v1")
    yield b, admin, layout, tmp_path
    b.stop()


def test_pull_needs_batch_get_image_and_layer_download(setup):
    b, admin, layout, tmp = setup
    reader = UserRegistry(b, user(b, "reader", {"Effect": "Allow", "Action": PULL,
                                                 "Resource": repo_arn("app")}))
    reader.pull("app:v1", str(tmp / "got"))
    p = reader.pull("other:v1", str(tmp / "nope"), check=False)
    assert p.returncode != 0 and "denied" in p.stderr.lower(), p.stderr
    st, _, body = reader.call("GET", "/v2/other/manifests/v1")
    err = json.loads(body)["errors"][0]
    assert st == 403 and err["code"] == "DENIED"
    assert err["message"].startswith(
        f"User: arn:aws:iam::{ACCOUNT}:user/reader is not authorized to perform: "
        f"ecr:BatchGetImage on resource: {repo_arn('other')}")
    # Pulling is not pushing, nor listing.
    p = reader.push(layout, "app", "v2", check=False)
    assert p.returncode != 0
    st, _, body = reader.put_manifest("app", "v2", b"{}")
    assert st == 403 and "ecr:PutImage" in json.loads(body)["errors"][0]["message"]
    st, _, body = reader.call("GET", "/v2/_catalog")
    assert st == 403 and "ecr:DescribeRepositories" in json.loads(body)["errors"][0]["message"]
    st, _, _ = reader.call("GET", "/v2/app/tags/list")
    assert st == 403

    # Only the layer download: the manifest is refused, the blobs are not.
    half = UserRegistry(b, user(b, "half", {"Effect": "Allow",
                                             "Action": "ecr:GetDownloadUrlForLayer",
                                             "Resource": repo_arn("app")}))
    st, _, _ = half.call("GET", "/v2/app/manifests/v1",
                         headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    assert st == 403
    st, _, body = admin.call("GET", "/v2/app/manifests/v1",
                             headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    layer = json.loads(body)["layers"][0]["digest"]
    assert half.call("GET", f"/v2/app/blobs/{layer}")[0] == 200
    assert half.call("HEAD", f"/v2/app/blobs/{layer}")[0] == 200
    assert half.call("GET", f"/v2/other/blobs/{layer}")[0] == 403


def test_push_needs_the_upload_actions_and_put_image(setup):
    b, admin, layout, tmp = setup
    key = user(b, "pusher", {"Effect": "Allow", "Action": PUSH + PULL,
                             "Resource": repo_arn("app")})
    pusher = UserRegistry(b, key)
    pusher.push(layout, "app", "v2")
    assert {i["imageTag"] for i in admin.ecr.list_images(repositoryName="app")["imageIds"]
            if "imageTag" in i} == {"v1", "v2"}
    p = pusher.push(layout, "other", "v2", check=False)
    assert p.returncode != 0 and "403" in p.stderr, p.stderr
    st, _, body = pusher.call("POST", "/v2/other/blobs/uploads/")
    assert st == 403 and "ecr:InitiateLayerUpload" in json.loads(body)["errors"][0]["message"]
    # A mount reads the repository it takes the blob from.
    st, _, body = admin.call("GET", "/v2/other/manifests/v1",
                             headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    layer = json.loads(body)["layers"][0]["digest"]
    st, _, body = pusher.call("POST", f"/v2/app/blobs/uploads/?mount={layer}&from=other")
    assert st == 403 and repo_arn("other") in json.loads(body)["errors"][0]["message"]

    # An explicit Deny wins, and a key pair is judged like its token.
    deny = {"Effect": "Deny", "Action": "ecr:PutImage", "Resource": repo_arn("app")}
    b.client("iam").put_user_policy(UserName="pusher", PolicyName="no-v3", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [deny]}))
    p = pusher.push(layout, "app", "v3", check=False)
    assert p.returncode != 0
    pair = pusher.basic(key["AccessKeyId"], key["SecretAccessKey"])
    st, _, body = pusher.call("PUT", "/v2/app/manifests/v3", body=b"{}", auth=pair,
                              headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert st == 403 and "explicit deny" in json.loads(body)["errors"][0]["message"]
    assert pusher.call("GET", "/v2/app/tags/list", auth=pair)[0] == 403
    assert pusher.call("GET", "/v2/app/manifests/v1", auth=pair)[0] == 200
    # The admin's token still does everything.
    admin.push(layout, "other", "v3")
    st, _, _ = admin.call("GET", "/v2/_catalog")
    assert st == 200
