/* --assume-role-arn: STS AssumeRole with the credentials barge found, whose
 * temporary credentials then sign every later call, as ecspresso's global
 * flag does. STS speaks the query protocol: a signed form POST answered in
 * XML, of which only a few fixed elements are read. barged serves STS; an
 * endpoint that does not (an older barged, a proxy) is reported as such
 * rather than passed over: the user asked for a role and must not silently
 * get another identity. */
#include <string.h>
#include <time.h>

#include "cli/cli.h"

/* The text of the first <tag>...</tag> in xml, or NULL. Caller frees. */
static char *xml_text(const char *xml, const char *tag)
{
    return barge_cli_xml_text(xml, xml + strlen(xml), tag);
}

int barge_cli_sts_parse_credentials(const char *xml, long status, char **akid, char **secret,
                                    char **token, struct barge_error **err)
{
    *akid = *secret = *token = NULL;
    if (status == 200) {
        *akid = xml_text(xml, "AccessKeyId");
        *secret = xml_text(xml, "SecretAccessKey");
        *token = xml_text(xml, "SessionToken");
        if (*akid && **akid && *secret && **secret && *token)
            return 0;
        free(*akid);
        free(*secret);
        free(*token);
        *akid = *secret = *token = NULL;
        return barge_error_set(err, BARGE_ERR_SERIALIZATION,
                               "AssumeRole: the answer has no Credentials");
    }
    _cleanup_free_ char *code = xml_text(xml, "Code");
    _cleanup_free_ char *msg = xml_text(xml, "Message");
    /* What an endpoint that does not know STS answers: barged's query
     * dispatcher (UnknownOperationException), AWS-style InvalidAction, or
     * no STS error document at all. */
    if (!code || strcmp(code, "UnknownOperationException") == 0 ||
        strcmp(code, "InvalidAction") == 0 || status == 404)
        return barge_error_set(err, BARGE_ERR_UNSUPPORTED,
                               "AssumeRole was answered HTTP %ld%s%s%s%s", status, code ? ": " : "",
                               code ? code : "", msg ? ": " : "", msg ? msg : "");
    barge_error_set(err,
                    strcmp(code, "AccessDenied") == 0 ? BARGE_ERR_ACCESS_DENIED : BARGE_ERR_CLIENT,
                    "AssumeRole: %s: %s", code, msg ? msg : "");
    return -1;
}

int barge_cli_assume_role(struct barge_cli_app *app, const char *arn, struct barge_error **err)
{
    struct barge_aws_client *sts = barge_aws_client_new(app->aws, "sts", err);
    if (!sts)
        return barge_error_wrap(err, "--assume-role-arn");
    _cleanup_free_ char *earn = barge_aws_uri_encode(arn, false);
    _cleanup_free_ char *session = barge_xasprintf("barge-%lld", (long long)time(NULL));
    _cleanup_free_ char *body = barge_xasprintf(
        "Action=AssumeRole&Version=2011-06-15&RoleArn=%s&RoleSessionName=%s", earn, session);
    const struct barge_kv headers[] = {
        {"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}};
    struct barge_aws_response r;
    int rc = barge_aws_request(sts, "POST", "/", NULL, headers, BARGE_ARRAY_SIZE(headers), body,
                               strlen(body), &r, err);
    _cleanup_free_ char *endpoint = barge_xstrdup(barge_aws_client_endpoint(sts));
    barge_aws_client_free(sts);
    if (rc < 0)
        return barge_error_wrap(err, "--assume-role-arn '%s'", arn);
    char *akid, *secret, *token;
    rc = barge_cli_sts_parse_credentials(r.body ? r.body : "", r.status, &akid, &secret, &token,
                                         err);
    barge_aws_response_release(&r);
    if (rc < 0) {
        if ((*err)->code == BARGE_ERR_UNSUPPORTED)
            return barge_error_wrap(err,
                                    "--assume-role-arn '%s': %s does not serve STS, so the "
                                    "role cannot be assumed",
                                    arn, endpoint);
        return barge_error_wrap(err, "--assume-role-arn '%s'", arn);
    }
    free(app->aws->access_key_id);
    if (app->aws->secret_access_key)
        explicit_bzero(app->aws->secret_access_key, strlen(app->aws->secret_access_key));
    free(app->aws->secret_access_key);
    free(app->aws->session_token);
    free(app->aws->credentials_source);
    app->aws->access_key_id = akid;
    app->aws->secret_access_key = secret;
    app->aws->session_token = token;
    app->aws->credentials_source = barge_xasprintf("role %s", arn);
    barge_cli_logl(app, BARGE_CLI_DEBUG, "assumed role %s (session %s)", arn, session);
    return 0;
}
