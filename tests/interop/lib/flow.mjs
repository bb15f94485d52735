// What a user of esptool-js does with a board, step by step and timed: shared by the interop test
// and the timing script. Every step calls esptool-js's public ESPLoader API the way its own
// example app does; where the client needs help (ROM mode), the help is named and explained.
// `esptool` is what lib/esptool.mjs's loadEsptool() returns: the module plus `pkg`, which says
// which package (0.7.0 or 0.6.1), which stub family it uploads and how its baud change works.

import crypto from 'node:crypto';
import { performance } from 'node:perf_hooks';

import { stubOf } from './esptool.mjs';
import { PtySerialPort, TcpSerialPort } from './serial.mjs';

export const ROM_BAUD = 115200;

export function md5hex(bytes) {
  return crypto.createHash('md5').update(bytes).digest('hex');
}

/** Runs named steps, records their duration, and prefixes failures with the board and step. */
export class Steps {
  constructor(label, print = console.log) {
    this.label = label;
    this.print = print;
    this.list = [];
  }

  async run(name, fn) {
    const t0 = performance.now();
    try {
      const result = await fn();
      const ms = performance.now() - t0;
      this.list.push({ name, ms, ok: true });
      this.print(`${this.label}: ${name.padEnd(34)} ${(ms / 1000).toFixed(3).padStart(8)} s  ok`);
      return result;
    } catch (err) {
      const ms = performance.now() - t0;
      this.list.push({ name, ms, ok: false, error: String(err?.message ?? err) });
      this.print(`${this.label}: ${name.padEnd(34)} ${(ms / 1000).toFixed(3).padStart(8)} s  FAILED: ${err?.message ?? err}`);
      if (err instanceof Error) err.message = `${this.label}, step "${name}": ${err.message}`;
      throw err;
    }
  }

  seconds(...names) {
    return this.list.filter((s) => names.includes(s.name)).reduce((sum, s) => sum + s.ms, 0) / 1000;
  }
}

/**
 * The RDID sequence of §7.5 for the ESP8266 (MISO length in USR1), through esptool-js's own
 * readReg/writeReg -- what esptool.py does, and what readFlashId() means to do.
 */
async function rdidEsp8266(loader) {
  const base = 0x60000200;
  const [CMD, USR, USR1, USR2, W0] = [base, base + 0x1c, base + 0x20, base + 0x24, base + 0x40];
  const usr = await loader.readReg(USR);
  const usr2 = await loader.readReg(USR2);
  await loader.writeReg(USR1, 23 << 8); // 24 bits in, nothing out
  await loader.writeReg(USR, 0x90000000); // USR_COMMAND | USR_MISO
  await loader.writeReg(USR2, 0x7000009f); // 8-bit command 0x9F
  await loader.writeReg(W0, 0);
  await loader.writeReg(CMD, 1 << 18);
  let i = 0;
  while (i < 10 && (await loader.readReg(CMD)) & (1 << 18)) i++;
  check(i < 10, 'SPI_CMD_USR did not clear after 10 reads');
  const id = (await loader.readReg(W0)) & 0xffffff;
  await loader.writeReg(USR, usr);
  await loader.writeReg(USR2, usr2);
  return id;
}

/** esptool-js writes its progress to a "terminal"; keep it for assertions and failure reports. */
export function captureTerminal(echo) {
  const lines = [];
  let partial = '';
  return {
    lines,
    text: () => lines.join('\n') + partial,
    clean() {},
    write(s) {
      partial += s;
      if (echo) process.stdout.write(s);
    },
    writeLine(s) {
      lines.push(partial + s);
      partial = '';
      if (echo) console.log(s);
    },
  };
}

/**
 * @param {object} board espsim's JSON line
 * @param {'pty'|'pty-reopen'|'tcp'} kind pty-reopen: no in-place setBaudRate(), so esptool-js
 *   closes and reopens the pty on a baud change, as it must in a browser
 */
export function makePort(board, kind, log) {
  const opts = { ctlPath: board.ctl, log, inPlaceBaud: kind !== 'pty-reopen' };
  if (kind === 'tcp') {
    if (!board.tcp) throw new Error(`slot ${board.slot} has no tcp address (start espsim with --tcp)`);
    return new TcpSerialPort(board.tcp, opts);
  }
  return new PtySerialPort(board.port, opts);
}

const CHIP_NAMES = { esp8266: 'ESP8266', esp32: 'ESP32' };

function check(cond, message) {
  if (!cond) throw new Error(message);
}

/**
 * Open the port, reset into the ROM loader through ctl, SYNC and detect the chip (all inside
 * esptool-js's ESPLoader.connect()), then read the MAC.
 */
async function connectAndIdentify({ esptool, board, kind, baud, steps, verbose }) {
  const port = makePort(board, kind, verbose ? (l) => console.log(`  [port] ${l}`) : undefined);
  const transport = new esptool.Transport(port, false);
  const terminal = captureTerminal(verbose);
  if (!verbose) {
    // 0.6.1's Transport.readLoop() prints "Serial port done" / "readLoop exited" (and any port
    // error) with console.log even with tracing off: keep them with the client's output instead.
    transport.trace = (message) => terminal.writeLine(`[transport] ${message}`);
  }
  const loader = new esptool.ESPLoader({
    transport,
    baudrate: baud,
    romBaudrate: ROM_BAUD, // 0.6.1 has no such option: its romBaudrate is always 115200
    terminal,
    debugLogging: !!verbose,
  });
  const ctx = { port, transport, terminal, loader, notes: [] };
  await steps.run('connect + detect chip', async () => {
    // ESPLoader.connect(): reset through ctl, SYNC, then (0.7.0) GET_SECURITY_INFO and, when the
    // ROM calls it unsupported, the magic register. If GET_SECURITY_INFO is refused in a way
    // esptool-js does not recognise as "unsupported", it reconnects (a second reset + SYNC) and
    // reads the magic. 0.6.1 reads the magic register only.
    await loader.connect('default_reset', 7, true);
    const want = CHIP_NAMES[board.chip];
    check(loader.chip?.CHIP_NAME === want, `detected ${loader.chip?.CHIP_NAME}, espsim says ${board.chip}`);
    check(
      !terminal.text().includes('Autodetection failed'),
      'esptool-js had to reconnect to detect the chip: the reply to GET_SECURITY_INFO (0x14) was not ' +
        'recognised as "unsupported". The ESP32/ESP8266 ROMs answer 01 05 with the op of the last ' +
        'accepted command (§15.1, §15.2), which esptool-js needs to see (its op != 0x14).',
    );
    ctx.description = await loader.chip.getChipDescription(loader);
    // Every reset ClassicReset makes drives RTS high once (EN low). More than one: the first
    // reset did not leave the board in its download mode and esptool-js tried again. Racy, so
    // reported rather than asserted.
    const resets = port.signalLines.filter((l) => /RTS=1/.test(l)).length;
    if (resets > 1) {
      ctx.notes.push(
        `connect needed ${resets} resets` +
          (esptool.pkg.atomicReset
            ? ''
            : ` (${esptool.pkg.label}'s ClassicReset sets DTR and RTS in separate calls, so the lines pass ` +
              'through DTR=1 RTS=1: EN released with GPIO0 high. When the next line arrives after the EN ' +
              'glitch filter (5 ms of board time, 250 us of wall time at --time-scale 0.05), the board ' +
              'boots from flash and esptool-js resets again)'),
      );
    }
  });
  await steps.run('read MAC', async () => {
    ctx.mac = await loader.chip.readMac(loader);
    check(
      ctx.mac.toLowerCase() === String(board.mac).toLowerCase(),
      `esptool-js read MAC ${ctx.mac}, espsim announced ${board.mac}`,
    );
  });
  await steps.run('crystal from the UART divider', async () => {
    // esptool-js: divider x host baud / 10^6 (/2 on ESP8266), warns when far from 26 or 40 MHz.
    // The divider the sim reports must match the rate the host synced at (§7.4, §13.5).
    const before = terminal.lines.length;
    ctx.crystalMHz = await loader.chip.getCrystalFreq(loader);
    const warned = terminal.lines.slice(before).filter((l) => /WARNING/.test(l));
    check(warned.length === 0, `esptool-js: ${warned.join(' ')}`);
  });
  return ctx;
}

/**
 * The normal esptool-js session: stub, fast baud, compressed write verified by MD5.
 * @param {object} o
 * @param {object} o.esptool the esptool-js module with its `pkg` (lib/esptool.mjs)
 * @param {object} o.board espsim's JSON line for the board
 * @param {'pty'|'pty-reopen'|'tcp'} [o.kind]
 * @param {number} o.baud baud after the stub runs (115200: no change)
 * @param {{data: Uint8Array, address: number}[]} o.files what to write (empty: no write)
 * @returns {Promise<{steps: Steps, notes: string[], stub: object, mac: string, description: string,
 *   flashId: number, log: string}>}
 */
export async function stubSession(o) {
  const { pkg } = o.esptool;
  const kind = o.kind ?? 'pty';
  const steps = new Steps(`${pkg.label} ${o.board.chip} slot ${o.board.slot} ${kind} stub @${o.baud}`, o.print);
  const ctx = await connectAndIdentify({ ...o, kind, steps });
  const { loader, port, terminal, notes } = ctx;
  try {
    const stub = await steps.run('upload stub (MEM_* + OHAI)', async () => {
      // The stub this package uploads must be of its family (text at the family's load address):
      // espsim runs it only if it knows that family, and answers with the family's receive path.
      const info = await stubOf(o.esptool, o.board.chip);
      const before = terminal.lines.length;
      await loader.runStub();
      const log = terminal.lines.slice(before);
      check(
        !log.some((l) => /already running/.test(l)),
        'esptool-js saw a stub answering SYNC and uploaded nothing: the board was not reset into the ROM',
      );
      // runStub() throws unless the board answers OHAI; then it logs "Stub running...".
      check(log.includes('Stub running...') && loader.IS_STUB === true, 'runStub() returned without the stub running');
      return info;
    });
    if (o.baud !== ROM_BAUD) {
      await steps.run(`change baud to ${o.baud}`, async () => {
        await loader.changeBaud();
        // 0.7.0: changeBaud() silently falls back to the ROM rate and re-uploads the stub on failure.
        check(loader.baudrate === o.baud, `esptool-js fell back to ${loader.baudrate} baud: ${terminal.text().slice(-400)}`);
        if (!pkg.probesAfterBaud) {
          // 0.6.1 reopens the port and returns without asking whether the stub still answers; ask
          // the way 0.7.0's changeBaud() does (a READ_REG of the magic register).
          await loader.readReg(loader.CHIP_DETECT_MAGIC_REG_ADDR);
        }
        if (kind !== 'tcp') check(port.baudRate === o.baud, `host port is at ${port.baudRate}`);
        const opens = kind === 'pty-reopen' || !pkg.inPlaceBaud ? 2 : 1;
        check(port.openCount === opens, `port opened ${port.openCount} times, expected ${opens}`);
      });
    }
    const flashId = await steps.run('read flash id (SPI RDID)', async () => {
      const id = await loader.readFlashId();
      if (o.board.chip === 'esp8266') {
        // esptool-js (0.7.0 and 0.6.1) sets SPI_MOSI_DLEN_OFFS = 0 for the ESP8266 ("not in
        // esp8266") but tests it with `!= null`, so it writes the MISO bit length into SPI_CMD
        // (offset 0) and never sets USR1: the id it reads depends on whatever USR1 held. Reported,
        // not asserted; the RDID sequence of §7.5 is checked below instead.
        notes.push(
          `${pkg.label} readFlashId() on the ESP8266 (MISO length written to SPI_CMD, USR1 left as it was) ` +
            `returned 0x${id.toString(16)}`,
        );
      } else {
        check(id === Number(o.board.flash_id), `flash id 0x${id.toString(16)}, espsim says ${o.board.flash_id}`);
      }
      return id;
    });
    if (o.board.chip === 'esp8266') {
      await steps.run('RDID as in §7.5 (READ_REG/WRITE_REG)', async () => {
        const id = await rdidEsp8266(loader);
        check(id === Number(o.board.flash_id), `flash id 0x${id.toString(16)}, espsim says ${o.board.flash_id}`);
      });
    }
    for (const f of o.files ?? []) {
      const name = `write+verify ${f.data.length >> 10} KiB @0x${f.address.toString(16)}`;
      await steps.run(name, async () => {
        const before = terminal.lines.filter((l) => l === 'Hash of data verified.').length;
        await loader.writeFlash({
          fileArray: [{ data: f.data, address: f.address }],
          flashSize: 'keep',
          flashMode: 'keep',
          flashFreq: 'keep',
          eraseAll: false,
          compress: true,
          calculateMD5Hash: md5hex,
        });
        const after = terminal.lines.filter((l) => l === 'Hash of data verified.').length;
        check(after === before + 1, 'writeFlash returned without "Hash of data verified."');
      });
      await steps.run(`SPI_FLASH_MD5 @0x${f.address.toString(16)}`, async () => {
        const got = await loader.flashMd5sum(f.address, f.data.length);
        check(got === md5hex(f.data), `flash MD5 ${got}, image MD5 ${md5hex(f.data)}`);
      });
    }
    await steps.run('after(hard_reset) + disconnect', async () => {
      await loader.after('hard_reset');
      await ctx.transport.disconnect();
    });
    return {
      steps,
      notes,
      stub,
      mac: ctx.mac,
      description: ctx.description,
      crystalMHz: ctx.crystalMHz,
      flashId,
      log: terminal.text(),
    };
  } catch (err) {
    err.message += `\n--- esptool-js output ---\n${terminal.text().slice(-3000)}`;
    throw err;
  } finally {
    await ctx.port.destroy();
  }
}

/**
 * Plain ROM mode: esptool-js without the stub. ESPLoader.main() always uploads the stub, so this
 * calls the same public methods without runStub(). What the client cannot do against a ROM that
 * behaves like §15 is asserted as refused and reported in `notes`; the write that must succeed
 * uses 0x400-byte blocks (and, on the ESP8266, a 4-word FLASH_BEGIN shim). The ESP32 MD5 is
 * checked; the ESP8266 ROM has none.
 * @param {object} o as stubSession, plus o.file {data, address} and o.baud (ESP32 ROM only)
 */
export async function romSession(o) {
  const steps = new Steps(`${o.esptool.pkg.label} ${o.board.chip} slot ${o.board.slot} ROM @${o.baud}`, o.print);
  const ctx = await connectAndIdentify({ ...o, kind: 'pty', steps });
  const { loader, terminal, notes } = ctx;
  const esp8266 = o.board.chip === 'esp8266';
  try {
    if (!esp8266 && o.baud !== ROM_BAUD) {
      await steps.run(`ROM CHANGE_BAUDRATE to ${o.baud}`, async () => {
        await loader.changeBaud();
        check(loader.baudrate === o.baud, `fell back to ${loader.baudrate}: ${terminal.text().slice(-400)}`);
        check(loader.IS_STUB === false, 'changeBaud() fell back and uploaded the stub');
      });
    }
    if (!esp8266) {
      // esptool-js never sends SPI_ATTACH on its own (esptool.py does before any ROM flash
      // command), and its flashSpiAttach() sends one word, the stub's form; a ROM loader takes two
      // (§3.8). Try it as the client would send it (reported), then send the ROM's 8-byte form.
      await steps.run('SPI_ATTACH as sent by flashSpiAttach() (4 bytes)', () =>
        loader.flashSpiAttach(0).then(
          () => notes.push('4-byte SPI_ATTACH: accepted'),
          (err) => notes.push(`4-byte SPI_ATTACH: refused (${err.message.split('\n')[0]})`),
        ),
      );
      await steps.run('SPI_ATTACH, 8 bytes as a ROM takes it (shim)', () =>
        loader.checkCommand('configure SPI flash pins', loader.ESP_SPI_ATTACH, new Uint8Array(8)),
      );
    }
    const write = (label, compress) =>
      loader
        .writeFlash({
          fileArray: [{ data: o.file.data, address: o.file.address }],
          flashSize: 'keep',
          flashMode: 'keep',
          flashFreq: 'keep',
          eraseAll: false,
          compress,
        })
        .then(
          () => {
            notes.push(`${label}: accepted`);
            return null;
          },
          (err) => {
            notes.push(`${label}: refused (${err.message.split('\n')[0]})`);
            return err;
          },
        );
    const expectRefused = (err, section) => {
      check(err !== null, `the ROM accepted it; the real ROM answers 01 05 (${section})`);
      check(/status 1,5\b/.test(err.message), `expected ROM status 01 05 (${section}), got: ${err.message}`);
    };
    if (!esp8266) {
      // As esptool-js sends it (0.7.0 and 0.6.1 alike): 0x4000-byte blocks to the ROM too
      // (ESPLoader.FLASH_WRITE_SIZE never drops to the ROM's 0x400). §15.1 rules out 0x4000 for
      // FLASH_BEGIN; for FLASH_DEFL_BEGIN it is not recorded, so the outcome is reported, not
      // asserted.
      await steps.run('compressed write as sent (0x4000 blocks)', () => write('compressed, 0x4000-byte blocks', true));
    }
    // From here on, 0x400-byte blocks as esptool.py uses with a ROM loader.
    loader.FLASH_WRITE_SIZE = 0x400;
    // Uncompressed, esptool-js sends FLASH_BEGIN with 5 words (the S2-and-later encryption word) to
    // every ROM; the ESP8266 and ESP32 ROMs take exactly 4 and answer 01 05 (§3.2, §15.1, §15.2).
    const section = esp8266 ? '§15.2' : '§15.1';
    await steps.run('uncompressed write as sent (5-word FLASH_BEGIN)', async () => {
      expectRefused(await write('uncompressed, 5-word FLASH_BEGIN', false), section);
    });
    if (esp8266) {
      // So esptool-js (0.7.0 or 0.6.1) cannot write an ESP8266 without its stub. To still exercise
      // the ROM model's FLASH_BEGIN/FLASH_DATA and its erase bug through esptool-js's framing, replace
      // flashBegin() by the 4-word request esptool.py sends -- keeping esptool-js's own
      // (uncorrected) erase size. This is a shim, not esptool-js behaviour.
      loader.flashBegin = async (size, offset) => {
        const blocks = Math.floor((size + loader.FLASH_WRITE_SIZE - 1) / loader.FLASH_WRITE_SIZE);
        const words = [loader.chip.getEraseSize(offset, size), blocks, loader.FLASH_WRITE_SIZE, offset];
        const pkt = new Uint8Array(16);
        const view = new DataView(pkt.buffer);
        words.forEach((w, i) => view.setUint32(4 * i, w, true));
        await loader.checkCommand('enter Flash download mode', loader.ESP_FLASH_BEGIN, pkt, 0, 0,
          loader.timeoutPerMb(loader.ERASE_REGION_TIMEOUT_PER_MB, size));
        return blocks;
      };
      await steps.run(`write ${o.file.data.length >> 10} KiB, 4-word FLASH_BEGIN shim, 0x400 blocks`, async () => {
        const r = await write('uncompressed with the 4-word FLASH_BEGIN shim', false);
        if (r) throw r;
      });
    } else {
      await steps.run(`write ${o.file.data.length >> 10} KiB compressed, 0x400 blocks`, async () => {
        const r = await write('compressed, 0x400-byte blocks', true);
        if (r) throw r;
      });
    }
    if (!esp8266) {
      await steps.run('ROM SPI_FLASH_MD5', async () => {
        const got = await loader.flashMd5sum(o.file.address, o.file.data.length);
        // The ROM answers 32 ASCII hex digits; esptool-js hex-encodes those 32 bytes again, so its
        // own writeFlash() MD5 check could never match on a ROM loader. Decode and compare.
        const ascii = Buffer.from(got, 'hex').toString('latin1');
        check(ascii === md5hex(o.file.data), `ROM MD5 "${ascii}" (esptool-js returned ${got}), image ${md5hex(o.file.data)}`);
        notes.push(`flashMd5sum() in ROM mode returns hex of the ASCII digest (${got.slice(0, 16)}...)`);
      });
    }
    await steps.run('disconnect', () => ctx.transport.disconnect());
    return { steps, notes, log: terminal.text() };
  } catch (err) {
    err.message += `\n--- esptool-js output ---\n${terminal.text().slice(-3000)}`;
    throw err;
  } finally {
    await ctx.port.destroy();
  }
}
