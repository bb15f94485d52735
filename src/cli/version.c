/* `espstation --version`: the build's version, then each library's version as the loaded library
 * reports it, then the flasher stubs' package. Kept apart from main.c because it is the one place
 * the command line reaches into every library directly. */
#include "version.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <libserialport.h>
#include <openssl/crypto.h>
#include <uv.h>
#include <yaml.h>
#include <zlib.h>

#include "es_version.h"

/* jansson_version_str() appeared in jansson 2.13; older ones only have the header's macro. */
static const char *jansson_version(void)
{
#if JANSSON_VERSION_HEX >= 0x020d00
    return jansson_version_str();
#else
    return JANSSON_VERSION;
#endif
}

void version_print(FILE *f)
{
    fprintf(f, "espstation %s\n", ESPSTATION_VERSION_FULL);
    fprintf(f, "libuv %s\n", uv_version_string());
    fprintf(f, "libserialport %s\n", sp_get_package_version_string());
    fprintf(f, "libyaml %s\n", yaml_get_version_string());
    /* OpenSSL_version() names itself: "OpenSSL 3.0.x <date>". */
    fprintf(f, "%s\n", OpenSSL_version(OPENSSL_VERSION));
    fprintf(f, "zlib %s\n", zlibVersion());
    fprintf(f, "jansson %s\n", jansson_version());
    /* PQlibVersion(): major * 10000 + minor since PostgreSQL 10 (150018 is 15.18). */
    fprintf(f, "libpq %d.%d\n", PQlibVersion() / 10000, PQlibVersion() % 10000);
    fprintf(f, "stubs %s (esp-flasher-stub)\n", ESPSTATION_STUB_PACKAGE);
}
