/* The in-memory HTTP client of httpc.h over libcurl. */
#include "common/httpc.h"

#include <string.h>
#include <strings.h>

#include "common/crypto.h"

struct transfer {
    const struct barge_httpc_request *rq;
    struct barge_buf body;
    char *header;
    bool too_big;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct transfer *t = ud;
    size_t n = size * nmemb;
    if (t->rq->max_response && t->body.len + n > t->rq->max_response) {
        t->too_big = true;
        return 0;
    }
    barge_buf_addn(&t->body, ptr, n);
    return n;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct transfer *t = ud;
    size_t n = size * nmemb;
    size_t kl = strlen(t->rq->keep_header);
    if (n > kl && ptr[kl] == ':' && strncasecmp(ptr, t->rq->keep_header, kl) == 0) {
        const char *v = ptr + kl + 1;
        while (*v == ' ')
            v++;
        size_t vl = n - (size_t)(v - ptr);
        while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n'))
            vl--;
        free(t->header);
        t->header = barge_xstrndup(v, vl);
    }
    return n;
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    bool (*abort_if)(void) = (bool (*)(void))ud;
    return abort_if() ? 1 : 0;
}

static void drop(struct transfer *t)
{
    if (t->rq->sensitive)
        barge_crypto_free(t->body.data, t->body.len);
    else
        free(t->body.data);
    free(t->header);
}

int barge_httpc_perform(CURL *curl, const struct barge_httpc_request *rq,
                        struct barge_httpc_response *out, struct barge_error **err)
{
    memset(out, 0, sizeof(*out));
    CURL *own = NULL;
    if (!curl) {
        curl = own = curl_easy_init();
        if (!curl)
            abort();
    } else {
        curl_easy_reset(curl);
    }
    /* An empty Expect: keeps curl from waiting for a 100 Continue. */
    struct curl_slist *hl = curl_slist_append(NULL, "Expect:");
    for (size_t i = 0; i < rq->n_headers; i++) {
        _cleanup_free_ char *h =
            barge_xasprintf("%s: %s", rq->headers[i].name, rq->headers[i].value);
        hl = curl_slist_append(hl, h);
    }
    struct transfer t = {.rq = rq};
    curl_easy_setopt(curl, CURLOPT_URL, rq->url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, rq->method);
    if (strcmp(rq->method, "HEAD") == 0)
        curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    if (rq->body) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, rq->body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)rq->body_len);
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
    if (rq->keep_header) {
        curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(curl, CURLOPT_HEADERDATA, &t);
    }
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, rq->timeout_s ? rq->timeout_s : 60L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT,
                     rq->connect_timeout_s ? rq->connect_timeout_s : 10L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    if (rq->abort_if) {
        curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(curl, CURLOPT_XFERINFODATA, (void *)rq->abort_if);
        curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    }
    CURLcode rc = curl_easy_perform(curl);
    if (rc == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out->status);
    if (own)
        curl_easy_cleanup(own);
    else
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL); /* hl is freed below */
    curl_slist_free_all(hl);
    if (rc != CURLE_OK) {
        bool too_big = t.too_big;
        drop(&t);
        if (too_big)
            return barge_error_set(err, BARGE_ERR_IO, "the response is larger than %zu bytes",
                                   rq->max_response);
        return barge_error_set(err, BARGE_ERR_IO, "cannot reach %s: %s",
                               rq->peer ? rq->peer : "the server", curl_easy_strerror(rc));
    }
    out->body = barge_buf_steal(&t.body, &out->len);
    out->header = t.header;
    return 0;
}

void barge_httpc_response_release(struct barge_httpc_response *r)
{
    free(r->body);
    free(r->header);
    memset(r, 0, sizeof(*r));
}
