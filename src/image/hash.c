/* One-shot SHA-256 and MD5 through OpenSSL's EVP interface, and the padded MD5 that flash
 * verification compares against (protocol doc §8.2). Digests as hex text: es/hex.h. */
#include <openssl/evp.h>

#include "es/image.h"

static int digest(const EVP_MD *md, const char *name, const void *data, size_t len,
                  const uint8_t *pad, size_t pad_len, uint8_t *out, struct es_err *err)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok;

    if (ctx == NULL)
        return es_fail(err, ES_NOMEM, "%s: EVP_MD_CTX_new failed", name);
    ok = EVP_DigestInit_ex(ctx, md, NULL) == 1 && EVP_DigestUpdate(ctx, data, len) == 1 &&
         (pad_len == 0 || EVP_DigestUpdate(ctx, pad, pad_len) == 1) &&
         EVP_DigestFinal_ex(ctx, out, NULL) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return es_fail(err, ES_NOMEM, "%s: OpenSSL digest of %zu bytes failed", name, len);
    return 0;
}

int es_sha256(const void *data, size_t len, uint8_t out[32], struct es_err *err)
{
    return digest(EVP_sha256(), "SHA-256", data, len, NULL, 0, out, err);
}

int es_md5(const void *data, size_t len, uint8_t out[16], struct es_err *err)
{
    return digest(EVP_md5(), "MD5", data, len, NULL, 0, out, err);
}

int es_md5_padded(const void *data, size_t len, uint8_t out[16], struct es_err *err)
{
    static const uint8_t ff[3] = {0xFF, 0xFF, 0xFF};

    return digest(EVP_md5(), "MD5", data, len, ff, (4 - len % 4) % 4, out, err);
}
