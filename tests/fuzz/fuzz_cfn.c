/* Fuzzes CloudFormation templates (src/api/cfn_template.c): the JSON and
 * YAML readers with their short-form tags, parameters, conditions, the
 * dependency order and the evaluation of every resource's Properties and
 * every output with intrinsic functions, as the engine runs them (each
 * resource made so far stands for itself with a physical id and an Arn). */
#include <stdio.h>

#include "api/cfn.h"
#include "fuzz.h"

static void check_error(struct barge_error *err)
{
    if (!err || !err->message)
        abort();
    barge_error_free(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *tpl = NULL, *values = NULL, *listed = NULL, *conds = NULL, *order = NULL;
    json_t *params = json_object(), *made = json_object(), *exports = json_object();
    struct barge_error *err = NULL;
    if (barge_cfn_template_parse((const char *)data, size, &tpl, &err) < 0) {
        check_error(err);
        goto out;
    }
    if (barge_cfn_parameters(tpl, NULL, NULL, &values, &listed, &err) < 0) {
        check_error(err);
        goto out;
    }
    const char *k;
    json_t *v;
    json_object_foreach(values, k, v)
    {
        const char *type = json_string_value(
            json_object_get(json_object_get(json_object_get(tpl, "Parameters"), k), "Type"));
        json_object_set_new(params, k,
                            barge_cfn_param_value(type ? type : "String", json_string_value(v)));
    }
    struct barge_cfn_eval ev = {.params = params,
                                .mappings = json_object_get(tpl, "Mappings"),
                                .resources = made,
                                .region = "us-east-1",
                                .account = "000000000000",
                                .stack_name = "fuzz",
                                .stack_id = "arn:fuzz",
                                .exports = exports};
    if (barge_cfn_conditions(&ev, tpl, &conds, &err) < 0) {
        check_error(err);
        goto out;
    }
    ev.conditions = conds;
    if (barge_cfn_order(tpl, conds, &order, &err) < 0) {
        check_error(err);
        goto out;
    }
    size_t i;
    json_t *l;
    json_array_foreach(order, i, l)
    {
        const char *name = json_string_value(l);
        json_t *props =
            json_object_get(json_object_get(json_object_get(tpl, "Resources"), name), "Properties");
        json_t *out = props ? barge_cfn_eval(&ev, props, &err) : json_object();
        if (!out) {
            check_error(err);
            err = NULL;
        }
        json_decref(out);
        json_object_set_new(made, name,
                            json_pack("{s:s, s:{s:s}}", "physical", name, "attrs", "Arn", name));
    }
    json_object_foreach(json_object_get(tpl, "Outputs"), k, v)
    {
        json_t *out = barge_cfn_eval(&ev, json_object_get(v, "Value"), &err);
        if (!out) {
            check_error(err);
            err = NULL;
        }
        json_decref(out);
    }
out:
    json_decref(tpl);
    json_decref(values);
    json_decref(listed);
    json_decref(conds);
    json_decref(order);
    json_decref(params);
    json_decref(made);
    json_decref(exports);
    return 0;
}
