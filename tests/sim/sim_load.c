/* sim_load: drives every board of a running espsim with a realistic flashing load for
 * cpu-bench.sh: SYNC, (SPI_ATTACH,) FLASH_BEGIN of 256 KiB, then FLASH_DATA blocks of 0x400 back
 * to back at 115200, starting over at the end, until --seconds have passed. One poll() loop for
 * all boards, like a station would. Prints blocks written and errors per board.
 *
 *   sim_load [--seconds S] CHIP:PORT...      (CHIP is esp8266 or esp32) */
#define _XOPEN_SOURCE 700

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "es/le.h"
#include "simclient.h"

#define REGION_OFFSET 0x100000u
#define REGION_BLOCKS 256u
#define BLOCK         0x400u

enum step { STEP_SYNC, STEP_ATTACH, STEP_BEGIN, STEP_DATA };

struct target {
    const char *port;
    int esp32;
    int fd;
    struct sc_reader *r;
    enum step step;
    uint8_t op;       /* reply awaited */
    int64_t deadline; /* of the pending command */
    uint32_t seq;
    unsigned long blocks, errors, retries;
};

static const uint8_t sync_payload[36] = {0x07, 0x07, 0x12, 0x20, 0x55, 0x55, 0x55, 0x55, 0x55,
                                         0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55,
                                         0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55,
                                         0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55};

static void send_step(struct target *t)
{
    static uint8_t block[16 + BLOCK];
    uint8_t p[16] = {0};
    int64_t now = sc_now_ms();
    uint32_t chk;
    size_t i;

    switch (t->step) {
    case STEP_SYNC:
        sc_send(t->fd, 0x08, sync_payload, sizeof(sync_payload), 0);
        t->op = 0x08;
        t->deadline = now + 200;
        break;
    case STEP_ATTACH:
        sc_send(t->fd, 0x0D, p, 8, 0);
        t->op = 0x0D;
        t->deadline = now + 3000;
        break;
    case STEP_BEGIN:
        /* ESP8266 ROM: the erase size esptool sends for 256 KiB at a 64 KiB boundary (§8.3). */
        es_put_le32(p, t->esp32 ? REGION_BLOCKS * BLOCK : 0x30000);
        es_put_le32(p + 4, REGION_BLOCKS);
        es_put_le32(p + 8, BLOCK);
        es_put_le32(p + 12, REGION_OFFSET);
        sc_send(t->fd, 0x02, p, 16, 0);
        t->op = 0x02;
        t->deadline = now + 15000;
        t->seq = 0;
        break;
    case STEP_DATA: {
        uint8_t data[BLOCK];

        for (i = 0; i < BLOCK; i++)
            data[i] = (uint8_t)(i + t->seq);
        chk = sc_data_block(block, data, BLOCK, t->seq);
        sc_send(t->fd, 0x03, block, sizeof(block), chk);
        t->op = 0x03;
        t->deadline = now + 3000;
        break;
    }
    }
}

static void on_reply(struct target *t, const struct sc_reply *rep)
{
    if (rep->status != 0) {
        t->errors++;
        t->step = STEP_SYNC;
        send_step(t);
        return;
    }
    switch (t->step) {
    case STEP_SYNC:
        /* The other 7 SYNC replies are skipped as stale frames of another op. */
        t->step = t->esp32 ? STEP_ATTACH : STEP_BEGIN;
        break;
    case STEP_ATTACH: t->step = STEP_BEGIN; break;
    case STEP_BEGIN: t->step = STEP_DATA; break;
    case STEP_DATA:
        t->blocks++;
        if (++t->seq == REGION_BLOCKS)
            t->step = STEP_BEGIN;
        break;
    }
    send_step(t);
}

int main(int argc, char **argv)
{
    struct target *ts;
    struct pollfd *pf;
    double seconds = 20;
    int n = 0, i, first = 1;
    int64_t end;
    unsigned long total = 0, errors = 0;

    if (argc > 2 && strcmp(argv[1], "--seconds") == 0) {
        seconds = atof(argv[2]);
        first = 3;
    }
    ts = calloc((size_t)argc, sizeof(*ts));
    pf = calloc((size_t)argc, sizeof(*pf));
    if (ts == NULL || pf == NULL)
        return 1;
    for (i = first; i < argc; i++) {
        char *colon = strchr(argv[i], ':');
        struct target *t = &ts[n];

        if (colon == NULL) {
            fprintf(stderr, "sim_load: '%s' is not CHIP:PORT\n", argv[i]);
            return 2;
        }
        *colon = '\0';
        t->esp32 = strcmp(argv[i], "esp32") == 0;
        t->port = colon + 1;
        t->fd = sc_port_open(t->port, 115200);
        t->r = malloc(sizeof(*t->r));
        if (t->fd < 0 || t->r == NULL) {
            fprintf(stderr, "sim_load: cannot open %s\n", t->port);
            return 1;
        }
        sc_reader_init(t->r, t->fd);
        t->step = STEP_SYNC;
        send_step(t);
        n++;
    }
    end = sc_now_ms() + (int64_t)(seconds * 1000);
    while (sc_now_ms() < end) {
        int64_t now = sc_now_ms(), next = end;

        for (i = 0; i < n; i++) {
            pf[i].fd = ts[i].fd;
            pf[i].events = POLLIN;
            if (ts[i].deadline < next)
                next = ts[i].deadline;
        }
        poll(pf, (nfds_t)n, next > now ? (int)(next - now) : 0);
        now = sc_now_ms();
        for (i = 0; i < n; i++) {
            struct target *t = &ts[i];
            uint8_t buf[1100];
            struct sc_reply rep;
            int len;

            if (pf[i].revents & (POLLIN | POLLHUP | POLLERR))
                sc_reader_pump(t->r);
            while ((len = sc_pop_frame(t->r, buf, sizeof(buf))) >= 0) {
                if (sc_reply_parse(buf, len, t->op, t->esp32 && t->step != STEP_SYNC ? 4 : 2,
                                   &rep) == 0) {
                    on_reply(t, &rep);
                    break; /* frames after it belong to the next command's time */
                }
            }
            if (now >= t->deadline) {
                t->retries++;
                if (t->step != STEP_SYNC)
                    t->step = STEP_SYNC;
                send_step(t);
            }
        }
    }
    for (i = 0; i < n; i++) {
        printf("%s: %lu blocks, %lu errors, %lu retries\n", ts[i].port, ts[i].blocks, ts[i].errors,
               ts[i].retries);
        total += ts[i].blocks;
        errors += ts[i].errors;
        close(ts[i].fd);
        free(ts[i].r);
    }
    printf("total: %d boards, %lu blocks (%.1f KiB/s per board), %lu errors\n", n, total,
           n > 0 ? (double)total / n / seconds : 0.0, errors);
    free(ts);
    free(pf);
    return 0;
}
