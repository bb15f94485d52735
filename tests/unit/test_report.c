/* Reports: atomic file replacement, the run directory, device and run JSON, the journal, and what
 * a SIGKILL or a full disk leaves behind. Each test works in its own temporary directory. */
#include <setjmp.h> /* cmocka.h needs these four first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "es/atomic_file.h"
#include "es/journal.h"
#include "es/report.h"

/* --- helpers --- */

static void rm_rf(const char *path)
{
    struct stat st;
    DIR *d;
    struct dirent *e;
    char sub[4096];

    if (lstat(path, &st) < 0)
        return;
    if (!S_ISDIR(st.st_mode)) {
        unlink(path);
        return;
    }
    chmod(path, 0700);
    d = opendir(path);
    if (d != NULL) {
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
            rm_rf(sub);
        }
        closedir(d);
    }
    rmdir(path);
}

static int setup_dir(void **state)
{
    const char *base = getenv("TMPDIR");
    char *dir = malloc(4096);

    if (dir == NULL)
        return -1;
    snprintf(dir, 4096, "%s/es-report-XXXXXX", base ? base : "/tmp");
    if (mkdtemp(dir) == NULL) {
        free(dir);
        return -1;
    }
    *state = dir;
    return 0;
}

static int teardown_dir(void **state)
{
    rm_rf(*state);
    free(*state);
    return 0;
}

/* Names in dir, sorted, joined by ' '; "" for an empty directory. */
static void list_dir(const char *dir, char *out, size_t cap)
{
    char names[64][256];
    size_t n = 0, used = 0;
    DIR *d = opendir(dir);
    struct dirent *e;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL && n < 64) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(names[n++], sizeof(names[0]), "%s", e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof(names[0]), (int (*)(const void *, const void *))strcmp);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++)
        used += (size_t)snprintf(out + used, cap - used, "%s%s", i ? " " : "", names[i]);
}

/* Whole file, NUL-terminated; *len without the NUL. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    if (len != NULL)
        *len = (size_t)n;
    return buf;
}

static void path_join(char *out, size_t cap, const char *dir, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

static json_t *load_json(const char *dir, const char *name)
{
    char path[4096];
    json_error_t jerr;
    json_t *root;

    path_join(path, sizeof(path), dir, name);
    root = json_load_file(path, 0, &jerr);
    if (root == NULL)
        fail_msg("%s: %s at line %d", path, jerr.text, jerr.line);
    return root;
}

/* Asserts obj's keys are exactly the NULL-terminated list, in that order. */
static void assert_keys(const json_t *obj, const char *const *keys)
{
    void *it = json_object_iter((json_t *)obj);
    size_t i = 0;

    for (; it != NULL; it = json_object_iter_next((json_t *)obj, it), i++) {
        assert_non_null(keys[i]);
        assert_string_equal(json_object_iter_key(it), keys[i]);
    }
    assert_null(keys[i]);
}

#define S(obj, key)   json_string_value(json_object_get((obj), (key)))
#define I(obj, key)   json_integer_value(json_object_get((obj), (key)))
#define NUL(obj, key) assert_true(json_is_null(json_object_get((obj), (key))))
#define OBJ(obj, key) json_object_get((obj), (key))

/* Lowers the file size limit so that writes past limit_bytes fail with EFBIG instead of
 * filling a disk; SIGXFSZ is ignored so the process is not killed. */
struct fsize_limit {
    struct rlimit old;
    void (*old_handler)(int);
};

static void fsize_limit_set(struct fsize_limit *l, rlim_t limit_bytes)
{
    struct rlimit r;

    assert_int_equal(getrlimit(RLIMIT_FSIZE, &l->old), 0);
    r = l->old;
    r.rlim_cur = limit_bytes;
    l->old_handler = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &r), 0);
}

static void fsize_limit_restore(struct fsize_limit *l)
{
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &l->old), 0);
    signal(SIGXFSZ, l->old_handler);
}

/* --- atomic write --- */

static void test_atomic_write_creates_one_file(void **state)
{
    const char *dir = *state;
    char path[4096], names[4096];
    struct es_err err;
    size_t len;
    char *got;

    assert_int_equal(es_atomic_write(dir, "a.json", "hello\n", 6, &err), 0);
    list_dir(dir, names, sizeof(names));
    assert_string_equal(names, "a.json");
    path_join(path, sizeof(path), dir, "a.json");
    got = slurp(path, &len);
    assert_int_equal(len, 6);
    assert_memory_equal(got, "hello\n", 6);
    free(got);

    /* An empty file is a valid content too. */
    assert_int_equal(es_atomic_write(dir, "empty", NULL, 0, &err), 0);
    list_dir(dir, names, sizeof(names));
    assert_string_equal(names, "a.json empty");
}

static void test_atomic_write_replaces(void **state)
{
    const char *dir = *state;
    char path[4096], names[4096];
    struct es_err err;
    char *got;

    assert_int_equal(es_atomic_write(dir, "r.json", "old old old", 11, &err), 0);
    assert_int_equal(es_atomic_write(dir, "r.json", "new", 3, &err), 0);
    list_dir(dir, names, sizeof(names));
    assert_string_equal(names, "r.json");
    path_join(path, sizeof(path), dir, "r.json");
    got = slurp(path, NULL);
    assert_string_equal(got, "new");
    free(got);
}

static void test_atomic_write_bad_name(void **state)
{
    const char *dir = *state;
    char names[4096];
    struct es_err err;

    assert_int_equal(es_atomic_write(dir, "a/b", "x", 1, &err), -(int)ES_INVALID_ARG);
    assert_int_equal(es_atomic_write(dir, "", "x", 1, &err), -(int)ES_INVALID_ARG);
    assert_int_equal(es_atomic_write(dir, "..", "x", 1, &err), -(int)ES_INVALID_ARG);
    assert_int_equal(err.code, ES_INVALID_ARG);
    list_dir(dir, names, sizeof(names));
    assert_string_equal(names, "");
}

static void test_atomic_write_not_a_directory(void **state)
{
    const char *dir = *state;
    char file[4096], names[4096];
    struct es_err err;

    /* A path under a regular file fails for root too (ENOTDIR), unlike permissions. */
    assert_int_equal(es_atomic_write(dir, "plain", "x", 1, &err), 0);
    path_join(file, sizeof(file), dir, "plain");
    assert_int_equal(es_atomic_write(file, "r.json", "data", 4, &err), -(int)ES_REPORT);
    assert_int_equal(err.code, ES_REPORT);
    assert_true(strncmp(err.msg, "open ", 5) == 0);
    assert_non_null(strstr(err.msg, "/plain/r.json.tmp."));
    assert_non_null(strstr(err.msg, strerror(ENOTDIR)));
    list_dir(dir, names, sizeof(names));
    assert_string_equal(names, "plain");
}

static void test_atomic_write_read_only_dir(void **state)
{
    const char *dir = *state;
    char ro[4096], names[4096];
    struct es_err err;
    int rc;

    path_join(ro, sizeof(ro), dir, "ro");
    assert_int_equal(mkdir(ro, 0555), 0);
    assert_int_equal(chmod(ro, 0555), 0);
    rc = es_atomic_write(ro, "r.json", "data", 4, &err);
    if (geteuid() == 0) {
        /* Root ignores the permission bits; test_atomic_write_not_a_directory covers failure. */
        assert_int_equal(rc, 0);
        skip();
    }
    assert_int_equal(rc, -(int)ES_REPORT);
    assert_non_null(strstr(err.msg, strerror(EACCES)));
    list_dir(ro, names, sizeof(names));
    assert_string_equal(names, "");
}

static void test_atomic_write_failure_keeps_old_file(void **state)
{
    const char *dir = *state;
    char path[4096], names[4096];
    static char big[64 * 1024];
    struct fsize_limit lim;
    struct es_err err;
    int rc;
    char *got;

    assert_int_equal(es_atomic_write(dir, "keep.json", "{\"old\": true}\n", 14, &err), 0);
    memset(big, 'n', sizeof(big));
    /* The write stops at 4 KiB (a short write, then EFBIG), as on a full disk. */
    fsize_limit_set(&lim, 4096);
    rc = es_atomic_write(dir, "keep.json", big, sizeof(big), &err);
    fsize_limit_restore(&lim);
    assert_int_equal(rc, -(int)ES_REPORT);
    assert_true(strncmp(err.msg, "write ", 6) == 0);
    assert_non_null(strstr(err.msg, "keep.json.tmp."));
    assert_non_null(strstr(err.msg, strerror(EFBIG)));
    list_dir(dir, names, sizeof(names));
    assert_string_equal(names, "keep.json"); /* the temporary file is gone */
    path_join(path, sizeof(path), dir, "keep.json");
    got = slurp(path, NULL);
    assert_string_equal(got, "{\"old\": true}\n");
    free(got);
}

/* One round: a child replaces dir/f over and over with one of two contents and is SIGKILLed
 * somewhere in its loop. The file must then hold exactly one of them, never a mixture or a
 * prefix. (A temporary file may be left behind by the kill; it is never the target.) */
static void atomic_kill_round(const char *dir, long delay_ns)
{
    static char a[32 * 1024], b[48 * 1024];
    struct timespec delay = {0, delay_ns};
    char path[4096];
    int fds[2], status;
    unsigned acks = 0, ack;
    size_t len;
    pid_t pid;
    char *got;

    memset(a, 'a', sizeof(a));
    memset(b, 'b', sizeof(b));
    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        for (unsigned i = 0; i < 100000; i++) {
            int rc = i % 2 ? es_atomic_write(dir, "f", b, sizeof(b), NULL)
                           : es_atomic_write(dir, "f", a, sizeof(a), NULL);
            if (rc < 0 || write(fds[1], &i, sizeof(i)) != (ssize_t)sizeof(i))
                _exit(1);
        }
        _exit(0);
    }
    close(fds[1]);
    while (acks < 3 && read(fds[0], &ack, sizeof(ack)) == (ssize_t)sizeof(ack))
        acks++;
    nanosleep(&delay, NULL); /* moves the kill around the loop; nothing depends on its length */
    kill(pid, SIGKILL);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    close(fds[0]);
    assert_int_equal(acks, 3);
    assert_true(WIFSIGNALED(status));

    path_join(path, sizeof(path), dir, "f");
    got = slurp(path, &len);
    if (len == sizeof(a))
        assert_memory_equal(got, a, sizeof(a));
    else if (len == sizeof(b))
        assert_memory_equal(got, b, sizeof(b));
    else
        fail_msg("file has %zu bytes, neither %zu nor %zu", len, sizeof(a), sizeof(b));
    free(got);
}

static void test_atomic_write_sigkill_leaves_old_or_new(void **state)
{
    for (long round = 0; round < 12; round++)
        atomic_kill_round(*state, 20000L + 97000L * round);
}

/* --- run directory --- */

static void assert_run_id(const char *run_dir, const char *root)
{
    const char *id;
    struct stat st;

    assert_int_equal(strncmp(run_dir, root, strlen(root)), 0);
    assert_int_equal(run_dir[strlen(root)], '/');
    id = run_dir + strlen(root) + 1;
    /* 20261125T193000Z-3fa1 */
    assert_int_equal(strlen(id), 21);
    for (int i = 0; i < 21; i++) {
        char c = id[i];
        if (i == 8)
            assert_int_equal(c, 'T');
        else if (i == 15)
            assert_int_equal(c, 'Z');
        else if (i == 16)
            assert_int_equal(c, '-');
        else if (i > 16)
            assert_non_null(strchr("0123456789abcdef", c));
        else
            assert_true(c >= '0' && c <= '9');
    }
    assert_int_equal(stat(run_dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
}

static void test_run_dir_create(void **state)
{
    const char *dir = *state;
    char root[4096], r1[4096], r2[4096];
    struct es_err err;

    snprintf(root, sizeof(root), "%s/site/reports", dir); /* neither level exists yet */
    assert_int_equal(report_run_dir_create(root, r1, sizeof(r1), &err), 0);
    assert_int_equal(report_run_dir_create(root, r2, sizeof(r2), &err), 0);
    assert_run_id(r1, root);
    assert_run_id(r2, root);
    assert_string_not_equal(r1, r2);

    /* Too small an output buffer is an error, not a truncated path. */
    assert_int_equal(report_run_dir_create(root, r1, 10, &err), -(int)ES_REPORT);
}

static void test_run_dir_under_regular_file(void **state)
{
    const char *dir = *state;
    char root[4096], out[4096];
    struct es_err err;

    assert_int_equal(es_atomic_write(dir, "plain", "x", 1, &err), 0);
    snprintf(root, sizeof(root), "%s/plain/reports", dir);
    assert_int_equal(report_run_dir_create(root, out, sizeof(out), &err), -(int)ES_REPORT);
    assert_true(strncmp(err.msg, "mkdir ", 6) == 0);
    assert_non_null(strstr(err.msg, strerror(ENOTDIR)));

    snprintf(root, sizeof(root), "%s/plain", dir);
    assert_int_equal(report_run_dir_create(root, out, sizeof(out), &err), -(int)ES_REPORT);
}

/* Issue 11 #1 and #12: before any board is touched, a reports directory that cannot be
 * created, is a file, cannot take a file, or lacks room is refused, naming the directory. */
static void test_dir_preflight(void **state)
{
    const char *dir = *state;
    char root[4096], want[3 * 4096];
    struct es_err err;
    struct stat st;

    snprintf(root, sizeof(root), "%s/site/reports", dir);
    assert_int_equal(report_dir_preflight(root, 4096, &err), 0);
    assert_int_equal(stat(root, &st), 0); /* created, and left empty: the probe is gone */
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(rmdir(root), 0);

    assert_int_equal(report_dir_preflight(dir, UINT64_MAX / 2, &err), -(int)ES_REPORT);
    snprintf(want, sizeof(want), "reports directory %s has ", dir);
    assert_memory_equal(err.msg, want, strlen(want));
    assert_non_null(strstr(err.msg, "KiB free; this run needs at least 9007199254740992 KiB for "
                                    "its reports and journal: free space or give another "
                                    "directory with --reports"));

    assert_int_equal(es_atomic_write(dir, "plain", "x", 1, &err), 0);
    snprintf(root, sizeof(root), "%s/plain", dir);
    assert_int_equal(report_dir_preflight(root, 4096, &err), -(int)ES_REPORT);
    snprintf(want, sizeof(want),
             "reports directory %s cannot be used: %s exists but is not a directory", root, root);
    assert_string_equal(err.msg, want);
    snprintf(root, sizeof(root), "%s/plain/reports", dir);
    assert_int_equal(report_dir_preflight(root, 4096, &err), -(int)ES_REPORT);
    snprintf(want, sizeof(want), "reports directory %s cannot be used: mkdir %s: %s", root, root,
             strerror(ENOTDIR));
    assert_string_equal(err.msg, want);

    /* /proc takes no files, even from root: a read-only place that chmod cannot fake. */
    assert_int_equal(report_dir_preflight("/proc/self", 4096, &err), -(int)ES_REPORT);
    assert_true(strncmp(err.msg, "reports directory /proc/self is not writable: create ", 53) == 0);
}

/* --- device reports --- */

static const struct report_timing timings[] = {
    {"open", 3}, {"reset", 120}, {"sync", 40}, {"detect", 12}, {"sync", 2}, {"write", 9000},
};

static struct report_image images[2];

/* A board that passed, every field set. */
static const int dup_slots[2] = {3, 7};

static const char *const boot_matched[] = {"MicroPython v1\\.", ">>> ", "42"};

static struct report_device full_device(void)
{
    struct report_device d;

    memset(&d, 0, sizeof(d));
    memset(images, 0, sizeof(images));
    images[0].offset = 0x1000;
    images[0].file = "images/bootloader.bin";
    images[0].size_bytes = 26384;
    for (int i = 0; i < 32; i++)
        images[0].sha256[i] = (uint8_t)(0xA0 + i);
    images[0].md5_sent_valid = true;
    images[0].md5_read_valid = true;
    for (int i = 0; i < 16; i++)
        images[0].md5_sent[i] = images[0].md5_read[i] = (uint8_t)(0xF0 + i);
    images[0].written_bytes = 28672;
    images[0].verified = true;
    images[1].offset = 0x10000;
    images[1].file = "images/app.bin";
    images[1].size_bytes = 1048576;
    images[1].sha256[0] = 0x01;
    images[1].md5_sent_valid = true;
    images[1].md5_sent[15] = 0xAB;
    images[1].written_bytes = 1048576;

    d.result = REPORT_PASS;
    es_err_clear(&d.error);
    d.slot = 7;
    d.port = "/dev/ttyUSB6";
    d.usb_valid = true;
    d.usb_vid = 0x10C4;
    d.usb_pid = 0xEA60;
    d.usb_serial = "0001";
    d.usb_location = "1-1.4";
    d.chip = "ESP32";
    d.chip_revision = 3;
    d.duplicate_slots = dup_slots;
    d.n_duplicate_slots = 2;
    d.mac_valid = true;
    memcpy(d.mac, (const uint8_t[]){0x24, 0x0A, 0xC4, 0x12, 0x34, 0x56}, 6);
    d.flash_id_valid = true;
    d.flash_id = 0x001640EF;
    d.flash_size_bytes = 4u << 20;
    d.images = images;
    d.n_images = 2;
    d.timings = timings;
    d.n_timings = sizeof(timings) / sizeof(timings[0]);
    d.tx_bytes = 1123456;
    d.write_tx_bytes = 1000001;
    d.rx_bytes = 4567;
    d.connect_retries = 2;
    d.block_retries = 1;
    d.loader = REPORT_LOADER_STUB;
    d.baud = 921600;
    d.tool_version = "9.8.7";
    d.profile_name = "esp32-app";
    d.profile_sha256_valid = true;
    for (int i = 0; i < 32; i++)
        d.profile_sha256[i] = (uint8_t)i;
    d.boot.ran = true;
    d.boot.baud = 115200;
    d.boot.log = "MicroPython v1.22.0 on 2024-01-01\n>>> print(6*7)\n42\n>>> ";
    d.boot.passed = true;
    d.boot.matched = boot_matched;
    d.boot.n_matched = 3;
    d.boot.ms = 812;
    d.start_ms = 1795635000123; /* 2026-11-25T19:30:00.123Z */
    d.end_ms = 1795635012456;
    return d;
}

static void test_device_round_trip(void **state)
{
    static const char *const root_keys[] = {"$schema",
                                            "schema",
                                            "result",
                                            "error",
                                            "slot",
                                            "port",
                                            "usb",
                                            "chip",
                                            "mac",
                                            "duplicate_mac_slots",
                                            "fleet_duplicate",
                                            "flash",
                                            "images",
                                            "boot",
                                            "timings_ms",
                                            "wire",
                                            "retries",
                                            "loader",
                                            "baud",
                                            "tool_version",
                                            "profile",
                                            "start",
                                            "end",
                                            "duration_ms",
                                            NULL};
    static const char *const image_keys[] = {"offset",   "offset_hex", "file",     "size",
                                             "sha256",   "md5_sent",   "md5_read", "written_bytes",
                                             "verified", NULL};
    static const char *const timing_keys[] = {"open", "reset", "sync", "detect", "write", NULL};
    static const char *const boot_keys[] = {"baud", "log", "passed", "matched", "ms", NULL};
    const char *dir = *state;
    struct report_device d = full_device();
    char name[64], path[4096];
    struct es_err err;
    json_t *root, *o, *im;
    char *text;

    assert_int_equal(report_write_device(dir, &d, name, sizeof(name), &err), 0);
    assert_string_equal(name, "24-0a-c4-12-34-56.json");

    path_join(path, sizeof(path), dir, name);
    text = slurp(path, NULL);
    assert_true(strncmp(text,
                        "{\n  \"$schema\": \"urn:espstation:schema:report:1\",\n  \"schema\": "
                        "1,\n  \"result\": \"pass\",\n",
                        84) == 0);
    assert_string_equal(text + strlen(text) - 2, "}\n");
    free(text);

    root = load_json(dir, name);
    assert_keys(root, root_keys);
    assert_int_equal(I(root, "schema"), REPORT_SCHEMA);
    assert_string_equal(S(root, "$schema"), REPORT_DEVICE_SCHEMA_ID);
    assert_string_equal(S(root, "result"), "pass");
    NUL(root, "error");
    assert_int_equal(I(root, "slot"), 7);
    assert_string_equal(S(root, "port"), "/dev/ttyUSB6");

    o = OBJ(root, "usb");
    assert_string_equal(S(o, "vid"), "10c4");
    assert_string_equal(S(o, "pid"), "ea60");
    assert_string_equal(S(o, "serial"), "0001");
    assert_string_equal(S(o, "location"), "1-1.4");

    o = OBJ(root, "chip");
    assert_string_equal(S(o, "name"), "ESP32");
    assert_int_equal(I(o, "revision"), 3);
    assert_string_equal(S(root, "mac"), "24:0a:c4:12:34:56");
    assert_int_equal(json_array_size(json_object_get(root, "duplicate_mac_slots")), 2);
    assert_int_equal(
        json_integer_value(json_array_get(json_object_get(root, "duplicate_mac_slots"), 1)), 7);

    o = OBJ(root, "flash");
    assert_string_equal(S(o, "id"), "0x1640ef");
    assert_string_equal(S(o, "manufacturer"), "ef");
    assert_string_equal(S(o, "device"), "4016");
    assert_int_equal(I(o, "size"), 4194304);

    o = OBJ(root, "images");
    assert_int_equal(json_array_size(o), 2);
    im = json_array_get(o, 0);
    assert_keys(im, image_keys);
    assert_int_equal(I(im, "offset"), 4096);
    assert_string_equal(S(im, "offset_hex"), "0x1000");
    assert_string_equal(S(im, "file"), "images/bootloader.bin");
    assert_int_equal(I(im, "size"), 26384);
    assert_string_equal(S(im, "sha256"),
                        "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf");
    assert_string_equal(S(im, "md5_sent"), "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
    assert_string_equal(S(im, "md5_read"), "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
    assert_int_equal(I(im, "written_bytes"), 28672);
    assert_true(json_is_true(OBJ(im, "verified")));
    im = json_array_get(o, 1);
    assert_int_equal(I(im, "offset"), 65536);
    assert_string_equal(S(im, "offset_hex"), "0x10000");
    assert_string_equal(S(im, "file"), "images/app.bin");
    assert_string_equal(S(im, "sha256"),
                        "0100000000000000000000000000000000000000000000000000000000000000");
    assert_string_equal(S(im, "md5_sent"), "000000000000000000000000000000ab");
    NUL(im, "md5_read");
    assert_true(json_is_false(OBJ(im, "verified")));

    o = OBJ(root, "boot");
    assert_keys(o, boot_keys);
    assert_int_equal(I(o, "baud"), 115200);
    assert_string_equal(S(o, "log"), "MicroPython v1.22.0 on 2024-01-01\n>>> print(6*7)\n42\n>>> ");
    assert_true(json_is_true(OBJ(o, "passed")));
    assert_int_equal(json_array_size(OBJ(o, "matched")), 3);
    assert_string_equal(json_string_value(json_array_get(OBJ(o, "matched"), 0)),
                        "MicroPython v1\\.");
    assert_string_equal(json_string_value(json_array_get(OBJ(o, "matched"), 2)), "42");
    assert_int_equal(I(o, "ms"), 812);

    o = OBJ(root, "timings_ms");
    assert_keys(o, timing_keys);
    assert_int_equal(I(o, "open"), 3);
    assert_int_equal(I(o, "reset"), 120);
    assert_int_equal(I(o, "sync"), 42); /* 40 + 2: sync ran twice */
    assert_int_equal(I(o, "detect"), 12);
    assert_int_equal(I(o, "write"), 9000);

    assert_int_equal(I(OBJ(root, "wire"), "tx_bytes"), 1123456);
    assert_int_equal(I(OBJ(root, "wire"), "rx_bytes"), 4567);
    assert_int_equal(I(OBJ(root, "wire"), "write_tx_bytes"), 1000001);
    assert_int_equal(I(OBJ(root, "retries"), "connect"), 2);
    assert_int_equal(I(OBJ(root, "retries"), "block"), 1);
    assert_string_equal(S(root, "loader"), "stub");
    assert_int_equal(I(root, "baud"), 921600);
    assert_string_equal(S(root, "tool_version"), "9.8.7");
    o = OBJ(root, "profile");
    assert_string_equal(S(o, "name"), "esp32-app");
    assert_string_equal(S(o, "sha256"),
                        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    assert_string_equal(S(root, "start"), "2026-11-25T19:30:00.123Z");
    assert_string_equal(S(root, "end"), "2026-11-25T19:30:12.456Z");
    assert_int_equal(I(root, "duration_ms"), 12333);
    json_decref(root);
}

static void test_device_failed_without_mac(void **state)
{
    static const char *const error_keys[] = {"phase", "code", "message", "rom_status", NULL};
    const char *dir = *state;
    struct report_device d;
    char name[64], names[4096];
    struct es_err err;
    json_t *root, *e, *f;

    memset(&d, 0, sizeof(d));
    d.result = REPORT_FAIL;
    d.error_phase = "sync";
    es_fail(&d.error, ES_NO_SYNC, "slot 3 (/dev/ttyUSB3): no reply to SYNC after 5 tries");
    d.slot = 3;
    d.port = "/dev/ttyUSB3";
    d.chip_revision = -1;
    d.tx_bytes = 230;
    d.connect_retries = 5;
    d.start_ms = 1795635000000;

    assert_int_equal(report_write_device(dir, &d, name, sizeof(name), &err), 0);
    assert_string_equal(name, "port-dev-ttyUSB3.json");
    list_dir(dir, names, sizeof(names));
    assert_string_equal(names, "port-dev-ttyUSB3.json");

    root = load_json(dir, name);
    assert_string_equal(S(root, "result"), "fail");
    e = OBJ(root, "error");
    assert_keys(e, error_keys);
    assert_string_equal(S(e, "phase"), "sync");
    assert_string_equal(S(e, "code"), "no_sync");
    assert_string_equal(S(e, "message"), "slot 3 (/dev/ttyUSB3): no reply to SYNC after 5 tries");
    NUL(e, "rom_status");
    NUL(root, "usb");
    NUL(root, "chip");
    NUL(root, "mac");
    f = OBJ(root, "flash");
    NUL(f, "id");
    NUL(f, "manufacturer");
    NUL(f, "device");
    NUL(f, "size");
    assert_int_equal(json_array_size(OBJ(root, "images")), 0);
    NUL(root, "boot");
    assert_int_equal(json_object_size(OBJ(root, "timings_ms")), 0);
    assert_int_equal(I(OBJ(root, "wire"), "tx_bytes"), 230);
    assert_int_equal(I(OBJ(root, "retries"), "connect"), 5);
    NUL(root, "loader");
    NUL(root, "baud");
    assert_string_equal(S(root, "tool_version"), ESPSTATION_VERSION);
    NUL(root, "profile");
    assert_string_equal(S(root, "start"), "2026-11-25T19:30:00.000Z");
    NUL(root, "end");
    NUL(root, "duration_ms");
    json_decref(root);
}

static void test_device_rom_status_and_interrupted(void **state)
{
    const char *dir = *state;
    struct report_device d = full_device();
    char name[64];
    struct es_err err;
    json_t *root;

    d.result = REPORT_INTERRUPTED;
    d.error_phase = "write";
    es_fail(&d.error, ES_FLASH_WRITE, "FLASH_DATA refused");
    d.error.rom_status = 0x07;
    assert_int_equal(report_write_device(dir, &d, name, sizeof(name), &err), 0);
    root = load_json(dir, name);
    assert_string_equal(S(root, "result"), "interrupted");
    assert_string_equal(S(OBJ(root, "error"), "code"), "flash_write");
    assert_int_equal(I(OBJ(root, "error"), "rom_status"), 7);
    json_decref(root);
}

static void test_device_file_names(void **state)
{
    static const struct {
        const char *port, *name;
    } cases[] = {
        {"/dev/ttyUSB3", "port-dev-ttyUSB3.json"},
        {"socket://127.0.0.1:5555", "port-socket-127.0.0.1-5555.json"},
        {"COM3", "port-COM3.json"},
        {"/dev/serial/by-id/usb-Silicon_Labs_CP2102-if00-port0",
         "port-dev-serial-by-id-usb-Silicon_Labs_CP2102-if00-port0.json"},
        {"../../etc/passwd", "port-etc-passwd.json"},
        {"\\\\.\\COM12", "port-COM12.json"},
        {"", "port-unknown.json"},
        {NULL, "port-unknown.json"},
    };
    struct report_device d;
    char name[256];
    struct es_err err;
    (void)state;

    memset(&d, 0, sizeof(d));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        d.port = cases[i].port;
        assert_int_equal(report_device_file_name(&d, name, sizeof(name), &err), 0);
        assert_string_equal(name, cases[i].name);
    }
    d.mac_valid = true;
    memcpy(d.mac, (const uint8_t[]){0x18, 0xFE, 0x34, 0xA1, 0xB2, 0xC3}, 6);
    assert_int_equal(report_device_file_name(&d, name, sizeof(name), &err), 0);
    assert_string_equal(name, "18-fe-34-a1-b2-c3.json");
    assert_int_equal(report_device_file_name(&d, name, 10, &err), -(int)ES_INVALID_ARG);
}

static void test_device_same_board_twice(void **state)
{
    const char *dir = *state;
    struct report_device d = full_device();
    char name[64], names[4096];
    struct es_err err;

    assert_int_equal(report_write_device(dir, &d, name, sizeof(name), &err), 0);
    assert_string_equal(name, "24-0a-c4-12-34-56.json");
    assert_int_equal(report_write_device(dir, &d, name, sizeof(name), &err), 0);
    assert_string_equal(name, "24-0a-c4-12-34-56-2.json");
    assert_int_equal(report_write_device(dir, &d, name, sizeof(name), &err), 0);
    assert_string_equal(name, "24-0a-c4-12-34-56-3.json");
    d.mac_valid = false;
    assert_int_equal(report_write_device(dir, &d, name, sizeof(name), &err), 0);
    assert_string_equal(name, "port-dev-ttyUSB6.json");
    assert_int_equal(report_write_device(dir, &d, name, sizeof(name), &err), 0);
    assert_string_equal(name, "port-dev-ttyUSB6-2.json");
    list_dir(dir, names, sizeof(names));
    assert_string_equal(names, "24-0a-c4-12-34-56-2.json 24-0a-c4-12-34-56-3.json "
                               "24-0a-c4-12-34-56.json port-dev-ttyUSB6-2.json "
                               "port-dev-ttyUSB6.json");

    /* A name buffer too small for the chosen name fails before anything is written. */
    d.mac_valid = true;
    assert_int_equal(report_write_device(dir, &d, name, 8, &err), -(int)ES_INVALID_ARG);
    list_dir(dir, names, sizeof(names));
    assert_null(strstr(names, "-4.json"));
}

static void test_device_output_is_stable(void **state)
{
    const char *dir = *state;
    struct report_device d = full_device();
    char n1[64], n2[64], p1[4096], p2[4096];
    struct es_err err;
    size_t l1, l2;
    char *a, *b;

    assert_int_equal(report_write_device(dir, &d, n1, sizeof(n1), &err), 0);
    assert_int_equal(report_write_device(dir, &d, n2, sizeof(n2), &err), 0);
    path_join(p1, sizeof(p1), dir, n1);
    path_join(p2, sizeof(p2), dir, n2);
    a = slurp(p1, &l1);
    b = slurp(p2, &l2);
    assert_int_equal(l1, l2);
    assert_memory_equal(a, b, l1);
    free(a);
    free(b);
}

static void test_device_invalid_utf8_kept(void **state)
{
    const char *dir = *state;
    struct report_device d;
    char name[64];
    struct es_err err;
    json_t *root;

    memset(&d, 0, sizeof(d));
    d.result = REPORT_FAIL;
    d.error_phase = "sync";
    es_fail(&d.error, ES_REPLY_MALFORMED, "unexpected bytes \xff\xfe from the board");
    d.port = "/dev/ttyUSB\xc3";
    assert_int_equal(report_write_device(dir, &d, name, sizeof(name), &err), 0);
    assert_string_equal(name, "port-dev-ttyUSB.json");
    root = load_json(dir, name);
    assert_string_equal(S(OBJ(root, "error"), "message"), "unexpected bytes ?? from the board");
    assert_string_equal(S(root, "port"), "/dev/ttyUSB?");
    json_decref(root);
}

/* --- run summary --- */

static void test_run_round_trip(void **state)
{
    static const char *const root_keys[] = {"$schema",  "schema", "tool_version", "station",
                                            "operator", "start",  "end",          "duration_ms",
                                            "profiles", "counts", "slots",        NULL};
    static const char *const slot_keys[] = {
        "slot", "port", "mac", "result", "error", "profile", "report_file", "duplicate_mac", NULL};
    const char *dir = *state;
    struct report_profile profiles[2] = {{.name = "nodemcu"}, {.name = "esp32"}};
    struct report_run_slot slots[4] = {
        {.slot = 0,
         .port = "/dev/ttyUSB0",
         .mac_valid = true,
         .mac = {0x18, 0xfe, 0x34, 0xa1, 0xb2, 0xc3},
         .result = REPORT_PASS,
         .error_code = ES_OK,
         .profile_name = "nodemcu",
         .report_file = "18-fe-34-a1-b2-c3.json"},
        {.slot = 1,
         .duplicate_mac = true,
         .port = "/dev/ttyUSB1",
         .result = REPORT_FAIL,
         .error_code = ES_NO_SYNC,
         .report_file = "port-dev-ttyUSB1.json"},
        {.slot = 2,
         .port = "/dev/ttyUSB2",
         .mac_valid = true,
         .mac = {0x24, 0x0a, 0xc4, 1, 2, 3},
         .result = REPORT_INTERRUPTED,
         .error_code = ES_INTERRUPTED,
         .profile_name = "esp32"},
        {.slot = 3,
         .port = "/dev/ttyUSB3",
         .mac_valid = true,
         .mac = {0x24, 0x0a, 0xc4, 1, 2, 4},
         .result = REPORT_PASS,
         .profile_name = "esp32",
         .report_file = "24-0a-c4-01-02-04.json"},
    };
    struct report_run r;
    struct es_err err;
    json_t *root, *o, *s;
    char names[4096];

    profiles[0].sha256[0] = 0xee;
    profiles[1].sha256[31] = 0x0f;
    memset(&r, 0, sizeof(r));
    r.profiles = profiles;
    r.n_profiles = 2;
    r.station = "bench-3";
    r.operator_name = "alice";
    r.tool_version = "1.2.3";
    r.start_ms = 1795635000000;
    r.end_ms = 1795635090500;
    r.slots = slots;
    r.n_slots = 4;
    assert_int_equal(report_write_run(dir, &r, &err), 0);
    list_dir(dir, names, sizeof(names));
    assert_string_equal(names, "run.json");

    root = load_json(dir, REPORT_RUN_FILE);
    assert_keys(root, root_keys);
    assert_int_equal(I(root, "schema"), REPORT_SCHEMA);
    assert_string_equal(S(root, "$schema"), "urn:espstation:schema:run:1");
    assert_string_equal(S(root, "tool_version"), "1.2.3");
    assert_string_equal(S(root, "station"), "bench-3");
    assert_string_equal(S(root, "operator"), "alice");
    assert_string_equal(S(root, "start"), "2026-11-25T19:30:00.000Z");
    assert_string_equal(S(root, "end"), "2026-11-25T19:31:30.500Z");
    assert_int_equal(I(root, "duration_ms"), 90500);
    o = OBJ(root, "profiles");
    assert_int_equal(json_array_size(o), 2);
    assert_string_equal(S(json_array_get(o, 0), "name"), "nodemcu");
    assert_string_equal(S(json_array_get(o, 0), "sha256"),
                        "ee00000000000000000000000000000000000000000000000000000000000000");
    assert_string_equal(S(json_array_get(o, 1), "name"), "esp32");
    assert_string_equal(S(json_array_get(o, 1), "sha256"),
                        "000000000000000000000000000000000000000000000000000000000000000f");
    o = OBJ(root, "counts");
    assert_int_equal(I(o, "total"), 4);
    assert_int_equal(I(o, "passed"), 2);
    assert_int_equal(I(o, "failed"), 1);
    assert_int_equal(I(o, "interrupted"), 1);

    o = OBJ(root, "slots");
    assert_int_equal(json_array_size(o), 4);
    s = json_array_get(o, 0);
    assert_keys(s, slot_keys);
    assert_int_equal(I(s, "slot"), 0);
    assert_string_equal(S(s, "port"), "/dev/ttyUSB0");
    assert_string_equal(S(s, "mac"), "18:fe:34:a1:b2:c3");
    assert_string_equal(S(s, "result"), "pass");
    NUL(s, "error");
    assert_string_equal(S(s, "profile"), "nodemcu");
    assert_string_equal(S(s, "report_file"), "18-fe-34-a1-b2-c3.json");
    s = json_array_get(o, 1);
    assert_int_equal(I(s, "slot"), 1);
    NUL(s, "mac");
    assert_string_equal(S(s, "result"), "fail");
    assert_string_equal(S(s, "error"), "no_sync");
    NUL(s, "profile");
    assert_true(json_is_true(json_object_get(s, "duplicate_mac")));
    assert_string_equal(S(s, "report_file"), "port-dev-ttyUSB1.json");
    s = json_array_get(o, 2);
    assert_string_equal(S(s, "mac"), "24:0a:c4:01:02:03");
    assert_string_equal(S(s, "result"), "interrupted");
    assert_string_equal(S(s, "error"), "interrupted");
    NUL(s, "report_file");
    s = json_array_get(o, 3);
    assert_int_equal(I(s, "slot"), 3);
    assert_string_equal(S(s, "result"), "pass");
    json_decref(root);

    /* Writing again replaces run.json (the station rewrites it at the end). */
    r.n_slots = 1;
    assert_int_equal(report_write_run(dir, &r, &err), 0);
    root = load_json(dir, REPORT_RUN_FILE);
    assert_int_equal(I(OBJ(root, "counts"), "total"), 1);
    json_decref(root);
    list_dir(dir, names, sizeof(names));
    assert_string_equal(names, "run.json");
}

static void test_run_defaults_from_host(void **state)
{
    const char *dir = *state;
    struct report_run r;
    struct es_err err;
    char host[256];
    const char *old_user = getenv("USER");
    char *saved = old_user ? strdup(old_user) : NULL;
    json_t *root;

    memset(&r, 0, sizeof(r));
    assert_int_equal(setenv("USER", "operator-7", 1), 0);
    assert_int_equal(report_write_run(dir, &r, &err), 0);
    if (saved != NULL)
        setenv("USER", saved, 1);
    else
        unsetenv("USER");
    free(saved);

    assert_int_equal(gethostname(host, sizeof(host)), 0);
    host[sizeof(host) - 1] = '\0';
    root = load_json(dir, REPORT_RUN_FILE);
    assert_string_equal(S(root, "station"), host);
    assert_string_equal(S(root, "operator"), "operator-7");
    assert_string_equal(S(root, "tool_version"), ESPSTATION_VERSION);
    NUL(root, "start");
    NUL(root, "duration_ms");
    assert_int_equal(json_array_size(OBJ(root, "profiles")), 0);
    assert_int_equal(json_array_size(OBJ(root, "slots")), 0);
    assert_int_equal(I(OBJ(root, "counts"), "total"), 0);
    json_decref(root);
}

static void test_result_names(void **state)
{
    enum report_result r;
    struct es_err err;
    (void)state;

    assert_string_equal(report_result_name(REPORT_PASS), "pass");
    assert_string_equal(report_result_name(REPORT_FAIL), "fail");
    assert_string_equal(report_result_name(REPORT_INTERRUPTED), "interrupted");
    assert_int_equal(report_result_from_string("interrupted", &r, &err), 0);
    assert_int_equal(r, REPORT_INTERRUPTED);
    assert_int_equal(report_result_from_string("passed", &r, &err), -(int)ES_INVALID_ARG);
    assert_null(report_loader_name(REPORT_LOADER_NONE));
    assert_string_equal(report_loader_name(REPORT_LOADER_ROM), "rom");
}

static void test_format_utc(void **state)
{
    char out[REPORT_UTC_LEN];
    (void)state;

    report_format_utc(0, out);
    assert_string_equal(out, "1970-01-01T00:00:00.000Z");
    report_format_utc(1795635000123, out);
    assert_string_equal(out, "2026-11-25T19:30:00.123Z");
    report_format_utc(-1, out); /* rounds towards the past */
    assert_string_equal(out, "1969-12-31T23:59:59.999Z");
    report_format_utc(951782400999, out); /* a leap day */
    assert_string_equal(out, "2000-02-29T00:00:00.999Z");
}

/* --- journal --- */

/* Splits text into lines; asserts it ends with '\n' (or is empty). Returns the line count. */
static size_t split_lines(char *text, size_t len, char **lines, size_t max)
{
    size_t n = 0;
    char *p = text;

    if (len == 0)
        return 0;
    assert_int_equal(text[len - 1], '\n');
    while (p < text + len) {
        char *nl = memchr(p, '\n', (size_t)(text + len - p));

        assert_non_null(nl);
        *nl = '\0';
        if (n < max)
            lines[n] = p;
        n++;
        p = nl + 1;
    }
    return n;
}

static void assert_utc_stamp(const char *t)
{
    assert_non_null(t);
    assert_int_equal(strlen(t), 24);
    for (int i = 0; i < 24; i++) {
        char want = "0000-00-00T00:00:00.000Z"[i];

        if (want == '0')
            assert_true(t[i] >= '0' && t[i] <= '9');
        else
            assert_int_equal(t[i], want);
    }
}

static void test_journal_lines(void **state)
{
    static const char *const keys_a[] = {"t", "slot", "port", "event", "state", "attempt", NULL};
    static const char *const keys_b[] = {"t", "slot", "port", "event", "note", NULL};
    const char *dir = *state;
    struct journal j;
    struct es_err err;
    char path[4096], *text, *lines[8];
    size_t len;
    json_t *ev, *line;

    assert_int_equal(journal_open(&j, dir, &err), 0);
    /* Keys given in another order come out as t, slot, port, event, then the rest. */
    ev = json_pack("{s:s, s:i, s:s, s:s, s:i}", "state", "syncing", "slot", 2, "event", "step",
                   "port", "/dev/ttyUSB1", "attempt", 1);
    assert_int_equal(journal_append(&j, ev, &err), 0);
    json_decref(ev);
    /* No slot or port (a run-level event): both null; a caller's "t" is replaced. */
    ev = json_pack("{s:s, s:s, s:s}", "event", "run_start", "t", "yesterday", "note",
                   "two\nlines \"quoted\"");
    assert_int_equal(journal_append(&j, ev, &err), 0);
    json_decref(ev);
    ev = json_pack("{s:s, s:i, s:s}", "event", "board_done", "slot", 2, "port", "/dev/ttyUSB1");
    assert_int_equal(journal_append(&j, ev, &err), 0);
    json_decref(ev);
    assert_int_equal(j.lines, 3);
    assert_int_equal(journal_sync(&j, &err), 0);
    assert_int_equal(journal_close(&j, &err), 0);
    assert_int_equal(journal_close(&j, &err), 0); /* closing twice is harmless */

    path_join(path, sizeof(path), dir, JOURNAL_FILE_NAME);
    text = slurp(path, &len);
    assert_int_equal(split_lines(text, len, lines, 8), 3);

    line = json_loads(lines[0], 0, NULL);
    assert_non_null(line);
    assert_keys(line, keys_a);
    assert_utc_stamp(S(line, "t"));
    assert_int_equal(I(line, "slot"), 2);
    assert_string_equal(S(line, "port"), "/dev/ttyUSB1");
    assert_string_equal(S(line, "event"), "step");
    assert_string_equal(S(line, "state"), "syncing");
    assert_int_equal(I(line, "attempt"), 1);
    json_decref(line);

    line = json_loads(lines[1], 0, NULL);
    assert_non_null(line);
    assert_keys(line, keys_b);
    assert_utc_stamp(S(line, "t"));
    NUL(line, "slot");
    NUL(line, "port");
    assert_string_equal(S(line, "note"), "two\nlines \"quoted\"");
    json_decref(line);

    line = json_loads(lines[2], 0, NULL);
    assert_non_null(line);
    assert_string_equal(S(line, "event"), "board_done");
    json_decref(line);
    free(text);
}

static void test_journal_rejects_bad_events(void **state)
{
    const char *dir = *state;
    struct journal j;
    struct es_err err;
    char path[4096];
    struct stat st;
    json_t *ev;

    assert_int_equal(journal_open(&j, dir, &err), 0);
    ev = json_pack("{s:i}", "slot", 1);
    assert_int_equal(journal_append(&j, ev, &err), -(int)ES_INVALID_ARG);
    json_decref(ev);
    ev = json_pack("{s:i}", "event", 1);
    assert_int_equal(journal_append(&j, ev, NULL), -(int)ES_INVALID_ARG);
    json_decref(ev);
    ev = json_pack("[s]", "event");
    assert_int_equal(journal_append(&j, ev, &err), -(int)ES_INVALID_ARG);
    json_decref(ev);
    assert_int_equal(journal_close(&j, &err), 0);
    path_join(path, sizeof(path), dir, JOURNAL_FILE_NAME);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 0);

    ev = json_pack("{s:s}", "event", "late");
    assert_int_equal(journal_append(&j, ev, &err), -(int)ES_INVALID_ARG); /* closed */
    json_decref(ev);
}

static void test_journal_reopen_appends(void **state)
{
    const char *dir = *state;
    struct journal j;
    struct es_err err;
    char path[4096], *text, *lines[4];
    size_t len;
    json_t *ev = json_pack("{s:s}", "event", "x");

    assert_int_equal(journal_open(&j, dir, &err), 0);
    assert_int_equal(journal_append(&j, ev, &err), 0);
    assert_int_equal(journal_close(&j, &err), 0);
    assert_int_equal(journal_open(&j, dir, &err), 0);
    assert_int_equal(journal_append(&j, ev, &err), 0);
    assert_int_equal(journal_close(&j, &err), 0);
    json_decref(ev);
    path_join(path, sizeof(path), dir, JOURNAL_FILE_NAME);
    text = slurp(path, &len);
    assert_int_equal(split_lines(text, len, lines, 4), 2);
    free(text);
}

static void test_journal_open_fails_cleanly(void **state)
{
    const char *dir = *state;
    char bad[4096];
    struct journal j;
    struct es_err err;

    snprintf(bad, sizeof(bad), "%s/missing", dir);
    assert_int_equal(journal_open(&j, bad, &err), -(int)ES_REPORT);
    assert_true(strncmp(err.msg, "open ", 5) == 0);
    assert_non_null(strstr(err.msg, "missing/journal.jsonl"));
    assert_int_equal(j.fd, -1);
    assert_int_equal(journal_close(&j, &err), 0);
}

/* A write cut short by a full disk (here a file size limit) must not leave half a line. */
static void test_journal_short_write_cut_back(void **state)
{
    const char *dir = *state;
    static char payload[1000];
    struct fsize_limit lim;
    struct journal j;
    struct es_err err;
    char path[4096], *text, *lines[64];
    size_t len, n;
    int rc = 0, appended = 0;
    json_t *ev;

    memset(payload, 'p', sizeof(payload) - 1);
    ev = json_pack("{s:s, s:s}", "event", "fill", "payload", payload);
    assert_int_equal(journal_open(&j, dir, &err), 0);
    fsize_limit_set(&lim, 10000);
    while (appended < 40 && (rc = journal_append(&j, ev, &err)) == 0)
        appended++;
    fsize_limit_restore(&lim);
    assert_int_equal(rc, -(int)ES_REPORT);
    assert_true(appended >= 5);
    assert_true(strncmp(err.msg, "write ", 6) == 0);

    /* After the disk has room again, appends work and land on a line boundary. */
    assert_int_equal(journal_append(&j, ev, &err), 0);
    assert_int_equal(journal_close(&j, &err), 0);
    json_decref(ev);

    path_join(path, sizeof(path), dir, JOURNAL_FILE_NAME);
    text = slurp(path, &len);
    n = split_lines(text, len, lines, 64);
    assert_int_equal(n, (size_t)appended + 1);
    for (size_t i = 0; i < n; i++) {
        json_t *line = json_loads(lines[i], 0, NULL);

        assert_non_null(line);
        assert_string_equal(S(line, "payload"), payload);
        json_decref(line);
    }
    free(text);
}

/* One round of the SIGKILL test: a child appends numbered lines to dir/journal.jsonl and reports
 * each append on a pipe; after `wait_acks` reports it is SIGKILLed, wherever it is. Every line it
 * reported must be in the file, whole, in order; only the very end may hold a torn line, and
 * journal_open() must remove it. Returns 1 when this round left a torn line. */
static int journal_kill_round(const char *dir, unsigned wait_acks, long delay_ns)
{
    struct timespec delay = {0, delay_ns};
    struct journal j;
    struct es_err err;
    size_t whole, tail;
    json_t *ev;
    static char payload[12000];
    char path[4096], *text;
    char **lines;
    int fds[2], status;
    unsigned acks = 0, ack;
    size_t len, n;
    pid_t pid;

    memset(payload, 'k', sizeof(payload) - 1);
    path_join(path, sizeof(path), dir, JOURNAL_FILE_NAME);
    unlink(path);
    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        if (journal_open(&j, dir, NULL) < 0)
            _exit(1);
        for (unsigned i = 0; i < 100000; i++) {
            ev = json_pack("{s:s, s:i, s:s, s:I, s:s}", "event", "block", "slot", 1, "port",
                           "/dev/ttyUSB0", "seq", (json_int_t)i, "payload", payload);
            if (ev == NULL || journal_append(&j, ev, NULL) < 0)
                _exit(1);
            json_decref(ev);
            if (write(fds[1], &i, sizeof(i)) != (ssize_t)sizeof(i))
                _exit(1);
        }
        _exit(0);
    }
    close(fds[1]);
    while (acks < wait_acks && read(fds[0], &ack, sizeof(ack)) == (ssize_t)sizeof(ack))
        acks++;
    /* Right after an ack the child is always at the same step; a varying pause moves the kill
     * around its loop. Nothing below depends on how long the pause really was. */
    nanosleep(&delay, NULL);
    kill(pid, SIGKILL);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    close(fds[0]);
    assert_int_equal(acks, wait_acks);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);

    text = slurp(path, &len);
    /* Everything up to the last '\n' is whole lines; after it there may be the start of the line
     * the kill interrupted (see journal.h), but never more than one line's worth. */
    whole = len;
    while (whole > 0 && text[whole - 1] != '\n')
        whole--;
    tail = len - whole;
    if (tail > 0) {
        assert_true(strncmp(text + whole, "{\"t\":\"", tail < 6 ? tail : 6) == 0);
        /* One line is the payload and under 256 bytes of other fields: a kill during its
         * write() may leave all of it but the newline (seen once in a Release build). */
        assert_true(tail < sizeof(payload) + 256);
    }
    lines = malloc(sizeof(char *) * 100000);
    assert_non_null(lines);
    n = split_lines(text, whole, lines, 100000);
    assert_true(n >= acks); /* every acknowledged line is there */
    for (size_t i = 0; i < n; i++) {
        json_t *line = json_loads(lines[i], 0, NULL);

        assert_non_null(line);
        assert_int_equal(I(line, "seq"), i);
        assert_string_equal(S(line, "payload"), payload);
        json_decref(line);
    }
    free(lines);
    free(text);

    /* Reopening drops the torn tail, so the next line starts on a line of its own. */
    assert_int_equal(journal_open(&j, dir, &err), 0);
    assert_int_equal(j.dropped_bytes, (off_t)tail);
    ev = json_pack("{s:s}", "event", "after_kill");
    assert_int_equal(journal_append(&j, ev, &err), 0);
    json_decref(ev);
    assert_int_equal(journal_close(&j, &err), 0);
    text = slurp(path, &len);
    assert_int_equal(len, whole + strlen(strrchr(text, '{')));
    assert_non_null(strstr(text + whole, "\"event\":\"after_kill\""));
    assert_int_equal(text[len - 1], '\n');
    free(text);
    return tail > 0;
}

/* Where the kill lands is up to the scheduler, so several rounds give each outcome (between two
 * lines, inside one) a chance to show; a correct journal passes every round whatever happens. */
static void test_journal_sigkill_leaves_whole_lines(void **state)
{
    int torn = 0;

    for (unsigned round = 0; round < 40; round++)
        torn += journal_kill_round(*state, 20 + 3 * round, 1000L + 1733L * round);
    print_message("%d of 40 kills landed inside a write and left a torn last line\n", torn);
}

/* A file that ends in the start of a line (as a SIGKILL can leave it) is repaired on open. */
static void test_journal_open_drops_torn_tail(void **state)
{
    const char *dir = *state;
    static const char before[] = "{\"event\":\"a\"}\n{\"event\":\"b\"}\n{\"t\":\"2026-11";
    char path[4096], *text, *lines[4];
    struct journal j;
    struct es_err err;
    size_t len;
    json_t *ev;
    int fd;

    path_join(path, sizeof(path), dir, JOURNAL_FILE_NAME);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, before, sizeof(before) - 1), (ssize_t)sizeof(before) - 1);
    close(fd);

    assert_int_equal(journal_open(&j, dir, &err), 0);
    assert_int_equal(j.dropped_bytes, 13);
    ev = json_pack("{s:s}", "event", "c");
    assert_int_equal(journal_append(&j, ev, &err), 0);
    json_decref(ev);
    assert_int_equal(journal_close(&j, &err), 0);
    text = slurp(path, &len);
    assert_int_equal(split_lines(text, len, lines, 4), 3);
    assert_string_equal(lines[0], "{\"event\":\"a\"}");
    assert_string_equal(lines[1], "{\"event\":\"b\"}");
    assert_true(strncmp(lines[2], "{\"t\":\"", 6) == 0);
    free(text);

    /* A file with no newline at all is one torn line: all of it goes. */
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "{\"t\"", 4), 4);
    close(fd);
    assert_int_equal(journal_open(&j, dir, &err), 0);
    assert_int_equal(j.dropped_bytes, 4);
    assert_int_equal(journal_close(&j, &err), 0);
    text = slurp(path, &len);
    assert_int_equal(len, 0);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_atomic_write_creates_one_file, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(test_atomic_write_replaces, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_atomic_write_bad_name, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_atomic_write_not_a_directory, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_atomic_write_read_only_dir, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_atomic_write_failure_keeps_old_file, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(test_atomic_write_sigkill_leaves_old_or_new, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(test_run_dir_create, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_dir_preflight, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_run_dir_under_regular_file, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_device_round_trip, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_device_failed_without_mac, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_device_rom_status_and_interrupted, setup_dir,
                                        teardown_dir),
        cmocka_unit_test(test_device_file_names),
        cmocka_unit_test_setup_teardown(test_device_same_board_twice, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_device_output_is_stable, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_device_invalid_utf8_kept, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_run_round_trip, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_run_defaults_from_host, setup_dir, teardown_dir),
        cmocka_unit_test(test_result_names),
        cmocka_unit_test(test_format_utc),
        cmocka_unit_test_setup_teardown(test_journal_lines, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_journal_rejects_bad_events, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_journal_reopen_appends, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_journal_open_fails_cleanly, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_journal_short_write_cut_back, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_journal_open_drops_torn_tail, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_journal_sigkill_leaves_whole_lines, setup_dir,
                                        teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
