/* The agent's checkpoint: one JSON file written atomically (temporary file,
 * fsync, rename) whenever a task's state changes, so a restarted agent knows
 * its instance, its token and the containers it was running. It never holds a
 * secret value: task environments are not written, only ids and statuses. */
#include <errno.h>
#include <string.h>

#include "agent/agent.h"
#include "common/json.h"

int barge_agent_state_load(const char *data_dir, json_t **out, struct barge_error **err)
{
    _cleanup_free_ char *path = barge_xasprintf("%s/state.json", data_dir);
    _cleanup_free_ char *text = barge_read_file(path, NULL);
    if (!text) {
        if (errno == ENOENT) {
            *out = json_pack("{s:{}}", "tasks");
            return 0;
        }
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot read '%s'", path);
    }
    json_error_t jerr;
    *out = json_loads(text, 0, &jerr);
    if (!json_is_object(*out)) {
        json_decref(*out);
        return barge_error_set(err, BARGE_ERR_IO, "'%s' is corrupt: %s", path, jerr.text);
    }
    if (!json_is_object(json_object_get(*out, "tasks")))
        json_object_set_new(*out, "tasks", json_object());
    return 0;
}

int barge_agent_state_save(const char *data_dir, const json_t *state, struct barge_error **err)
{
    _cleanup_free_ char *path = barge_xasprintf("%s/state.json", data_dir);
    _cleanup_free_ char *text = json_dumps(state, JSON_INDENT(1) | JSON_SORT_KEYS);
    if (!text || barge_write_file_atomic(path, text, strlen(text), 0600) < 0)
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot write '%s'", path);
    return 0;
}
