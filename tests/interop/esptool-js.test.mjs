// Proof of fidelity with Espressif's own client: esptool-js (npm/node_modules, pinned) drives an
// espsim bench of one ESP8266 and one ESP32 over the Node ports of lib/serial.mjs -- once per
// pinned package, so that espsim runs two flasher-stub families (lib/esptool.mjs):
//   esptool-js 0.7.0 (package esptool-js)         esp-flasher-stub
//   esptool-js 0.6.1 (package esptool-js-legacy)  the legacy esptool stub
//
// Environment:
//   ESPSIM                path of the espsim executable (required; the CMake test sets it)
//   INTEROP_PACKAGES      comma-separated packages to run (default: all of them; each CTest
//                         entry runs one)
//   ESPSIM_TIME_SCALE     --time-scale for espsim (default 0.05: 20x faster than a real board)
//   INTEROP_VERBOSE=1     print esptool-js's output, port traces and espsim -v
//   INTEROP_KEEP=1        keep the temporary state directory (flash files) and print its path
//   ESPSTATION_TIMEOUT_MULTIPLIER  scale the per-test timeouts (sanitizer builds)
//
// Each package gets its own espsim, and each board: the normal esptool-js session (reset through ctl, detect, MAC, flasher stub, 921600
// baud, flash id, 1 MiB compressed write verified by MD5), then the flash file is compared with
// the image byte for byte; then the plain ROM mode the client allows (see romSession), again
// compared; then the same client over the TCP port. Finally espsim must exit 0 on SIGTERM and
// its flash files must still hold everything.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { loadEsptool, PACKAGE_NAMES } from './lib/esptool.mjs';
import { startEspsim } from './lib/espsim.mjs';
import { ROM_BAUD, romSession, stubSession } from './lib/flow.mjs';
import { makeFirmwareImage } from './lib/image.mjs';

const SELECTED = process.env.INTEROP_PACKAGES ? process.env.INTEROP_PACKAGES.split(',') : PACKAGE_NAMES;
// No npm/node_modules (or an unpinned version): fails here, saying to run setup-deps.
const CLIENTS = await Promise.all(SELECTED.map((name) => loadEsptool(name.trim())));

const ESPSIM = process.env.ESPSIM;
const TIME_SCALE = Number(process.env.ESPSIM_TIME_SCALE ?? '0.05');
const VERBOSE = !!process.env.INTEROP_VERBOSE;
const KEEP = !!process.env.INTEROP_KEEP;
const MULT = Number(process.env.ESPSTATION_TIMEOUT_MULTIPLIER ?? '1');
const FAST_BAUD = 921600;
const KiB = 1024;
const MiB = 1024 * KiB;
const SECTOR = 4096;

// Test timeouts: generous multiples of the worst expected time at this scale (1 MiB at 115200
// is ~60 s of board time), plus esptool-js's own real-time waits (resets, 50 ms sleeps).
const TEST_TIMEOUT_MS = Math.round((60000 + 200000 * Math.max(TIME_SCALE, 0.05)) * MULT);

function pattern(size, seed) {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = (seed + i * 7 + (i >> 8)) & 0xff;
  return out;
}

// What gets written where. Images are generated, deterministic, MicroPython-like (~0.65 zlib).
const PLAN = {
  esp8266: {
    // MicroPython for ESP8266 is one image at 0x0.
    image: { address: 0x0, data: makeFirmwareImage({ size: MiB, seed: 8266, chip: 'esp8266' }) },
    // A marker the stub writes just past where the ROM-mode image will end, to observe how far the
    // ESP8266 ROM erases when esptool-js sends it an uncorrected erase size (§8.3, §15.2).
    marker: { address: 0x140000, data: pattern(SECTOR, 0x5a) },
    rom: { address: 0x100000, data: makeFirmwareImage({ size: 256 * KiB, seed: 82660, chip: 'esp8266' }) },
    romBaud: ROM_BAUD, // the ESP8266 ROM has no CHANGE_BAUDRATE
  },
  esp32: {
    // MicroPython for ESP32 (bootloader + partition table + app) is one image at 0x1000.
    image: { address: 0x1000, data: makeFirmwareImage({ size: MiB, seed: 32, chip: 'esp32' }) },
    rom: { address: 0x200000, data: makeFirmwareImage({ size: 256 * KiB, seed: 320, chip: 'esp32' }) },
    romBaud: FAST_BAUD,
  },
};

/** §8.3: asked for x sectors, the ESP8266 ROM erases x + min(head, x) from the start sector. */
function esp8266RomEraseRange(offset, eraseSizeBytes) {
  const x = Math.ceil(eraseSizeBytes / SECTOR);
  const start = Math.floor(offset / SECTOR);
  const head = 16 - (start % 16);
  return [start * SECTOR, (start + x + Math.min(head, x)) * SECTOR];
}

function compareFlash(board, expected, when) {
  const actual = fs.readFileSync(board.flash);
  assert.equal(actual.length, expected.length, `${board.flash}: size`);
  let first = -1;
  let last = -1;
  let count = 0;
  for (let i = 0; i < actual.length; i++) {
    if (actual[i] !== expected[i]) {
      if (first < 0) first = i;
      last = i;
      count++;
    }
  }
  if (count) {
    const hex = (b, at) => Buffer.from(b.subarray(at, at + 16)).toString('hex');
    assert.fail(
      `${when}: slot ${board.slot} (${board.chip}) flash file ${board.flash} differs from what ` +
        `esptool-js wrote: ${count} bytes in 0x${first.toString(16)}..0x${last.toString(16)}; ` +
        `at 0x${first.toString(16)} flash ${hex(actual, first)} expected ${hex(expected, first)}`,
    );
  }
}

/** The whole bench, for one esptool-js package (its `pkg` says which, see lib/esptool.mjs). */
function benchSuite(esptool) {
  const { pkg } = esptool;
  let sim;
  let dir;
  const expected = {};

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), `espstation-interop-${pkg.version}-`));
    sim = await startEspsim({
      bin: ESPSIM,
      boards: ['esp8266', 'esp32'],
      stateDir: path.join(dir, 'state'),
      timeScale: TIME_SCALE,
      seed: 7,
      tcp: true,
      verbose: VERBOSE,
    });
    console.log(`espsim ${sim.args.join(' ')}`);
    for (const b of sim.boards) {
      console.log(`  slot ${b.slot}: ${b.chip} ${b.mac} flash ${b.flash_id} ${b.flash_size} B, ${b.port}, ${b.tcp}`);
      expected[b.chip] = new Uint8Array(b.flash_size).fill(0xff);
    }
  });

  after(async () => {
    if (sim) await sim.stop();
    if (dir && KEEP) console.log(`kept ${dir}`);
    else if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const chip of ['esp8266', 'esp32']) {
    const plan = PLAN[chip];
    const board = () => sim.boards.find((b) => b.chip === chip);

    describe(chip, () => {
      test(
        'stub session: reset via ctl, detect, MAC, stub, 921600, flash id, 1 MiB compressed write, MD5',
        { timeout: TEST_TIMEOUT_MS },
        async () => {
          const files = [plan.image, ...(plan.marker ? [plan.marker] : [])];
          const r = await stubSession({ esptool, board: board(), baud: FAST_BAUD, files, verbose: VERBOSE });
          console.log(`  ${chip}: ${r.description}, ${r.crystalMHz} MHz, MAC ${r.mac}, flash id 0x${r.flashId.toString(16)}`);
          console.log(`  ${chip}: ${pkg.label} ran its ${r.stub.family} (text at 0x${r.stub.textStart.toString(16)}, ` +
            `entry 0x${r.stub.entry.toString(16)}): OHAI, "Stub running..."`);
          assert.equal(r.stub.family, pkg.stub.family);
          for (const n of r.notes) console.log(`  ${chip} stub: ${n}`);
          for (const f of files) expected[chip].set(f.data, f.address);
        },
      );

      test('flash file holds the image byte for byte, and nothing else changed', () => {
        compareFlash(board(), expected[chip], 'after the stub session');
      });

      test(
        chip === 'esp32'
          ? 'ROM mode without the stub: ROM baud change, 8-byte SPI_ATTACH, 5-word FLASH_BEGIN refused, compressed write, ROM MD5'
          : 'ROM mode without the stub: 5-word FLASH_BEGIN refused; 4-word shim write and the ROM erase bug',
        { timeout: TEST_TIMEOUT_MS },
        async () => {
          const r = await romSession({ esptool, board: board(), baud: plan.romBaud, file: plan.rom, verbose: VERBOSE });
          for (const n of r.notes) console.log(`  ${chip} ROM: ${n}`);
          if (chip === 'esp8266') {
            // esptool-js sends the image size as the erase size (ESP8266ROM.getEraseSize returns
            // size); the ROM's erase bug then erases past the image. Expect exactly that.
            const [from, to] = esp8266RomEraseRange(plan.rom.address, plan.rom.data.length);
            expected[chip].fill(0xff, from, to);
            console.log(`  ${chip} ROM: erase of 0x${plan.rom.data.length.toString(16)} at 0x${plan.rom.address.toString(16)} ` +
              `is expected to clear 0x${from.toString(16)}..0x${to.toString(16)} (the ESP8266 ROM erase bug)`);
          }
          expected[chip].set(plan.rom.data, plan.rom.address);
        },
      );

      test('flash file after the ROM-mode write', () => {
        compareFlash(board(), expected[chip], 'after the ROM session');
      });

      test('TCP port: reset via ctl, detect, MAC, stub, 921600, flash id', { timeout: TEST_TIMEOUT_MS }, async () => {
        const r = await stubSession({ esptool, board: board(), kind: 'tcp', baud: FAST_BAUD, files: [], verbose: VERBOSE });
        for (const n of r.notes) console.log(`  ${chip} TCP: ${n}`);
      });

      test('browser-style baud change: the pty is closed and reopened at 921600, stub still answers', { timeout: TEST_TIMEOUT_MS }, async () => {
        // Web Serial has no in-place baud change: esptool-js closes the port, reopens it at the new
        // rate and probes the stub (0.6.1 always does so, and does not probe: stubSession does).
        // A board must survive its host port closing (§5.4: on a real bridge that drops DTR and
        // RTS together, which the two-transistor circuit ignores).
        const r = await stubSession({ esptool, board: board(), kind: 'pty-reopen', baud: FAST_BAUD, files: [], verbose: VERBOSE });
        for (const n of r.notes) console.log(`  ${chip} reopen: ${n}`);
        assert.ok(!r.log.includes('Continuing at'), 'esptool-js fell back to the ROM baud rate');
      });
    });
  }

  test('espsim exits 0 on SIGTERM and its flash files keep everything', { timeout: 30000 * MULT }, async () => {
    const exit = await sim.stop();
    assert.deepEqual(exit, { code: 0, signal: null }, `espsim exit; stderr: ${sim.child.stderr.slice(-2000)}`);
    for (const b of sim.boards) compareFlash(b, expected[b.chip], 'after espsim exited');
  });
}

for (const esptool of CLIENTS) {
  const { pkg } = esptool;
  describe(`${pkg.label} (${pkg.name}, ${pkg.stub.family}) against espsim (time scale ${TIME_SCALE})`, () =>
    benchSuite(esptool),
  );
}
