/* Bytes as text, in the one spelling every file, report and log line uses: lowercase hex, and
 * MAC addresses as six two-digit groups. Pure: no allocation, no I/O. */
#ifndef ES_HEX_H
#define ES_HEX_H

#include <stddef.h>
#include <stdint.h>

#define ES_MAC_TEXT_LEN 18 /* "24:0a:c4:12:34:56" and its NUL */

/* Lowercase hex of bytes[0, n) into out, which holds 2n + 1 chars (NUL-terminated). */
void es_hex(const uint8_t *bytes, size_t n, char *out);

/* mac as six lowercase two-digit groups joined by sep: ':' for people and JSON
 * ("24:0a:c4:12:34:56"), '-' for file names that must be valid on Windows shares. */
void es_format_mac(const uint8_t mac[6], char sep, char out[ES_MAC_TEXT_LEN]);

#endif
