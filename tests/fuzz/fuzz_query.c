/* Fuzzes the AWS query protocol codec (src/api/query.c) on CloudWatch's
 * model, the only service barged serves over it: a form body is decoded for
 * an operation's input shape, validated like every request, then sent back
 * through the XML encoder as that operation's answer. The input is the
 * operation name on the first line and the form-encoded body after it. */
#include "api/api.h"
#include "models.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct barge_model *m = barge_model_get("cloudwatch");
    unsigned pick = size ? data[0] : 0;
    char *name = fuzz_line(&data, &size);
    const char *op = fuzz_pick_operation(m, name, pick);
    char *form = fuzz_rest(data, size);

    json_t *in = NULL;
    struct barge_error *err = NULL;
    if (barge_api_query_decode(m, op, form, size, &in, &err) == 0) {
        if (!json_is_object(in))
            abort();
        if (barge_model_validate_input(m, op, in, &err) < 0) {
            barge_error_free(err);
            err = NULL;
        }
        free(barge_api_query_encode(m, op, in, "00000000-0000-0000-0000-000000000000"));
        json_decref(in);
    } else if (!err || !err->message) {
        abort();
    }
    barge_error_free(err);
    free(form);
    free(name);
    return 0;
}
