#!/usr/bin/python3
"""Writes tests/unit/sigv4_vectors.h: requests signed by botocore's own SigV4
signers (SigV4Auth, S3SigV4Auth, SigV4QueryAuth, S3SigV4QueryAuth) at a fixed
time, so that test_sigv4.c can check that barge signs byte for byte like
botocore and accepts what botocore sends.

Run with Debian's interpreter, which has python3-botocore:
    /usr/bin/python3 tests/unit/gen_sigv4_vectors.py > tests/unit/sigv4_vectors.h
"""

import calendar
import datetime
import sys
import types
from unittest import mock
from urllib.parse import urlsplit

import botocore
import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.utils import percent_encode_sequence

FIXED = datetime.datetime(2024, 5, 17, 12, 34, 56)
AKID = 'AKIDEXAMPLEBARGE0001'
SECRET = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY'
AKID_TMP = 'ASIATEMPORARYBARGE01'
SECRET_TMP = 'tmpSecret/0123456789+abcdefghijklmnopqrstu'
TOKEN = 'IQoJb3JpZ2luX2VjEXAMPLE//////////wEaCXVzLWVhc3QtMSJHMEUCIQD+token=='
UA = 'aws-cli/2.15.0 Python/3.11.2 Linux/6.1.0 botocore/2.4.5'


class FixedDatetime(datetime.datetime):
    @classmethod
    def utcnow(cls):
        return cls(FIXED.year, FIXED.month, FIXED.day, FIXED.hour, FIXED.minute,
                   FIXED.second)


def c_str(data):
    """A C string literal for bytes or str; octal escapes cannot swallow the
    characters that follow them, unlike \\x."""
    if data is None:
        return 'NULL'
    if isinstance(data, str):
        data = data.encode('utf-8')
    out = []
    for b in data:
        ch = chr(b)
        if ch == '"' or ch == '\\':
            out.append('\\' + ch)
        elif 0x20 <= b < 0x7f and ch != '?':  # '?' would risk trigraphs
            out.append(ch)
        else:
            out.append('\\%03o' % b)
    return '"' + ''.join(out) + '"'


def headers_list(headers):
    return [(k, v) for k, v in headers.items()]  # HTTPHeaders.items() keeps repeats


def sign(name, signer_cls, service, region, method, url, headers, body=b'',
         params=None, creds=None, s3=False, presigned=False, expires=None,
         context=None, sign_compare=True, note=''):
    creds = creds or Credentials(AKID, SECRET)
    req = AWSRequest(method=method, url=url, data=body, params=params or {})
    for k, v in headers:
        req.headers[k] = v  # HTTPHeaders appends: repeated names stay repeated
    if context:
        req.context.update(context)

    # What barge's signer gets: the request as the client built it, query as
    # it will be on the wire.
    before_query = urlsplit(req.prepare().url).query
    before_headers = headers_list(req.headers)

    if presigned:
        signer = signer_cls(creds, service, region, expires=expires)
    else:
        signer = signer_cls(creds, service, region)
    fake = types.SimpleNamespace(datetime=FixedDatetime)
    with mock.patch.object(botocore.auth, 'datetime', fake):
        # Newer botocore asks botocore.utils for the time instead.
        if hasattr(botocore.auth, 'get_current_datetime'):
            with mock.patch.object(botocore.auth, 'get_current_datetime', FixedDatetime.utcnow):
                signer.add_auth(req)
        else:
            signer.add_auth(req)

    prepared = req.prepare()
    parts = urlsplit(prepared.url)
    wire_body = prepared.body or b''
    if isinstance(wire_body, str):
        wire_body = wire_body.encode('utf-8')
    assert wire_body == (body.encode('utf-8') if isinstance(body, str) else body)

    # prepared.headers is a case-insensitive dict that keeps one value per
    # name; what goes on the wire is every header of the request (repeated
    # ones too, as http.client sends them) plus what prepare() adds.
    wire_headers = headers_list(req.headers)
    names = {k.lower() for k, _ in wire_headers}
    wire_headers += [(k, v) for k, v in prepared.headers.items() if k.lower() not in names]
    added = {k.lower(): v for k, v in req.headers.items()}
    return {
        'name': name,
        'note': note,
        'method': method,
        'raw_path': parts.path,
        'query_before': before_query,
        'query_wire': parts.query,
        'headers_before': before_headers,
        'headers_wire': wire_headers,
        'body': wire_body,
        's3': s3,
        'presigned': presigned,
        'sign_compare': sign_compare and not presigned,
        'region': region,
        'service': service,
        'akid': creds.access_key,
        'secret': creds.secret_key,
        'token': creds.token,
        'authorization': None if presigned else added['authorization'],
        'x_amz_date': None if presigned else added.get('x-amz-date'),
        'content_sha': added.get('x-amz-content-sha256') if s3 and not presigned else None,
    }


def vectors():
    v = []
    host = 'localhost:4566'
    base = 'http://' + host

    v.append(sign(
        'json11_post', botocore.auth.SigV4Auth, 'ecs', 'us-east-1', 'POST', base + '/',
        [('Host', host), ('Content-Type', 'application/x-amz-json-1.1'),
         ('X-Amz-Target', 'AmazonEC2ContainerServiceV20141113.ListClusters'),
         ('User-Agent', UA), ('Content-Length', '18')],
        b'{"maxResults": 10}', note='ECS JSON 1.1 POST with a body'))

    v.append(sign(
        'json11_session_token', botocore.auth.SigV4Auth, 'ecs', 'eu-west-1', 'POST', base + '/',
        [('Host', host), ('Content-Type', 'application/x-amz-json-1.1'),
         ('X-Amz-Target', 'AmazonEC2ContainerServiceV20141113.DescribeClusters'),
         ('User-Agent', UA)],
        '{"clusters": ["caf\u00e9", "\u65e5\u672c"]}'.encode('utf-8'),
        creds=Credentials(AKID_TMP, SECRET_TMP, TOKEN),
        note='temporary credentials: X-Amz-Security-Token is added and signed'))

    pairs = [('b', '2'), ('a', 'z'), ('a', 'y'), ('A', '1'), ('sp ace', 'a b  c'),
             ('uni', '\u00e9\u65e5\u672c'), ('eq', 'a=b&c=d'), ('tilde~', 'x~*!\'()'),
             ('empty', ''), ('a-b', 'q'), ('slash', '/p/q'), ('plus', '1+1')]
    query = percent_encode_sequence(pairs) + '&flag'
    v.append(sign(
        'get_query_url', botocore.auth.SigV4Auth, 'ecs', 'us-east-1', 'GET',
        base + '/things?' + query, [('Host', host), ('User-Agent', UA)],
        note='query in the URL: encoding, repeated keys, sorting, no value'))

    v.append(sign(
        'get_query_params', botocore.auth.SigV4Auth, 'ecs', 'us-east-1', 'GET',
        base + '/things', [('Host', host)], params={'sp ace': 'a b', 'z': '\u00e9', 'eq': 'x=y'},
        note="params: botocore signs quote()d values, the wire has urlencode()'s '+'"))

    v.append(sign(
        'path_odd', botocore.auth.SigV4Auth, 'lambda', 'us-east-1', 'GET',
        base + "/2015-03-31/functions/my%20func/x:y/a+b/~t/!$'()*,;=@/%E2%82%AC/./skip/../end//dbl/",
        [('Host', host)],
        note='non-S3 path: normalised and encoded again'))

    v.append(sign(
        'whitespace_headers', botocore.auth.SigV4Auth, 'ecs', 'us-east-1', 'POST', base + '/',
        [('Host', host), ('Content-Type', 'application/x-amz-json-1.1'),
         ('X-Amz-Target', 'AmazonEC2ContainerServiceV20141113.ListServices'),
         ('X-Amz-Meta-Spaces', '   a   b \t c   '), ('X-Custom', 'x  y'),
         ('X-Dup', 'one'), ('x-dup', '  two  three ')],
        b'{}', note='trimming, inner whitespace runs, a repeated header'))

    v.append(sign(
        's3_put', botocore.auth.S3SigV4Auth, 's3', 'us-east-1', 'PUT',
        base + '/bucket/key%20with%20space/./a//b%2Bc/%C3%A9.txt',
        [('Host', host), ('Content-Type', 'text/plain'), ('Content-MD5', '8lB/UcUPNxBLZy0jQK6jUw==')],
        b'hello\x00world\n', s3=True,
        note='S3 PUT: path not normalised, X-Amz-Content-SHA256 added'))

    client_config = types.SimpleNamespace(s3={'payload_signing_enabled': False})
    v.append(sign(
        's3_put_unsigned', botocore.auth.S3SigV4Auth, 's3', 'us-east-1', 'PUT',
        'https://' + host + '/bucket/big.bin',
        [('Host', host), ('X-Amz-Content-SHA256', 'UNSIGNED-PAYLOAD')],
        b'\x01\x02\x03payload', s3=True, context={'client_config': client_config},
        note='S3 PUT with X-Amz-Content-SHA256: UNSIGNED-PAYLOAD'))

    v.append(sign(
        's3_list', botocore.auth.S3SigV4Auth, 's3', 'us-east-1', 'GET',
        base + '/bucket?list-type=2&prefix=a%20b%2F&delimiter=%2F&encoding-type=url',
        [('Host', host), ('User-Agent', UA)], s3=True,
        creds=Credentials(AKID_TMP, SECRET_TMP, TOKEN), note='S3 GET with a query and a token'))

    v.append(sign(
        'date_header', botocore.auth.SigV4Auth, 'ecs', 'us-east-1', 'POST', base + '/',
        [('Host', host), ('Content-Type', 'application/x-amz-json-1.1'),
         ('X-Amz-Target', 'AmazonEC2ContainerServiceV20141113.ListClusters'),
         ('Date', 'Mon, 01 Jan 2001 00:00:00 GMT')],
        b'{}', sign_compare=False,
        note='a Date header (RFC 1123) instead of X-Amz-Date; verify only'))

    v.append(sign(
        'connection_header', botocore.auth.SigV4Auth, 'ecs', 'us-east-1', 'POST', base + '/',
        [('Host', host), ('Content-Type', 'application/x-amz-json-1.1'),
         ('X-Amz-Target', 'AmazonEC2ContainerServiceV20141113.ListClusters'),
         ('Connection', 'keep-alive'), ('Content-Length', '2')],
        b'{}', sign_compare=False,
        note='botocore signs Connection, barge would not; verify only'))

    v.append(sign(
        'presigned_s3_get', botocore.auth.S3SigV4QueryAuth, 's3', 'us-east-1', 'GET',
        base + '/bucket/my%20key.txt', [('Host', host)], s3=True, presigned=True,
        expires=3600, note='generate_presigned_url style GET'))

    v.append(sign(
        'presigned_s3_token', botocore.auth.S3SigV4QueryAuth, 's3', 'us-east-1', 'GET',
        base + '/bucket/dir/obj?response-content-type=text%2Fplain', [('Host', host)],
        s3=True, presigned=True, expires=600, creds=Credentials(AKID_TMP, SECRET_TMP, TOKEN),
        note='presigned with a token and an operation parameter'))

    v.append(sign(
        'presigned_sts', botocore.auth.SigV4QueryAuth, 'sts', 'us-east-1', 'GET',
        base + '/?Action=GetCallerIdentity&Version=2011-06-15',
        [('Host', host), ('x-k8s-aws-id', 'my-cluster')], presigned=True, expires=60,
        note='non-S3 presigned URL (EKS token style): payload is the empty hash'))
    return v


def emit(out, vs):
    w = out.write
    w('/* Generated by tests/unit/gen_sigv4_vectors.py with botocore %s; do not edit.\n'
      ' * Each request was signed by botocore at %s UTC. */\n'
      % (botocore.__version__, FIXED.isoformat()))
    w('#ifndef BARGE_TESTS_SIGV4_VECTORS_H\n#define BARGE_TESTS_SIGV4_VECTORS_H\n\n')
    # Generated data keeps one entry per line, long strings unbroken.
    w('// clang-format off\n')
    w('#include "common/sigv4.h"\n\n')
    w('#define SIGV4_VECTOR_TIME ((time_t)%dLL)\n\n' % calendar.timegm(FIXED.timetuple()))
    w('struct sigv4_vector {\n'
      '    const char *name;\n'
      '    const char *method;\n'
      '    const char *raw_path;\n'
      '    const char *query_before; /* what the signer gets */\n'
      '    const char *query_wire;   /* what the server receives */\n'
      '    const struct barge_kv *headers_before;\n'
      '    size_t n_headers_before;\n'
      '    const struct barge_kv *headers_wire;\n'
      '    size_t n_headers_wire;\n'
      '    const char *body;\n'
      '    size_t body_len;\n'
      '    bool s3;\n'
      '    bool presigned;\n'
      '    bool sign_compare; /* barge signs this one exactly like botocore */\n'
      '    const char *region;\n'
      '    const char *service;\n'
      '    const char *akid;\n'
      '    const char *secret;\n'
      '    const char *token;\n'
      '    const char *authorization; /* botocore\'s, NULL for presigned */\n'
      '    const char *x_amz_date;\n'
      '    const char *content_sha; /* X-Amz-Content-SHA256 botocore set for S3 */\n'
      '};\n\n')
    for i, v in enumerate(vs):
        for which in ('headers_before', 'headers_wire'):
            w('static const struct barge_kv v%d_%s[] = {\n' % (i, which))
            for k, val in v[which]:
                w('    {%s, %s},\n' % (c_str(k), c_str(val)))
            w('};\n')
    w('\nstatic const struct sigv4_vector sigv4_vectors[] = {\n')
    for i, v in enumerate(vs):
        w('    /* %s */\n' % v['note'].replace('*/', '* /'))
        w('    {\n')
        w('        .name = %s,\n' % c_str(v['name']))
        w('        .method = %s,\n' % c_str(v['method']))
        w('        .raw_path = %s,\n' % c_str(v['raw_path']))
        w('        .query_before = %s,\n' % c_str(v['query_before']))
        w('        .query_wire = %s,\n' % c_str(v['query_wire']))
        for which in ('headers_before', 'headers_wire'):
            w('        .%s = v%d_%s,\n' % (which, i, which))
            w('        .n_%s = %d,\n' % (which, len(v[which])))
        w('        .body = %s,\n' % c_str(v['body']))
        w('        .body_len = %d,\n' % len(v['body']))
        for flag in ('s3', 'presigned', 'sign_compare'):
            w('        .%s = %s,\n' % (flag, 'true' if v[flag] else 'false'))
        for key in ('region', 'service', 'akid', 'secret', 'token', 'authorization',
                    'x_amz_date', 'content_sha'):
            w('        .%s = %s,\n' % (key, c_str(v[key])))
        w('    },\n')
    w('};\n// clang-format on\n\n#endif\n')


if __name__ == '__main__':
    emit(sys.stdout, vectors())
