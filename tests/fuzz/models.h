/* Picking a service model and an operation from fuzz input: a name when the
 * input spells a real one (as the committed seeds do), otherwise one chosen by
 * a byte of the input, so that random bytes still reach real shapes. */
#ifndef BARGE_TESTS_FUZZ_MODELS_H
#define BARGE_TESTS_FUZZ_MODELS_H

#include "api/model.h"
#include "fuzz.h"

static inline const char *fuzz_pick_operation(const struct barge_model *m, const char *name,
                                              unsigned pick)
{
    if (barge_model_has_operation(m, name))
        return name;
    const json_t *ops = json_object_get(barge_model_raw(m), "operations");
    size_t n = json_object_size(ops);
    if (n == 0)
        abort();
    size_t i = 0;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)ops, key, v)
    {
        if (i++ == pick % n)
            return key;
    }
    abort();
}

#endif
