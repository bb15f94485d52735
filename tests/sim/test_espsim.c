/* espsim seen from the client side: a bench of boards, one per behaviour or fault, started once
 * at --time-scale 0.02 and driven over its real ptys, TCP ports and reset sockets. Each test uses
 * its own board so the tests do not depend on each other's order. No timing is asserted beyond
 * ordering ("no reply within a short wait, then a reply within a long one"). */
#define _XOPEN_SOURCE 700

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <setjmp.h>

#include <cmocka.h>

#include "es/le.h"
#include "simclient.h"

#define SCALE       "0.02"
#define WAIT_MS     3000 /* generous: sanitizer builds are slow */
#define MAGIC_ESP32 0x00F01D83u
#define MAGIC_8266  0xFFF0C101u
#define REG_MAGIC   0x40001000u

enum slot {
    S_ESP32,
    S_ESP8266,
    S_WRITE32,
    S_WRITE8266,
    S_RESET,
    S_NO_DOWNLOAD,
    S_SYNC_AFTER,
    S_UNPLUG,
    S_CORRUPT,
    S_BAD_FLASH,
    S_BAD_REPORT,
    S_SLOW,
    S_MUTE,
    S_WRONG_CHIP,
    S_BAUD_FAIL,
    S_BAUD_OK,
    S_TCP,
    S_KEEP,
    S_COUNT
};

static const char *const specs[S_COUNT] = {
    [S_ESP32] = "esp32",
    [S_ESP8266] = "esp8266",
    [S_WRITE32] = "esp32",
    [S_WRITE8266] = "esp8266,flash=1MB",
    [S_RESET] = "esp32",
    [S_NO_DOWNLOAD] = "esp32,fault=no-download",
    [S_SYNC_AFTER] = "esp32,fault=sync-after:3",
    [S_UNPLUG] = "esp32,fault=unplug-at:50",
    [S_CORRUPT] = "esp32,fault=corrupt:0.05",
    [S_BAD_FLASH] = "esp32,fault=bad-flash:0x20010",
    [S_BAD_REPORT] = "esp32,fault=bad-flash-report:0x20010",
    [S_SLOW] = "esp32,fault=slow:read_reg:60000",
    [S_MUTE] = "esp32,fault=mute:read_reg",
    [S_WRONG_CHIP] = "esp32,fault=wrong-chip",
    [S_BAUD_FAIL] = "esp32,fault=baud-fail",
    [S_BAUD_OK] = "esp32",
    [S_TCP] = "esp8266",
    [S_KEEP] = "esp32,flash=1MB",
};

static struct sc_sim sim;
static char tmp_dir[512];
static char state_dir[PATH_MAX];
static struct sc_reader reader; /* large: one, reused by each test */
static uint8_t rbuf[1100];

static uint8_t keep_pattern(size_t i)
{
    return (uint8_t)(i * 7 + (i >> 12));
}

static int write_keep_file(const char *path, size_t size)
{
    FILE *f = fopen(path, "wb");
    size_t i;

    if (f == NULL)
        return -1;
    for (i = 0; i < size; i++)
        fputc(keep_pattern(i), f);
    return fclose(f);
}

static int group_setup(void **state)
{
    char bench[PATH_MAX + 16], keep[PATH_MAX + 32];
    FILE *f;
    int i;
    /* ESPSIM_TEST_VERBOSE=1 passes -v, to see espsim's log when a test fails. */
    const char *verbose = getenv("ESPSIM_TEST_VERBOSE") != NULL ? "-v" : NULL;
    const char *args[] = {"--bench",       bench,   "--dir",  tmp_dir, "--state",      state_dir,
                          "--tcp",         "0",     "--seed", "7",     "--time-scale", SCALE,
                          "--exit-on-eof", verbose, NULL};

    (void)state;
    snprintf(tmp_dir, sizeof(tmp_dir), "%s/test_espsim.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(tmp_dir) == NULL)
        return -1;
    snprintf(state_dir, sizeof(state_dir), "%s/state", tmp_dir);
    mkdir(state_dir, 0755);
    snprintf(bench, sizeof(bench), "%s/bench.txt", tmp_dir);
    f = fopen(bench, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "# one board per behaviour\n");
    for (i = 0; i < S_COUNT; i++)
        fprintf(f, "%s   # slot %d\n\n", specs[i], i);
    fclose(f);
    /* A state file left by an earlier run must be kept as it is. */
    snprintf(keep, sizeof(keep), "%s/slot%d.bin", state_dir, (int)S_KEEP);
    if (write_keep_file(keep, 1u << 20) < 0)
        return -1;
    /* --dir exists already (we made it): espsim must leave it in place at exit. */
    return sc_sim_start(&sim, ESPSIM_PATH, args);
}

static int group_teardown(void **state)
{
    char cmd[PATH_MAX + 16];
    int rc;

    (void)state;
    rc = sc_sim_stop(&sim, 10000);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_dir);
    if (system(cmd) != 0)
        return -1;
    return rc == 0 ? 0 : -1;
}

static const struct sc_board *board(enum slot s)
{
    return &sim.boards[s];
}

/* Opens a board's pty at 115200 and attaches the shared reader to it. */
static int open_board(enum slot s)
{
    int fd = sc_port_open(board(s)->port, 115200);

    assert_true(fd >= 0);
    sc_reader_init(&reader, fd);
    return fd;
}

static size_t status_len(enum slot s)
{
    return strcmp(board(s)->chip, "esp32") == 0 ? 4 : 2;
}

static int cmd(enum slot s, uint8_t op, const uint8_t *data, size_t n, uint32_t chk,
               struct sc_reply *rep)
{
    return sc_command(&reader, op, data, n, chk, status_len(s), WAIT_MS, rep, rbuf);
}

static void expect_sync(int expected_replies)
{
    size_t len = 0;

    assert_int_equal(sc_sync(&reader, WAIT_MS, 300, &len), expected_replies);
}

static uint32_t read_reg(enum slot s, uint32_t addr)
{
    uint8_t p[4];
    struct sc_reply rep;

    es_put_le32(p, addr);
    assert_int_equal(cmd(s, 0x0A, p, 4, 0, &rep), 1);
    assert_int_equal(rep.status, 0);
    return rep.value;
}

/* The same for boards outside the main bench: status_len given. */
static int open_port_at(const char *port)
{
    int fd = sc_port_open(port, 115200);

    assert_true(fd >= 0);
    sc_reader_init(&reader, fd);
    return fd;
}

static uint32_t read_reg_at(size_t status_bytes, uint32_t addr)
{
    uint8_t p[4];
    struct sc_reply rep;

    es_put_le32(p, addr);
    assert_int_equal(sc_command(&reader, 0x0A, p, 4, 0, status_bytes, WAIT_MS, &rep, rbuf), 1);
    assert_int_equal(rep.status, 0);
    return rep.value;
}

static void spi_attach(enum slot s)
{
    uint8_t p[8] = {0};
    struct sc_reply rep;

    assert_int_equal(cmd(s, 0x0D, p, 8, 0, &rep), 1);
    assert_int_equal(rep.status, 0);
}

static void flash_begin(enum slot s, uint32_t size, uint32_t blocks, uint32_t offset)
{
    uint8_t p[16];
    struct sc_reply rep;

    es_put_le32(p, size);
    es_put_le32(p + 4, blocks);
    es_put_le32(p + 8, 0x400);
    es_put_le32(p + 12, offset);
    assert_int_equal(cmd(s, 0x02, p, 16, 0, &rep), 1);
    assert_int_equal(rep.status, 0);
}

/* Sends one 0x400-byte FLASH_DATA block; returns sc_command's result. */
static int flash_data(enum slot s, const uint8_t *data, uint32_t seq, struct sc_reply *rep)
{
    static uint8_t p[16 + 0x400];
    uint32_t chk = sc_data_block(p, data, 0x400, seq);

    return cmd(s, 0x03, p, sizeof(p), chk, rep);
}

static void pattern(uint8_t *out, size_t n, unsigned seed)
{
    size_t i;

    for (i = 0; i < n; i++)
        out[i] = (uint8_t)(seed * 31 + i * 13 + (i >> 8));
}

static void md5_hex(const uint8_t *data, size_t n, char out[33])
{
    unsigned char d[16];
    unsigned int len = 0;
    int i;

    EVP_Digest(data, n, d, &len, EVP_md5(), NULL);
    for (i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* SPI_FLASH_MD5 on an ESP32 ROM: 32 lowercase hex characters before the status (§3.11). */
static void rom_md5(enum slot s, uint32_t addr, uint32_t size, char out[33])
{
    uint8_t p[16] = {0};
    struct sc_reply rep;

    es_put_le32(p, addr);
    es_put_le32(p + 4, size);
    assert_int_equal(cmd(s, 0x13, p, 16, 0, &rep), 1);
    assert_int_equal(rep.status, 0);
    assert_int_equal(rep.len, 36);
    memcpy(out, rep.data, 32);
    out[32] = '\0';
}

/* Reads until the raw bytes seen contain text, for at most ms. */
static int wait_raw(const char *text, int ms)
{
    int64_t deadline = sc_now_ms() + ms;

    while (!sc_raw_contains(&reader, text)) {
        if (sc_now_ms() > deadline || reader.closed)
            return 0;
        sc_drain(&reader, 20);
    }
    return 1;
}

static void read_file_at(const char *path, uint32_t off, uint8_t *out, size_t n)
{
    int fd = open(path, O_RDONLY);

    assert_true(fd >= 0);
    assert_int_equal(pread(fd, out, n, off), (ssize_t)n);
    close(fd);
}

/* --- tests --- */

static void test_announce(void **state)
{
    int i, j;

    (void)state;
    assert_int_equal(sim.n_boards, S_COUNT);
    for (i = 0; i < S_COUNT; i++) {
        const struct sc_board *b = board((enum slot)i);
        struct stat st;

        assert_int_equal(b->slot, i);
        assert_int_equal(strncmp(specs[i], b->chip, strlen(b->chip)), 0);
        assert_int_equal(lstat(b->port, &st), 0);
        assert_true(S_ISLNK(st.st_mode));
        assert_int_equal(stat(b->ctl, &st), 0);
        assert_true(S_ISSOCK(st.st_mode));
        assert_int_equal(stat(b->flash, &st), 0);
        assert_int_equal((uint32_t)st.st_size, b->flash_size);
        assert_true(b->tcp_port > 0);
        if (strcmp(b->chip, "esp8266") == 0)
            assert_true(strncmp(b->mac, "18:fe:34", 8) == 0 || strncmp(b->mac, "ac:d0:74", 8) == 0);
        for (j = 0; j < i; j++)
            assert_string_not_equal(b->mac, board((enum slot)j)->mac);
    }
    assert_int_equal(board(S_ESP32)->flash_id, 0x1640EF);
    assert_int_equal(board(S_WRITE8266)->flash_id, 0x1440EF);
    assert_int_equal(board(S_WRITE8266)->flash_size, 1u << 20);
}

static void test_sync_esp32(void **state)
{
    size_t len = 0;
    int fd = open_board(S_ESP32);

    (void)state;
    assert_int_equal(sc_sync(&reader, WAIT_MS, 300, &len), 8);
    assert_int_equal(len, 4); /* 4 status bytes on the ESP32 ROM */
    assert_int_equal(read_reg(S_ESP32, REG_MAGIC), MAGIC_ESP32);
    close(fd);
}

static void test_sync_esp8266(void **state)
{
    size_t len = 0;
    int fd = open_board(S_ESP8266);

    (void)state;
    assert_int_equal(sc_sync(&reader, WAIT_MS, 300, &len), 8);
    assert_int_equal(len, 2); /* 2 status bytes on the ESP8266 ROM */
    assert_int_equal(read_reg(S_ESP8266, REG_MAGIC), MAGIC_8266);
    close(fd);
}

static void test_reopen_port(void **state)
{
    int i;

    (void)state;
    /* A client may close and reopen the port any number of times. */
    for (i = 0; i < 3; i++) {
        int fd = open_board(S_ESP32);

        assert_int_equal(read_reg(S_ESP32, REG_MAGIC), MAGIC_ESP32);
        close(fd);
    }
}

static void test_flash_write_esp32(void **state)
{
    static uint8_t data[0x400], got[0x400];
    struct sc_reply rep;
    char want[33], md5[33];
    int fd = open_board(S_WRITE32);

    (void)state;
    pattern(data, sizeof(data), 1);
    expect_sync(8);
    spi_attach(S_WRITE32);
    flash_begin(S_WRITE32, 0x400, 1, 0x10000);
    assert_int_equal(flash_data(S_WRITE32, data, 0, &rep), 1);
    assert_int_equal(rep.status, 0);
    read_file_at(board(S_WRITE32)->flash, 0x10000, got, sizeof(got));
    assert_memory_equal(got, data, sizeof(data));
    /* The ROM's MD5 matches what was sent (the control for the bad-flash test). */
    rom_md5(S_WRITE32, 0x10000, 0x400, md5);
    md5_hex(data, sizeof(data), want);
    assert_string_equal(md5, want);
    close(fd);
}

static void test_flash_write_esp8266(void **state)
{
    static uint8_t data[0x400], got[0x400];
    struct sc_reply rep;
    int fd = open_board(S_WRITE8266);

    (void)state;
    pattern(data, sizeof(data), 2);
    expect_sync(8);
    flash_begin(S_WRITE8266, 0x1000, 1, 0x20000);
    assert_int_equal(flash_data(S_WRITE8266, data, 0, &rep), 1);
    assert_int_equal(rep.status, 0);
    read_file_at(board(S_WRITE8266)->flash, 0x20000, got, sizeof(got));
    assert_memory_equal(got, data, sizeof(data));
    close(fd);
}

static void test_reset_to_download(void **state)
{
    uint8_t p[16] = {0};
    struct sc_reply rep;
    int fd = open_board(S_RESET);

    (void)state;
    expect_sync(8);
    /* Leave the loader: FLASH_BEGIN(0, 0) + FLASH_END(1) runs the app (§5.3). */
    spi_attach(S_RESET);
    es_put_le32(p + 8, 0x400);
    assert_int_equal(cmd(S_RESET, 0x02, p, 16, 0, &rep), 1);
    memset(p, 0, sizeof(p));
    p[0] = 1;
    assert_int_equal(cmd(S_RESET, 0x04, p, 4, 0, &rep), 1);
    sc_drain(&reader, 100);
    sc_reader_clear(&reader);
    expect_sync(0);

    /* Classic reset over the control socket brings it back into download mode. */
    assert_int_equal(sc_reset_download(board(S_RESET)->ctl, 10, 10), 0);
    assert_true(wait_raw("DOWNLOAD", WAIT_MS));
    sc_drain(&reader, 50);
    sc_reader_clear(&reader);
    expect_sync(8);
    close(fd);
}

static void test_fault_no_download(void **state)
{
    int fd = open_board(S_NO_DOWNLOAD);

    (void)state;
    assert_int_equal(sc_reset_download(board(S_NO_DOWNLOAD)->ctl, 10, 10), 0);
    assert_true(wait_raw("boot:", WAIT_MS)); /* boot text */
    sc_drain(&reader, 100);
    assert_false(sc_raw_contains(&reader, "DOWNLOAD"));
    sc_reader_clear(&reader);
    assert_int_equal(sc_sync(&reader, 300, 100, NULL), 0);
    assert_int_equal(sc_sync(&reader, 300, 100, NULL), 0);
    close(fd);
}

static void test_fault_sync_after(void **state)
{
    int fd = open_board(S_SYNC_AFTER), i;

    (void)state;
    for (i = 0; i < 3; i++)
        assert_int_equal(sc_sync(&reader, 300, 100, NULL), 0);
    assert_int_equal(sc_sync(&reader, WAIT_MS, 300, NULL), 8);
    close(fd);
}

static void test_fault_unplug(void **state)
{
    static uint8_t data[0x400];
    struct sc_reply rep;
    struct stat st;
    int fd = open_board(S_UNPLUG), seq, rc = 1;

    (void)state;
    expect_sync(8);
    spi_attach(S_UNPLUG);
    flash_begin(S_UNPLUG, 4 * 0x400, 4, 0x30000);
    for (seq = 0; seq < 4 && rc == 1; seq++) {
        pattern(data, sizeof(data), (unsigned)seq);
        rc = flash_data(S_UNPLUG, data, (uint32_t)seq, &rep);
    }
    /* The port went away mid-write: the read failed (EIO/EOF) or the write did. */
    assert_int_equal(rc, -1);
    assert_true(seq <= 4);
    /* The symlink goes before the port closes, so it is gone once the host sees the hangup. */
    assert_int_equal(lstat(board(S_UNPLUG)->port, &st), -1);
    close(fd);
}

static void test_fault_corrupt(void **state)
{
    int fd = open_board(S_CORRUPT), i, good = 0;

    (void)state;
    for (i = 0; i < 30; i++) {
        uint8_t p[4];
        struct sc_reply rep;

        es_put_le32(p, REG_MAGIC);
        if (sc_command(&reader, 0x0A, p, 4, 0, 4, 300, &rep, rbuf) == 1 && rep.status == 0 &&
            rep.value == MAGIC_ESP32)
            good++;
        sc_drain(&reader, 5);
        sc_reader_clear(&reader);
    }
    /* At 5 % per byte in each direction about three exchanges in four go wrong: a bad frame, a
     * wrong value, 01 07, or a request the board never understood (no reply). */
    assert_true(good < 30);
    close(fd);
}

static void write_block_at_0x20000(enum slot s, const uint8_t *data, struct sc_reply *rep)
{
    expect_sync(8);
    spi_attach(s);
    flash_begin(s, 0x400, 1, 0x20000);
    assert_int_equal(flash_data(s, data, 0, rep), 1);
}

static void test_fault_bad_flash(void **state)
{
    static uint8_t data[0x400];
    struct sc_reply rep;
    char want[33], md5[33];
    int fd = open_board(S_BAD_FLASH);

    (void)state;
    pattern(data, sizeof(data), 3);
    write_block_at_0x20000(S_BAD_FLASH, data, &rep);
    assert_int_equal(rep.status, 0); /* silently stored wrong */
    rom_md5(S_BAD_FLASH, 0x20000, 0x400, md5);
    md5_hex(data, sizeof(data), want);
    assert_string_not_equal(md5, want);
    close(fd);
}

static void test_fault_bad_flash_report(void **state)
{
    static uint8_t data[0x400];
    struct sc_reply rep;
    int fd = open_board(S_BAD_REPORT);

    (void)state;
    pattern(data, sizeof(data), 4);
    write_block_at_0x20000(S_BAD_REPORT, data, &rep);
    assert_int_equal(rep.status, 1);
    assert_int_equal(rep.error, 0x08);
    close(fd);
}

static void test_fault_slow(void **state)
{
    uint8_t p[4];
    struct sc_reply rep;
    int fd = open_board(S_SLOW);

    (void)state;
    expect_sync(8);
    es_put_le32(p, REG_MAGIC);
    assert_int_equal(sc_send(fd, 0x0A, p, 4, 0), 0);
    /* 60 s of board time is 1.2 s here: nothing yet after 30 ms, the reply later. */
    assert_int_equal(sc_wait_reply(&reader, 0x0A, 4, 30, &rep, rbuf, NULL), 0);
    assert_int_equal(sc_wait_reply(&reader, 0x0A, 4, 10000, &rep, rbuf, NULL), 1);
    assert_int_equal(rep.value, MAGIC_ESP32);
    close(fd);
}

static void test_fault_mute(void **state)
{
    uint8_t p[4];
    struct sc_reply rep;
    int fd = open_board(S_MUTE);

    (void)state;
    expect_sync(8);
    es_put_le32(p, REG_MAGIC);
    assert_int_equal(cmd(S_MUTE, 0x0A, p, 4, 0, &rep), 0);
    expect_sync(8); /* the board is alive; only that command goes unanswered */
    close(fd);
}

static void test_fault_wrong_chip(void **state)
{
    int fd = open_board(S_WRONG_CHIP);
    uint32_t magic;

    (void)state;
    expect_sync(8);
    magic = read_reg(S_WRONG_CHIP, REG_MAGIC);
    assert_true(magic != MAGIC_ESP32);
    close(fd);
}

/* CHANGE_BAUDRATE to 460800 at 115200, then the next command at 460800. */
static int change_baud_then_read_magic(enum slot s, int fd, uint32_t *magic)
{
    uint8_t p[8];
    struct sc_reply rep;
    int rc;

    expect_sync(8);
    es_put_le32(p, 460800);
    es_put_le32(p + 4, 0);
    assert_int_equal(cmd(s, 0x0F, p, 8, 0, &rep), 1);
    assert_int_equal(rep.status, 0);
    sc_sleep_ms(20);
    assert_int_equal(sc_port_set_baud(fd, 460800), 0);
    tcflush(fd, TCIFLUSH);
    sc_reader_clear(&reader);
    es_put_le32(p, REG_MAGIC);
    rc = cmd(s, 0x0A, p, 4, 0, &rep);
    *magic = rep.value;
    return rc == 1 && rep.status == 0 ? 0 : -1;
}

static void test_change_baud(void **state)
{
    int fd = open_board(S_BAUD_OK);
    uint32_t magic = 0;

    (void)state;
    assert_int_equal(change_baud_then_read_magic(S_BAUD_OK, fd, &magic), 0);
    assert_int_equal(magic, MAGIC_ESP32);
    close(fd);
}

static void test_fault_baud_fail(void **state)
{
    int fd = open_board(S_BAUD_FAIL);
    uint32_t magic = 0;

    (void)state;
    if (change_baud_then_read_magic(S_BAUD_FAIL, fd, &magic) == 0)
        assert_int_not_equal(magic, MAGIC_ESP32);
    close(fd);
}

static void test_tcp(void **state)
{
    int fd = sc_tcp_connect(board(S_TCP)->tcp_port), fd2, i;

    (void)state;
    assert_true(fd >= 0);
    sc_reader_init(&reader, fd);
    assert_int_equal(sc_sync(&reader, WAIT_MS, 300, NULL), 8);
    assert_int_equal(read_reg(S_TCP, REG_MAGIC), MAGIC_8266);
    /* A new connection replaces the old one. */
    fd2 = sc_tcp_connect(board(S_TCP)->tcp_port);
    assert_true(fd2 >= 0);
    for (i = 0; i < 100 && !reader.closed; i++)
        sc_drain(&reader, 50);
    assert_true(reader.closed);
    sc_reader_init(&reader, fd2);
    assert_int_equal(read_reg(S_TCP, REG_MAGIC), MAGIC_8266);
    close(fd);
    close(fd2);
}

static void test_state_kept(void **state)
{
    static uint8_t got[1u << 20];
    size_t i;

    (void)state;
    read_file_at(board(S_KEEP)->flash, 0, got, sizeof(got));
    for (i = 0; i < sizeof(got); i++) {
        if (got[i] != keep_pattern(i))
            fail_msg("state file changed at %zu", i);
    }
}

/* --- separate processes: exit paths and the command line --- */

static void test_sigterm_removes_dir(void **state)
{
    static struct sc_sim s;
    const char *args[] = {"--boards", "2", "--chip", "esp8266", "--time-scale", "0", NULL};
    struct stat st;
    char dir[PATH_MAX];

    (void)state;
    assert_int_equal(sc_sim_start(&s, ESPSIM_PATH, args), 0);
    assert_int_equal(s.n_boards, 2);
    snprintf(dir, sizeof(dir), "%s", s.dir);
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(sc_sim_stop(&s, 10000), 0);
    assert_int_equal(stat(dir, &st), -1);
    assert_int_equal(errno, ENOENT);
}

static void test_exit_on_eof(void **state)
{
    static struct sc_sim s;
    const char *args[] = {"--boards", "1", "--exit-on-eof", NULL};
    int status = -1, i;

    (void)state;
    assert_int_equal(sc_sim_start(&s, ESPSIM_PATH, args), 0);
    close(s.stdin_fd);
    for (i = 0; i < 500; i++) {
        if (waitpid(s.pid, &status, WNOHANG) == s.pid)
            break;
        sc_sleep_ms(10);
    }
    assert_true(i < 500);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    close(s.out_fd);
}

/* Runs espsim with args; returns its exit status and what it wrote to stderr. */
static int run_capture(const char *const *args, char *err, size_t cap)
{
    const char *argv[16];
    int pipefd[2], status, n = 0;
    size_t got = 0;
    pid_t pid;

    argv[n++] = ESPSIM_PATH;
    while (args[n - 1] != NULL)
        argv[n] = args[n - 1], n++;
    argv[n] = NULL;
    if (pipe(pipefd) < 0)
        return -1;
    pid = fork();
    if (pid == 0) {
        dup2(pipefd[1], 2);
        close(pipefd[0]);
        execv(ESPSIM_PATH, (char *const *)argv);
        _exit(127);
    }
    close(pipefd[1]);
    for (;;) {
        ssize_t r = read(pipefd[0], err + got, cap - 1 - got);

        if (r <= 0)
            break;
        got += (size_t)r;
    }
    err[got] = '\0';
    close(pipefd[0]);
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void expect_usage_error(const char *const *args, const char *must_mention)
{
    char err[2048];

    assert_int_equal(run_capture(args, err, sizeof(err)), 2);
    if (strstr(err, must_mention) == NULL)
        fail_msg("stderr '%s' does not mention '%s'", err, must_mention);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    expect_usage_error((const char *[]){"--time-scale", "fast", NULL}, "--time-scale");
    expect_usage_error((const char *[]){"--board", "esp33", NULL}, "esp8266, esp32");
    expect_usage_error((const char *[]){"--board", "esp32,flash=3MB", NULL}, "flash='3MB'");
    expect_usage_error((const char *[]){"--board", "esp32,fault=melt", NULL}, "unknown fault");
    expect_usage_error((const char *[]){"--board", "esp32,fault=slow:nop:5", NULL}, "slow");
    expect_usage_error((const char *[]){"--boards", "0", NULL}, "--boards");
    expect_usage_error((const char *[]){"--frobnicate", NULL}, "--frobnicate");
    expect_usage_error((const char *[]){NULL}, "no boards");
    expect_usage_error((const char *[]){"--bench", "/nonexistent/bench.txt", NULL}, "--bench");
}

/* ---- the control interface: a bench of its own ---------------------------------------------- */

enum ctl_slot { C_JIG, C_MANUAL, C_PLUG, C_COUNT };

static struct sc_sim csim;

static int ctl_setup(void **state)
{
    const char *verbose = getenv("ESPSIM_TEST_VERBOSE") != NULL ? "-v" : NULL;
    const char *args[] = {"--board",    "esp32",  "--board", "esp8266,autoreset=no", "--board",
                          "esp8266",    "--seed", "9",       "--time-scale",         SCALE,
                          "--commands", verbose,  NULL};

    (void)state;
    return sc_sim_start(&csim, ESPSIM_PATH, args);
}

static int ctl_teardown(void **state)
{
    (void)state;
    return sc_sim_stop(&csim, 10000) == 0 ? 0 : -1;
}

/* Sends a command on the socket and returns its reply, checking "ok" is as expected. */
static json_t *command(const char *line, int ok)
{
    char reply[4096];
    json_error_t jerr;
    json_t *o;

    assert_int_equal(sc_sim_cmd(csim.sock, line, reply, sizeof(reply)), 0);
    o = json_loads(reply, 0, &jerr);
    assert_non_null(o);
    assert_int_equal(json_is_true(json_object_get(o, "ok")), ok);
    if (!ok)
        assert_non_null(json_string_value(json_object_get(o, "error")));
    return o;
}

static const char *field(json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));

    assert_non_null(v);
    return v;
}

/* The one slot of "status N". */
static json_t *slot_status(int slot)
{
    char line[32];
    json_t *o, *slots, *one;

    snprintf(line, sizeof(line), "status %d", slot);
    o = command(line, 1);
    slots = json_object_get(o, "slots");
    assert_int_equal(json_array_size(slots), 1);
    one = json_incref(json_array_get(slots, 0));
    json_decref(o);
    assert_int_equal(json_integer_value(json_object_get(one, "slot")), slot);
    return one;
}

/* An inotify event on csim.dir for name within ms; mask of the event, or 0. */
static uint32_t wait_dir_event(int ifd, const char *name, uint32_t want, int ms)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    int64_t deadline = sc_now_ms() + ms;

    while (sc_now_ms() < deadline) {
        struct pollfd p = {ifd, POLLIN, 0};
        ssize_t n;

        if (poll(&p, 1, 50) <= 0)
            continue;
        n = read(ifd, buf, sizeof(buf));
        for (ssize_t off = 0; n > 0 && off < n;) {
            const struct inotify_event *ev = (const struct inotify_event *)(buf + off);

            if ((ev->mask & want) && ev->len > 0 && strcmp(ev->name, name) == 0)
                return ev->mask & want;
            off += (ssize_t)(sizeof(*ev) + ev->len);
        }
    }
    return 0;
}

static void test_ctl_unplug_plug(void **state)
{
    const struct sc_board *b = &csim.boards[C_PLUG];
    struct stat st;
    json_t *o;
    int fd, ifd, r;
    char c;

    (void)state;
    ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    assert_true(ifd >= 0);
    assert_true(inotify_add_watch(ifd, csim.dir, IN_CREATE | IN_DELETE) >= 0);
    fd = open_port_at(b->port);
    expect_sync(8);

    /* Unplugged: the node goes, and the open port hangs up. */
    o = command("unplug 2", 1);
    assert_false(json_is_true(json_object_get(o, "plugged")));
    assert_string_equal(field(o, "mode"), "off");
    json_decref(o);
    assert_int_equal(lstat(b->port, &st), -1);
    assert_int_equal(lstat(b->ctl, &st), -1);
    assert_int_equal(wait_dir_event(ifd, "ttySIM2", IN_DELETE, WAIT_MS), IN_DELETE);
    {
        struct pollfd p = {fd, POLLIN, 0};

        assert_int_equal(poll(&p, 1, WAIT_MS), 1);
        assert_true(p.revents & (POLLHUP | POLLERR));
    }
    r = (int)read(fd, &c, 1);
    assert_true(r == 0 || (r < 0 && errno == EIO));
    close(fd);
    o = slot_status(C_PLUG);
    assert_false(json_is_true(json_object_get(o, "plugged")));
    json_decref(o);
    json_decref(command("unplug 2", 0)); /* twice is an error */

    /* Plugged back: a new node at the same path (IN_CREATE), the same board, usable again. */
    o = command("plug 2", 1);
    assert_true(json_is_true(json_object_get(o, "plugged")));
    assert_string_equal(field(o, "mac"), b->mac);
    assert_true(strncmp(field(o, "pty"), "/dev/pts/", 9) == 0);
    json_decref(o);
    assert_int_equal(wait_dir_event(ifd, "ttySIM2", IN_CREATE, WAIT_MS), IN_CREATE);
    assert_int_equal(lstat(b->port, &st), 0);
    assert_int_equal(lstat(b->ctl, &st), 0);
    json_decref(command("plug 2", 0));
    fd = open_port_at(b->port);
    /* Powered on without BOOT held it booted its (blank) flash; the reset lines still work. */
    assert_int_equal(sc_reset_download(b->ctl, 100, 50), 0);
    expect_sync(8);
    assert_int_equal(read_reg_at(2, REG_MAGIC), MAGIC_8266);
    close(fd);
    close(ifd);
}

/* The ESP32's MAC as the eFuse words hold it (§7.1): word 1 = mac[2..5], word 2 low = mac[0..1]. */
static void expect_esp32_mac(const char *mac)
{
    unsigned m[6];

    assert_int_equal(sscanf(mac, "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]), 6);
    assert_int_equal(read_reg_at(4, 0x3FF5A004), m[2] << 24 | m[3] << 16 | m[4] << 8 | m[5]);
    assert_int_equal(read_reg_at(4, 0x3FF5A008) & 0xFFFF, m[0] << 8 | m[1]);
}

static void test_ctl_swap(void **state)
{
    const struct sc_board *b = &csim.boards[C_JIG];
    char mac2[18];
    uint8_t got[16], zeros[16] = {0};
    json_t *o;
    int fd, ffd;

    (void)state;
    fd = open_port_at(b->port);
    expect_sync(8);
    expect_esp32_mac(b->mac);

    /* A new board on the jig: given MAC, the port stays open, the board power-cycled. */
    o = command("swap 0 mac=24:0a:c4:aa:bb:cc", 1);
    assert_string_equal(field(o, "mac"), "24:0a:c4:aa:bb:cc");
    assert_true(json_is_true(json_object_get(o, "plugged")));
    json_decref(o);
    o = slot_status(C_JIG);
    assert_string_equal(field(o, "mac"), "24:0a:c4:aa:bb:cc");
    json_decref(o);
    assert_int_equal(sc_reset_download(b->ctl, 100, 50), 0);
    expect_sync(8);
    expect_esp32_mac("24:0a:c4:aa:bb:cc");

    /* flash=keep leaves the flash as it was; the default is a blank flash. */
    ffd = open(b->flash, O_RDWR);
    assert_true(ffd >= 0);
    assert_int_equal(pwrite(ffd, zeros, sizeof(zeros), 0x1000), (ssize_t)sizeof(zeros));
    json_decref(command("swap 0 flash=keep", 1));
    assert_int_equal(pread(ffd, got, sizeof(got), 0x1000), (ssize_t)sizeof(got));
    assert_memory_equal(got, zeros, sizeof(got));
    /* Without mac= the MAC is new: neither the first board's nor the one given before. */
    o = command("swap 0", 1);
    snprintf(mac2, sizeof(mac2), "%s", field(o, "mac"));
    json_decref(o);
    assert_string_not_equal(mac2, b->mac);
    assert_string_not_equal(mac2, "24:0a:c4:aa:bb:cc");
    assert_int_equal(pread(ffd, got, sizeof(got), 0x1000), (ssize_t)sizeof(got));
    assert_int_equal(got[0], 0xFF);
    assert_int_equal(got[15], 0xFF);
    close(ffd);
    assert_int_equal(sc_reset_download(b->ctl, 100, 50), 0);
    expect_sync(8);
    expect_esp32_mac(mac2);
    close(fd);

    json_decref(command("swap 0 flash=maybe", 0));
    json_decref(command("swap 0 mac=xyz", 0));
    json_decref(command("swap 9", 0));
}

static void test_ctl_buttons(void **state)
{
    const struct sc_board *b = &csim.boards[C_MANUAL];
    json_t *o;
    int fd;

    (void)state;
    o = slot_status(C_MANUAL);
    assert_false(json_is_true(json_object_get(o, "autoreset")));
    assert_string_equal(field(o, "mode"), "dead"); /* booted its blank flash at power-on */
    json_decref(o);
    fd = open_port_at(b->port);
    /* No auto-reset circuit: DTR/RTS do nothing. */
    assert_int_equal(sc_reset_download(b->ctl, 100, 50), 0);
    expect_sync(0);
    /* Hold BOOT, tap EN, release BOOT: download mode. */
    json_decref(command("boot 1 press", 1));
    json_decref(command("en 1 press", 1));
    sc_sleep_ms(20);
    o = command("en 1 release", 1);
    assert_true(json_is_true(json_object_get(o, "boot")));
    json_decref(o);
    sc_sleep_ms(50);
    json_decref(command("boot 1 release", 1));
    expect_sync(8);
    o = slot_status(C_MANUAL);
    assert_string_equal(field(o, "mode"), "rom");
    json_decref(o);
    json_decref(command("boot 1 push", 0));
    close(fd);
}

static void test_ctl_stdin(void **state)
{
    char reply[4096];
    json_error_t jerr;
    json_t *o;

    (void)state;
    assert_int_equal(sc_sim_cmd_stdin(&csim, "status", reply, sizeof(reply)), 0);
    o = json_loads(reply, 0, &jerr);
    assert_non_null(o);
    assert_true(json_is_true(json_object_get(o, "ok")));
    assert_int_equal(json_array_size(json_object_get(o, "slots")), C_COUNT);
    json_decref(o);
    assert_int_equal(sc_sim_cmd_stdin(&csim, "frob 1", reply, sizeof(reply)), 0);
    o = json_loads(reply, 0, &jerr);
    assert_non_null(o);
    assert_false(json_is_true(json_object_get(o, "ok")));
    assert_non_null(strstr(json_string_value(json_object_get(o, "error")), "unknown command"));
    json_decref(o);
}

int main(void)
{
    const struct CMUnitTest bench_tests[] = {
        cmocka_unit_test(test_announce),
        cmocka_unit_test(test_sync_esp32),
        cmocka_unit_test(test_sync_esp8266),
        cmocka_unit_test(test_reopen_port),
        cmocka_unit_test(test_flash_write_esp32),
        cmocka_unit_test(test_flash_write_esp8266),
        cmocka_unit_test(test_reset_to_download),
        cmocka_unit_test(test_fault_no_download),
        cmocka_unit_test(test_fault_sync_after),
        cmocka_unit_test(test_fault_unplug),
        cmocka_unit_test(test_fault_corrupt),
        cmocka_unit_test(test_fault_bad_flash),
        cmocka_unit_test(test_fault_bad_flash_report),
        cmocka_unit_test(test_fault_slow),
        cmocka_unit_test(test_fault_mute),
        cmocka_unit_test(test_fault_wrong_chip),
        cmocka_unit_test(test_change_baud),
        cmocka_unit_test(test_fault_baud_fail),
        cmocka_unit_test(test_tcp),
        cmocka_unit_test(test_state_kept),
    };
    const struct CMUnitTest control_tests[] = {
        cmocka_unit_test(test_ctl_unplug_plug),
        cmocka_unit_test(test_ctl_swap),
        cmocka_unit_test(test_ctl_buttons),
        cmocka_unit_test(test_ctl_stdin),
    };
    const struct CMUnitTest process_tests[] = {
        cmocka_unit_test(test_sigterm_removes_dir),
        cmocka_unit_test(test_exit_on_eof),
        cmocka_unit_test(test_bad_arguments),
    };
    int failed;

    signal(SIGPIPE, SIG_IGN);
    failed = cmocka_run_group_tests_name("espsim bench", bench_tests, group_setup, group_teardown);
    failed += cmocka_run_group_tests_name("espsim control", control_tests, ctl_setup, ctl_teardown);
    failed += cmocka_run_group_tests_name("espsim process", process_tests, NULL, NULL);
    return failed;
}
