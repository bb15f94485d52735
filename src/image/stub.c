/* Loading the flasher stub JSON files of the esptool-js package (see es/stub.h). It lives with
 * the image code: like an image, a stub is read from a file once, before the loop starts. */
#include "es/stub.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/install_dir.h"

static int decode_segment(const char *file, json_t *root, const char *key, const char *addr_key,
                          struct stub_segment *seg, struct es_err *err)
{
    json_t *text = json_object_get(root, key);
    json_t *addr = json_object_get(root, addr_key);
    const char *b64;
    size_t b64_len, cap;
    int n;

    if (!json_is_string(text) || !json_is_integer(addr))
        return es_fail(err, ES_STUB, "%s: \"%s\" (base64) or \"%s\" (address) is missing", file,
                       key, addr_key);
    b64 = json_string_value(text);
    b64_len = json_string_length(text);
    if (b64_len % 4 != 0 || b64_len > 4 * 1024 * 1024)
        return es_fail(err, ES_STUB, "%s: \"%s\" is not base64 (length %zu)", file, key, b64_len);
    cap = b64_len / 4 * 3;
    seg->bytes = malloc(cap > 0 ? cap : 1);
    if (seg->bytes == NULL)
        return es_fail(err, ES_NOMEM, "out of memory reading %s", file);
    n = EVP_DecodeBlock(seg->bytes, (const unsigned char *)b64, (int)b64_len);
    if (n < 0)
        return es_fail(err, ES_STUB, "%s: \"%s\" is not valid base64", file, key);
    /* EVP_DecodeBlock counts the '=' padding as zero bytes; take them off. */
    if (b64_len >= 1 && b64[b64_len - 1] == '=')
        n--;
    if (b64_len >= 2 && b64[b64_len - 2] == '=')
        n--;
    seg->len = (size_t)n;
    seg->addr = (uint32_t)json_integer_value(addr);
    return 0;
}

int stub_load(const char *dir, const struct chip *chip, struct stub_image *out, struct es_err *err)
{
    char file[4096];
    json_error_t jerr;
    json_t *root, *entry;
    int rc;

    memset(out, 0, sizeof(*out));
    snprintf(file, sizeof(file), "%s/%s.json", dir, chip->name);
    root = json_load_file(file, 0, &jerr);
    if (root == NULL)
        return es_fail(err, ES_STUB,
                       "cannot read the %s flasher stub %s: %s; run tools/setup-deps.sh (it "
                       "installs esptool-js) or set ESPSTATION_STUB_DIR",
                       chip->display, file, jerr.text);
    entry = json_object_get(root, "entry");
    if (!json_is_integer(entry)) {
        rc = es_fail(err, ES_STUB, "%s: \"entry\" is missing", file);
        goto out_free;
    }
    out->chip = chip;
    out->entry = (uint32_t)json_integer_value(entry);
    rc = decode_segment(file, root, "text", "text_start", &out->text, err);
    if (rc == 0)
        rc = decode_segment(file, root, "data", "data_start", &out->data, err);
    if (rc < 0)
        stub_close(out);
out_free:
    json_decref(root);
    return rc;
}

void stub_close(struct stub_image *out)
{
    free(out->text.bytes);
    free(out->data.bytes);
    memset(out, 0, sizeof(*out));
}

/* The order, also in espstation(1): $ESPSTATION_STUB_DIR; then the installed stubs,
 * ../share/espstation/stubs next to the executable (a package); then the build tree's
 * npm/node_modules/esptool-js path (ESPSTATION_STUB_DIR at configure time). An installed copy wins
 * over the build path so that a package never reads a source tree it happens to sit next to. */
const char *stub_default_dir(void)
{
    static char installed[4096];
    const char *env = getenv("ESPSTATION_STUB_DIR");

    if (env != NULL && env[0] != '\0')
        return env;
    if (es_install_dir(ES_INSTALL_STUB_DIR, installed, sizeof(installed)) == 0)
        return installed;
    return ESPSTATION_STUB_DIR;
}
