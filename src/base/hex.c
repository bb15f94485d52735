/* Hex digits and MAC addresses as text: one function per spelling, so a report, a journal line
 * and a file name can never disagree on case or separators. */
#include "es/hex.h"

static const char hex_digits[] = "0123456789abcdef";

void es_hex(const uint8_t *bytes, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex_digits[bytes[i] >> 4];
        out[2 * i + 1] = hex_digits[bytes[i] & 0xF];
    }
    out[2 * n] = '\0';
}

void es_format_mac(const uint8_t mac[6], char sep, char out[ES_MAC_TEXT_LEN])
{
    for (size_t i = 0; i < 6; i++) {
        out[3 * i] = hex_digits[mac[i] >> 4];
        out[3 * i + 1] = hex_digits[mac[i] & 0xF];
        out[3 * i + 2] = i < 5 ? sep : '\0';
    }
}
