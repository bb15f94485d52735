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

/* Ends msg, which was cut to fit its buffer, with ES_ERR_CUT_MARK so nobody mistakes the cut
 * text for the whole sentence. */
static void mark_cut(char *msg, size_t cap)
{
    size_t mark = sizeof(ES_ERR_CUT_MARK) - 1;

    memcpy(msg + cap - 1 - mark, ES_ERR_CUT_MARK, mark + 1);
}

int es_vfail(struct es_err *err, enum es_code code, const char *fmt, va_list ap)
{
    if (err != NULL) {
        int n;

        err->code = code;
        err->rom_status = -1;
        n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        if (n < 0)
            snprintf(err->msg, sizeof(err->msg), "(message could not be formatted)");
        else if ((size_t)n >= sizeof(err->msg))
            mark_cut(err->msg, sizeof(err->msg));
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
    char prefix[ES_ERR_MSG_MAX];
    size_t plen, mlen, cap = sizeof(err->msg) - 1;
    int n, cut = 0;
    va_list ap;

    va_start(ap, fmt);
    n = vsnprintf(prefix, sizeof(prefix) - 2, fmt, ap);
    va_end(ap);
    if (n < 0)
        prefix[0] = '\0';
    strcat(prefix, ": ");
    plen = strlen(prefix); /* at most cap: the prefix was formatted into cap - 2 bytes */
    mlen = strlen(err->msg);
    if (plen + mlen > cap) {
        mlen = cap - plen; /* keep the start of the message */
        cut = 1;
    }
    memmove(err->msg + plen, err->msg, mlen);
    memcpy(err->msg, prefix, plen);
    err->msg[plen + mlen] = '\0';
    if (cut)
        mark_cut(err->msg, sizeof(err->msg));
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
