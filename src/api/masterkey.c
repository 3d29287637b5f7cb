/* The master key at start-up (see secrets.h). A known text sealed under the
 * key is kept in the store ("meta", "master-key-check"); a barged started with
 * another key refuses to start instead of failing on the first secret read.
 * Once the key is known, access key secrets an older barged left in plain
 * text are sealed. */
#include <string.h>

#include "api/access.h"
#include "api/secrets.h"
#include "common/json.h"
#include "common/log.h"

#define CHECK_TEXT "barge master key check"
#define CHECK_AAD  "barge|master-key-check"

int barge_server_master_key_init(struct barge_server *srv, struct barge_error **err)
{
    _cleanup_free_ char *dflt = barge_xasprintf("%s/master.key", srv->cfg.data_dir);
    const char *path = srv->cfg.master_key_file ? srv->cfg.master_key_file : dflt;
    bool created = false;
    /* A key file named explicitly must exist: creating one there would hide
     * a typo behind a fresh, empty key. */
    if (barge_crypto_key_load("BARGE_MASTER_KEY", path, !srv->cfg.master_key_file, &srv->master_key,
                              &created, err) < 0)
        return -1;
    if (created)
        barge_info("created the master key %s (mode 0600); back it up: secrets cannot be read "
                   "without it",
                   path);
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *check = NULL;
    if (barge_store_begin(srv->store, true, &tx, err) < 0 ||
        barge_store_get(tx, "meta", "master-key-check", &check, err) < 0)
        return -1;
    if (check) {
        char *plain = NULL;
        size_t len = 0;
        struct barge_error *e = NULL;
        if (barge_crypto_open(&srv->master_key, barge_json_str(check, "sealed", ""), CHECK_AAD,
                              &plain, &len, &e) < 0) {
            barge_error_free(e);
            return barge_error_set(err, BARGE_ERR_INVALID,
                                   "the master key (%s) is not the one this store's secrets "
                                   "were encrypted with",
                                   getenv("BARGE_MASTER_KEY") && *getenv("BARGE_MASTER_KEY")
                                       ? "from BARGE_MASTER_KEY"
                                       : path);
        }
        barge_crypto_free(plain, len);
        barge_store_abort(barge_steal(&tx));
        return barge_api_keys_seal_plaintext(srv, err);
    }
    _cleanup_free_ char *sealed =
        barge_crypto_seal(&srv->master_key, CHECK_TEXT, strlen(CHECK_TEXT), CHECK_AAD);
    _cleanup_json_ json_t *doc = json_pack("{s:s}", "sealed", sealed);
    if (barge_store_put(tx, "meta", "master-key-check", doc, err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    return barge_api_keys_seal_plaintext(srv, err);
}
