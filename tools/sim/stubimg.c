/* Loading esptool-js's flasher stub JSON files for the upload check (see stubimg.h). */
#include "stubimg.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int sim_base64_decode(const char *text, uint8_t **out, size_t *n)
{
    size_t len = strlen(text);
    uint8_t *buf = malloc(len / 4 * 3 + 3);
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0, pad = 0;

    if (!buf)
        return -1;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        int v;

        if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
            continue;
        if (c == '=') {
            pad++;
            continue;
        }
        v = b64_value(c);
        if (v < 0 || pad)
            goto out_bad;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (uint8_t)(acc >> bits);
        }
    }
    if (pad > 2)
        goto out_bad;
    *out = buf;
    *n = o;
    return 0;

out_bad:
    free(buf);
    return -1;
}

static int get_u32(json_t *root, const char *key, uint32_t *v)
{
    json_t *j = json_object_get(root, key);

    if (!json_is_integer(j) || json_integer_value(j) < 0 || json_integer_value(j) > 0xFFFFFFFFLL)
        return -1;
    *v = (uint32_t)json_integer_value(j);
    return 0;
}

static int load_one(struct sim_stub_image *img, const char *dir, const char *name,
                    struct es_err *err)
{
    char path[4096];
    json_error_t jerr;
    json_t *root;
    json_t *text, *data;
    int rc = 0;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    root = json_load_file(path, 0, &jerr);
    if (!root)
        return es_fail(err, ES_IO,
                       "flasher stub %s: %s (line %d); pass --stub-dir with esptool-js's "
                       "lib/targets/stub_flasher",
                       path, jerr.text, jerr.line);
    text = json_object_get(root, "text");
    data = json_object_get(root, "data");
    if (!json_is_string(text) || get_u32(root, "text_start", &img->text_start) < 0 ||
        get_u32(root, "entry", &img->entry) < 0) {
        rc = es_fail(err, ES_STUB, "flasher stub %s: expected 'text', 'text_start' and 'entry'",
                     path);
        goto out_put;
    }
    if (sim_base64_decode(json_string_value(text), &img->text, &img->text_len) < 0) {
        rc = es_fail(err, ES_STUB, "flasher stub %s: 'text' is not valid base64", path);
        goto out_put;
    }
    /* The data segment is optional in the format; esptool-js skips an empty one. */
    if (json_is_string(data)) {
        if (get_u32(root, "data_start", &img->data_start) < 0 ||
            sim_base64_decode(json_string_value(data), &img->data, &img->data_len) < 0) {
            rc = es_fail(err, ES_STUB, "flasher stub %s: bad 'data' or 'data_start'", path);
            goto out_put;
        }
    }
    img->present = 1;
out_put:
    json_decref(root);
    return rc;
}

int sim_stub_images_load(struct sim_stub_images *s, const char *dir, struct es_err *err)
{
    memset(s, 0, sizeof(*s));
    if (load_one(&s->chip[SIM_ESP8266], dir, "esp8266.json", err) < 0 ||
        load_one(&s->chip[SIM_ESP32], dir, "esp32.json", err) < 0) {
        int rc = -(int)(err ? err->code : ES_STUB);

        sim_stub_images_close(s);
        return rc;
    }
    return 0;
}

void sim_stub_images_close(struct sim_stub_images *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < 2; i++) {
        free(s->chip[i].text);
        free(s->chip[i].data);
    }
    memset(s, 0, sizeof(*s));
}
