"""IAM groups: CreateGroup, GetGroup, ListGroups, DeleteGroup, membership
(AddUserToGroup, RemoveUserFromGroup, ListGroupsForUser) and the group's
inline and managed policies, which apply to its members' requests."""
import pytest
from botocore.exceptions import ClientError

from conftest import REGION, error_code
from test_iam_policies import allow, client, policy

ACCOUNT = "000000000000"


def refused(call, code):
    with pytest.raises(ClientError) as e:
        call()
    assert error_code(e) == code, e.value.response
    return e.value.response["Error"]["Message"]


def test_groups_and_membership(barged):
    iam = barged.client("iam")
    g = iam.create_group(GroupName="devs", Path="/eng/")["Group"]
    assert g["Arn"] == f"arn:aws:iam::{ACCOUNT}:group/eng/devs"
    assert g["GroupId"].startswith("AGPA") and g["Path"] == "/eng/"
    refused(lambda: iam.create_group(GroupName="DEVS"), "EntityAlreadyExists")
    refused(lambda: iam.create_group(GroupName="bad name"), "ValidationError")
    iam.create_group(GroupName="ops")
    assert [x["GroupName"] for x in iam.list_groups()["Groups"]] == ["devs", "ops"]
    assert [x["GroupName"] for x in iam.list_groups(PathPrefix="/eng/")["Groups"]] == ["devs"]
    refused(lambda: iam.get_group(GroupName="nope"), "NoSuchEntity")

    iam.create_user(UserName="ann")
    iam.create_user(UserName="bob")
    iam.add_user_to_group(GroupName="devs", UserName="ann")
    iam.add_user_to_group(GroupName="devs", UserName="ann")  # already there: fine
    iam.add_user_to_group(GroupName="ops", UserName="ann")
    iam.add_user_to_group(GroupName="devs", UserName="bob")
    refused(lambda: iam.add_user_to_group(GroupName="devs", UserName="carl"), "NoSuchEntity")
    refused(lambda: iam.add_user_to_group(GroupName="nope", UserName="ann"), "NoSuchEntity")
    got = iam.get_group(GroupName="devs")
    assert got["Group"]["GroupId"] == g["GroupId"]
    assert sorted(u["UserName"] for u in got["Users"]) == ["ann", "bob"]
    assert sorted(x["GroupName"] for x in
                  iam.list_groups_for_user(UserName="ann")["Groups"]) == ["devs", "ops"]
    assert "_groups" not in iam.get_user(UserName="ann")["User"]

    # Neither a group with members nor a member of a group can be deleted.
    refused(lambda: iam.delete_group(GroupName="ops"), "DeleteConflict")
    refused(lambda: iam.delete_user(UserName="ann"), "DeleteConflict")
    iam.remove_user_from_group(GroupName="ops", UserName="ann")
    refused(lambda: iam.remove_user_from_group(GroupName="ops", UserName="ann"), "NoSuchEntity")
    assert [x["GroupName"] for x in
            iam.list_groups_for_user(UserName="ann")["Groups"]] == ["devs"]
    iam.delete_group(GroupName="ops")
    assert [x["GroupName"] for x in iam.list_groups()["Groups"]] == ["devs"]


def test_group_policies_apply_to_members(barged):
    iam = barged.client("iam")
    iam.create_group(GroupName="readers")
    iam.create_user(UserName="ann")
    key = iam.create_access_key(UserName="ann")["AccessKey"]
    ecs = client(barged, "ecs", key)
    ssm = client(barged, "ssm", key)
    barged.client("ssm").put_parameter(Name="/team/a", Value="1", Type="String")

    refused(lambda: ecs.list_clusters(), "AccessDeniedException")
    # Inline: applies once the user is a member, and no longer once removed.
    iam.put_group_policy(GroupName="readers", PolicyName="ecs-read",
                         PolicyDocument=policy(allow("ecs:List*")))
    assert iam.list_group_policies(GroupName="readers")["PolicyNames"] == ["ecs-read"]
    got = iam.get_group_policy(GroupName="readers", PolicyName="ecs-read")
    assert got["GroupName"] == "readers" and got["PolicyDocument"]["Statement"]
    refused(lambda: ecs.list_clusters(), "AccessDeniedException")
    iam.add_user_to_group(GroupName="readers", UserName="ann")
    ecs.list_clusters()
    msg = refused(lambda: ecs.create_cluster(clusterName="x"), "AccessDeniedException")
    assert msg.startswith(f"User: arn:aws:iam::{ACCOUNT}:user/ann is not authorized")

    # Managed: attached to the group.
    arn = iam.create_policy(PolicyName="team-params", PolicyDocument=policy(
        allow("ssm:GetParameter", f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/team/*")))[
        "Policy"]["Arn"]
    refused(lambda: ssm.get_parameter(Name="/team/a"), "AccessDeniedException")
    iam.attach_group_policy(GroupName="readers", PolicyArn=arn)
    assert iam.list_attached_group_policies(GroupName="readers")["AttachedPolicies"] == [
        {"PolicyName": "team-params", "PolicyArn": arn}]
    assert ssm.get_parameter(Name="/team/a")["Parameter"]["Value"] == "1"
    assert iam.get_policy(PolicyArn=arn)["Policy"]["AttachmentCount"] == 1

    # A Deny in a group wins over an Allow of the user's own.
    iam.put_user_policy(UserName="ann", PolicyName="own", PolicyDocument=policy(
        allow("ecs:CreateCluster")))
    ecs.create_cluster(clusterName="mine")
    iam.put_group_policy(GroupName="readers", PolicyName="no-create", PolicyDocument=policy(
        {"Effect": "Deny", "Action": "ecs:CreateCluster", "Resource": "*"}))
    msg = refused(lambda: ecs.create_cluster(clusterName="again"), "AccessDeniedException")
    assert "explicit deny" in msg

    # A group with policies cannot be deleted; without them (and members) it can.
    iam.remove_user_from_group(GroupName="readers", UserName="ann")
    refused(lambda: ssm.get_parameter(Name="/team/a"), "AccessDeniedException")
    ecs.create_cluster(clusterName="again")
    refused(lambda: iam.delete_group(GroupName="readers"), "DeleteConflict")
    iam.detach_group_policy(GroupName="readers", PolicyArn=arn)
    refused(lambda: iam.detach_group_policy(GroupName="readers", PolicyArn=arn), "NoSuchEntity")
    for name in ("ecs-read", "no-create"):
        iam.delete_group_policy(GroupName="readers", PolicyName=name)
    refused(lambda: iam.delete_group_policy(GroupName="readers", PolicyName="ecs-read"),
            "NoSuchEntity")
    iam.delete_group(GroupName="readers")


def test_group_operations_are_authorized_on_the_group_arn(barged):
    iam = barged.client("iam")
    iam.create_group(GroupName="devs")
    iam.create_group(GroupName="admins")
    iam.create_user(UserName="lead")
    iam.create_user(UserName="new")
    iam.put_user_policy(UserName="lead", PolicyName="p", PolicyDocument=policy(
        allow("iam:AddUserToGroup", f"arn:aws:iam::{ACCOUNT}:group/devs")))
    lead = client(barged, "iam", iam.create_access_key(UserName="lead")["AccessKey"])
    lead.add_user_to_group(GroupName="devs", UserName="new")
    with pytest.raises(ClientError) as e:
        lead.add_user_to_group(GroupName="admins", UserName="lead")
    assert error_code(e) == "AccessDenied"
    assert f"arn:aws:iam::{ACCOUNT}:group/admins" in e.value.response["Error"]["Message"]
    # As IAM answers: 403 over the query protocol (JSON services say 400).
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(ClientError) as e:
        client(barged, "ecs", iam.create_access_key(UserName="new")["AccessKey"]).list_clusters()
    assert error_code(e) == "AccessDeniedException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
