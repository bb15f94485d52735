/* struct es_err: filling, prefixing, and the code tables built from ES_ERRORS. */
#include "es/err.h"

#include <stdio.h>
#include <string.h>

static const char *const code_names[] = {
#define ES_NAME(name, json, hint) json,
    ES_ERRORS(ES_NAME)
#undef ES_NAME
};

static const char *const code_hints[] = {
#define ES_HINT(name, json, hint) hint,
    ES_ERRORS(ES_HINT)
#undef ES_HINT
};

int es_vfail(struct es_err *err, enum es_code code, const char *fmt, va_list ap)
{
    if (err != NULL) {
        err->code = code;
        err->rom_status = -1;
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    }
    return -(int)code;
}

int es_fail(struct es_err *err, enum es_code code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    es_vfail(err, code, fmt, ap);
    va_end(ap);
    return -(int)code;
}

int es_err_prefix(struct es_err *err, const char *fmt, ...)
{
    char prefix[128];
    size_t plen, mlen, cap = sizeof(err->msg) - 1;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix) - 2, fmt, ap);
    va_end(ap);
    strcat(prefix, ": ");
    plen = strlen(prefix);
    mlen = strlen(err->msg);
    if (plen + mlen > cap)
        mlen = cap - plen; /* keep the start of the message; the tail is the least useful */
    memmove(err->msg + plen, err->msg, mlen);
    memcpy(err->msg, prefix, plen);
    err->msg[plen + mlen] = '\0';
    return -(int)err->code;
}

void es_err_clear(struct es_err *err)
{
    err->code = ES_OK;
    err->rom_status = -1;
    err->msg[0] = '\0';
}

const char *es_code_name(enum es_code code)
{
    if ((unsigned)code >= ES_CODE_COUNT)
        return "unknown";
    return code_names[code];
}

const char *es_code_hint(enum es_code code)
{
    if ((unsigned)code >= ES_CODE_COUNT)
        return "";
    return code_hints[code];
}
