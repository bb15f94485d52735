// A child process that speaks one JSON object per stdout line (espsim, fake_pty_peer.py), read
// as a queue: `await lines.next(pred, ms)` returns the first not yet consumed object matching pred.

import { spawn } from 'node:child_process';
import readline from 'node:readline';

export class JsonLinesChild {
  /**
   * @param {string} cmd
   * @param {string[]} args
   * @param {object} [opts] spawn options; stdin is always a pipe (EOF tells the child to quit)
   */
  constructor(cmd, args, opts = {}) {
    this.cmd = cmd;
    this.args = args;
    this.objects = [];
    this.stderr = '';
    this.waiters = [];
    this.exit = null;
    this.child = spawn(cmd, args, { ...opts, stdio: ['pipe', 'pipe', 'pipe'] });
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        this.exit = { code, signal };
        this._wake();
        resolve(this.exit);
      });
      this.child.on('error', (err) => {
        this.exit = { code: null, signal: null, error: err };
        this._wake();
        resolve(this.exit);
      });
    });
    this.child.stderr.setEncoding('utf8');
    this.child.stderr.on('data', (s) => {
      this.stderr += s;
      if (opts.echoStderr) process.stderr.write(s);
    });
    readline.createInterface({ input: this.child.stdout }).on('line', (line) => {
      try {
        this.objects.push(JSON.parse(line));
      } catch {
        this.objects.push({ unparsed: line });
      }
      this._wake();
    });
  }

  _wake() {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolve with the first unconsumed object for which pred(obj) is true; consume it. */
  async next(pred, timeoutMs, what = 'a line') {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.objects.findIndex(pred);
      if (i >= 0) return this.objects.splice(i, 1)[0];
      if (this.exit) {
        throw new Error(
          `${this.cmd} exited (${JSON.stringify(this.exit)}) before printing ${what}; ` +
            `stderr: ${this.stderr.trim().slice(-2000)}`,
        );
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `${this.cmd}: no ${what} within ${timeoutMs} ms; ` +
            `stdout so far: ${JSON.stringify(this.objects).slice(0, 500)}; stderr: ${this.stderr.trim().slice(-2000)}`,
        );
      }
      await new Promise((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 1000));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Close stdin (the child's signal to quit) and wait; SIGKILL after timeoutMs. */
  async stop({ signal = null, timeoutMs = 10000 } = {}) {
    if (this.exit) return this.exit;
    if (signal) this.child.kill(signal);
    this.child.stdin.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    const exit = await this.exited;
    clearTimeout(timer);
    return exit;
  }
}
