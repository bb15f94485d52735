/* The outbox on disk (src/publish/outbox.c), without a database: records are numbered in
 * order, written whole (no temporary file left behind), read back in sequence order after a
 * restart, numbered on from the highest found, removed for good, and delivered by one process
 * only (the flock); a crash's temporary files are cleaned and an unreadable file set aside. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "es/outbox.h"

static char root[256];

static int setup(void **state)
{
    (void)state;
    snprintf(root, sizeof(root), "/tmp/es-test-outbox-XXXXXX");
    assert_non_null(mkdtemp(root));
    return 0;
}

static int teardown(void **state)
{
    char cmd[300];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    assert_int_equal(system(cmd), 0);
    return 0;
}

/* Files in dir whose name contains part. */
static int count_files(const char *dir, const char *part)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, part) != NULL)
            n++;
    closedir(d);
    return n;
}

static void free_list(struct outbox_record *r)
{
    while (r != NULL) {
        struct outbox_record *next = r->next;
        outbox_record_free(r);
        r = next;
    }
}

static void write_n(struct outbox *ob, int first, int n, uint64_t *seqs)
{
    struct es_err err;

    for (int i = 0; i < n; i++) {
        struct outbox_record *r =
            outbox_record_new(ob, json_pack("{ss si}", "kind", "board", "n", first + i));

        assert_non_null(r);
        seqs[i] = r->seq;
        assert_int_equal(outbox_write(ob->dir, r, &err), 0);
        outbox_record_free(r);
    }
}

static void test_dir_for_station(void **state)
{
    char out[512];
    struct es_err err;

    (void)state;
    assert_int_equal(outbox_dir_for("rep", "line 1/a", out, sizeof(out), &err), 0);
    assert_string_equal(out, "rep/outbox/line-1-a");
    assert_int_equal(outbox_dir_for("rep", "..", out, sizeof(out), &err), 0);
    assert_string_equal(out, "rep/outbox/station");
    assert_int_equal(outbox_dir_for("rep", "x", out, 8, &err), -ES_INVALID_ARG);
}

static void test_sequence_order_restart(void **state)
{
    char dir[512];
    struct outbox ob, again;
    struct outbox_record *loaded, *r;
    size_t n, bad;
    uint64_t seqs[12];
    struct es_err err;
    int i;

    (void)state;
    snprintf(dir, sizeof(dir), "%s/reports/outbox/st1", root);
    assert_int_equal(outbox_open(&ob, dir, &loaded, &n, &bad, &err), 0);
    assert_true(ob.owner);
    assert_null(loaded);
    assert_int_equal(n, 0);
    /* Twelve records: more than 9, so a name sorted as text must still be in number order. */
    write_n(&ob, 0, 12, seqs);
    for (i = 1; i < 12; i++)
        assert_true(seqs[i] == seqs[i - 1] + 1);
    assert_int_equal(count_files(dir, ".json"), 12);
    assert_int_equal(count_files(dir, ".tmp."), 0); /* written whole: renamed into place */
    outbox_close(&ob);

    /* A restart reads them back in order, and numbers on from the highest. */
    assert_int_equal(outbox_open(&again, dir, &loaded, &n, &bad, &err), 0);
    assert_int_equal(n, 12);
    assert_int_equal(bad, 0);
    for (i = 0, r = loaded; r != NULL; r = r->next, i++) {
        assert_true(r->seq == seqs[i]);
        assert_int_equal(json_integer_value(json_object_get(r->body, "n")), i);
    }
    assert_true(again.next_seq == seqs[11] + 1);
    /* Removing the first five for good: the next start sees the other seven. */
    for (i = 0, r = loaded; i < 5; r = r->next, i++)
        assert_int_equal(outbox_remove(dir, r->name, &err), 0);
    assert_int_equal(outbox_remove(dir, loaded->name, &err), 0); /* already gone: fine */
    free_list(loaded);
    write_n(&again, 12, 1, seqs);
    outbox_close(&again);
    assert_int_equal(outbox_open(&again, dir, &loaded, &n, &bad, &err), 0);
    assert_int_equal(n, 8);
    assert_int_equal(json_integer_value(json_object_get(loaded->body, "n")), 5);
    for (r = loaded; r->next != NULL; r = r->next)
        ;
    assert_int_equal(json_integer_value(json_object_get(r->body, "n")), 12);
    free_list(loaded);
    outbox_close(&again);
}

static void test_crash_leftovers(void **state)
{
    char dir[512], path[700];
    struct outbox ob;
    struct outbox_record *loaded;
    size_t n, bad;
    uint64_t seqs[2];
    struct es_err err;
    FILE *f;

    (void)state;
    snprintf(dir, sizeof(dir), "%s/crash", root);
    assert_int_equal(outbox_open(&ob, dir, &loaded, &n, &bad, &err), 0);
    write_n(&ob, 0, 2, seqs);
    outbox_close(&ob);
    /* A crash during es_atomic_write leaves a temporary file; a torn file (written by hand,
     * never by the outbox) is not JSON. */
    snprintf(path, sizeof(path), "%s/00000000000000000099-1.json.tmp.1-0", dir);
    assert_non_null(f = fopen(path, "w"));
    fputs("{\"kind\":", f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/00000000000000000050-1.json", dir);
    assert_non_null(f = fopen(path, "w"));
    fputs("{\"kind\":", f);
    fclose(f);
    assert_int_equal(outbox_open(&ob, dir, &loaded, &n, &bad, &err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(bad, 1);
    assert_int_equal(count_files(dir, ".tmp."), 0);
    assert_int_equal(count_files(dir, ".bad"), 1);
    assert_true(ob.next_seq == 51); /* past the set-aside record too: its number is never reused */
    free_list(loaded);
    outbox_close(&ob);
}

static void test_one_deliverer(void **state)
{
    char dir[512];
    struct outbox a, b;
    struct outbox_record *loaded, *r;
    size_t n, bad;
    uint64_t seqs[3];
    struct es_err err;

    (void)state;
    snprintf(dir, sizeof(dir), "%s/shared", root);
    assert_int_equal(outbox_open(&a, dir, &loaded, &n, &bad, &err), 0);
    write_n(&a, 0, 3, seqs);
    assert_true(a.owner);
    /* A second station with the same id: it may add records but does not deliver. */
    assert_int_equal(outbox_open(&b, dir, &loaded, &n, &bad, &err), 0);
    assert_false(b.owner);
    assert_null(loaded);
    assert_true(b.next_seq == seqs[2] + 1);
    r = outbox_record_new(&b, json_pack("{ss}", "kind", "run"));
    assert_int_equal(outbox_write(b.dir, r, &err), 0);
    outbox_record_free(r);
    outbox_close(&a);
    outbox_close(&b);
    /* The lock goes with its holder: the next start delivers all four. */
    assert_int_equal(outbox_open(&b, dir, &loaded, &n, &bad, &err), 0);
    assert_true(b.owner);
    assert_int_equal(n, 4);
    free_list(loaded);
    outbox_close(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dir_for_station),
        cmocka_unit_test_setup_teardown(test_sequence_order_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_leftovers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_deliverer, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
