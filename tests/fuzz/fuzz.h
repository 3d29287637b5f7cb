/* What every fuzz target shares: the libFuzzer entry points, and splitting an
 * input into lines so that a target can take several fields (an operation
 * name, then a body) from one byte string while staying readable in the
 * committed corpus. */
#ifndef BARGE_TESTS_FUZZ_H
#define BARGE_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Takes the next line (up to '\n', which is dropped) off *data as a new
 * NUL-terminated string the caller frees; at the end of the input, the rest. */
static inline char *fuzz_line(const uint8_t **data, size_t *size)
{
    const uint8_t *nl = memchr(*data, '\n', *size);
    size_t n = nl ? (size_t)(nl - *data) : *size;
    char *s = malloc(n + 1);
    if (!s)
        abort();
    memcpy(s, *data, n);
    s[n] = '\0';
    *data += n + (nl ? 1 : 0);
    *size -= n + (nl ? 1 : 0);
    return s;
}

/* The rest of the input as a NUL-terminated copy the caller frees. */
static inline char *fuzz_rest(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

#endif
