#!/usr/bin/env node
// The peer of the benchmark: one esptool-js 0.7.0 session against one espsim board, as a user of
// esptool-js's public API runs it (ESPLoader.main(): reset, SYNC, detect, chip description,
// crystal, MAC, flasher stub, baud change, flash id; then writeFlash() compressed with its MD5
// check, then a hard reset). One process per board, so tools/bench/bench.py can read each peer's
// CPU time and peak RSS with wait4().
//
//   node tools/bench/peer.mjs --port PATH --ctl PATH --baud B --image FILE --address A
//        [--flash-size detect|keep|4MB]
//
// Prints one JSON line: {"ok":true, "t_ms":{...}, "write_tx_bytes":N, ...}, times in ms since the
// port was created (before ESPLoader.main() opens it). Exit 0 when the flash MD5 matched.
//
// The serial port (PtySerialPort: espsim's pty plus its DTR/RTS control socket) and the esptool-js
// loader are imported as they are from tests/interop/lib (serial.mjs, esptool.mjs); nothing here
// changes what esptool-js sends. Two hooks only observe: the SLIP encoder (to count the bytes sent
// during the write) and flashDeflBegin/flashMd5sum (to time the write phase).

import crypto from 'node:crypto';
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';

import { loadEsptool } from '../../tests/interop/lib/esptool.mjs';
import { PtySerialPort } from '../../tests/interop/lib/serial.mjs';

const ROM_BAUD = 115200;

function parseArgs(argv) {
  const o = { flashSize: 'detect', flashMode: 'dio', flashFreq: '40m' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--port') o.port = v();
    else if (a === '--ctl') o.ctl = v();
    else if (a === '--baud') o.baud = Number(v());
    else if (a === '--image') o.image = v();
    else if (a === '--address') o.address = Number(v());
    else if (a === '--flash-size') o.flashSize = v();
    else throw new Error(`unknown option ${a}`);
  }
  for (const k of ['port', 'ctl', 'baud', 'image', 'address']) {
    if (o[k] === undefined || Number.isNaN(o[k])) throw new Error(`missing or bad --${k}`);
  }
  return o;
}

const quietTerminal = {
  lines: [],
  clean() {},
  write() {},
  writeLine(s) {
    this.lines.push(s);
    if (this.lines.length > 200) this.lines.shift();
  },
};

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const image = new Uint8Array(fs.readFileSync(o.image));
  const esptool = await loadEsptool();

  const t0 = performance.now();
  const t = {};
  const mark = (name) => {
    t[name] = performance.now() - t0;
  };
  const port = new PtySerialPort(o.port, { ctlPath: o.ctl });
  const transport = new esptool.Transport(port, false);
  let txBytes = 0;
  const slipWriter = transport.slipWriter.bind(transport);
  transport.slipWriter = (data) => {
    const out = slipWriter(data);
    txBytes += out.length;
    return out;
  };
  const loader = new esptool.ESPLoader({
    transport,
    baudrate: o.baud,
    romBaudrate: ROM_BAUD,
    terminal: quietTerminal,
    debugLogging: false,
  });
  let txAtWrite = 0;
  let txAtMd5 = 0;
  const deflBegin = loader.flashDeflBegin.bind(loader);
  loader.flashDeflBegin = (...args) => {
    mark('write_begin');
    txAtWrite = txBytes;
    return deflBegin(...args);
  };
  const md5sum = loader.flashMd5sum.bind(loader);
  loader.flashMd5sum = (...args) => {
    mark('verify_begin');
    txAtMd5 = txBytes;
    return md5sum(...args);
  };
  try {
    await loader.main('default_reset');
    mark('ready');
    if (loader.baudrate !== o.baud) throw new Error(`esptool-js fell back to ${loader.baudrate} baud`);
    mark('write_call');
    await loader.writeFlash({
      fileArray: [{ data: image, address: o.address }],
      flashSize: o.flashSize,
      flashMode: o.flashMode,
      flashFreq: o.flashFreq,
      eraseAll: false,
      compress: true,
      calculateMD5Hash: (bytes) => crypto.createHash('md5').update(bytes).digest('hex'),
    });
    mark('verified');
    if (!quietTerminal.lines.includes('Hash of data verified.')) {
      throw new Error('writeFlash returned without "Hash of data verified."');
    }
    await loader.after('hard_reset');
    await transport.disconnect();
    mark('done');
    const out = {
      ok: true,
      chip: loader.chip.CHIP_NAME,
      baud: loader.baudrate,
      image_size: image.length,
      t_ms: t,
      write_tx_bytes: txAtMd5 - txAtWrite,
      tx_bytes: txBytes,
    };
    process.stdout.write(`${JSON.stringify(out)}\n`);
    return 0;
  } catch (err) {
    const out = {
      ok: false,
      error: String(err?.message ?? err),
      t_ms: t,
      log: quietTerminal.lines.slice(-20),
    };
    process.stdout.write(`${JSON.stringify(out)}\n`);
    return 1;
  } finally {
    await port.destroy();
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stdout.write(`${JSON.stringify({ ok: false, error: String(err?.stack ?? err) })}\n`);
    process.exit(1);
  },
);
