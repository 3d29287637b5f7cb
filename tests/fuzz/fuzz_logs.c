/* Fuzzes the CloudWatch Logs inputs parsed in src/api/logs_pattern.c:
 * FilterLogEvents' filter patterns and GetLogEvents' paging tokens. The
 * first line is compiled as a filter pattern and, when it compiles, matched
 * against the rest of the input and a few fixed messages; the first line is
 * also decoded as a token, and a token that decodes must encode back to the
 * same text. */
#include <stdio.h>

#include "api/logs.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *pattern = fuzz_line(&data, &size);
    struct barge_logs_pattern *p = NULL;
    struct barge_error *err = NULL;
    if (barge_logs_pattern_compile(pattern, &p, &err) == 0) {
        static const char *const msgs[] = {"", "ERROR something failed",
                                           "{\"level\": \"error\", \"status\": 500}",
                                           "GET /index.html 200 12ms", "[INFO] started"};
        barge_logs_pattern_match(p, (const char *)data, size);
        for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++)
            barge_logs_pattern_match(p, msgs[i], strlen(msgs[i]));
        barge_logs_pattern_free(p);
    } else {
        if (!err || !err->message)
            abort();
        barge_error_free(err);
        err = NULL;
    }

    struct barge_logs_position pos;
    if (barge_logs_token_decode(pattern, &pos, &err) == 0) {
        char *again = barge_logs_token_encode(&pos);
        if (strcmp(again, pattern) != 0) {
            fprintf(stderr, "token '%s' decodes, but encodes back as '%s'\n", pattern, again);
            abort();
        }
        free(again);
    } else {
        if (!err || !err->message)
            abort();
        barge_error_free(err);
    }
    free(pattern);
    return 0;
}
