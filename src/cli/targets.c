/* The health of a service's load balancer targets, for status and verify:
 * Elastic Load Balancing v2's DescribeTargetGroups and DescribeTargetHealth
 * over the query protocol (a signed form POST answered in XML, of which only
 * a few fixed elements are read), so that it works against barged and AWS
 * alike. */
#include <string.h>

#include "cli/cli.h"
#include "common/json.h"

#define ELB_VERSION "2015-12-01"

char *barge_cli_xml_text(const char *b, const char *e, const char *tag)
{
    _cleanup_free_ char *open = barge_xasprintf("<%s>", tag);
    _cleanup_free_ char *close = barge_xasprintf("</%s>", tag);
    const char *s = memmem(b, (size_t)(e - b), open, strlen(open));
    if (!s)
        return NULL;
    s += strlen(open);
    const char *t = memmem(s, (size_t)(e - s), close, strlen(close));
    if (!t)
        return NULL;
    static const struct {
        const char *ent;
        char ch;
    } ents[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    char *out = barge_xcalloc((size_t)(t - s) + 1, 1);
    size_t n = 0;
    for (const char *p = s; p < t;) {
        bool done = false;
        for (size_t i = 0; i < BARGE_ARRAY_SIZE(ents) && *p == '&'; i++) {
            size_t l = strlen(ents[i].ent);
            if ((size_t)(t - p) >= l && strncmp(p, ents[i].ent, l) == 0) {
                out[n++] = ents[i].ch;
                p += l;
                done = true;
                break;
            }
        }
        if (!done)
            out[n++] = *p++;
    }
    return out;
}

/* Calls an ELB action with a form body; the XML answer in *xml (caller
 * frees) and the HTTP status. */
static int elb_call(struct barge_cli_app *app, const char *form, char **xml, long *status,
                    struct barge_error **err)
{
    struct barge_aws_client *elb = barge_cli_client(app, "elbv2", err);
    if (!elb)
        return -1;
    struct barge_kv hdrs[] = {{"Content-Type", "application/x-www-form-urlencoded"}};
    struct barge_aws_response r;
    if (barge_aws_request(elb, "POST", "/", NULL, hdrs, 1, form, strlen(form), &r, err) < 0)
        return -1;
    *status = r.status;
    *xml = barge_steal(&r.body);
    barge_aws_response_release(&r);
    if (!*xml)
        *xml = barge_xstrdup("");
    return 0;
}

/* The error of a failed ELB answer. */
static int elb_error(const char *xml, long status, const char *action, struct barge_error **err)
{
    const char *end = xml + strlen(xml);
    _cleanup_free_ char *code = barge_cli_xml_text(xml, end, "Code");
    _cleanup_free_ char *msg = barge_cli_xml_text(xml, end, "Message");
    enum barge_errcode c =
        code && strstr(code, "NotFound") ? BARGE_ERR_NOT_FOUND : BARGE_ERR_CLIENT;
    return barge_error_set(err, c, "%s: %s: %s", action, code ? code : "HTTP error",
                           msg    ? msg
                           : code ? ""
                                  : (status == 404 ? "not served" : "no answer"));
}

int barge_cli_target_health(struct barge_cli_app *app, const char *tg_arn, char **tg_name,
                            json_t **targets, struct barge_error **err)
{
    *tg_name = NULL;
    *targets = NULL;
    _cleanup_free_ char *earn = barge_aws_uri_encode(tg_arn, false);
    _cleanup_free_ char *form = barge_xasprintf(
        "Action=DescribeTargetGroups&Version=" ELB_VERSION "&TargetGroupArns.member.1=%s", earn);
    _cleanup_free_ char *xml = NULL;
    long status = 0;
    if (elb_call(app, form, &xml, &status, err) < 0)
        return -1;
    if (status != 200)
        return elb_error(xml, status, "DescribeTargetGroups", err);
    char *name = barge_cli_xml_text(xml, xml + strlen(xml), "TargetGroupName");
    if (!name)
        return barge_error_set(err, BARGE_ERR_NOT_FOUND, "target group '%s' not found", tg_arn);
    free(form);
    free(xml);
    xml = NULL;
    form = barge_xasprintf("Action=DescribeTargetHealth&Version=" ELB_VERSION "&TargetGroupArn=%s",
                           earn);
    if (elb_call(app, form, &xml, &status, err) < 0) {
        free(name);
        return -1;
    }
    if (status != 200) {
        free(name);
        return elb_error(xml, status, "DescribeTargetHealth", err);
    }
    json_t *list = json_array();
    /* <TargetHealthDescriptions><member>...</member>...: no member inside a
     * member. */
    const char *p = strstr(xml, "<TargetHealthDescriptions>");
    const char *end = p ? strstr(p, "</TargetHealthDescriptions>") : NULL;
    while (p && end) {
        const char *b = strstr(p, "<member>");
        const char *e = b ? strstr(b, "</member>") : NULL;
        if (!b || !e || e > end)
            break;
        _cleanup_free_ char *id = barge_cli_xml_text(b, e, "Id");
        _cleanup_free_ char *port = barge_cli_xml_text(b, e, "Port");
        _cleanup_free_ char *state = barge_cli_xml_text(b, e, "State");
        _cleanup_free_ char *reason = barge_cli_xml_text(b, e, "Reason");
        _cleanup_free_ char *desc = barge_cli_xml_text(b, e, "Description");
        json_t *t = json_pack("{s:s, s:s, s:s}", "id", id ? id : "", "port", port ? port : "",
                              "state", state ? state : "unknown");
        if (reason)
            json_object_set_new(t, "reason", json_string(reason));
        if (desc)
            json_object_set_new(t, "description", json_string(desc));
        json_array_append_new(list, t);
        p = e + strlen("</member>");
    }
    *tg_name = name;
    *targets = list;
    return 0;
}

char *barge_cli_format_target(const json_t *t)
{
    const char *reason = barge_json_str(t, "reason", NULL);
    return barge_xasprintf("%s:%s %s%s%s%s", barge_json_str(t, "id", ""),
                           barge_json_str(t, "port", ""), barge_json_str(t, "state", ""),
                           reason ? " (" : "", reason ? reason : "", reason ? ")" : "");
}

void barge_cli_print_target_health(struct barge_cli_app *app, const json_t *svc)
{
    json_t *lbs = json_object_get(svc, "loadBalancers");
    bool header = false;
    size_t i, j;
    json_t *lb, *t;
    json_array_foreach(lbs, i, lb)
    {
        const char *arn = barge_json_str(lb, "targetGroupArn", NULL);
        if (!arn)
            continue;
        _cleanup_free_ char *name = NULL;
        _cleanup_json_ json_t *targets = NULL;
        _cleanup_error_ struct barge_error *err = NULL;
        /* Optional, like AutoScaling: an endpoint without ELB shows none. */
        if (barge_cli_target_health(app, arn, &name, &targets, &err) < 0) {
            barge_cli_logl(app, BARGE_CLI_DEBUG, "target health of %s: %s", arn, err->message);
            continue;
        }
        if (!header)
            barge_cli_out(app, "LoadBalancers:\n");
        header = true;
        size_t healthy = 0;
        json_array_foreach(targets, j, t)
        {
            healthy += barge_streq(barge_json_str(t, "state", NULL), "healthy");
        }
        barge_cli_out(app, "  TargetGroup name:%s container:%s:%lld healthy:%zu/%zu\n", name,
                      barge_json_str(lb, "containerName", ""),
                      (long long)barge_json_int(lb, "containerPort", 0), healthy,
                      json_array_size(targets));
        json_array_foreach(targets, j, t)
        {
            _cleanup_free_ char *line = barge_cli_format_target(t);
            barge_cli_out(app, "    Target %s\n", line);
        }
    }
}
