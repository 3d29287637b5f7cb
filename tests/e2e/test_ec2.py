"""The EC2 Describe calls CDK's context lookups make, driven with boto3: the
default VPC barged shows in each region, the VPCs, subnets, route tables and
security groups a CloudFormation stack recorded, Filters, and EC2's errors in
EC2's XML error format."""
import json
import time

import boto3
import pytest
from botocore.exceptions import ClientError

from conftest import error_code, error_message

STACK = {
    "Resources": {
        "Vpc": {"Type": "AWS::EC2::VPC", "Properties": {
            "CidrBlock": "10.20.0.0/16", "Tags": [{"Key": "Name", "Value": "app-vpc"}]}},
        "Igw": {"Type": "AWS::EC2::InternetGateway"},
        "Public": {"Type": "AWS::EC2::Subnet", "Properties": {
            "VpcId": {"Ref": "Vpc"}, "CidrBlock": "10.20.0.0/24",
            "AvailabilityZone": {"Fn::Select": [0, {"Fn::GetAZs": ""}]},
            "MapPublicIpOnLaunch": True,
            "Tags": [{"Key": "aws-cdk:subnet-type", "Value": "Public"},
                     {"Key": "aws-cdk:subnet-name", "Value": "Ingress"}]}},
        "Private": {"Type": "AWS::EC2::Subnet", "Properties": {
            "VpcId": {"Ref": "Vpc"}, "CidrBlock": "10.20.1.0/24",
            "Tags": [{"Key": "aws-cdk:subnet-type", "Value": "Isolated"}]}},
        "PublicRt": {"Type": "AWS::EC2::RouteTable", "Properties": {"VpcId": {"Ref": "Vpc"}}},
        "PublicDefault": {"Type": "AWS::EC2::Route", "Properties": {
            "RouteTableId": {"Ref": "PublicRt"}, "DestinationCidrBlock": "0.0.0.0/0",
            "GatewayId": {"Ref": "Igw"}}},
        "PublicAssoc": {"Type": "AWS::EC2::SubnetRouteTableAssociation", "Properties": {
            "RouteTableId": {"Ref": "PublicRt"}, "SubnetId": {"Ref": "Public"}}},
        "Web": {"Type": "AWS::EC2::SecurityGroup", "Properties": {
            "GroupName": "web", "GroupDescription": "web servers", "VpcId": {"Ref": "Vpc"},
            "SecurityGroupIngress": [{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
                                      "CidrIp": "0.0.0.0/0"}]}},
    }
}


def make_stack(barged, name="net", template=STACK):
    cfn = barged.client("cloudformation")
    cfn.create_stack(StackName=name, TemplateBody=json.dumps(template))
    end = time.monotonic() + 60
    while True:
        st = cfn.describe_stacks(StackName=name)["Stacks"][0]
        if not st["StackStatus"].endswith("_IN_PROGRESS") or time.monotonic() > end:
            break
        time.sleep(0.2)
    assert st["StackStatus"] == "CREATE_COMPLETE", st
    return {r["LogicalResourceId"]: r["PhysicalResourceId"]
            for r in cfn.describe_stack_resources(StackName=name)["StackResources"]}


def test_default_vpc(barged):
    ec2 = barged.client("ec2")
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
    assert len(vpcs) == 1
    vpc = vpcs[0]
    assert vpc["IsDefault"] and vpc["CidrBlock"] == "172.31.0.0/16"
    assert vpc["VpcId"].startswith("vpc-") and vpc["State"] == "available"
    # The same VPC every time: CDK caches lookups in cdk.context.json.
    assert ec2.describe_vpcs(VpcIds=[vpc["VpcId"]])["Vpcs"][0]["VpcId"] == vpc["VpcId"]

    subnets = ec2.describe_subnets(
        Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["Subnets"]
    zones = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]]
    assert sorted(s["AvailabilityZone"] for s in subnets) == sorted(zones)
    assert all(s["DefaultForAz"] and s["MapPublicIpOnLaunch"] for s in subnets)
    assert all(z.startswith(ec2.meta.region_name) for z in zones)

    tables = ec2.describe_route_tables(
        Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["RouteTables"]
    assert len(tables) == 1
    assert tables[0]["Associations"][0]["Main"] is True
    assert any(r.get("GatewayId", "").startswith("igw-") and
               r["DestinationCidrBlock"] == "0.0.0.0/0" for r in tables[0]["Routes"])

    groups = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]},
                 {"Name": "group-name", "Values": ["default"]}])["SecurityGroups"]
    assert len(groups) == 1 and groups[0]["GroupId"].startswith("sg-")
    assert ec2.describe_vpn_gateways(
        Filters=[{"Name": "attachment.vpc-id", "Values": [vpc["VpcId"]]}])["VpnGateways"] == []

    regions = [r["RegionName"] for r in ec2.describe_regions()["Regions"]]
    assert ec2.meta.region_name in regions


def test_default_vpc_per_region(barged):
    east = barged.client("ec2")
    other = "eu-west-3" if east.meta.region_name != "eu-west-3" else "eu-west-1"
    west = boto3.client("ec2", endpoint_url=barged.endpoint, region_name=other,
                        aws_access_key_id=barged.access_key,
                        aws_secret_access_key=barged.secret_key)
    v1 = east.describe_vpcs()["Vpcs"][0]
    v2 = west.describe_vpcs()["Vpcs"][0]
    assert v1["VpcId"] != v2["VpcId"]
    zones = west.describe_availability_zones()["AvailabilityZones"]
    assert all(z["RegionName"] == other for z in zones)


def test_stack_vpc_visible_with_filters(barged):
    ids = make_stack(barged)
    ec2 = barged.client("ec2")
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["app-vpc"]}])["Vpcs"]
    assert [v["VpcId"] for v in vpcs] == [ids["Vpc"]]
    assert vpcs[0]["CidrBlock"] == "10.20.0.0/16" and not vpcs[0]["IsDefault"]
    tags = {t["Key"]: t["Value"] for t in vpcs[0]["Tags"]}
    assert tags["aws:cloudformation:stack-name"] == "net"
    assert ec2.describe_vpcs(Filters=[{"Name": "tag-key", "Values": ["Name"]}])["Vpcs"] == vpcs
    assert len(ec2.describe_vpcs()["Vpcs"]) == 2
    assert ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["app-*"]}])["Vpcs"] == vpcs

    subnets = ec2.describe_subnets(
        Filters=[{"Name": "vpc-id", "Values": [ids["Vpc"]]}])["Subnets"]
    by_id = {s["SubnetId"]: s for s in subnets}
    assert set(by_id) == {ids["Public"], ids["Private"]}
    pub = by_id[ids["Public"]]
    assert pub["MapPublicIpOnLaunch"] and pub["CidrBlock"] == "10.20.0.0/24"
    assert pub["AvailabilityZone"].startswith(ec2.meta.region_name)
    assert {"Key": "aws-cdk:subnet-name", "Value": "Ingress"} in pub["Tags"]
    only = ec2.describe_subnets(SubnetIds=[ids["Private"]])["Subnets"]
    assert [s["SubnetId"] for s in only] == [ids["Private"]]

    assoc = ec2.describe_route_tables(
        Filters=[{"Name": "association.subnet-id", "Values": [ids["Public"]]}])["RouteTables"]
    assert [t["RouteTableId"] for t in assoc] == [ids["PublicRt"]]
    routes = {r["DestinationCidrBlock"]: r.get("GatewayId") for r in assoc[0]["Routes"]}
    assert routes == {"10.20.0.0/16": "local", "0.0.0.0/0": ids["Igw"]}
    tables = ec2.describe_route_tables(
        Filters=[{"Name": "vpc-id", "Values": [ids["Vpc"]]}])["RouteTables"]
    main = [t for t in tables if any(a["Main"] for a in t["Associations"])]
    assert len(tables) == 2 and len(main) == 1

    web = ec2.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": ["web"]}])["SecurityGroups"]
    assert [g["GroupId"] for g in web] == [ids["Web"]]
    assert web[0]["VpcId"] == ids["Vpc"] and web[0]["Description"] == "web servers"
    perm = web[0]["IpPermissions"][0]
    assert (perm["IpProtocol"], perm["FromPort"], perm["ToPort"]) == ("tcp", 443, 443)
    assert perm["IpRanges"] == [{"CidrIp": "0.0.0.0/0"}]
    assert ec2.describe_security_groups(GroupIds=[ids["Web"]])["SecurityGroups"] == web
    assert ec2.describe_security_groups(GroupNames=["web"])["SecurityGroups"] == web

    # Once the stack is gone, so is what it recorded.
    cfn = barged.client("cloudformation")
    cfn.delete_stack(StackName="net")
    end = time.monotonic() + 60
    while ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["app-vpc"]}])["Vpcs"]:
        assert time.monotonic() < end
        time.sleep(0.2)


def test_parts_from_another_stack(barged):
    """A stack that adds a subnet, a route and a rule to another stack's VPC,
    route table and security group."""
    ids = make_stack(barged)
    more = make_stack(barged, "more", {"Resources": {
        "Extra": {"Type": "AWS::EC2::Subnet", "Properties": {
            "VpcId": ids["Vpc"], "CidrBlock": "10.20.9.0/24"}},
        "Peer": {"Type": "AWS::EC2::Route", "Properties": {
            "RouteTableId": ids["PublicRt"], "DestinationCidrBlock": "192.168.0.0/16",
            "GatewayId": ids["Igw"]}},
        "Ssh": {"Type": "AWS::EC2::SecurityGroupIngress", "Properties": {
            "GroupId": ids["Web"], "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
            "CidrIp": "10.0.0.0/8"}}}})
    ec2 = barged.client("ec2")
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [ids["Vpc"]]}])
    assert more["Extra"] in [s["SubnetId"] for s in subnets["Subnets"]]
    table = ec2.describe_route_tables(RouteTableIds=[ids["PublicRt"]])["RouteTables"][0]
    assert "192.168.0.0/16" in [r.get("DestinationCidrBlock") for r in table["Routes"]]
    web = ec2.describe_security_groups(GroupIds=[ids["Web"]])["SecurityGroups"][0]
    assert sorted(p["FromPort"] for p in web["IpPermissions"]) == [22, 443]


def test_errors(barged):
    ec2 = barged.client("ec2")
    with pytest.raises(ClientError) as e:
        ec2.describe_vpcs(VpcIds=["vpc-0123456789abcdef0"])
    assert error_code(e) == "InvalidVpcID.NotFound"
    assert "'vpc-0123456789abcdef0'" in error_message(e)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # botocore's EC2 parser reads the request id from EC2's <Response><Errors> form.
    assert e.value.response["ResponseMetadata"]["RequestId"]
    with pytest.raises(ClientError) as e:
        ec2.describe_subnets(SubnetIds=["subnet-0000000000000000f"])
    assert error_code(e) == "InvalidSubnetID.NotFound"
    with pytest.raises(ClientError) as e:
        ec2.describe_vpcs(VpcIds=["nope"])
    assert error_code(e) == "InvalidVpcID.Malformed"
    with pytest.raises(ClientError) as e:
        ec2.describe_route_tables(RouteTableIds=["rtb-00000000000000000"])
    assert error_code(e) == "InvalidRouteTableID.NotFound"
    with pytest.raises(ClientError) as e:
        ec2.describe_security_groups(GroupNames=["nosuch"])
    assert error_code(e) == "InvalidGroup.NotFound"
    assert "'nosuch'" in error_message(e)
    with pytest.raises(ClientError) as e:
        ec2.describe_vpcs(Filters=[{"Name": "colour", "Values": ["red"]}])
    assert error_code(e) == "InvalidParameterValue"
    assert "'colour'" in error_message(e)
    with pytest.raises(ClientError) as e:
        ec2.describe_availability_zones(ZoneNames=["mars-1a"])
    assert error_code(e) == "InvalidParameterValue" and "mars-1a" in error_message(e)
    with pytest.raises(ClientError) as e:
        ec2.describe_vpcs(DryRun=True)
    assert error_code(e) == "DryRunOperation"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412


def test_error_xml_format(barged):
    """EC2 errors are <Response><Errors><Error>, with RequestID, not the
    <ErrorResponse> of the other query services."""
    import urllib.request
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    ec2 = barged.client("ec2")
    body = "Action=DescribeVpcs&Version=2016-11-15&VpcId.1=vpc-0123456789abcdef0"
    req = AWSRequest(method="POST", url=barged.endpoint + "/", data=body,
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    SigV4Auth(Credentials(barged.access_key, barged.secret_key), "ec2",
              ec2.meta.region_name).add_auth(req)
    r = urllib.request.Request(req.url, data=body.encode(), headers=dict(req.headers),
                               method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(r)
    text = e.value.read().decode()
    assert e.value.code == 400
    assert "<Response><Errors><Error><Code>InvalidVpcID.NotFound</Code>" in text
    assert "<RequestID>" in text and "ErrorResponse" not in text


def test_iam_rights(barged):
    """An IAM user needs ec2:Describe* rights; without them EC2 refuses with
    UnauthorizedOperation (403)."""
    iam = barged.client("iam")
    iam.create_user(UserName="reader")
    iam.put_user_policy(UserName="reader", PolicyName="p", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "ec2:DescribeVpcs", "Resource": "*"}]}))
    key = iam.create_access_key(UserName="reader")["AccessKey"]
    ec2 = boto3.client("ec2", endpoint_url=barged.endpoint, region_name="us-east-1",
                       aws_access_key_id=key["AccessKeyId"],
                       aws_secret_access_key=key["SecretAccessKey"])
    assert len(ec2.describe_vpcs()["Vpcs"]) == 1
    with pytest.raises(ClientError) as e:
        ec2.describe_subnets()
    assert error_code(e) == "UnauthorizedOperation"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
