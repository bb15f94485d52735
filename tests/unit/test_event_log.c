/* es/event_log.h: the journal lines (and --json stdout lines) the station's events become, key
 * for key and in order, and a journal failure said once and remembered. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "es/event_log.h"

static int setup_dir(void **state)
{
    const char *base = getenv("TMPDIR");
    char *dir = malloc(4096);

    if (dir == NULL)
        return -1;
    snprintf(dir, 4096, "%s/es-event-log-XXXXXX", base ? base : "/tmp");
    if (mkdtemp(dir) == NULL) {
        free(dir);
        return -1;
    }
    *state = dir;
    return 0;
}

static int teardown_dir(void **state)
{
    char path[4200];

    snprintf(path, sizeof(path), "%s/%s", (char *)*state, JOURNAL_FILE_NAME);
    unlink(path);
    rmdir(*state);
    free(*state);
    return 0;
}

/* Reads up to max lines of f from its start, each without its "t" (checked to be first and a
 * UTC stamp), dumped compact in key order, into out (malloc'd). Returns how many. */
static size_t read_lines(FILE *f, char **out, size_t max)
{
    char buf[4096];
    size_t n = 0;

    rewind(f);
    while (n < max && fgets(buf, sizeof(buf), f) != NULL) {
        json_t *o = json_loads(buf, 0, NULL);
        void *it;

        assert_non_null(o);
        it = json_object_iter(o);
        assert_non_null(it);
        assert_string_equal(json_object_iter_key(it), "t");
        assert_int_equal(strlen(json_string_value(json_object_iter_value(it))), REPORT_UTC_LEN - 1);
        json_object_del(o, "t");
        out[n++] = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(o);
    }
    return n;
}

static void test_every_event_line(void **state)
{
    static const char *const want[] = {
        "{\"slot\":null,\"port\":null,\"event\":\"run_start\",\"profile\":\"bench\",\"boards\":2,"
        "\"mode\":\"flash\"}",
        "{\"slot\":0,\"port\":\"/dev/ttyUSB0\",\"event\":\"phase\",\"phase\":\"sync\"}",
        "{\"slot\":1,\"port\":\"/dev/ttyUSB1\",\"event\":\"chip\",\"text\":\"ESP32\"}",
        "{\"slot\":1,\"port\":\"/dev/ttyUSB1\",\"event\":\"duplicate_mac\",\"mac\":"
        "\"24:0a:c4:00:00:0b\",\"other_slot\":0,\"other_port\":\"/dev/ttyUSB0\"}",
        /* What does not apply is left out, not null. */
        "{\"slot\":0,\"port\":\"/dev/ttyUSB0\",\"event\":\"done\",\"result\":\"pass\",\"mac\":"
        "\"24:0a:c4:00:00:0b\",\"report\":\"24-0a-c4-00-00-0b.json\"}",
        "{\"slot\":1,\"port\":\"/dev/ttyUSB1\",\"event\":\"done\",\"result\":\"fail\","
        "\"error\":\"no_sync\",\"message\":\"no reply\",\"report_error\":"
        "\"write x: No space left on device\"}",
        "{\"slot\":null,\"port\":null,\"event\":\"run_end\",\"passed\":1,\"failed\":1,"
        "\"interrupted\":0}",
    };
    const char *dir = *state;
    struct report_device pass = {0}, fail = {0};
    struct event_log log;
    struct es_err err;
    char path[4200], *got[16];
    FILE *echo = tmpfile(), *journal;
    size_t n;

    assert_non_null(echo);
    pass.result = REPORT_PASS;
    pass.mac_valid = true;
    memcpy(pass.mac, "\x24\x0a\xc4\x00\x00\x0b", 6);
    fail.result = REPORT_FAIL;
    es_fail(&fail.error, ES_NO_SYNC, "no reply");

    assert_int_equal(event_log_open(&log, dir, echo, stderr, &err), 0);
    event_log_run_start(&log, "bench", 2, "flash");
    event_log_phase(&log, 0, "/dev/ttyUSB0", "sync");
    event_log_note(&log, 1, "/dev/ttyUSB1", "chip", "ESP32");
    event_log_duplicate_mac(&log, 1, "/dev/ttyUSB1", pass.mac, 0, "/dev/ttyUSB0");
    event_log_done(&log, 0, "/dev/ttyUSB0", &pass, "24-0a-c4-00-00-0b.json", NULL);
    event_log_done(&log, 1, "/dev/ttyUSB1", &fail, NULL, "write x: No space left on device");
    event_log_run_end(&log, 1, 1, 0);
    assert_int_equal(event_log_sync(&log, &err), 0);
    event_log_close(&log);
    assert_null(log.error);

    snprintf(path, sizeof(path), "%s/%s", dir, JOURNAL_FILE_NAME);
    journal = fopen(path, "r");
    assert_non_null(journal);
    /* The journal and the echo carry the same lines, except that the journal always has a
     * slot and a port (null for the run's own lines). */
    for (int pass_no = 0; pass_no < 2; pass_no++) {
        n = read_lines(pass_no == 0 ? journal : echo, got, 16);
        assert_int_equal(n, sizeof(want) / sizeof(want[0]));
        for (size_t i = 0; i < n; i++) {
            const char *run_prefix = "{\"slot\":null,\"port\":null,";
            char expect[512];

            if (pass_no == 1 && strncmp(want[i], run_prefix, strlen(run_prefix)) == 0)
                snprintf(expect, sizeof(expect), "{%s", want[i] + strlen(run_prefix));
            else
                snprintf(expect, sizeof(expect), "%s", want[i]);
            assert_string_equal(got[i], expect);
            free(got[i]);
        }
    }
    fclose(journal);
    fclose(echo);
    event_log_free(&log);
}

/* A failed journal is said once on diag, keeps its first message and takes no more lines. */
static void test_failure_said_once(void **state)
{
    const char *dir = *state;
    struct event_log log;
    struct es_err err, e1, e2;
    FILE *diag = tmpfile();
    char text[1024];
    size_t len;

    assert_non_null(diag);
    assert_int_equal(event_log_open(&log, dir, NULL, diag, &err), 0);
    event_log_phase(&log, 0, "p", "sync");
    es_fail(&e1, ES_REPORT, "write j: No space left on device");
    es_fail(&e2, ES_REPORT, "fdatasync j: Input/output error");
    event_log_failed(&log, &e1);
    event_log_failed(&log, &e2);
    event_log_phase(&log, 0, "p", "detect");
    assert_false(log.journal_ok);
    assert_string_equal(log.error, e1.msg);
    assert_int_equal(log.journal.lines, 1);
    event_log_close(&log);
    rewind(diag);
    len = fread(text, 1, sizeof(text) - 1, diag);
    text[len] = '\0';
    assert_string_equal(text, "espstation: write j: No space left on device; the journal stops "
                              "here, every line before is whole\n");
    fclose(diag);
    event_log_free(&log);
    assert_null(log.error);
}

/* Counts path's lines and checks that each one is whole (ends in '\n' and is JSON-ish). Returns
 * the count, or -1 when the file is missing. */
static int whole_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[1024];
    int n = 0;

    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        size_t len = strlen(line);

        assert_true(len > 2 && line[0] == '{' && line[len - 1] == '\n' && line[len - 2] == '}');
        n++;
    }
    fclose(f);
    return n;
}

/* A continuous run's journal is closed off in files of about rotate_bytes, named in order; the
 * rotated descriptor is synced and closed by the next sync, and no line is lost or split. */
static void test_rotation(void **state)
{
    const char *dir = *state;
    struct event_log log;
    struct event_log_sync_req req;
    struct es_err err;
    char path[4200];
    int total = 0, n, files = 0;

    assert_int_equal(event_log_open(&log, dir, NULL, stderr, &err), 0);
    log.rotate_bytes = 400;
    for (int i = 0; i < 40; i++) {
        event_log_phase(&log, i % 4, "/dev/ttyUSB0", "write");
        /* A sync between boards retires the file the last rotation closed off. */
        if (i % 5 == 4) {
            event_log_sync_take(&log, &req);
            assert_int_equal(log.retired_fd, -1);
            assert_int_equal(event_log_sync_run(&req, &err), 0);
        }
    }
    assert_true(log.journal.rotations >= 2);
    assert_true(log.journal_ok);
    event_log_close(&log);
    event_log_free(&log);
    for (unsigned k = 1;; k++) {
        snprintf(path, sizeof(path), "%s/journal.%06u.jsonl", dir, k);
        if ((n = whole_lines(path)) < 0)
            break;
        /* Each rotated file reached the limit and went no further than one retire cycle. */
        assert_true(n >= 1);
        total += n;
        files++;
        unlink(path);
    }
    assert_int_equal(files, (int)log.journal.rotations);
    snprintf(path, sizeof(path), "%s/%s", dir, JOURNAL_FILE_NAME);
    n = whole_lines(path);
    assert_true(n >= 0);
    assert_int_equal(total + n, 40);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_event_line, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_failure_said_once, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_rotation, setup_dir, teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
