/* The scripted board behind the fake port (es/port_fake.h) that the session's unit tests talk
 * to: an ESP32-S3 in download mode, its ROM and the flasher stub, with a RAM flash that inflates
 * what is written, and the session side that counts callbacks. Shared by test_session.c and the
 * other tests of src/session; each test makes the "board" drop, delay or refuse one thing through
 * the fields below. The responder decodes requests with its own code, from the protocol
 * document. */
#ifndef ES_TEST_SESSION_HARNESS_H
#define ES_TEST_SESSION_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>
#include <zlib.h>

#include "es/deflate.h"
#include "es/image.h"
#include "es/port_fake.h"
#include "es/profile.h"
#include "es/session.h"
#include "es/stub.h"

#define FLASH_BYTES     (4u << 20)
#define FLASH_JEDEC     0x1640EFu /* Winbond, capacity 0x16: 4 MiB (protocol doc §7.6) */
#define APP_OFFSET      0x10000u
#define APP_BYTES       (40u * 1024u) /* incompressible: three 16 KiB stub blocks */
#define SYNC_VALUE      0x20120707u   /* any non-zero word: a ROM answered (§4) */
#define ROM_BAUD        115200u
#define BOARD_MAX_BAUD  460800u /* the cable's limit in the baud tests */
#define BOGUS_REG_VALUE 0xDEADBEEFu
#define STUB_TEXT_ADDR  0x40380000u
#define STUB_DATA_ADDR  0x3FC90000u

/* The MAC the eFuse words below hold (§7.3: the high word's low 16 bits are its first bytes). */
extern const uint8_t board_mac[6];
#define MAC_LO 0xC4123456u
#define MAC_HI 0x0000240Au

/* What the scripted board does with one kind of request. */
struct op_script {
    int silent; /* requests of this op left unanswered: n, or -1 for all */
    int refuse; /* requests refused with refuse_error */
    uint8_t refuse_error;
    int seen; /* requests received */
};

struct harness;

/* The board: an ESP32-S3 in download mode, its ROM, and the stub once uploaded. */
struct board {
    struct harness *h;
    struct fake_port *fp;
    int stub;          /* the stub answers (2 status bytes [error, 0], stub commands) */
    uint32_t baud;     /* the board's UART rate */
    uint32_t max_baud; /* the line's limit: frames written faster arrive as noise */
    uint32_t regs[64][2];
    size_t n_regs;
    uint8_t *flash;
    int resets;

    /* FLASH_DEFL_* */
    z_stream zs;
    int zs_open;
    uint32_t wr_offset, wr_pos, wr_seq;
    int defl_begins;
    int drop_block_seq; /* the first DATA block with this seq (of any BEGIN) is lost; -1: none */
    uint64_t data_reply_delay_ms;
    /* Write window: the host must have read the reply to the previous block before it sends
     * the next one. rx_needed is the session's rx_bytes once that reply is in. */
    uint64_t wire_sent, rx_needed;
    int window_violations;

    /* Late reply: the first READ_REG of hold_reg is answered with BOGUS_REG_VALUE only when the
     * session resets the board (after its timeout). */
    uint32_t hold_reg;
    int holding, held_released;

    struct op_script ops[256];
};

struct harness {
    uv_loop_t loop;
    struct board b;
    struct profile profile;
    struct profile_image pimg;
    struct image img;
    const struct profile *profiles[1];
    struct stub_image stubs[CHIP_MODEL_COUNT];
    uint8_t stub_text[300], stub_data[100];
    struct session_config cfg;
    struct session *s;
    char port_name[16]; /* one per test: a failed test leaves its fake registered */

    struct image_prepared prep;
    struct image_deflate z;
    int have_prep, have_z;
    struct session_payload payload;

    int phase_calls[SESSION_PHASE_COUNT];
    enum session_phase phase_order[64];
    int n_phases;
    int interrupt_at; /* interrupt the session on entering this phase; -1: never */
    struct fake_port_stats at_interrupt; /* the fake's counters right after that */
    int done_calls, retry_notes;
    int fail_port_in_write; /* unplug the board during the first FLASH_DEFL_DATA */
    /* Called with every note after it is counted, when set; user is the test's. */
    void (*note_hook)(struct harness *h, const char *what, const char *text);
    void *user;
};

/* The session's callbacks, recording into the struct harness passed as their arg. */
extern const struct session_callbacks harness_callbacks;

/* Sends a reply to op from the board: header, result bytes, then the loader's status bytes. */
void board_reply(struct board *b, uint8_t op, uint32_t value, const uint8_t *data, size_t n,
                 uint8_t error, uint64_t delay_ms);
/* The board's answer to one request frame (the fake_port_frame_fn harness_new installs with
 * arg &h->b): a test that watches the requests installs its own and calls this one. */
void board_on_frame(struct fake_port *fp, const uint8_t *frame, size_t len, uint32_t baud,
                    void *arg);
void board_set_reg(struct board *b, uint32_t addr, uint32_t value);

/* A board and a one-image profile ready to run; the test changes fields, then harness_run. */
struct harness *harness_new(void);
/* Runs one board to its end: on_done exactly once, and only from the loop. */
const struct report_device *harness_run(struct harness *h);
/* Frees everything, checking that no handle is left (uv_loop_close() == 0). */
void harness_free(struct harness *h);
void assert_flash_holds_image(const struct harness *h);
/* Blocks of the whole stream at the stub's block size divided by divisor. */
int blocks_of_stream(const struct harness *h, uint32_t divisor);

#endif
