/* libFuzzer target for the YAML profile parser: any text either parses into a profile or fails
 * with an ES_PROFILE message that starts with the file name and a position. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/profile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct profile *p = NULL;
    struct es_err err;

    if (profile_parse("fuzz.yaml", (const char *)data, size, &p, &err) == 0) {
        profile_free(p);
        return 0;
    }
    if (err.code != ES_PROFILE || strncmp(err.msg, "fuzz.yaml:", 10) != 0) {
        fprintf(stderr, "unexpected failure: code %d, message '%s'\n", (int)err.code, err.msg);
        abort();
    }
    return 0;
}
