#!/usr/bin/env node
// How long esptool-js takes against espsim in real time (--time-scale 1): the same stub session
// as the interop test (1 MiB MicroPython-like image, compressed, MD5-verified), once per chip at
// 115200 (no baud change) and once at 921600. --package esptool-js-legacy times 0.6.1 and the
// legacy stub instead of 0.7.0 and esp-flasher-stub.
//
//   node tests/interop/timings.mjs [ESPSIM] [--scale X] [--bauds 115200,921600] [--size-kib N]
//                                  [--package esptool-js|esptool-js-legacy]
//
// ESPSIM may also come from the environment. Prints each step as it runs, then a table:
//   chip, baud, connect (reset + SYNC + detect + MAC), stub (upload + baud change),
//   write+verify (FLASH_DEFL_* + SPI_FLASH_MD5), total.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { loadEsptool } from './lib/esptool.mjs';
import { startEspsim } from './lib/espsim.mjs';
import { ROM_BAUD, stubSession } from './lib/flow.mjs';
import { makeFirmwareImage } from './lib/image.mjs';

function parseArgs(argv) {
  const o = { espsim: process.env.ESPSIM, scale: 1, bauds: [ROM_BAUD, 921600], sizeKiB: 1024, package: 'esptool-js' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--scale') o.scale = Number(argv[++i]);
    else if (a === '--bauds') o.bauds = argv[++i].split(',').map(Number);
    else if (a === '--size-kib') o.sizeKiB = Number(argv[++i]);
    else if (a === '--package') o.package = argv[++i];
    else if (a === '-h' || a === '--help') o.help = true;
    else if (!a.startsWith('-')) o.espsim = a;
    else throw new Error(`unknown option ${a}`);
  }
  return o;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (o.help) {
    console.log(
      'usage: node tests/interop/timings.mjs [ESPSIM] [--scale X] [--bauds B1,B2] [--size-kib N] [--package NAME]',
    );
    return 0;
  }
  const esptool = await loadEsptool(o.package);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'espstation-timings-'));
  const sim = await startEspsim({
    bin: o.espsim,
    boards: ['esp8266', 'esp32'],
    stateDir: path.join(dir, 'state'),
    timeScale: o.scale,
    seed: 7,
  });
  const rows = [];
  try {
    for (const board of sim.boards) {
      const image = makeFirmwareImage({ size: o.sizeKiB * 1024, seed: 1, chip: board.chip });
      const address = board.chip === 'esp8266' ? 0x0 : 0x1000;
      for (const baud of o.bauds) {
        const r = await stubSession({ esptool, board, baud, files: [{ data: image, address }] });
        const s = r.steps;
        const connect = s.seconds('connect + detect chip', 'read MAC', 'crystal from the UART divider');
        const stub = s.seconds('upload stub (MEM_* + OHAI)', `change baud to ${baud}`);
        const write = s.list.filter((x) => /^(write\+verify|SPI_FLASH_MD5)/.test(x.name)).reduce((a, x) => a + x.ms, 0) / 1000;
        const total = s.list.reduce((a, x) => a + x.ms, 0) / 1000;
        rows.push([board.chip, baud, connect, stub, write, total]);
      }
    }
  } finally {
    const exit = await sim.stop();
    fs.rmSync(dir, { recursive: true, force: true });
    if (exit.code !== 0) console.error(`espsim exited with ${JSON.stringify(exit)}`);
  }
  const head = ['chip', 'baud', 'connect s', 'stub s', 'write+verify s', 'total s'];
  console.log(
    `\n${esptool.pkg.label} (${esptool.pkg.stub.family}) vs espsim, --time-scale ${o.scale}, ${o.sizeKiB} KiB image ` +
      '(compressed, MD5-verified)',
  );
  console.log(`| ${head.join(' | ')} |`);
  console.log(`|${head.map(() => '---').join('|')}|`);
  for (const [chip, baud, ...secs] of rows) {
    console.log(`| ${chip} | ${baud} | ${secs.map((x) => x.toFixed(2)).join(' | ')} |`);
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`timings: ${err.stack || err}`);
    process.exit(1);
  },
);
