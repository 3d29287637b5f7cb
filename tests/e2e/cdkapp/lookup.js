// A CDK app of context lookups only, which tests/e2e/test_cdk.py synthesizes
// against barged (`cdk synth --app "node lookup.js"`): the default VPC with
// its subnets, its default security group and the region's zones. The
// outputs show what the lookups found.
const cdk = require('aws-cdk-lib');
const ec2 = require('aws-cdk-lib/aws-ec2');

const app = new cdk.App();
const stack = new cdk.Stack(app, 'BargeCdkLookup', {
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
});
const vpc = ec2.Vpc.fromLookup(stack, 'Vpc', { isDefault: true });
const sg = ec2.SecurityGroup.fromLookupByName(stack, 'Sg', 'default', vpc);
new cdk.CfnOutput(stack, 'VpcId', { value: vpc.vpcId });
new cdk.CfnOutput(stack, 'PublicSubnets', {
  value: vpc.publicSubnets.map((s) => s.subnetId).join(','),
});
new cdk.CfnOutput(stack, 'Zones', { value: stack.availabilityZones.join(',') });
new cdk.CfnOutput(stack, 'GroupId', { value: sg.securityGroupId });
