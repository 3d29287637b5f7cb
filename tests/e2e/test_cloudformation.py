"""CloudFormation served by barged, driven with boto3: stacks from JSON and
YAML templates (parameters, conditions, mappings, intrinsic functions,
outputs), asynchronous operations with events, rollback when a resource
cannot be made, change sets, exports and imports, templates from barged's
S3, and deletion that removes what a stack made."""
import json
import os
import time

import pytest
from botocore.exceptions import ClientError

from conftest import error_code, error_message


def wait_stack(cfn, name, deadline=60):
    """Waits for the stack to leave *_IN_PROGRESS; returns its description."""
    end = time.monotonic() + deadline
    while True:
        st = cfn.describe_stacks(StackName=name)["Stacks"][0]
        if not st["StackStatus"].endswith("_IN_PROGRESS") or time.monotonic() > end:
            return st
        time.sleep(0.2)


def events(cfn, name):
    return cfn.describe_stack_events(StackName=name)["StackEvents"]


def failures(cfn, name):
    """The failed resources' events, for assertion messages."""
    return [(e["LogicalResourceId"], e["ResourceStatus"], e.get("ResourceStatusReason"))
            for e in events(cfn, name) if e["ResourceStatus"].endswith("_FAILED")]


def outputs(stack):
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


YAML = """
AWSTemplateFormatVersion: '2010-09-09'
Description: parameters, conditions and functions
Parameters:
  Env:
    Type: String
    Default: dev
    AllowedValues: [dev, prod]
  Retention:
    Type: Number
    Default: 7
  Secret:
    Type: String
    NoEcho: true
    Default: hunter2
  Names:
    Type: CommaDelimitedList
    Default: "a,b,c"
Mappings:
  Sizes:
    dev: {Count: "1"}
    prod: {Count: "3"}
Conditions:
  IsProd: !Equals [!Ref Env, prod]
  NotProd: !Not [!Condition IsProd]
  Both: !And [!Condition NotProd, !Equals [!Ref Retention, 7]]
Resources:
  Group:
    Type: AWS::Logs::LogGroup
    Properties:
      LogGroupName: !Sub "/cfn/${AWS::StackName}/${Env}"
      RetentionInDays: !Ref Retention
  ProdOnly:
    Type: AWS::Logs::LogGroup
    Condition: IsProd
    Properties:
      LogGroupName: !Sub "/cfn/${AWS::StackName}/prod-only"
  Param:
    Type: AWS::SSM::Parameter
    DependsOn: Group
    Properties:
      Name: !Join ["/", ["", !Ref "AWS::StackName", !Select [1, !Ref Names]]]
      Type: String
      Value: !Sub
        - "${G}|${Arn}|${Count}|${Az}|${B64}"
        - G: !Ref Group
          Arn: !GetAtt Group.Arn
          Count: !FindInMap [Sizes, !Ref Env, Count]
          Az: !Select [0, !GetAZs ""]
          B64: !Base64 hi
      Description: !If [IsProd, production, !Ref "AWS::NoValue"]
Outputs:
  GroupName:
    Value: !Ref Group
  ParamValue:
    Value: !GetAtt Param.Value
  Split:
    Value: !Select [2, !Split [",", "x,y,z"]]
  Both:
    Value: !If [Both, yes, no]
  Account:
    Value: !Sub "${AWS::AccountId}:${AWS::Region}:${AWS::Partition}"
  ProdGroup:
    Condition: IsProd
    Value: !Ref ProdOnly
"""


def test_yaml_template_features(barged):
    cfn = barged.client("cloudformation")
    logs = barged.client("logs")
    ssm = barged.client("ssm")
    sid = cfn.create_stack(StackName="feat", TemplateBody=YAML, Parameters=[
        {"ParameterKey": "Secret", "ParameterValue": "pa55-Word-9"}])["StackId"]
    assert sid.startswith("arn:aws:cloudformation:us-east-1:000000000000:stack/feat/")
    st = wait_stack(cfn, "feat")
    assert st["StackStatus"] == "CREATE_COMPLETE", events(cfn, "feat")
    assert st["Description"] == "parameters, conditions and functions"
    params = {p["ParameterKey"]: p["ParameterValue"] for p in st["Parameters"]}
    assert params == {"Env": "dev", "Retention": "7", "Secret": "****", "Names": "a,b,c"}
    # A NoEcho value is kept sealed in the store.
    for name in os.listdir(barged.data_dir):
        if name.startswith("barge.db"):
            with open(os.path.join(barged.data_dir, name), "rb") as f:
                assert b"pa55-Word-9" not in f.read(), name
    out = outputs(st)
    assert out["GroupName"] == "/cfn/feat/dev"
    assert out["Split"] == "z" and out["Both"] == "yes"
    assert out["Account"] == "000000000000:us-east-1:aws"
    assert "ProdGroup" not in out
    assert out["ParamValue"] == ("/cfn/feat/dev|arn:aws:logs:us-east-1:000000000000:log-group:"
                                 "/cfn/feat/dev:*|1|us-east-1a|aGk=")
    # The resources are real.
    groups = logs.describe_log_groups(logGroupNamePrefix="/cfn/feat/")["logGroups"]
    assert [(g["logGroupName"], g.get("retentionInDays")) for g in groups] == [
        ("/cfn/feat/dev", 7)]
    p = ssm.get_parameter(Name="/feat/b")["Parameter"]
    assert p["Value"] == out["ParamValue"]
    res = {r["LogicalResourceId"]: r for r in
           cfn.describe_stack_resources(StackName="feat")["StackResources"]}
    assert set(res) == {"Group", "Param"}
    assert res["Group"]["PhysicalResourceId"] == "/cfn/feat/dev"
    assert res["Param"]["ResourceStatus"] == "CREATE_COMPLETE"
    summaries = cfn.list_stack_resources(StackName="feat")["StackResourceSummaries"]
    assert {s["LogicalResourceId"] for s in summaries} == {"Group", "Param"}
    one = cfn.describe_stack_resource(StackName="feat", LogicalResourceId="Param")
    assert one["StackResourceDetail"]["PhysicalResourceId"] == "/feat/b"
    # Events: newest first, the stack's own first and last.
    ev = events(cfn, "feat")
    assert (ev[0]["LogicalResourceId"], ev[0]["ResourceStatus"]) == ("feat", "CREATE_COMPLETE")
    assert (ev[-1]["ResourceStatus"], ev[-1]["ResourceStatusReason"]) == (
        "CREATE_IN_PROGRESS", "User Initiated")
    order = [e["LogicalResourceId"] for e in reversed(ev)
             if e["ResourceStatus"] == "CREATE_COMPLETE"]
    assert order == ["Group", "Param", "feat"]
    assert cfn.get_template(StackName="feat")["TemplateBody"] == YAML

    # An update with other parameters: the Condition's resource appears, the
    # changed ones are updated in place.
    cfn.update_stack(StackName="feat", UsePreviousTemplate=True,
                     Parameters=[{"ParameterKey": "Env", "ParameterValue": "prod"},
                                 {"ParameterKey": "Retention", "UsePreviousValue": True},
                                 {"ParameterKey": "Secret", "UsePreviousValue": True}])
    st = wait_stack(cfn, "feat")
    assert st["StackStatus"] == "UPDATE_COMPLETE", events(cfn, "feat")
    out = outputs(st)
    assert out["ProdGroup"] == "/cfn/feat/prod-only" and out["Both"] == "no"
    names = sorted(g["logGroupName"] for g in
                   logs.describe_log_groups(logGroupNamePrefix="/cfn/feat/")["logGroups"])
    assert names == ["/cfn/feat/prod", "/cfn/feat/prod-only"]
    with pytest.raises(ClientError) as e:
        cfn.update_stack(StackName="feat", UsePreviousTemplate=True,
                         Parameters=[{"ParameterKey": "Env", "UsePreviousValue": True},
                                     {"ParameterKey": "Secret", "ParameterValue": "pa55-Word-9"}])
    assert error_message(e) == "No updates are to be performed."

    cfn.delete_stack(StackName="feat")
    st = wait_stack(cfn, sid)
    assert st["StackStatus"] == "DELETE_COMPLETE"
    assert logs.describe_log_groups(logGroupNamePrefix="/cfn/feat/")["logGroups"] == []
    with pytest.raises(ClientError) as e:
        ssm.get_parameter(Name="/feat/b")
    assert error_code(e) == "ParameterNotFound"
    with pytest.raises(ClientError) as e:
        cfn.describe_stacks(StackName="feat")
    assert error_message(e) == "Stack with id feat does not exist"
    listed = cfn.list_stacks(StackStatusFilter=["DELETE_COMPLETE"])["StackSummaries"]
    assert [s["StackId"] for s in listed] == [sid]


def test_rollback_on_unsupported_type(barged):
    cfn = barged.client("cloudformation")
    logs = barged.client("logs")
    tpl = {"Resources": {
        "First": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": "/rb/first"}},
        "Queue": {"Type": "AWS::SQS::Queue", "DependsOn": "First"}}}
    cfn.create_stack(StackName="rb", TemplateBody=json.dumps(tpl))
    st = wait_stack(cfn, "rb")
    assert st["StackStatus"] == "ROLLBACK_COMPLETE"
    assert st["StackStatusReason"].startswith("The following resource(s) failed to create: [Queue]")
    failed = [e for e in events(cfn, "rb") if e["ResourceStatus"] == "CREATE_FAILED"]
    assert failed[0]["LogicalResourceId"] == "Queue"
    assert failed[0]["ResourceStatusReason"] == \
        "Resource type 'AWS::SQS::Queue' is not supported by barge"
    # What was made before the failure is gone again.
    assert logs.describe_log_groups(logGroupNamePrefix="/rb/")["logGroups"] == []
    with pytest.raises(ClientError) as e:
        cfn.update_stack(StackName="rb", TemplateBody=json.dumps(tpl))
    assert "ROLLBACK_COMPLETE state and can not be updated" in error_message(e)
    cfn.delete_stack(StackName="rb")
    assert wait_stack(cfn, st["StackId"])["StackStatus"] == "DELETE_COMPLETE"


def test_update_rollback_restores_the_previous_state(barged):
    cfn = barged.client("cloudformation")
    ssm = barged.client("ssm")
    tpl = {"Resources": {"P": {"Type": "AWS::SSM::Parameter", "Properties": {
        "Name": "/ur/p", "Type": "String", "Value": "one"}}}}
    cfn.create_stack(StackName="ur", TemplateBody=json.dumps(tpl))
    assert wait_stack(cfn, "ur")["StackStatus"] == "CREATE_COMPLETE"
    tpl["Resources"]["P"]["Properties"]["Value"] = "two"
    tpl["Resources"]["Bad"] = {"Type": "AWS::Nope::Thing", "DependsOn": "P"}
    cfn.update_stack(StackName="ur", TemplateBody=json.dumps(tpl))
    st = wait_stack(cfn, "ur")
    assert st["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE", events(cfn, "ur")
    assert ssm.get_parameter(Name="/ur/p")["Parameter"]["Value"] == "one"
    res = cfn.describe_stack_resources(StackName="ur")["StackResources"]
    assert [r["LogicalResourceId"] for r in res] == ["P"]
    # The stack can be updated again after an update rolled back.
    del tpl["Resources"]["Bad"]
    cfn.update_stack(StackName="ur", TemplateBody=json.dumps(tpl))
    assert wait_stack(cfn, "ur")["StackStatus"] == "UPDATE_COMPLETE"
    assert ssm.get_parameter(Name="/ur/p")["Parameter"]["Value"] == "two"


def test_validation_errors(barged):
    cfn = barged.client("cloudformation")
    cases = [
        ("{", "Template format error: JSON not well-formed. (line 1, column 1)"),
        ('{"Resources": {}}',
         "Template format error: At least one Resources member must be defined."),
        (json.dumps({"Resources": {"A": {"Type": "AWS::Logs::LogGroup", "Properties": {
            "LogGroupName": {"Ref": "Missing"}}}}}),
         "Template format error: Unresolved resource dependencies [Missing] in the Resources "
         "block of the template"),
        (json.dumps({"Resources": {
            "A": {"Type": "AWS::Logs::LogGroup", "DependsOn": "B"},
            "B": {"Type": "AWS::Logs::LogGroup", "DependsOn": "A"}}}),
         "Circular dependency between resources: [A, B]"),
        (json.dumps({"Parameters": {"X": {"Type": "String"}},
                     "Resources": {"A": {"Type": "AWS::Logs::LogGroup"}}}),
         "Parameters: [X] must have values"),
    ]
    for body, msg in cases:
        with pytest.raises(ClientError) as e:
            cfn.create_stack(StackName="bad", TemplateBody=body)
        assert (error_code(e), error_message(e)) == ("ValidationError", msg)
    with pytest.raises(ClientError) as e:
        cfn.create_stack(StackName="9bad", TemplateBody='{"Resources": {}}')
    assert "Member must satisfy regular expression pattern" in error_message(e)
    role = json.dumps({"Resources": {"R": {"Type": "AWS::IAM::Role", "Properties": {
        "RoleName": "named", "AssumeRolePolicyDocument": {}}}}})
    with pytest.raises(ClientError) as e:
        cfn.create_stack(StackName="iam", TemplateBody=role)
    assert error_code(e) == "InsufficientCapabilitiesException"
    assert error_message(e) == "Requires capabilities : [CAPABILITY_NAMED_IAM]"
    v = cfn.validate_template(TemplateBody=role)
    assert v["Capabilities"] == ["CAPABILITY_NAMED_IAM"]
    s = cfn.get_template_summary(TemplateBody=YAML)
    assert s["ResourceTypes"] == ["AWS::Logs::LogGroup", "AWS::SSM::Parameter"]
    decl = {p["ParameterKey"]: p for p in s["Parameters"]}
    assert decl["Env"]["DefaultValue"] == "dev" and decl["Secret"]["NoEcho"] is True
    assert decl["Env"]["ParameterConstraints"]["AllowedValues"] == ["dev", "prod"]
    with pytest.raises(ClientError) as e:
        cfn.describe_stacks(StackName="nope")
    assert error_message(e) == "Stack with id nope does not exist"


def test_change_sets(barged):
    cfn = barged.client("cloudformation")
    ssm = barged.client("ssm")
    tpl = {"Resources": {"P": {"Type": "AWS::SSM::Parameter", "Properties": {
        "Name": "/cs/p", "Type": "String", "Value": "v1"}}}}
    r = cfn.create_change_set(StackName="cs", ChangeSetName="first", ChangeSetType="CREATE",
                              TemplateBody=json.dumps(tpl))
    st = cfn.describe_stacks(StackName="cs")["Stacks"][0]
    assert st["StackStatus"] == "REVIEW_IN_PROGRESS"
    cs = cfn.describe_change_set(ChangeSetName=r["Id"])
    assert (cs["Status"], cs["ExecutionStatus"]) == ("CREATE_COMPLETE", "AVAILABLE")
    assert [(c["ResourceChange"]["Action"], c["ResourceChange"]["LogicalResourceId"])
            for c in cs["Changes"]] == [("Add", "P")]
    cfn.execute_change_set(ChangeSetName="first", StackName="cs")
    assert wait_stack(cfn, "cs")["StackStatus"] == "CREATE_COMPLETE"
    assert ssm.get_parameter(Name="/cs/p")["Parameter"]["Value"] == "v1"
    assert cfn.describe_change_set(ChangeSetName=r["Id"])["ExecutionStatus"] == \
        "EXECUTE_COMPLETE"

    # A change set with nothing to change fails as AWS's does.
    cfn.create_change_set(StackName="cs", ChangeSetName="same", TemplateBody=json.dumps(tpl))
    same = cfn.describe_change_set(StackName="cs", ChangeSetName="same")
    assert same["Status"] == "FAILED"
    assert same["StatusReason"].startswith("The submitted information didn't contain changes")
    cfn.delete_change_set(StackName="cs", ChangeSetName="same")

    tpl["Resources"]["P"]["Properties"]["Value"] = "v2"
    tpl["Resources"]["Q"] = {"Type": "AWS::SSM::Parameter", "Properties": {
        "Name": "/cs/q", "Type": "String", "Value": {"Ref": "P"}}}
    cfn.create_change_set(StackName="cs", ChangeSetName="second", TemplateBody=json.dumps(tpl))
    cs = cfn.describe_change_set(StackName="cs", ChangeSetName="second")
    assert sorted((c["ResourceChange"]["Action"], c["ResourceChange"]["LogicalResourceId"])
                  for c in cs["Changes"]) == [("Add", "Q"), ("Modify", "P")]
    names = [s["ChangeSetName"] for s in cfn.list_change_sets(StackName="cs")["Summaries"]]
    assert sorted(names) == ["first", "second"]
    # Nothing happens before the change set is executed.
    assert ssm.get_parameter(Name="/cs/p")["Parameter"]["Value"] == "v1"
    cfn.execute_change_set(StackName="cs", ChangeSetName="second")
    assert wait_stack(cfn, "cs")["StackStatus"] == "UPDATE_COMPLETE"
    assert ssm.get_parameter(Name="/cs/p")["Parameter"]["Value"] == "v2"
    assert ssm.get_parameter(Name="/cs/q")["Parameter"]["Value"] == "/cs/p"
    with pytest.raises(ClientError) as e:
        cfn.describe_change_set(StackName="cs", ChangeSetName="gone")
    assert error_code(e) == "ChangeSetNotFound"


def test_exports_and_imports(barged):
    cfn = barged.client("cloudformation")
    ssm = barged.client("ssm")
    producer = {"Resources": {"G": {"Type": "AWS::Logs::LogGroup",
                                    "Properties": {"LogGroupName": "/exp/g"}}},
                "Outputs": {"Name": {"Value": {"Ref": "G"},
                                     "Export": {"Name": {"Fn::Sub": "${AWS::StackName}-group"}}}}}
    consumer = {"Resources": {"P": {"Type": "AWS::SSM::Parameter", "Properties": {
        "Name": "/exp/p", "Type": "String", "Value": {"Fn::ImportValue": "prod-group"}}}}}
    prod = cfn.create_stack(StackName="prod", TemplateBody=json.dumps(producer))["StackId"]
    assert wait_stack(cfn, "prod")["StackStatus"] == "CREATE_COMPLETE"
    exports = cfn.list_exports()["Exports"]
    assert [(x["Name"], x["Value"]) for x in exports] == [("prod-group", "/exp/g")]
    assert exports[0]["ExportingStackId"].split("/")[1] == "prod"
    cons = cfn.create_stack(StackName="cons", TemplateBody=json.dumps(consumer))["StackId"]
    assert wait_stack(cfn, "cons")["StackStatus"] == "CREATE_COMPLETE"
    assert ssm.get_parameter(Name="/exp/p")["Parameter"]["Value"] == "/exp/g"
    # An export in use cannot go away with its stack.
    cfn.delete_stack(StackName="prod")
    st = wait_stack(cfn, "prod")
    assert st["StackStatus"] == "DELETE_FAILED"
    assert st["StackStatusReason"] == "Export prod-group cannot be deleted as it is in use by cons"
    # A second stack cannot export the same name.
    cfn.create_stack(StackName="dup", TemplateBody=json.dumps(producer).replace(
        "/exp/g", "/exp/h").replace("${AWS::StackName}-group", "prod-group"))
    st = wait_stack(cfn, "dup")
    assert st["StackStatus"] == "ROLLBACK_COMPLETE"
    assert "Export with name prod-group is already exported by another stack" in \
        st["StackStatusReason"]
    cfn.delete_stack(StackName="cons")
    assert wait_stack(cfn, cons)["StackStatus"] == "DELETE_COMPLETE"
    cfn.delete_stack(StackName="prod")
    assert wait_stack(cfn, prod)["StackStatus"] == "DELETE_COMPLETE"
    assert cfn.list_exports()["Exports"] == []


def test_template_url_from_barged_s3(barged):
    cfn = barged.client("cloudformation")
    s3 = barged.client("s3")
    s3.create_bucket(Bucket="templates")
    tpl = "Resources:\n  B:\n    Type: AWS::S3::Bucket\n    Properties:\n      BucketName: made-by-cfn\n"
    s3.put_object(Bucket="templates", Key="dir/t.yaml", Body=tpl.encode())
    url = f"{barged.endpoint}/templates/dir/t.yaml"
    sid = cfn.create_stack(StackName="url", TemplateURL=url)["StackId"]
    st = wait_stack(cfn, "url")
    assert st["StackStatus"] == "CREATE_COMPLETE", events(cfn, "url")
    assert "made-by-cfn" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    with pytest.raises(ClientError) as e:
        cfn.create_stack(StackName="url2", TemplateURL=f"{barged.endpoint}/templates/missing")
    assert error_message(e).startswith("Error occurred while GetObject. S3 Error Code: NoSuchKey")
    cfn.delete_stack(StackName="url")
    assert wait_stack(cfn, sid)["StackStatus"] == "DELETE_COMPLETE"
    assert "made-by-cfn" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


ECS_APP = {
    "Parameters": {"Greeting": {"Type": "String", "Default": "hello"},
                   "Port": {"Type": "Number"},
                   "ImageParam": {"Type": "AWS::SSM::Parameter::Value<String>",
                                  "Default": "/app/image"}},
    "Resources": {
        "Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.0.0.0/16"}},
        "Subnet": {"Type": "AWS::EC2::Subnet", "Properties": {
            "VpcId": {"Ref": "Vpc"}, "CidrBlock": "10.0.0.0/24",
            "AvailabilityZone": {"Fn::Select": [0, {"Fn::GetAZs": ""}]}}},
        "Sg": {"Type": "AWS::EC2::SecurityGroup", "Properties": {
            "GroupDescription": "web", "VpcId": {"Ref": "Vpc"}}},
        "Cluster": {"Type": "AWS::ECS::Cluster"},
        "Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {"RetentionInDays": 1}},
        "ExecRole": {"Type": "AWS::IAM::Role", "Properties": {
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                "Action": "sts:AssumeRole"}]},
            "ManagedPolicyArns": [
                "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"]}},
        "ExecPolicy": {"Type": "AWS::IAM::Policy", "Properties": {
            "PolicyName": "read-ssm", "Roles": [{"Ref": "ExecRole"}],
            "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Action": "ssm:GetParameters", "Resource": "*"}]}}},
        "Task": {"Type": "AWS::ECS::TaskDefinition", "Properties": {
            "Family": "cfn-web", "Cpu": "256", "Memory": "512", "NetworkMode": "awsvpc",
            "RequiresCompatibilities": ["FARGATE"],
            "ExecutionRoleArn": {"Fn::GetAtt": ["ExecRole", "Arn"]},
            "ContainerDefinitions": [{
                "Name": "web", "Image": {"Ref": "ImageParam"}, "Essential": True,
                "PortMappings": [{"ContainerPort": 8080, "Protocol": "tcp"}],
                "Environment": [{"Name": "GREETING", "Value": {"Ref": "Greeting"}}],
                "LogConfiguration": {"LogDriver": "awslogs", "Options": {
                    "awslogs-group": {"Ref": "Logs"}, "awslogs-region": {"Ref": "AWS::Region"},
                    "awslogs-stream-prefix": "web"}}}]}},
        "Lb": {"Type": "AWS::ElasticLoadBalancingV2::LoadBalancer", "Properties": {
            "Subnets": [{"Ref": "Subnet"}], "SecurityGroups": [{"Fn::GetAtt": ["Sg", "GroupId"]}],
            "Scheme": "internet-facing", "Type": "application"}},
        "Tg": {"Type": "AWS::ElasticLoadBalancingV2::TargetGroup", "Properties": {
            "Port": 8080, "Protocol": "HTTP", "TargetType": "ip", "VpcId": {"Ref": "Vpc"},
            "HealthCheckPath": "/",
            "TargetGroupAttributes": [{"Key": "deregistration_delay.timeout_seconds",
                                       "Value": "5"}]}},
        "Listener": {"Type": "AWS::ElasticLoadBalancingV2::Listener", "Properties": {
            "LoadBalancerArn": {"Ref": "Lb"}, "Port": {"Ref": "Port"}, "Protocol": "HTTP",
            "DefaultActions": [{"Type": "forward", "TargetGroupArn": {"Ref": "Tg"}}]}},
        "Service": {"Type": "AWS::ECS::Service", "DependsOn": ["Listener"], "Properties": {
            "Cluster": {"Ref": "Cluster"}, "TaskDefinition": {"Ref": "Task"},
            "DesiredCount": 0, "LaunchType": "FARGATE",
            "LoadBalancers": [{"ContainerName": "web", "ContainerPort": 8080,
                               "TargetGroupArn": {"Ref": "Tg"}}],
            "NetworkConfiguration": {"AwsvpcConfiguration": {
                "AssignPublicIp": "DISABLED", "Subnets": [{"Ref": "Subnet"}],
                "SecurityGroups": [{"Fn::GetAtt": ["Sg", "GroupId"]}]}},
            "DeploymentConfiguration": {"MinimumHealthyPercent": 50, "MaximumPercent": 200,
                                        "DeploymentCircuitBreaker": {"Enable": True,
                                                                     "Rollback": True}}}},
        "Target": {"Type": "AWS::ApplicationAutoScaling::ScalableTarget", "Properties": {
            "ServiceNamespace": "ecs", "ScalableDimension": "ecs:service:DesiredCount",
            "ResourceId": {"Fn::Join": ["/", ["service", {"Ref": "Cluster"},
                                              {"Fn::GetAtt": ["Service", "Name"]}]]},
            "MinCapacity": 0, "MaxCapacity": 4}},
        "Scaling": {"Type": "AWS::ApplicationAutoScaling::ScalingPolicy", "Properties": {
            "PolicyName": "cpu", "PolicyType": "TargetTrackingScaling",
            "ScalingTargetId": {"Ref": "Target"},
            "TargetTrackingScalingPolicyConfiguration": {
                "TargetValue": 50,
                "PredefinedMetricSpecification": {
                    "PredefinedMetricType": "ECSServiceAverageCPUUtilization"}}}},
        "Meta": {"Type": "AWS::CDK::Metadata", "Properties": {"Analytics": "v2:deflate64:x"}},
    },
    "Outputs": {
        "Url": {"Value": {"Fn::Sub": "http://${Lb.DNSName}:${Port}/"}},
        "ServiceName": {"Value": {"Fn::GetAtt": ["Service", "Name"]}},
        "ClusterArn": {"Value": {"Fn::GetAtt": ["Cluster", "Arn"]}},
    },
}


def test_ecs_application_stack(barged):
    from lbtraffic import free_port
    cfn = barged.client("cloudformation")
    ecs = barged.client("ecs")
    iam = barged.client("iam")
    elb = barged.client("elbv2")
    aas = barged.client("application-autoscaling")
    barged.client("ssm").put_parameter(Name="/app/image", Type="String", Value="busybox:1")
    port = str(free_port())
    params = [{"ParameterKey": "Port", "ParameterValue": port}]
    with pytest.raises(ClientError) as e:
        cfn.create_stack(StackName="app", TemplateBody=json.dumps(ECS_APP), Parameters=params)
    assert error_message(e) == "Requires capabilities : [CAPABILITY_IAM]"
    sid = cfn.create_stack(StackName="app", TemplateBody=json.dumps(ECS_APP), Parameters=params,
                           Capabilities=["CAPABILITY_IAM"])["StackId"]
    st = wait_stack(cfn, "app")
    assert st["StackStatus"] == "CREATE_COMPLETE", failures(cfn, "app")
    image = [p for p in st["Parameters"] if p["ParameterKey"] == "ImageParam"][0]
    assert (image["ParameterValue"], image["ResolvedValue"]) == ("/app/image", "busybox:1")
    out = outputs(st)
    res = {r["LogicalResourceId"]: r["PhysicalResourceId"]
           for r in cfn.describe_stack_resources(StackName="app")["StackResources"]}
    assert res["Vpc"].startswith("vpc-") and res["Subnet"].startswith("subnet-")
    assert res["Sg"].startswith("sg-")
    cluster = res["Cluster"]
    assert cluster.startswith("app-Cluster-")
    assert out["ClusterArn"] == f"arn:aws:ecs:us-east-1:000000000000:cluster/{cluster}"
    svc = ecs.describe_services(cluster=cluster, services=[out["ServiceName"]])["services"][0]
    assert svc["serviceArn"] == res["Service"]
    assert svc["taskDefinition"] == res["Task"]
    assert svc["loadBalancers"][0]["targetGroupArn"] == res["Tg"]
    assert svc["deploymentConfiguration"]["deploymentCircuitBreaker"] == {
        "enable": True, "rollback": True}
    td = ecs.describe_task_definition(taskDefinition=res["Task"])["taskDefinition"]
    c = td["containerDefinitions"][0]
    assert (c["image"], c["environment"]) == ("busybox:1", [{"name": "GREETING",
                                                             "value": "hello"}])
    assert c["logConfiguration"]["options"]["awslogs-group"] == res["Logs"]
    role = iam.get_role(RoleName=res["ExecRole"])["Role"]
    assert td["executionRoleArn"] == role["Arn"]
    assert iam.list_role_policies(RoleName=res["ExecRole"])["PolicyNames"] == ["read-ssm"]
    attached = iam.list_attached_role_policies(RoleName=res["ExecRole"])["AttachedPolicies"]
    assert [a["PolicyName"] for a in attached] == ["AmazonECSTaskExecutionRolePolicy"]
    lb = elb.describe_load_balancers(LoadBalancerArns=[res["Lb"]])["LoadBalancers"][0]
    assert out["Url"] == f"http://{lb['DNSName']}:{port}/"
    listener = elb.describe_listeners(LoadBalancerArn=res["Lb"])["Listeners"][0]
    assert listener["Port"] == int(port)
    targets = aas.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"]
    assert [(t["ResourceId"], t["MaxCapacity"]) for t in targets] == [
        (f"service/{cluster}/{out['ServiceName']}", 4)]
    pols = aas.describe_scaling_policies(ServiceNamespace="ecs")["ScalingPolicies"]
    assert [p["PolicyARN"] for p in pols] == [res["Scaling"]]

    # An update of the environment: a new revision, the service moved to it,
    # the old revision deregistered.
    cfn.update_stack(StackName="app", UsePreviousTemplate=True, Capabilities=["CAPABILITY_IAM"],
                     Parameters=[{"ParameterKey": "Port", "UsePreviousValue": True},
                                 {"ParameterKey": "Greeting", "ParameterValue": "bonjour"}])
    st = wait_stack(cfn, "app")
    assert st["StackStatus"] == "UPDATE_COMPLETE", failures(cfn, "app")
    res2 = {r["LogicalResourceId"]: r["PhysicalResourceId"]
            for r in cfn.describe_stack_resources(StackName="app")["StackResources"]}
    assert res2["Task"] != res["Task"] and res2["Service"] == res["Service"]
    svc = ecs.describe_services(cluster=cluster, services=[out["ServiceName"]])["services"][0]
    assert svc["taskDefinition"] == res2["Task"]
    old = ecs.describe_task_definition(taskDefinition=res["Task"])["taskDefinition"]
    assert old["status"] == "INACTIVE"

    cfn.delete_stack(StackName="app")
    st = wait_stack(cfn, sid)
    assert st["StackStatus"] == "DELETE_COMPLETE", failures(cfn, sid)
    assert ecs.describe_clusters(clusters=[cluster])["clusters"][0]["status"] == "INACTIVE"
    assert elb.describe_load_balancers()["LoadBalancers"] == []
    assert aas.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"] == []
    with pytest.raises(ClientError) as e:
        iam.get_role(RoleName=res["ExecRole"])
    assert error_code(e) == "NoSuchEntity"


def test_stack_interrupted_by_a_restart(barged):
    """A stack waits for its service to settle; barged stopping meanwhile
    leaves the stack failed (nothing undone), and it can be deleted after."""
    cfn = barged.client("cloudformation")
    tpl = {"Resources": {
        "Cluster": {"Type": "AWS::ECS::Cluster", "Properties": {"ClusterName": "intr"}},
        "Task": {"Type": "AWS::ECS::TaskDefinition", "Properties": {
            "Family": "intr", "Cpu": "256", "Memory": "512", "NetworkMode": "awsvpc",
            "RequiresCompatibilities": ["FARGATE"],
            "ContainerDefinitions": [{"Name": "c", "Image": "busybox"}]}},
        # No Fargate capacity: its task stays PROVISIONING, the service never settles.
        "Service": {"Type": "AWS::ECS::Service", "Properties": {
            "Cluster": {"Ref": "Cluster"}, "TaskDefinition": {"Ref": "Task"},
            "DesiredCount": 1, "LaunchType": "FARGATE", "NetworkConfiguration": {
                "AwsvpcConfiguration": {"Subnets": ["subnet-1"]}}}}}}
    sid = cfn.create_stack(StackName="intr", TemplateBody=json.dumps(tpl))["StackId"]
    end = time.monotonic() + 30
    while not any(e["LogicalResourceId"] == "Service" for e in events(cfn, "intr")):
        assert time.monotonic() < end
        time.sleep(0.2)
    assert cfn.describe_stacks(StackName="intr")["Stacks"][0]["StackStatus"] == \
        "CREATE_IN_PROGRESS"
    barged.restart()
    cfn = barged.client("cloudformation")
    st = cfn.describe_stacks(StackName="intr")["Stacks"][0]
    assert (st["StackStatus"], st["StackStatusReason"]) == (
        "CREATE_FAILED", "barged stopped while the operation was in progress")
    # Nothing was undone.
    assert barged.client("ecs").describe_clusters(clusters=["intr"])["clusters"][0]["status"] == \
        "ACTIVE"
    cfn.delete_stack(StackName="intr")
    assert wait_stack(cfn, sid)["StackStatus"] == "DELETE_COMPLETE", failures(cfn, sid)
    assert barged.client("ecs").describe_clusters(clusters=["intr"])["clusters"][0]["status"] == \
        "INACTIVE"


def test_more_resource_types(barged):
    from lbtraffic import free_port
    cfn = barged.client("cloudformation")
    port = free_port()
    tpl = {
        "Resources": {
            "Secret": {"Type": "AWS::SecretsManager::Secret", "Properties": {
                "Name": "cfn/db", "GenerateSecretString": {
                    "SecretStringTemplate": '{"user": "app"}', "GenerateStringKey": "password"}}},
            "Repo": {"Type": "AWS::ECR::Repository", "Properties": {
                "RepositoryName": "cfn-repo", "EmptyOnDelete": True}},
            "Role": {"Type": "AWS::IAM::Role", "Properties": {
                "RoleName": "cfn-role", "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17", "Statement": [{
                        "Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                        "Action": "sts:AssumeRole"}]}}},
            "Managed": {"Type": "AWS::IAM::ManagedPolicy", "Properties": {
                "ManagedPolicyName": "cfn-read", "Roles": [{"Ref": "Role"}],
                "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
                    "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                    "Resource": {"Ref": "Secret"}}]}}},
            "Cluster": {"Type": "AWS::ECS::Cluster", "Properties": {"ClusterName": "cfn-cp"}},
            "Providers": {"Type": "AWS::ECS::ClusterCapacityProviderAssociations", "Properties": {
                "Cluster": {"Ref": "Cluster"}, "CapacityProviders": ["FARGATE"],
                "DefaultCapacityProviderStrategy": [{"CapacityProvider": "FARGATE",
                                                     "Weight": 1}]}},
            "Lb": {"Type": "AWS::ElasticLoadBalancingV2::LoadBalancer", "Properties": {
                "Name": "cfn-lb", "Subnets": ["subnet-1"]}},
            "Tg": {"Type": "AWS::ElasticLoadBalancingV2::TargetGroup", "Properties": {
                "Port": 80, "Protocol": "HTTP", "VpcId": "vpc-1"}},
            "Listener": {"Type": "AWS::ElasticLoadBalancingV2::Listener", "Properties": {
                "LoadBalancerArn": {"Ref": "Lb"}, "Port": port, "Protocol": "HTTP",
                "DefaultActions": [{"Type": "forward", "TargetGroupArn": {"Ref": "Tg"}}]}},
            "Rule": {"Type": "AWS::ElasticLoadBalancingV2::ListenerRule", "Properties": {
                "ListenerArn": {"Ref": "Listener"}, "Priority": 10,
                "Conditions": [{"Field": "path-pattern", "Values": ["/api/*"]}],
                "Actions": [{"Type": "forward", "TargetGroupArn": {"Ref": "Tg"}}]}},
        },
        "Outputs": {
            "RepoUri": {"Value": {"Fn::GetAtt": ["Repo", "RepositoryUri"]}},
            "RoleArn": {"Value": {"Fn::GetAtt": ["Role", "Arn"]}},
            "Dns": {"Value": {"Fn::GetAtt": ["Lb", "DNSName"]}},
            "TgName": {"Value": {"Fn::GetAtt": ["Tg", "TargetGroupName"]}},
        },
    }
    sid = cfn.create_stack(StackName="more", TemplateBody=json.dumps(tpl),
                           Capabilities=["CAPABILITY_NAMED_IAM"])["StackId"]
    st = wait_stack(cfn, "more")
    assert st["StackStatus"] == "CREATE_COMPLETE", failures(cfn, "more")
    res = {r["LogicalResourceId"]: r["PhysicalResourceId"]
           for r in cfn.describe_stack_resources(StackName="more")["StackResources"]}
    out = outputs(st)
    sm = barged.client("secretsmanager")
    value = json.loads(sm.get_secret_value(SecretId=res["Secret"])["SecretString"])
    assert value["user"] == "app" and len(value["password"]) >= 16
    assert res["Secret"].startswith("arn:aws:secretsmanager:us-east-1:000000000000:secret:cfn/db")
    assert res["Repo"] == "cfn-repo" and out["RepoUri"].endswith("/cfn-repo")
    iam = barged.client("iam")
    attached = iam.list_attached_role_policies(RoleName="cfn-role")["AttachedPolicies"]
    assert [(a["PolicyName"], a["PolicyArn"]) for a in attached] == [("cfn-read", res["Managed"])]
    assert out["RoleArn"] == "arn:aws:iam::000000000000:role/cfn-role"
    cl = barged.client("ecs").describe_clusters(clusters=["cfn-cp"])["clusters"][0]
    assert cl["capacityProviders"] == ["FARGATE"]
    elb = barged.client("elbv2")
    rules = elb.describe_rules(ListenerArn=res["Listener"])["Rules"]
    assert [r["RuleArn"] for r in rules if not r["IsDefault"]] == [res["Rule"]]
    assert out["Dns"] == elb.describe_load_balancers(Names=["cfn-lb"])["LoadBalancers"][0][
        "DNSName"]
    assert out["TgName"].startswith("more-Tg-")

    # a listener's new default action is a change in place (ModifyListener):
    # same ARN, its rule kept
    tpl["Resources"]["Tg2"] = {"Type": "AWS::ElasticLoadBalancingV2::TargetGroup",
                               "Properties": {"Port": 80, "Protocol": "HTTP", "VpcId": "vpc-1"}}
    tpl["Resources"]["Listener"]["Properties"]["DefaultActions"] = [
        {"Type": "forward", "TargetGroupArn": {"Ref": "Tg2"}}]
    cfn.update_stack(StackName="more", TemplateBody=json.dumps(tpl),
                     Capabilities=["CAPABILITY_NAMED_IAM"])
    st = wait_stack(cfn, "more")
    assert st["StackStatus"] == "UPDATE_COMPLETE", failures(cfn, "more")
    after = {r["LogicalResourceId"]: r["PhysicalResourceId"]
             for r in cfn.describe_stack_resources(StackName="more")["StackResources"]}
    assert after["Listener"] == res["Listener"] and after["Rule"] == res["Rule"]
    action = elb.describe_listeners(ListenerArns=[res["Listener"]])["Listeners"][0][
        "DefaultActions"][0]
    assert action["TargetGroupArn"] == after["Tg2"]

    cfn.delete_stack(StackName="more")
    assert wait_stack(cfn, sid)["StackStatus"] == "DELETE_COMPLETE", failures(cfn, sid)
    with pytest.raises(ClientError) as e:
        sm.describe_secret(SecretId="cfn/db")
    assert error_code(e) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        iam.get_role(RoleName="cfn-role")
    assert error_code(e) == "NoSuchEntity"
    assert barged.client("ecr").describe_repositories()["repositories"] == []
    assert elb.describe_load_balancers()["LoadBalancers"] == []
