// Checks the Node serial ports of lib/serial.mjs through esptool-js's own Transport, against fake
// peers (no espsim needed): a TCP echo server with a control socket, and a real pty pair made by
// fake_pty_peer.py (skipped, and said so, when python3 is not installed).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { loadEsptool } from './lib/esptool.mjs';
import { JsonLinesChild } from './lib/jsonlines.mjs';
import { PtySerialPort, TcpSerialPort } from './lib/serial.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const { Transport, ClassicReset, ESPError } = await loadEsptool();

function tmpDir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'espstation-transport-'));
}

/** A Unix control socket that records every line it receives. */
function ctlServer(sockPath) {
  const lines = [];
  const server = net.createServer((conn) => {
    let buf = '';
    conn.setEncoding('utf8');
    conn.on('data', (s) => {
      buf += s;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        lines.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    });
  });
  return new Promise((resolve) => server.listen(sockPath, () => resolve({ server, lines })));
}

/** TCP peer that sends back every chunk it receives, and can drop its connections. */
function echoServer() {
  const conns = new Set();
  const server = net.createServer((conn) => {
    conns.add(conn);
    conn.on('close', () => conns.delete(conn));
    conn.on('data', (d) => conn.write(d));
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve({ server, conns, address: `127.0.0.1:${server.address().port}` })),
  );
}

async function until(pred, ms, what) {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

// A packet with every byte SLIP must escape, so framing on both sides is exercised.
const PACKET = Uint8Array.from([0x01, 0x08, 0x04, 0x00, 0xc0, 0xdb, 0xdc, 0xdd, 0xc0, 0x00, 0xff, 0x55]);

describe('TcpSerialPort under esptool-js Transport', () => {
  let dir, ctl, echo;
  before(async () => {
    dir = tmpDir();
    ctl = await ctlServer(path.join(dir, 'board.ctl'));
    echo = await echoServer();
  });
  after(() => {
    ctl.server.close();
    echo.server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a SLIP packet goes out and the echoed frame comes back intact', async () => {
    const port = new TcpSerialPort(echo.address, { ctlPath: path.join(dir, 'board.ctl') });
    const transport = new Transport(port, false);
    await transport.connect(115200);
    transport.readLoop();
    await transport.write(PACKET);
    const got = await transport.read(2000);
    assert.deepEqual(Array.from(got), Array.from(PACKET));
    await transport.disconnect();
    assert.equal(port.readable, null, 'a closed port has no readable stream');
  });

  test('esptool-js ClassicReset reaches the control socket as DTR/RTS lines', async () => {
    const port = new TcpSerialPort(echo.address, { ctlPath: path.join(dir, 'board.ctl') });
    const transport = new Transport(port, false);
    await transport.connect(115200);
    ctl.lines.length = 0;
    await new ClassicReset(transport, 10).reset();
    await transport.setRTS(true);
    await until(() => ctl.lines.length >= 5, 2000, 'five control lines');
    // Classic: (DTR=0,RTS=1) holds EN low, (1,0) releases it with GPIO0 low, (0,0) lets GPIO0 go.
    // setRTS then re-sends DTR from esptool-js's remembered _DTR_state, which its setSignals()
    // only ever updates when DTR is true: so it re-asserts DTR=1 here (an esptool-js quirk).
    assert.deepEqual(ctl.lines, ['DTR=0 RTS=1', 'DTR=1 RTS=0', 'DTR=0 RTS=0', 'RTS=1', 'DTR=1']);
    await transport.disconnect();
  });

  test('changeBaudrate uses setBaudRate in place; data still flows', async () => {
    const port = new TcpSerialPort(echo.address, { ctlPath: path.join(dir, 'board.ctl') });
    const transport = new Transport(port, false);
    await transport.connect(115200);
    transport.readLoop();
    const reopened = await transport.changeBaudrate(921600);
    assert.equal(reopened, false);
    assert.equal(port.baudRate, 921600);
    assert.equal(port.openCount, 1);
    await transport.write(PACKET);
    assert.deepEqual(Array.from(await transport.read(2000)), Array.from(PACKET));
    await transport.disconnect();
  });

  test('without setBaudRate, changeBaudrate closes and reopens like a browser; data still flows', async () => {
    const port = new TcpSerialPort(echo.address, { ctlPath: path.join(dir, 'board.ctl'), inPlaceBaud: false });
    assert.equal(typeof port.setBaudRate, 'undefined');
    const transport = new Transport(port, false);
    await transport.connect(115200);
    transport.readLoop();
    const reopened = await transport.changeBaudrate(460800);
    assert.equal(reopened, true);
    assert.equal(port.openCount, 2);
    assert.equal(port.baudRate, 460800);
    await transport.write(PACKET);
    assert.deepEqual(Array.from(await transport.read(2000)), Array.from(PACKET));
    await transport.disconnect();
  });

  test('a peer that hangs up errors the readable stream instead of hanging', async () => {
    const port = new TcpSerialPort(echo.address, { ctlPath: path.join(dir, 'board.ctl') });
    await port.open({ baudRate: 115200 });
    const reader = port.readable.getReader();
    const pending = reader.read();
    for (const c of echo.conns) c.destroy();
    await assert.rejects(pending, (err) => err.name === 'NetworkError');
    reader.releaseLock();
    await port.close();
  });

  test('close() refuses while a reader holds the stream, as Web Serial does', async () => {
    const port = new TcpSerialPort(echo.address);
    await port.open({ baudRate: 115200 });
    const reader = port.readable.getReader();
    await assert.rejects(port.close(), TypeError);
    await reader.cancel();
    reader.releaseLock();
    await port.close();
    await assert.rejects(port.close(), (err) => err.name === 'InvalidStateError');
  });
});

function havePython() {
  try {
    execFileSync('python3', ['-c', 'import pty, termios'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('PtySerialPort on a real pty pair', { skip: havePython() ? false : 'python3 not installed' }, () => {
  let dir, peer, info;
  before(async () => {
    dir = tmpDir();
    peer = new JsonLinesChild('python3', [path.join(HERE, 'fake_pty_peer.py'), path.join(dir, 'p.ctl')]);
    info = await peer.next((o) => o.pty, 10000, 'the pty path');
  });
  after(async () => {
    await peer.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('raw 8-bit path at the requested speed, in-place baud change, DTR/RTS on ctl', async () => {
    const port = new PtySerialPort(info.pty, { ctlPath: info.ctl });
    await port.open({ baudRate: 115200 });
    const reader = port.readable.getReader();
    const writer = port.writable.getWriter();
    // Bytes a cooked tty would eat or change: ^C, CR, ^Q, ^S, DEL, NL, 0xFF, SLIP END.
    const raw = Uint8Array.from([0x03, 0x0d, 0x11, 0x13, 0x7f, 0x0a, 0xff, 0xc0, 0x04, 0x1a]);
    await writer.write(raw);
    const seen = await peer.next((o) => o.data, 5000, 'bytes on the master');
    assert.equal(seen.data, Buffer.from(raw).toString('hex'), 'the master got the bytes unchanged');
    assert.equal(seen.baud, 115200);
    assert.equal(seen.lflag & (8 | 2), 0, 'ECHO and ICANON are off');
    let back = Buffer.alloc(0);
    while (back.length < raw.length) {
      const { value } = await reader.read();
      back = Buffer.concat([back, Buffer.from(value)]);
    }
    assert.equal(back.toString('hex'), Buffer.from(raw.map((b) => b ^ 0x20)).toString('hex'));

    await port.setBaudRate(921600);
    await writer.write(Uint8Array.from([0x55]));
    const seen2 = await peer.next((o) => o.data, 5000, 'bytes after the baud change');
    assert.equal(seen2.baud, 921600);
    assert.equal(port.openCount, 1);

    await port.setSignals({ dataTerminalReady: true, requestToSend: false });
    await port.setSignals({ requestToSend: true });
    assert.equal((await peer.next((o) => o.ctl, 5000, 'a ctl line')).ctl, 'DTR=1 RTS=0');
    assert.equal((await peer.next((o) => o.ctl, 5000, 'a ctl line')).ctl, 'RTS=1');

    writer.releaseLock();
    await reader.cancel();
    reader.releaseLock();
    await port.close();
  });

  test('esptool-js Transport reopens the pty at a new speed when setBaudRate is hidden', async () => {
    const port = new PtySerialPort(info.pty, { ctlPath: info.ctl, inPlaceBaud: false });
    const transport = new Transport(port, false);
    await transport.connect(115200);
    transport.readLoop();
    assert.equal(await transport.changeBaudrate(230400), true);
    await transport.write(Uint8Array.from([0x42]));
    const seen = await peer.next((o) => o.data, 5000, 'bytes after reopen');
    assert.equal(seen.baud, 230400);
    assert.equal(seen.data, 'c042c0', 'one SLIP frame, at the new speed');
    await transport.disconnect();
  });
});

test('ESPError is esptool-js 0.7.0 own class (import sanity)', () => {
  assert.equal(new ESPError('x').name, 'ESPError');
});
