/* Paging shared by the List and Describe operations of every service: a
 * nextToken is an opaque base64url form of the store key of the last item
 * returned, and the next page starts after it. */
#include <openssl/evp.h>
#include <string.h>

#include "api/api.h"
#include "common/json.h"

char *barge_api_token_encode(const char *last_key)
{
    size_t len = strlen(last_key);
    char *out = barge_xmalloc(4 * ((len + 2) / 3) + 1);
    int n = EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)last_key, (int)len);
    for (int i = 0; i < n; i++) {
        if (out[i] == '+')
            out[i] = '-';
        else if (out[i] == '/')
            out[i] = '_';
    }
    return out;
}

int barge_api_token_decode(const char *token, char **key, struct barge_error **err)
{
    *key = NULL;
    if (!token)
        return 0;
    size_t len = strlen(token);
    _cleanup_free_ char *std = NULL;
    if (len == 0 || len % 4 != 0 || len > 4096)
        goto bad;
    std = barge_xstrdup(token);
    for (size_t i = 0; i < len; i++) {
        if (std[i] == '-')
            std[i] = '+';
        else if (std[i] == '_')
            std[i] = '/';
    }
    char *out = barge_xmalloc(len);
    int n = EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)std, (int)len);
    if (n < 0) {
        free(out);
        goto bad;
    }
    while (n > 0 && len > 0 && std[len - 1] == '=') {
        n--;
        len--;
    }
    out[n] = '\0';
    if (memchr(out, '\0', (size_t)n) || n == 0) {
        free(out);
        goto bad;
    }
    *key = out;
    return 0;
bad:
    return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                "Invalid nextToken '%s'.", token);
}

int barge_api_max_results(const json_t *input, const char *name, int dflt, int max, int *out,
                          struct barge_error **err)
{
    json_t *v = json_object_get(input, name);
    if (!v || json_is_null(v)) {
        *out = dflt;
        return 0;
    }
    json_int_t n = json_integer_value(v);
    if (n < 1 || n > max)
        return barge_error_set(err, BARGE_ERR_INVALID,
                               "%s must be between 1 and %d; '%lld' was given.", name, max,
                               (long long)n);
    *out = (int)n;
    return 0;
}

int barge_api_page_init(struct barge_api_page *pg, const json_t *in, const char *max_field,
                        int dflt, int limit, const char *token_field, struct barge_error **err)
{
    *pg = (struct barge_api_page){.items = json_array()};
    if (barge_api_max_results(in, max_field, dflt, limit, &pg->max, err) < 0 ||
        barge_api_token_decode(barge_json_str(in, token_field, NULL), &pg->after, err) < 0) {
        barge_api_page_free(pg);
        return -1;
    }
    return 0;
}

int barge_api_page_add(struct barge_api_page *pg, const char *key, json_t *item)
{
    if ((int)json_array_size(pg->items) >= pg->max) {
        json_decref(item);
        pg->more = true;
        return 1;
    }
    json_array_append_new(pg->items, item);
    free(pg->last);
    pg->last = barge_xstrdup(key);
    return 0;
}

void barge_api_page_finish(struct barge_api_page *pg, json_t *out, const char *field,
                           const char *token_field)
{
    json_object_set_new(out, field, pg->items);
    pg->items = NULL;
    if (pg->more && pg->last) {
        char *tok = barge_api_token_encode(pg->last);
        json_object_set_new(out, token_field, json_string(tok));
        free(tok);
    }
    barge_api_page_free(pg);
}

void barge_api_page_free(struct barge_api_page *pg)
{
    json_decref(pg->items);
    free(pg->after);
    free(pg->last);
    *pg = (struct barge_api_page){0};
}
