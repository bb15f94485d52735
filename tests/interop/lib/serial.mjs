// WebSerial-like SerialPort objects for Node, so that esptool-js's own Transport (webserial.js)
// can drive an espsim board unchanged.
//
// esptool-js calls exactly this surface of a W3C SerialPort (read in lib/webserial.js):
//   open({baudRate, dataBits, stopBits, bufferSize, parity, flowControl}), close(), getInfo(),
//   setSignals({dataTerminalReady, requestToSend, break}), the `readable` / `writable` web streams
//   (getReader()/read()/cancel()/releaseLock(), getWriter()/write()/close()/releaseLock(), .locked),
//   and, when present, the optional in-place `setBaudRate(baud)` capability of esptool-js 0.7.0
//   (without it, Transport.changeBaudrate closes and reopens the port, as a browser must).
//
// Two kinds of port, both with DTR/RTS going to the board's control socket (`ctl`, one text line
// per change: "DTR=1 RTS=0\n"), because a pty cannot carry modem lines (ENOTTY) and a TCP socket
// has none:
//   PtySerialPort: the board's pty slave (espsim's `port` symlink), opened with fs; raw mode and
//                  speed are set with `stty -F PATH ...` on open and on every baud change, so
//                  espsim sees the host's rate with tcgetattr on the master.
//   TcpSerialPort: a TCP connection to the board's `tcp` address (no baud: espsim assumes it
//                  matches).
// No native modules: node:tty, node:net, node:fs and the stty binary only.

import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import tty from 'node:tty';

const READ_HIGH_WATER_BYTES = 64 * 1024;

function networkError(message) {
  // What Chrome's Web Serial raises when the device goes away mid-read.
  return new DOMException(message, 'NetworkError');
}

function invalidState(message) {
  return new DOMException(message, 'InvalidStateError');
}

/** Run `stty -F path args...`; rejects with stty's own message on failure. */
export function stty(path, args) {
  return new Promise((resolve, reject) => {
    execFile('stty', ['-F', path, ...args], { timeout: 5000 }, (err, stdout, stderr) => {
      if (err) {
        reject(new Error(`stty -F ${path} ${args.join(' ')}: ${(stderr || err.message).trim()}`));
      } else {
        resolve(stdout);
      }
    });
  });
}

/** Open a Unix stream socket and resolve once connected. */
function connectUnix(path) {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection({ path });
    const onError = (err) => reject(new Error(`connect ${path}: ${err.message}`));
    sock.once('error', onError);
    sock.once('connect', () => {
      sock.off('error', onError);
      resolve(sock);
    });
  });
}

function writeAll(stream, bytes) {
  return new Promise((resolve, reject) => {
    stream.write(bytes, (err) => (err ? reject(err) : resolve()));
  });
}

/**
 * The part shared by both ports: web streams over a node byte stream, and the control channel.
 * Subclasses implement _openData(baud) -> {input, output}, _setSpeed(baud) and _describe().
 */
class SimSerialPortBase {
  /**
   * @param {object} opts
   * @param {string} [opts.ctlPath] the board's control socket; without it setSignals only records
   * @param {boolean} [opts.inPlaceBaud=true] offer setBaudRate(); false makes esptool-js reopen
   * @param {object} [opts.info] what getInfo() returns (default {}: not an Espressif USB device)
   * @param {(line: string) => void} [opts.log] trace of signals and baud changes
   */
  constructor(opts = {}) {
    this.ctlPath = opts.ctlPath;
    this.info = opts.info || {};
    this.log = opts.log || (() => {});
    this.baudRate = 0;
    this.signals = { dataTerminalReady: false, requestToSend: false };
    this.signalLines = []; // every line sent to ctl, for tests
    this.openCount = 0;
    this._isOpen = false;
    this._lost = null;
    this._input = null;
    this._output = null;
    this._ctl = null;
    this._readable = null;
    this._rc = null; // controller of the current readable
    this._pending = []; // chunks that arrived while no readable existed
    this._writable = null;
    if (opts.inPlaceBaud === false) {
      // Hide the capability so esptool-js takes its close/reopen path.
      this.setBaudRate = undefined;
    }
  }

  getInfo() {
    return { ...this.info };
  }

  get readable() {
    if (!this._isOpen) return null;
    if (!this._readable) this._readable = this._makeReadable();
    return this._readable;
  }

  get writable() {
    if (!this._isOpen) return null;
    if (!this._writable) this._writable = this._makeWritable();
    return this._writable;
  }

  async open(options = {}) {
    if (this._isOpen) throw invalidState(`${this._describe()} is already open`);
    const baud = options.baudRate;
    if (!Number.isInteger(baud) || baud <= 0) {
      throw new TypeError(`open ${this._describe()}: baudRate must be a positive integer, got ${baud}`);
    }
    if (this.ctlPath) this._ctl = await connectUnix(this.ctlPath);
    try {
      const { input, output } = await this._openData(baud);
      this._input = input;
      this._output = output;
    } catch (err) {
      this._ctl?.destroy();
      this._ctl = null;
      throw err;
    }
    this._ctl?.on('error', (err) => this.log(`ctl ${this.ctlPath}: ${err.message}`));
    this.baudRate = baud;
    this._lost = null;
    this._pending = [];
    this._isOpen = true;
    this.openCount++;
    this._input.on('data', (chunk) => this._onData(chunk));
    this._input.on('error', (err) => this._onLost(err));
    this._input.on('end', () => this._onLost(new Error('end of stream')));
    this._output.on('error', (err) => this._onLost(err));
    this._input.pause();
    this.log(`open ${this._describe()} at ${baud} baud`);
  }

  /** esptool-js 0.7.0's optional capability: change the host rate without closing the port. */
  async setBaudRate(baud) {
    if (!this._isOpen) throw invalidState(`${this._describe()} is not open`);
    await this._setSpeed(baud);
    this.baudRate = baud;
    this.log(`baud ${baud} (in place)`);
  }

  async setSignals(signals = {}) {
    if (!this._isOpen) throw invalidState(`${this._describe()} is not open`);
    const parts = [];
    if (signals.dataTerminalReady !== undefined) {
      this.signals.dataTerminalReady = !!signals.dataTerminalReady;
      parts.push(`DTR=${signals.dataTerminalReady ? 1 : 0}`);
    }
    if (signals.requestToSend !== undefined) {
      this.signals.requestToSend = !!signals.requestToSend;
      parts.push(`RTS=${signals.requestToSend ? 1 : 0}`);
    }
    // `break` has no meaning on the simulated bench; esptool-js passes it as undefined.
    if (parts.length === 0) return;
    const line = parts.join(' ');
    this.signalLines.push(line);
    this.log(`signals ${line}`);
    if (this._ctl) await writeAll(this._ctl, `${line}\n`);
  }

  async close() {
    if (!this._isOpen) throw invalidState(`${this._describe()} is not open`);
    if (this._readable?.locked || this._writable?.locked) {
      throw new TypeError(`close ${this._describe()}: a stream is still locked by a reader or writer`);
    }
    await this._shutdown();
  }

  /** Close whatever is open, even with locked streams (test teardown after a failure). */
  async destroy() {
    if (this._isOpen) await this._shutdown();
  }

  async _shutdown() {
    this._isOpen = false;
    if (this._rc) {
      try {
        this._rc.close();
      } catch {
        /* already closed or errored */
      }
    }
    this._rc = null;
    this._readable = null;
    this._writable = null;
    const closing = [];
    for (const s of new Set([this._input, this._output, this._ctl])) {
      if (!s || s.destroyed) continue;
      closing.push(new Promise((resolve) => s.once('close', resolve)));
      s.destroy();
    }
    this._input = this._output = this._ctl = null;
    await Promise.all(closing);
    this.log(`closed ${this._describe()}`);
  }

  _makeReadable() {
    return new ReadableStream(
      {
        start: (controller) => {
          this._rc = controller;
          if (this._lost) {
            controller.error(this._lost);
            return;
          }
          for (const chunk of this._pending.splice(0)) controller.enqueue(chunk);
          this._input?.resume();
        },
        pull: () => {
          this._input?.resume();
        },
        cancel: () => {
          // A cancelled stream is finished; the next `readable` access makes a new one.
          this._rc = null;
          this._readable = null;
          this._input?.pause();
        },
      },
      { highWaterMark: READ_HIGH_WATER_BYTES, size: (chunk) => chunk.byteLength },
    );
  }

  _makeWritable() {
    return new WritableStream({
      write: async (chunk) => {
        if (this._lost) throw this._lost;
        if (!this._output) throw invalidState(`${this._describe()} is not open`);
        await writeAll(this._output, Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      },
      close: () => {
        this._writable = null;
      },
      abort: () => {
        this._writable = null;
      },
    });
  }

  _onData(chunk) {
    const bytes = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (!this._rc) {
      this._pending.push(bytes);
      this._input?.pause();
      return;
    }
    this._rc.enqueue(bytes);
    if (this._rc.desiredSize <= 0) this._input?.pause();
  }

  _onLost(err) {
    if (this._lost || !this._isOpen) return;
    this._lost = networkError(`The device has been lost (${this._describe()}: ${err.message})`);
    this.log(this._lost.message);
    if (this._rc) {
      try {
        this._rc.error(this._lost);
      } catch {
        /* already closed */
      }
    }
  }
}

/** espsim board reached through its pty (`port` symlink or `pty` path). */
export class PtySerialPort extends SimSerialPortBase {
  /**
   * @param {string} path the pty slave (a symlink is fine)
   * @param {object} [opts] see SimSerialPortBase; also opts.ctlPath
   */
  constructor(path, opts = {}) {
    super(opts);
    this.path = path;
  }

  _describe() {
    return this.path;
  }

  async _setSpeed(baud) {
    await stty(this.path, [String(baud)]);
  }

  async _openData(baud) {
    // Raw 8N1, no echo, no flow control, no CR/NL mapping, nothing interpreted: SLIP is binary.
    await stty(this.path, [
      String(baud),
      'raw',
      '-echo',
      '-echoe',
      '-echok',
      '-echoctl',
      '-echoke',
      '-ixon',
      '-ixoff',
      '-crtscts',
      'cs8',
      '-cstopb',
      '-parenb',
      'clocal',
      'cread',
    ]);
    const flags = fs.constants.O_NOCTTY;
    const rfd = fs.openSync(this.path, fs.constants.O_RDONLY | flags);
    let wfd;
    try {
      wfd = fs.openSync(this.path, fs.constants.O_WRONLY | flags);
    } catch (err) {
      fs.closeSync(rfd);
      throw new Error(`open ${this.path}: ${err.message}`);
    }
    // One libuv tty handle per direction: a handle per fd, each polled without blocking.
    const input = new tty.ReadStream(rfd);
    const output = new tty.WriteStream(wfd);
    // tty.WriteStream makes writes blocking (meant for a terminal on stdout). A board paced at
    // 115200 baud would then stall the whole event loop for seconds per 16 KiB block.
    if (typeof output._handle?.setBlocking === 'function') output._handle.setBlocking(false);
    return { input, output };
  }
}

/** espsim board reached through its TCP listener. */
export class TcpSerialPort extends SimSerialPortBase {
  /**
   * @param {string} address "host:port" as in espsim's JSON `tcp` field
   * @param {object} [opts] see SimSerialPortBase; also opts.ctlPath
   */
  constructor(address, opts = {}) {
    super(opts);
    const i = address.lastIndexOf(':');
    this.host = address.slice(0, i);
    this.port = Number(address.slice(i + 1));
    if (!this.host || !Number.isInteger(this.port)) {
      throw new TypeError(`TcpSerialPort: expected "host:port", got "${address}"`);
    }
  }

  _describe() {
    return `tcp ${this.host}:${this.port}`;
  }

  async _setSpeed() {
    // A socket has no line rate; espsim treats a TCP host as always matching the board.
  }

  _openData() {
    return new Promise((resolve, reject) => {
      const sock = net.createConnection({ host: this.host, port: this.port });
      const onError = (err) => reject(new Error(`connect ${this._describe()}: ${err.message}`));
      sock.once('error', onError);
      sock.once('connect', () => {
        sock.off('error', onError);
        sock.setNoDelay(true);
        resolve({ input: sock, output: sock });
      });
    });
  }
}
