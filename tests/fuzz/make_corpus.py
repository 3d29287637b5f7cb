#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets, tests/fuzz/corpus/<target>/:
small, real inputs the fuzzers mutate from. Requests are signed and
serialised by botocore itself (so the sigv4 seeds verify and the query and
CBOR bodies are what SDKs send); layers are tarballs made by tarfile,
including hostile ones a registry could serve.

Needs a botocore with the smithy-rpc-v2-cbor serializer (pip botocore 1.36
or later; Debian 12's is older):
    python3 tests/fuzz/make_corpus.py
Seeds are named by content, so running it again only adds what changed.
Crashing inputs the fuzzers found are kept next to them as crash-*.
"""

import gzip
import hashlib
import io
import json
import os
import sys
import tarfile
from urllib.parse import urlencode

import botocore.session
from botocore.serialize import create_serializer

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'unit'))
import gen_sigv4_vectors  # noqa: E402  (the signed requests test_sigv4 uses)

CORPUS = os.path.join(HERE, 'corpus')


def put(target, data, name=None):
    if isinstance(data, str):
        data = data.encode('utf-8')
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    name = name or hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)


def sigv4_seeds():
    for v in gen_sigv4_vectors.vectors():
        target = v['raw_path'] + ('?' + v['query_wire'] if v['query_wire'] else '')
        lines = ['%s %s' % (v['method'], target)]
        if v['s3']:
            lines.append('x-fuzz-s3: 1')
        lines += ['%s: %s' % (k, val) for k, val in v['headers_wire']]
        put('sigv4', ('\n'.join(lines) + '\n\n').encode('utf-8') + v['body'], v['name'])


def service_model(name):
    return botocore.session.get_session().get_service_model(name)


CW_INPUTS = {
    'PutMetricAlarm': {
        'AlarmName': 'cpu high', 'MetricName': 'CPUUtilization', 'Namespace': 'AWS/ECS',
        'Statistic': 'Average', 'Period': 60, 'EvaluationPeriods': 3, 'Threshold': 75.5,
        'ComparisonOperator': 'GreaterThanThreshold', 'ActionsEnabled': False,
        'Dimensions': [{'Name': 'ClusterName', 'Value': 'prod'},
                       {'Name': 'ServiceName', 'Value': 'web'}],
        'AlarmActions': ['arn:aws:autoscaling:us-east-1:000000000000:scalingPolicy:x'],
        'Tags': [{'Key': 'team', 'Value': 'a'}]},
    'PutMetricData': {
        'Namespace': 'app', 'MetricData': [
            {'MetricName': 'latency', 'Value': 12.5, 'Unit': 'Milliseconds',
             'Timestamp': 1795921200, 'Dimensions': [{'Name': 'host', 'Value': 'a'}],
             'StorageResolution': 1},
            {'MetricName': 'hist', 'Values': [1.0, 2.0], 'Counts': [3.0, 4.0],
             'StatisticValues': {'SampleCount': 2, 'Sum': 3, 'Minimum': 1, 'Maximum': 2}}]},
    'GetMetricStatistics': {
        'Namespace': 'AWS/ECS', 'MetricName': 'CPUUtilization', 'Period': 60,
        'StartTime': 1795921200, 'EndTime': 1795924800.5,
        'Statistics': ['Average', 'Maximum'], 'ExtendedStatistics': ['p99']},
    'GetMetricData': {
        'StartTime': 1795921200, 'EndTime': 1795924800, 'MaxDatapoints': 100,
        'MetricDataQueries': [
            {'Id': 'm1', 'ReturnData': True, 'MetricStat': {
                'Metric': {'Namespace': 'AWS/ECS', 'MetricName': 'CPUUtilization',
                           'Dimensions': [{'Name': 'ClusterName', 'Value': 'prod'}]},
                'Period': 60, 'Stat': 'Average'}},
            {'Id': 'e1', 'Expression': 'm1 * 2', 'Label': 'double'}]},
    'DescribeAlarms': {'AlarmNames': ['a', 'b'], 'StateValue': 'ALARM', 'MaxRecords': 5,
                       'AlarmTypes': ['MetricAlarm']},
    'ListMetrics': {'Namespace': 'AWS/ECS', 'Dimensions': [{'Name': 'ClusterName'}],
                    'NextToken': 'abc'},
    'SetAlarmState': {'AlarmName': 'cpu high', 'StateValue': 'ALARM', 'StateReason': 'test',
                      'StateReasonData': '{"x": 1}'},
    'TagResource': {'ResourceARN': 'arn:aws:cloudwatch:us-east-1:000000000000:alarm:a',
                    'Tags': [{'Key': 'k', 'Value': 'v'}]},
    'DeleteAlarms': {'AlarmNames': ['cpu high']},
}


def query_and_cbor_seeds():
    model = service_model('cloudwatch')
    query = create_serializer('query')
    cbor = create_serializer('smithy-rpc-v2-cbor')
    for op, params in CW_INPUTS.items():
        om = model.operation_model(op)
        body = query.serialize_to_request(params, om)['body']
        put('query', op + '\n' + urlencode(body), 'query-' + op)
        put('cbor', cbor.serialize_to_request(params, om)['body'], 'cbor-' + op)


JSON_SEEDS = [
    ('ecs', 'RegisterTaskDefinition', {
        'family': 'web', 'networkMode': 'awsvpc', 'requiresCompatibilities': ['FARGATE'],
        'cpu': '256', 'memory': '0.5 GB', 'executionRoleArn': 'arn:aws:iam::0:role/x',
        'containerDefinitions': [{
            'name': 'app', 'image': 'busybox:latest', 'essential': True,
            'command': ['sh', '-c', 'httpd -f'], 'cpu': 128, 'memoryReservation': 64,
            'portMappings': [{'containerPort': 80, 'protocol': 'tcp', 'name': 'http'}],
            'environment': [{'name': 'A', 'value': '1'}],
            'secrets': [{'name': 'S', 'valueFrom': 'arn:aws:ssm:us-east-1:0:parameter/p'}],
            'healthCheck': {'command': ['CMD-SHELL', 'true'], 'interval': 5, 'retries': 3},
            'logConfiguration': {'logDriver': 'awslogs', 'options': {'awslogs-group': 'g'}},
            'dependsOn': [{'containerName': 'side', 'condition': 'START'}],
            'mountPoints': [{'sourceVolume': 'data', 'containerPath': '/data'}],
            'ulimits': [{'name': 'nofile', 'softLimit': 1024, 'hardLimit': 4096}]},
            {'name': 'side', 'image': 'busybox', 'essential': False, 'memory': 32,
             'environmentFiles': [{'value': 'arn:aws:s3:::bucket/env', 'type': 's3'}]}],
        'volumes': [{'name': 'data', 'host': {'sourcePath': '/srv'}}],
        'placementConstraints': [{'type': 'memberOf', 'expression': 'attribute:a == b'}],
        'tags': [{'key': 'team', 'value': 'a'}]}),
    ('ecs', 'RegisterTaskDefinition', {
        'family': 'bridge', 'networkMode': 'bridge',
        'containerDefinitions': [{'name': 'c', 'image': 'x', 'memory': 'not a number',
                                  'links': ['a:b'], 'portMappings': [{'hostPort': -1}]}]}),
    ('ecs', 'CreateService', {
        'cluster': 'prod', 'serviceName': 'web', 'taskDefinition': 'web:1', 'desiredCount': 2,
        'launchType': 'EC2', 'placementStrategy': [{'type': 'spread', 'field': 'host'}],
        'deploymentConfiguration': {'maximumPercent': 200, 'minimumHealthyPercent': 50,
                                    'deploymentCircuitBreaker': {'enable': True,
                                                                 'rollback': True}},
        'loadBalancers': [], 'tags': [{'key': 'k', 'value': 'v'}]}),
    ('ecs', 'RunTask', {'cluster': 'prod', 'taskDefinition': 'web', 'count': 11,
                        'overrides': {'containerOverrides': [{'name': 'app',
                                                              'command': ['true']}]},
                        'startedBy': 'x' * 40}),
    ('ecs', 'ListContainerInstances', {'cluster': 'c', 'filter': 'attribute:a exists',
                                       'maxResults': 0, 'status': 'BOGUS'}),
    ('logs', 'PutLogEvents', {'logGroupName': 'g', 'logStreamName': 's', 'logEvents': [
        {'timestamp': 1795921200000, 'message': 'hello'}]}),
    ('logs', 'FilterLogEvents', {'logGroupName': 'g', 'filterPattern': '?ERROR ?WARN',
                                 'startTime': -1, 'limit': 20000}),
    ('ssm', 'PutParameter', {'Name': '/app/db', 'Value': 's3cret', 'Type': 'SecureString',
                             'Overwrite': True, 'Tier': 'Standard'}),
    ('secretsmanager', 'CreateSecret', {'Name': 'db', 'SecretString': '{"u": "p"}',
                                        'Tags': [{'Key': 'k', 'Value': 'v'}]}),
    ('application-autoscaling', 'PutScalingPolicy', {
        'PolicyName': 'p', 'ServiceNamespace': 'ecs', 'ResourceId': 'service/prod/web',
        'ScalableDimension': 'ecs:service:DesiredCount', 'PolicyType': 'StepScaling',
        'StepScalingPolicyConfiguration': {'AdjustmentType': 'ChangeInCapacity',
                                           'StepAdjustments': [{'MetricIntervalLowerBound': 0,
                                                                'ScalingAdjustment': 1}]}}),
    ('ecr', 'PutImage', {'repositoryName': 'r', 'imageManifest': '{}', 'imageTag': 'v1'}),
    ('cloudwatch', 'PutMetricAlarm', CW_INPUTS['PutMetricAlarm']),
]


def json_seeds():
    for service, op, body in JSON_SEEDS:
        text = '%s %s\n%s' % (service, op, json.dumps(body))
        put('json', text, 'json-%s-%s-%s' % (service, op,
                                             hashlib.sha1(text.encode()).hexdigest()[:6]))
    put('json', 'ecs ListClusters\n[1, 2]', 'json-array-body')


CQL_SEEDS = [
    'attribute:ecs.instance-type =~ t2.* and attribute:ecs.availability-zone != us-east-1d',
    'attribute:ecs.instance-type in [t2.micro, "m5.large", \'c5.xlarge\'] or not '
    '(runningTasksCount > 2)',
    'task:group == service:web && agentConnected == true',
    'agentVersion >= 1.10.0 || registeredAt < 2024-05-17T12:00:00Z',
    'registeredAt >= 2024-05-17 and ec2InstanceId !in [i-1, i-2]',
    'attribute:stack exists and attribute:missing !exists',
    'attribute:version !~ (?i)^1\\.\\d+(?:\\.\\w+)?$',
    'attribute:x matches "a.*?b" and attribute:y not_matches [[:digit:]]+',
    'attribute:a greater_than_equal 5 and attribute:b less_than_equal 1e3',
    '1.10.2\n1.9.10',
]

LOGS_SEEDS = [
    'ERROR\nERROR something failed',
    '"exact phrase" -DEBUG\nan exact phrase here',
    '?ERROR ?WARN timeout\nWARN: timeout after 5s',
    '"esc \\" and \\\\ " ?x\nesc " and \\ ',
    '{ $.level = "error" }\n{"level": "error"}',
    '[ip, user, status=5*]\n1.2.3.4 bob 500',
    '%ERR.*%\nERR',
    'f/0000000000179592120000000000000000000042\n',
    'b/0000000000000000000000000000000000000000',
]


def tar_bytes(entries, fmt=tarfile.PAX_FORMAT, compress=None):
    # Two end blocks but no padding to tar's 10 KiB record: small seeds.
    tarfile.RECORDSIZE = 1024
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w', format=fmt) as t:
        for info, data in entries:
            info.mtime = 1715949296
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    raw = buf.getvalue()
    if compress == 'gzip':
        return gzip.compress(raw, mtime=0)
    return raw


def ti(name, kind=tarfile.REGTYPE, data=None, link='', mode=0o644, uid=0, gid=0, pax=None,
       dev=(0, 0)):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.uid, info.gid = uid, gid
    info.linkname = link
    info.devmajor, info.devminor = dev
    if pax:
        info.pax_headers = pax
    if data is not None:
        info.size = len(data)
    return info, data


def layer_seeds():
    base = [
        ti('./', tarfile.DIRTYPE, mode=0o755),
        ti('etc/', tarfile.DIRTYPE, mode=0o755),
        ti('etc/hostname', data=b'barge\n'),
        ti('etc/shadow', data=b'root:*:1:0:99999:7:::\n', mode=0o600, gid=42),
        ti('bin/', tarfile.DIRTYPE, mode=0o755),
        ti('bin/busybox', data=b'\x7fELF' + b'\x00' * 60, mode=0o4755),
        ti('bin/sh', tarfile.SYMTYPE, link='busybox'),
        ti('bin/ls', tarfile.LNKTYPE, link='bin/busybox'),
        ti('dev/', tarfile.DIRTYPE),
        ti('dev/null', tarfile.CHRTYPE, mode=0o666, dev=(1, 3)),
        ti('run/fifo', tarfile.FIFOTYPE),
        ti('var/cache/app/data', data=b'x' * 100,
           pax={'SCHILY.xattr.user.note': 'hi', 'SCHILY.xattr.trusted.overlay.opaque': 'y'}),
        ti('tmp/', tarfile.DIRTYPE, mode=0o1777),
        ti('ro/', tarfile.DIRTYPE, mode=0o555),
        ti('ro/file', data=b'in a read-only directory'),
    ]
    put('unpack', tar_bytes(base), 'layer-base.tar')
    put('unpack', tar_bytes(base, compress='gzip'), 'layer-base.tar.gz')
    put('unpack', tar_bytes(base[:6], fmt=tarfile.GNU_FORMAT), 'layer-gnu.tar')
    whiteouts = [
        ti('etc/', tarfile.DIRTYPE, mode=0o755),
        ti('etc/.wh.hostname', data=b''),
        ti('var/cache/.wh..wh..opq', data=b''),
        ti('.wh..wh.plnk', tarfile.DIRTYPE),
        ti('bin/.wh.sh', data=b''),
    ]
    put('unpack', tar_bytes(whiteouts), 'layer-whiteouts.tar')
    replace = [
        ti('a', data=b'file first'),
        ti('a/', tarfile.DIRTYPE),
        ti('a/b', data=b'now a directory'),
        ti('a', tarfile.SYMTYPE, link='/etc'),
        ti('d/', tarfile.DIRTYPE, mode=0o700),
        ti('d', data=b'directory replaced by a file'),
    ]
    put('unpack', tar_bytes(replace), 'layer-replace.tar')
    # Hostile layers: each must be refused or kept inside the root.
    put('unpack', tar_bytes([ti('../escape', data=b'x')]), 'evil-dotdot.tar')
    put('unpack', tar_bytes([ti('a/../../escape', data=b'x')]), 'evil-dotdot-inner.tar')
    put('unpack', tar_bytes([ti('/canary/abs', data=b'x')]), 'evil-absolute.tar')
    put('unpack', tar_bytes([ti('link', tarfile.SYMTYPE, link='../canary'),
                             ti('link/x', data=b'through a symlink')]), 'evil-symlink-dir.tar')
    put('unpack', tar_bytes([ti('link', tarfile.SYMTYPE, link='../canary/f'),
                             ti('link', data=b'over a symlink')]), 'evil-symlink-file.tar')
    put('unpack', tar_bytes([ti('h', tarfile.LNKTYPE, link='../canary')]), 'evil-hardlink.tar')
    put('unpack', tar_bytes([ti('s', tarfile.SYMTYPE, link='..'),
                             ti('h', tarfile.LNKTYPE, link='s/canary')]),
        'evil-hardlink-via-symlink.tar')
    put('unpack', tar_bytes([ti('.wh...', data=b''), ti('x/.wh..', data=b'')]),
        'evil-whiteout-dots.tar')
    put('unpack', b'', 'empty')


def main():
    sigv4_seeds()
    query_and_cbor_seeds()
    json_seeds()
    for s in CQL_SEEDS:
        put('cql', s)
    for s in LOGS_SEEDS:
        put('logs', s)
    layer_seeds()


if __name__ == '__main__':
    main()
