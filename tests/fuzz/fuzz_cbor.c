/* Fuzzes the Smithy RPC v2 CBOR codec (src/api/cbor.c): a request body is
 * decoded to JSON and validated against a CloudWatch operation's input; the
 * result is then encoded as that operation's answer, which must decode again
 * (barged must never send CBOR it could not read itself). The input is the
 * raw CBOR body; the operation is picked by its first byte. */
#include <stdio.h>

#include "api/api.h"
#include "models.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct barge_model *m = barge_model_get("cloudwatch");
    const char *op = fuzz_pick_operation(m, "", size ? data[0] ^ (uint8_t)size : 0);

    json_t *in = NULL;
    struct barge_error *err = NULL;
    if (barge_api_cbor_decode(data, size, &in, &err) < 0) {
        if (!err || !err->message)
            abort();
        barge_error_free(err);
        return 0;
    }
    if (!json_is_object(in))
        abort();
    if (barge_model_validate_input(m, op, in, &err) < 0) {
        barge_error_free(err);
        err = NULL;
    }
    size_t len = 0;
    void *out = barge_api_cbor_encode(m, op, in, &len);
    json_t *back = NULL;
    if (barge_api_cbor_decode(out, len, &back, &err) < 0) {
        fprintf(stderr, "cannot decode our own answer to %s: %s\n", op, err->message);
        abort();
    }
    json_decref(back);
    free(out);
    json_decref(in);
    return 0;
}
