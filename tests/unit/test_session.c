/* The per-board state machine (src/session) without the simulator: the session talks to a
 * scripted fake port (es/port_fake.h) behind which a small responder plays an ESP32-S3, its ROM
 * and the flasher stub, with a RAM flash that inflates what is written. Each test makes the
 * "board" drop, delay or refuse one thing, counts the callbacks (on_done exactly once), checks
 * the report and the fake's counters, and ends with uv_loop_close() == 0 as libuv's tests do
 * (style.md §8). The responder decodes requests with its own code, from the protocol document. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h> /* after the four headers it needs */

#include <stdlib.h>
#include <string.h>

#include "es/chip.h"
#include "es/rom.h"
#include "session_harness.h"

/* ---- Tests ---- */

/* The whole life of a good board: every phase once, in order, and the image in flash. */
static void test_pass(void **state)
{
    static const enum session_phase want[] = {
        SESSION_PHASE_OPEN,     SESSION_PHASE_RESET, SESSION_PHASE_SYNC,   SESSION_PHASE_DETECT,
        SESSION_PHASE_IDENTIFY, SESSION_PHASE_STUB,  SESSION_PHASE_ATTACH, SESSION_PHASE_FLASH_ID,
        SESSION_PHASE_PLAN,     SESSION_PHASE_WRITE, SESSION_PHASE_VERIFY, SESSION_PHASE_RUN,
        SESSION_PHASE_DONE,
    };
    struct harness *h = harness_new();
    const struct report_device *rep;
    const struct fake_port_stats *st;

    (void)state;
    rep = harness_run(h);
    assert_int_equal(rep->result, REPORT_PASS);
    assert_null(rep->error_phase);
    assert_int_equal(h->n_phases, (int)(sizeof(want) / sizeof(want[0])));
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        assert_int_equal(h->phase_order[i], want[i]);
    assert_string_equal(rep->chip, "ESP32-S3");
    assert_true(rep->mac_valid);
    assert_memory_equal(rep->mac, board_mac, 6);
    assert_true(rep->flash_id_valid);
    assert_int_equal(rep->flash_id, FLASH_JEDEC);
    assert_int_equal(rep->flash_size_bytes, FLASH_BYTES);
    assert_int_equal(rep->loader, REPORT_LOADER_STUB);
    assert_int_equal(rep->connect_retries, 0);
    assert_int_equal(rep->block_retries, 0);
    assert_int_equal(rep->baud_fallbacks, 0);
    assert_int_equal(rep->baud, ROM_BAUD);
    assert_int_equal(rep->n_images, 1);
    assert_true(rep->images[0].verified);
    assert_int_equal(h->retry_notes, 0);
    assert_flash_holds_image(h);
    assert_int_equal(h->b.ops[ROM_OP_FLASH_DEFL_DATA].seen, blocks_of_stream(h, 1));
    assert_true(blocks_of_stream(h, 1) >= 3);
    assert_int_equal(h->b.ops[ROM_OP_SYNC].seen, 1);
    st = fake_port_stats(h->b.fp);
    assert_int_equal(st->opens, 1);
    assert_int_equal(st->closes, 1);
    assert_int_equal(st->dtr, 0); /* released after the run reset */
    assert_int_equal(st->rts, 0);
    assert_int_equal(h->b.resets, 2); /* into the loader, then into the firmware */
    harness_free(h);
}

/* A probe (a continuous line looking for the next board): connect, detect, identify, then the
 * board back into its firmware, and a pass with the MAC; no stub, no flash command, no write. */
static void test_probe(void **state)
{
    static const enum session_phase want[] = {
        SESSION_PHASE_OPEN,     SESSION_PHASE_RESET, SESSION_PHASE_SYNC, SESSION_PHASE_DETECT,
        SESSION_PHASE_IDENTIFY, SESSION_PHASE_RUN,   SESSION_PHASE_DONE,
    };
    struct harness *h = harness_new();
    const struct report_device *rep;

    (void)state;
    h->cfg.mode = SESSION_PROBE;
    rep = harness_run(h);
    assert_int_equal(rep->result, REPORT_PASS);
    assert_true(rep->mac_valid);
    assert_memory_equal(rep->mac, board_mac, 6);
    assert_int_equal(h->n_phases, (int)(sizeof(want) / sizeof(want[0])));
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        assert_int_equal(h->phase_order[i], want[i]);
    assert_int_equal(h->b.ops[ROM_OP_MEM_BEGIN].seen, 0);
    assert_int_equal(h->b.ops[ROM_OP_SPI_ATTACH].seen, 0);
    assert_int_equal(h->b.ops[ROM_OP_FLASH_DEFL_BEGIN].seen, 0);
    assert_int_equal(h->b.ops[ROM_OP_FLASH_DEFL_DATA].seen, 0);
    assert_int_equal(h->b.resets, 2); /* into the loader, then back into the firmware */
    for (size_t i = 0; i < APP_BYTES; i++)
        assert_int_equal(h->b.flash[APP_OFFSET + i], 0xFF);
    harness_free(h);
}

/* The write window is one block: no FLASH_DEFL_DATA goes out before the reply to the previous
 * one has been read, also when the replies are slow. */
static void test_write_window(void **state)
{
    struct harness *h = harness_new();
    const struct report_device *rep;

    (void)state;
    h->b.data_reply_delay_ms = 20;
    rep = harness_run(h);
    assert_int_equal(rep->result, REPORT_PASS);
    assert_int_equal(h->b.ops[ROM_OP_FLASH_DEFL_DATA].seen, blocks_of_stream(h, 1));
    assert_int_equal(h->b.window_violations, 0);
    assert_int_equal(rep->block_retries, 0);
    assert_flash_holds_image(h);
    harness_free(h);
}

/* A block lost on the line: the stub is resynchronised, the image is written again from the last
 * restart point, once, and the flash ends up right. */
static void test_lost_block(void **state)
{
    struct harness *h = harness_new();
    const struct report_device *rep;
    int blocks;

    (void)state;
    h->b.drop_block_seq = 1;
    rep = harness_run(h);
    blocks = blocks_of_stream(h, 2); /* a failed block halves the block size */
    assert_int_equal(rep->result, REPORT_PASS);
    assert_int_equal(rep->block_retries, 1);
    assert_int_equal(h->b.defl_begins, 2);
    /* Blocks 0 and 1 (lost), then the whole stream again from its only restart point. */
    assert_int_equal(h->b.ops[ROM_OP_FLASH_DEFL_DATA].seen, 2 + blocks);
    assert_int_equal(h->b.ops[ROM_OP_SYNC].seen, 2); /* the connect, and the resync */
    assert_true(rep->images[0].verified);
    assert_int_equal(h->b.window_violations, 0);
    assert_flash_holds_image(h);
    harness_free(h);
}

/* A READ_REG answered only after the session gave up on it: the session starts over from reset,
 * the late reply (a value no eFuse holds) arrives meanwhile and is dropped, and the MAC is the
 * board's. */
static void test_late_reply_dropped(void **state)
{
    struct harness *h = harness_new();
    const struct report_device *rep;

    (void)state;
    h->b.hold_reg = chip_by_model(CHIP_ESP32S3)->info_regs[0];
    rep = harness_run(h);
    assert_true(h->b.held_released);
    assert_int_equal(rep->result, REPORT_PASS);
    assert_int_equal(rep->connect_retries, 1);
    assert_true(rep->mac_valid);
    assert_memory_equal(rep->mac, board_mac, 6);
    assert_int_equal(h->b.ops[ROM_OP_SYNC].seen, 2);
    assert_int_equal(h->b.resets, 3); /* two connects and the run reset */
    harness_free(h);
}

/* SYNC: five tries per reset, one reset per connection attempt (profile retries), then no_sync. */
static void test_retry_sync(void **state)
{
    struct harness *h = harness_new();
    const struct report_device *rep;

    (void)state;
    h->profile.retries = 2;
    h->b.ops[ROM_OP_SYNC].silent = -1;
    rep = harness_run(h);
    assert_int_equal(rep->result, REPORT_FAIL);
    assert_int_equal(rep->error.code, ES_NO_SYNC);
    assert_string_equal(rep->error_phase, "sync");
    assert_int_equal(h->b.ops[ROM_OP_SYNC].seen, 5 * 2);
    assert_int_equal(h->b.resets, 2);
    assert_int_equal(rep->connect_retries, 1); /* attempts beyond the first, as after a pass */
    assert_false(rep->mac_valid);
    assert_int_equal(rep->loader, REPORT_LOADER_NONE);
    harness_free(h);
}

/* SPI_ATTACH changes nothing when sent twice: three tries, then a timeout in attach. */
static void test_retry_attach(void **state)
{
    struct harness *h = harness_new();
    const struct report_device *rep;

    (void)state;
    h->b.ops[ROM_OP_SPI_ATTACH].silent = -1;
    rep = harness_run(h);
    assert_int_equal(rep->result, REPORT_FAIL);
    assert_int_equal(rep->error.code, ES_TIMEOUT);
    assert_string_equal(rep->error_phase, "attach");
    assert_int_equal(h->b.ops[ROM_OP_SPI_ATTACH].seen, 3);
    assert_int_equal(h->retry_notes, 2);
    assert_int_equal(h->b.ops[ROM_OP_FLASH_DEFL_BEGIN].seen, 0);
    harness_free(h);
}

/* An identity read is never asked again (a late reply could not be told from the new one's):
 * with no connection attempt left, one unanswered READ_REG fails the board. */
static void test_retry_identify_not_reasked(void **state)
{
    struct harness *h = harness_new();
    const struct report_device *rep;

    (void)state;
    h->profile.retries = 1;
    h->b.hold_reg = chip_by_model(CHIP_ESP32S3)->info_regs[0];
    rep = harness_run(h);
    assert_int_equal(rep->result, REPORT_FAIL);
    assert_int_equal(rep->error.code, ES_TIMEOUT);
    assert_string_equal(rep->error_phase, "identify");
    /* The magic word once, the held eFuse word once: never a second time. */
    assert_int_equal(h->b.ops[ROM_OP_READ_REG].seen, 2);
    assert_int_equal(h->b.ops[ROM_OP_SYNC].seen, 1);
    assert_false(rep->mac_valid);
    harness_free(h);
}

/* A read-back refused as damaged on the line (stub 0xC1, bad checksum) is sent again: twice
 * refused, the third try counts, and the board passes. */
static void test_retry_md5_refused(void **state)
{
    struct harness *h = harness_new();
    const struct report_device *rep;

    (void)state;
    h->b.ops[ROM_OP_SPI_FLASH_MD5].refuse = 2;
    h->b.ops[ROM_OP_SPI_FLASH_MD5].refuse_error = STUB_ERR_BAD_CHECKSUM;
    rep = harness_run(h);
    assert_int_equal(rep->result, REPORT_PASS);
    assert_int_equal(h->b.ops[ROM_OP_SPI_FLASH_MD5].seen, 3);
    assert_int_equal(h->retry_notes, 2);
    assert_true(rep->images[0].verified);
    harness_free(h);
}

/* A refused block that is not a line error (the flash would not take it) restarts the write
 * each time at the same place: the board fails after BLOCK_RETRIES restarts there. */
static void test_retry_block_refused(void **state)
{
    struct harness *h = harness_new();
    const struct report_device *rep;

    (void)state;
    h->b.ops[ROM_OP_FLASH_DEFL_BEGIN].refuse = 100;
    h->b.ops[ROM_OP_FLASH_DEFL_BEGIN].refuse_error = 0x03; /* not a line error: §2.6 */
    rep = harness_run(h);
    assert_int_equal(rep->result, REPORT_FAIL);
    assert_int_equal(rep->error.code, ES_ROM_REFUSED);
    assert_string_equal(rep->error_phase, "write");
    /* The first try, then three restarts at the same place; the one after that fails. */
    assert_int_equal(h->b.ops[ROM_OP_FLASH_DEFL_BEGIN].seen, 5);
    assert_int_equal(rep->block_retries, 5);
    harness_free(h);
}

/* The line cannot carry 921600: the probe at that rate is lost, the board is reset, and the
 * next lower standard rate is used. */
static void test_baud_fallback(void **state)
{
    struct harness *h = harness_new();
    const struct report_device *rep;
    const struct fake_port_stats *st;

    (void)state;
    h->profile.flash_baud = 921600;
    h->b.max_baud = BOARD_MAX_BAUD;
    rep = harness_run(h);
    st = fake_port_stats(h->b.fp);
    assert_int_equal(rep->result, REPORT_PASS);
    assert_int_equal(rep->baud_fallbacks, 1);
    assert_int_equal(rep->baud, BOARD_MAX_BAUD);
    assert_int_equal(st->baud, BOARD_MAX_BAUD);
    assert_int_equal(h->b.ops[ROM_OP_CHANGE_BAUDRATE].seen, 2);
    assert_int_equal(h->b.ops[ROM_OP_SYNC].seen, 2);
    assert_int_equal(h->b.resets, 3); /* the connect, the fallback, the run reset */
    assert_flash_holds_image(h);
    harness_free(h);
}

/* Without reset lines a failed raise cannot be undone: the board fails with a message. */
static void test_baud_no_reset(void **state)
{
    struct harness *h = harness_new();
    const struct report_device *rep;

    (void)state;
    h->profile.flash_baud = 921600;
    h->b.max_baud = BOARD_MAX_BAUD;
    fake_port_set_can_reset(h->b.fp, 0);
    rep = harness_run(h);
    assert_int_equal(rep->result, REPORT_FAIL);
    assert_int_equal(rep->error.code, ES_BAUD);
    assert_string_equal(rep->error_phase, "baud");
    assert_int_equal(rep->baud_fallbacks, 0);
    assert_int_equal(h->b.resets, 0);
    harness_free(h);
}

/* The board is unplugged while the image is written: the port's error ends the session. */
static void test_unplugged(void **state)
{
    struct harness *h = harness_new();
    const struct report_device *rep;

    (void)state;
    h->fail_port_in_write = 1;
    rep = harness_run(h);
    assert_int_equal(rep->result, REPORT_FAIL);
    assert_int_equal(rep->error.code, ES_PORT_CLOSED);
    assert_string_equal(rep->error_phase, "write");
    harness_free(h);
}

/* A port that cannot be opened: a failed board, reported from the loop like any other. */
static void test_open_refused(void **state)
{
    struct harness *h = harness_new();
    const struct report_device *rep;

    (void)state;
    fake_port_refuse_open(h->b.fp);
    rep = harness_run(h);
    assert_int_equal(rep->result, REPORT_FAIL);
    assert_int_equal(rep->error.code, ES_PORT_OPEN);
    assert_string_equal(rep->error_phase, "open");
    assert_int_equal(h->b.ops[ROM_OP_SYNC].seen, 0);
    harness_free(h);
}

/* Interrupted before it started: on_done still comes from the loop, never from inside
 * session_interrupt, and session_start afterwards does nothing. */
static void test_interrupt_before_start(void **state)
{
    struct harness *h = harness_new();
    const struct report_device *rep;
    struct es_err err;

    (void)state;
    assert_int_equal(session_new(&h->loop, &h->cfg, &harness_callbacks, h, &h->s, &err), 0);
    session_interrupt(h->s);
    assert_int_equal(h->done_calls, 0);
    session_start(h->s);
    session_interrupt(h->s);
    assert_int_equal(uv_run(&h->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(h->done_calls, 1);
    rep = session_report(h->s);
    assert_int_equal(rep->result, REPORT_INTERRUPTED);
    assert_int_equal(rep->error.code, ES_INTERRUPTED);
    assert_int_equal(fake_port_stats(h->b.fp)->opens, 0);
    harness_free(h);
}

/* SIGINT in any phase: the session ends as interrupted in that phase, on_done once, the port
 * closed, no handle left. Called from inside on_phase, the hardest place to stop. */
static void test_interrupt(void **state)
{
    enum session_phase phase = *(const enum session_phase *)*state;
    struct harness *h = harness_new();
    const struct report_device *rep;
    const struct fake_port_stats *st;

    h->profile.flash_baud = BOARD_MAX_BAUD; /* so that there is a baud phase */
    h->profile.erase = PROFILE_ERASE_ALL;   /* and an erase phase */
    h->interrupt_at = (int)phase;
    rep = harness_run(h);
    st = fake_port_stats(h->b.fp);
    assert_int_equal(h->phase_calls[phase], 1);
    assert_int_equal(h->phase_order[h->n_phases - 1], phase); /* nothing after it */
    assert_int_equal(rep->result, REPORT_INTERRUPTED);
    assert_int_equal(rep->error.code, ES_INTERRUPTED);
    assert_string_equal(rep->error_phase, session_phase_name(phase));
    assert_int_equal(st->opens, phase == SESSION_PHASE_OPEN ? 0 : 1);
    assert_int_equal(st->closes, st->opens);
    /* Once interrupted, the session touches the port no more. */
    assert_int_equal(st->set_lines_calls, h->at_interrupt.set_lines_calls);
    assert_int_equal(st->set_baud_calls, h->at_interrupt.set_baud_calls);
    assert_int_equal(st->flush_calls, h->at_interrupt.flush_calls);
    assert_int_equal(st->bytes_in, h->at_interrupt.bytes_in);
    harness_free(h);
}

static const enum session_phase interrupt_phases[] = {
    SESSION_PHASE_OPEN,     SESSION_PHASE_RESET, SESSION_PHASE_SYNC,  SESSION_PHASE_DETECT,
    SESSION_PHASE_IDENTIFY, SESSION_PHASE_STUB,  SESSION_PHASE_BAUD,  SESSION_PHASE_ATTACH,
    SESSION_PHASE_FLASH_ID, SESSION_PHASE_PLAN,  SESSION_PHASE_ERASE, SESSION_PHASE_WRITE,
    SESSION_PHASE_VERIFY,   SESSION_PHASE_RUN,
};

#define INTERRUPT_TEST(i) cmocka_unit_test_prestate(test_interrupt, (void *)&interrupt_phases[i])

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pass),
        cmocka_unit_test(test_probe),
        cmocka_unit_test(test_write_window),
        cmocka_unit_test(test_lost_block),
        cmocka_unit_test(test_late_reply_dropped),
        cmocka_unit_test(test_retry_sync),
        cmocka_unit_test(test_retry_attach),
        cmocka_unit_test(test_retry_identify_not_reasked),
        cmocka_unit_test(test_retry_md5_refused),
        cmocka_unit_test(test_retry_block_refused),
        cmocka_unit_test(test_baud_fallback),
        cmocka_unit_test(test_baud_no_reset),
        cmocka_unit_test(test_unplugged),
        cmocka_unit_test(test_open_refused),
        cmocka_unit_test(test_interrupt_before_start),
        INTERRUPT_TEST(0),
        INTERRUPT_TEST(1),
        INTERRUPT_TEST(2),
        INTERRUPT_TEST(3),
        INTERRUPT_TEST(4),
        INTERRUPT_TEST(5),
        INTERRUPT_TEST(6),
        INTERRUPT_TEST(7),
        INTERRUPT_TEST(8),
        INTERRUPT_TEST(9),
        INTERRUPT_TEST(10),
        INTERRUPT_TEST(11),
        INTERRUPT_TEST(12),
        INTERRUPT_TEST(13),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
