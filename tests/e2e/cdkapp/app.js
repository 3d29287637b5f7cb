// The CDK app tests/e2e/test_cdk.py deploys to barged: a Fargate service
// behind an application load balancer, with an SSM parameter as a secret and
// CPU auto scaling. The test sets its image, port and environment.
const cdk = require('aws-cdk-lib');
const ec2 = require('aws-cdk-lib/aws-ec2');
const ecs = require('aws-cdk-lib/aws-ecs');
const patterns = require('aws-cdk-lib/aws-ecs-patterns');
const ssm = require('aws-cdk-lib/aws-ssm');

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};

const app = new cdk.App();
const stack = new cdk.Stack(app, env('BARGE_CDK_STACK'));
const vpc = new ec2.Vpc(stack, 'Vpc', {
  maxAzs: 2,
  natGateways: 0,
  subnetConfiguration: [{ name: 'public', subnetType: ec2.SubnetType.PUBLIC }],
});
const cluster = new ecs.Cluster(stack, 'Cluster', { vpc });
const secret = ssm.StringParameter.fromStringParameterName(stack, 'Secret',
  env('BARGE_CDK_SECRET_PARAM'));
const web = new patterns.ApplicationLoadBalancedFargateService(stack, 'Web', {
  cluster,
  desiredCount: 1,
  cpu: 256,
  memoryLimitMiB: 512,
  assignPublicIp: true,
  taskSubnets: { subnetType: ec2.SubnetType.PUBLIC },
  listenerPort: Number(env('BARGE_CDK_LB_PORT')),
  taskImageOptions: {
    image: ecs.ContainerImage.fromRegistry(env('BARGE_CDK_IMAGE')),
    containerPort: 80,
    command: ['sh', '-c', env('BARGE_CDK_COMMAND')],
    environment: { GREETING: env('BARGE_CDK_GREETING') },
    secrets: { SECRET: ecs.Secret.fromSsmParameter(secret) },
  },
});
web.targetGroup.configureHealthCheck({
  path: '/',
  interval: cdk.Duration.seconds(5),
  timeout: cdk.Duration.seconds(2),
  healthyThresholdCount: 2,
});
const scaling = web.service.autoScaleTaskCount({ minCapacity: 1, maxCapacity: 3 });
scaling.scaleOnCpuUtilization('Cpu', { targetUtilizationPercent: 50 });
new cdk.CfnOutput(stack, 'ServiceName', { value: web.service.serviceName });
new cdk.CfnOutput(stack, 'ClusterName', { value: cluster.clusterName });
