// Integration runner: each case in tests/integration/cases/*.case is data (in the spirit of
// curl's tests/data files): the simulated bench, the profile, what to do, and what must be true
// afterwards. The runner starts espsim on a fresh temp directory, runs the real espstation
// binary against its pseudo-terminals, then checks the exit status, the reports and the
// simulator's flash files. Each case gets its own directory, named in the output when the case
// fails and then kept; it holds case.log, the one log of the case: every line espsim and each
// espstation wrote, prefixed with the program and stream ("[espsim:err] ..."). A failure also
// prints the tail of each program's stderr.
//
//   node tests/integration/run.mjs CASE...        (ESPSTATION, ESPSIM, MKIMAGE: binaries)
//
// Case file: "[section]" headers, then lines.
//   [bench]    one espsim --board SPEC per line (esp8266, esp32,fault=no-download, ...); without
//              it no simulator runs (cases that must stop before any board is touched)
//   [images]   NAME CHIP SIZE SEED [banner=TEXT]   images made with mkimage (TEXT: the firmware's
//              banner, '_' for spaces: espsim then prints it and answers a REPL after boot)
//   [profile]  YAML; @file(NAME) and @sha256(NAME) expand to the image's path and hash, @dir to
//              the case's directory
//              ([profile2] ... for a mixed bench: each board takes the profile of its chip)
//   [run]      command=run|verify  args=...  sim_args=...  time_scale=X  exit=N (or N|M: either;
//              SIGKILL: killed by it)
//              before=run (flash first, then the command)  poke=SLOT:OFFSET (flip a flash byte
//              before the command)  signal=SIGINT|SIGHUP|SIGKILL@PHASE (sent when a board
//              reaches PHASE)
//              ports=A,B,...  the --port arguments instead of one per board; ports=profile:
//                             none, so the profile's ports: list is used
//              links=NAME:N,...  before espstation starts, the symlink @dir/NAME (directories
//                             made as needed) to the device board N's port links to: the names
//                             `espstation ports --udev` rules make, /dev/espstation/slot-1-1.4
//              prlimit="--fsize=N ..."  run espstation under prlimit(1) with these limits
//              touch=NAME     create the empty regular file @dir/NAME first
//              second=PHASE   when a board reaches PHASE, run a second espstation on the same
//                             bench (second_ports=..., second_exit=N; reports in @dir/reports2)
//              In args, ports, second_ports and expect lines: @dir is the case's directory,
//              @mac(N) board N's first MAC,
//              @sim espsim's port directory, @port(N) board N's port, @real(N) the device that
//              port links to, @pid the first espstation's process id.
//   [events]   what to do to the bench while espstation runs (continuous cases), one per line:
//                before ACTION              once espsim is ready, before espstation starts
//                at SECONDS ACTION          SECONDS (times ESPSTATION_TIMEOUT_MULTIPLIER) after
//                                           espstation started
//                on SLOT:WHAT[:N] ACTION    when espstation's Nth (default 1st) line for slot
//                                           SLOT says WHAT: a --lines "what" (pass, fail, slot,
//                                           already_flashed...) or a phase name (write, done...)
//                each SLOT|*:WHAT ACTION    on every such line (of any slot with *); @slot in
//                                           ACTION is the line's slot; must happen at least once
//              ACTION: sim COMMAND...  an espsim control command on its stdin (unplug 0,
//                                      swap 1 mac=..., plug 0; @mac(N) is board N's first
//                                      MAC); a reply that is not ok fails the case
//                      stop [SIGNAL]   SIGINT (or SIGNAL) to espstation (a continuous run ends;
//                                      with SIGKILL, give exit=SIGKILL)
//   [expect]   slot N key=value ...  (result, phase, code, loader, chip, retries>=N, x<=N,
//                                     msg~=TEXT, where '_' in TEXT stands for a space)
//              flash N                (slot N's flash holds every image, byte for byte)
//              journal [partial]      (journal.jsonl: every line is whole JSON, one done per slot)
//              reports N              (N device reports in the run directory)
//              run key=value ...      (run.json, e.g. counts.interrupted=4; also key>=N, key<=N)
//              runmatch [partial]     (run.json's counts and boards agree with the device
//                                      reports: each board's file, result and MAC; partial,
//                                      after a kill: every board run.json lists is right, and
//                                      at most one report per slot is not listed yet)
//              norun                  (no run directory was created: nothing was touched)
//              stderr TEXT / stdout TEXT   (the output contains TEXT)
//              second ...             (any of the above, for the second espstation)
//   The runner cannot be fooled by a typo: an unknown section, text before the first section, a
//   [run] item that is not a known KEY=VALUE, an [images] line without four fields, an unknown
//   [expect] keyword, or an [expect] line whose words do not fit its keyword fails the case
//   before anything runs. The exit status is checked before any report is read; a wrong one
//   fails the case without reading them. In a flash check, bytes 2-3 of an image may differ only
//   where the station patches them: a 0xE9 firmware image at the chip's bootloader offset.
//
//   node tests/integration/selftest.mjs proves these rules on deliberately wrong cases.
//
// After every case, whatever its result, every device report, run.json and journal line the
// case's stations wrote is checked against the JSON Schemas in schema/ (tests/schema/
// validate.mjs): a report field added without the schema fails every case. A journal may end in
// a partial line only in a case that kills the station or limits its file size.
import { spawn, spawnSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";

import { validateReportsRoot } from "../schema/validate.mjs";

const ESPSTATION = process.env.ESPSTATION;
const ESPSIM = process.env.ESPSIM;
const MKIMAGE = process.env.MKIMAGE;
const MULT = Number(process.env.ESPSTATION_TIMEOUT_MULTIPLIER || "1");

// Where the station patches bytes 2-3 of a firmware image, per chip (bootloader_offset in
// src/chip/chip_table.c; protocol doc §9.3). A chip missing here fails the flash check.
const BOOTLOADER_OFFSET = { esp8266: 0x0, esp32: 0x1000, esp32s2: 0x1000, esp32s3: 0x0, esp32c3: 0x0 };

// The grammar of one [expect] line (after an optional "second"): null when it fits, else why not.
const KV = /^(\w[\w.]*)(=|~=|>=|<=)(.*)$/;
function expectError(words) {
  const [kind, ...rest] = words;
  const count = (n) => (rest.length === n ? null : `'${kind}' takes ${n === 0 ? "no" : n} word${n === 1 ? "" : "s"}, got ${rest.length}`);
  const slotNo = (w) => (/^\d+$/.test(w || "") ? null : `'${kind}' needs a slot number, got '${w ?? ""}'`);
  switch (kind) {
    case "slot":
      if (slotNo(rest[0])) return slotNo(rest[0]);
      if (rest.length < 2) return `'slot ${rest[0]}' checks nothing: add key=value items`;
      for (const kv of rest.slice(1)) {
        const m = kv.match(KV);
        if (!m) return `slot item '${kv}' is not KEY=VALUE, KEY~=TEXT, KEY>=N or KEY<=N`;
        if ((m[2] === ">=" || m[2] === "<=") && !/^\d+$/.test(m[3])) return `slot item '${kv}': ${m[2]} needs a number`;
      }
      return null;
    case "flash": return slotNo(rest[0]) || count(1);
    case "reports": return /^\d+$/.test(rest[0] || "") ? count(1) : `'reports' needs a count, got '${rest[0] ?? ""}'`;
    case "journal": return rest.length === 0 || (rest.length === 1 && rest[0] === "partial") ? null : `'journal' takes nothing or 'partial', got '${rest.join(" ")}'`;
    case "norun": return count(0);
    case "run":
      if (rest.length === 0) return "'run' checks nothing: add key=value items";
      for (const kv of rest) {
        const m = kv.match(KV);
        if (!m || m[2] === "~=") return `run item '${kv}' is not KEY=VALUE, KEY>=N or KEY<=N`;
        if (m[2] !== "=" && !/^\d+$/.test(m[3])) return `run item '${kv}': ${m[2]} needs a number`;
      }
      return null;
    case "runmatch": return rest.length === 0 || (rest.length === 1 && rest[0] === "partial") ? null : `'runmatch' takes nothing or 'partial', got '${rest.join(" ")}'`;
    case "stderr": case "stdout": return rest.length > 0 ? null : `'${kind}' needs the text to look for`;
    default: return `unknown [expect] keyword '${kind}'`;
  }
}

// The grammar of one [events] line: null when it fits, else why not.
function eventError(words) {
  const [when, arg, ...action] = words;
  if (when === "before") {
    action.unshift(arg);
    if (action[0] === "stop") return "'before' cannot stop a station not yet started";
  } else if (when === "at") {
    if (!/^\d+(\.\d+)?$/.test(arg || "")) return `'at' needs seconds, got '${arg ?? ""}'`;
  } else if (when === "on") {
    if (!/^\d+:\w+(:\d+)?$/.test(arg || "")) return `'on' needs SLOT:WHAT[:N], got '${arg ?? ""}'`;
  } else if (when === "each") {
    if (!/^(\d+|\*):\w+$/.test(arg || "")) return `'each' needs SLOT:WHAT or *:WHAT, got '${arg ?? ""}'`;
  } else return `an event starts with 'before', 'at', 'on' or 'each', got '${when}'`;
  if (action[0] === "stop") return action.length === 1 || (action.length === 2 && /^SIG[A-Z]+$/.test(action[1])) ? null : "'stop' takes nothing or a signal name";
  if (action[0] === "sim") return action.length > 1 ? null : "'sim' needs a command";
  return `the action is 'sim COMMAND...' or 'stop', got '${action.join(" ")}'`;
}

// Reads a case file. Anything the runner would not act on is an error (see the top of the file).
function parseCase(file) {
  const sections = {};
  let cur = null, lineNo = 0;
  const fail = (what) => { throw new Error(`${path.basename(file)}:${lineNo}: ${what}`); };
  for (const raw of fs.readFileSync(file, "utf8").split("\n")) {
    lineNo++;
    const m = raw.match(/^\[(\w+)\]\s*$/);
    if (m) {
      cur = m[1];
      if (sections[cur]) fail(`section [${cur}] appears twice`);
      if (!["bench", "images", "run", "events", "expect"].includes(cur) && !/^profile\d*$/.test(cur))
        fail(`unknown section [${cur}]`);
      sections[cur] = [];
      continue;
    }
    const blank = raw.trim() === "" || raw.trim().startsWith("#");
    if (cur === null) {
      if (!blank) fail(`'${raw.trim()}' comes before the first [section]`);
      continue;
    }
    if (!cur.startsWith("profile") && blank) continue;
    if (cur === "images") {
      const f = raw.trim().split(/\s+/);
      if (!(f.length === 4 || (f.length === 5 && /^banner=\S+$/.test(f[4]))))
        fail(`[images] line '${raw.trim()}' is not NAME CHIP SIZE SEED [banner=TEXT]`);
    }
    if (cur === "events") {
      const why = eventError(raw.trim().split(/\s+/));
      if (why) fail(`[events] ${why}`);
    }
    if (cur === "expect") {
      const words = raw.trim().split(/\s+/);
      const why = expectError(words[0] === "second" ? words.slice(1) : words);
      if (why) fail(`[expect] ${why}`);
    }
    sections[cur].push(raw);
  }
  const run = {};
  const runKeys = ["command", "args", "sim_args", "time_scale", "exit", "before", "poke", "signal",
    "ports", "prlimit", "touch", "second", "second_ports", "second_exit", "links"];
  for (const line of sections.run || []) {
    // Every item on the line must be KEY=VALUE (VALUE may be "quoted with spaces").
    const rest = line.replace(/(\w+)=("[^"]*"|\S+)/g, (all, key, value) => {
      if (!runKeys.includes(key)) throw new Error(`${path.basename(file)}: unknown [run] key '${key}'`);
      if (key in run) throw new Error(`${path.basename(file)}: [run] key '${key}' given twice`);
      run[key] = value.replace(/^"|"$/g, "");
      return "";
    }).trim();
    if (rest !== "") throw new Error(`${path.basename(file)}: [run] item '${rest.split(/\s+/)[0]}' is not KEY=VALUE`);
  }
  return { sections, run };
}

// The case's one log file, opened once: every program's lines go through it, prefixed with
// "[program:stream] ". The last stderr lines of each program are kept for the failure output.
function openLog(file) {
  const fd = fs.openSync(file, "w");
  const tails = new Map();
  return {
    line(prog, stream, text) {
      if (this.fd === null) return; // a late line after the case ended has no log to go to
      fs.writeSync(fd, `[${prog}:${stream}] ${text}\n`);
      if (stream !== "err") return;
      if (!tails.has(prog)) tails.set(prog, []);
      const t = tails.get(prog);
      t.push(text);
      if (t.length > 15) t.shift();
    },
    // Each line of a child's stream into the log; resolves when the stream has ended.
    follow(prog, stream, input, onLine) {
      if (stream === "err" && !tails.has(prog)) tails.set(prog, []); // listed even if silent
      const rl = readline.createInterface({ input, crlfDelay: Infinity });
      rl.on("line", (l) => { this.line(prog, stream, l); if (onLine) onLine(l); });
      return new Promise((resolve) => rl.on("close", resolve));
    },
    tails,
    fd,
    close() { if (this.fd !== null) fs.closeSync(this.fd); this.fd = null; },
  };
}

function startSim(dir, bench, extra, scale, log) {
  if (bench === null) return Promise.resolve({ child: null, boards: [], drained: Promise.resolve() });
  const args = ["--dir", path.join(dir, "sim"), "--state", path.join(dir, "state"),
    "--time-scale", String(scale), "--exit-on-eof"];
  for (const b of bench) args.push("--board", b.trim());
  args.push(...extra);
  const child = spawn(ESPSIM, args, { stdio: ["pipe", "pipe", "pipe"] });
  const boards = [];
  const sim = { child, boards, drained: null };
  return new Promise((resolve, reject) => {
    let ready = false;
    const giveUp = (why) => { child.kill("SIGKILL"); reject(new Error(why)); };
    const timer = setTimeout(() => giveUp("espsim did not become ready"), 20000 * MULT);
    const outDone = log.follow("espsim", "out", child.stdout, (line) => {
      if (ready) return;
      let o;
      try { o = JSON.parse(line); } catch { return giveUp(`espsim wrote '${line}' before ready`); }
      if (o.ready) {
        ready = true;
        clearTimeout(timer);
        resolve(sim);
      } else boards.push(o);
    });
    sim.drained = Promise.all([outDone, log.follow("espsim", "err", child.stderr)]);
    child.on("exit", (code, signal) => {
      if (!ready) { clearTimeout(timer); reject(new Error(`espsim exited with ${code ?? signal} before ready`)); }
    });
  });
}

// Stops espsim (SIGTERM: it cleans up its ports) and waits until its output is in the log.
// Resolves to how it ended: { code, signal }.
function stopSim(sim) {
  if (sim.child === null) return Promise.resolve({ code: 0, signal: null });
  const exited = sim.child.exitCode !== null || sim.child.signalCode !== null
    ? Promise.resolve()
    : new Promise((resolve) => { sim.child.once("exit", resolve); sim.child.kill("SIGTERM"); });
  return exited.then(() => sim.drained).then(() => ({ code: sim.child.exitCode, signal: sim.child.signalCode }));
}

// Runs espstation (under prlimit when limits are given) as program `prog` of the log; with
// signal=SIG@PHASE, sends SIG once any board reports PHASE; onPhase, if given, is called once when
// a board reports its phase. done resolves once it has exited and all its output is logged.
function runStation(log, prog, args, opts) {
  const cmd = opts.prlimit ? "prlimit" : ESPSTATION;
  const argv = opts.prlimit ? [...opts.prlimit.split(" "), "--", ESPSTATION, ...args] : args;
  const child = spawn(cmd, argv, { stdio: ["ignore", "pipe", "pipe"] });
  let sig = null, phase = null, hook = opts.onPhase || null;
  if (opts.signal) [sig, phase] = opts.signal.split("@");
  const lines = [];
  let stderr = "";
  child.stderr.on("data", (d) => { stderr += d; });
  const errDone = log.follow(prog, "err", child.stderr);
  const outDone = log.follow(prog, "out", child.stdout, (line) => {
    lines.push(line);
    if (sig && line.includes(`phase: ${phase}`)) {
      child.kill(sig);
      sig = null;
    }
    if (hook && line.includes(`phase: ${hook.phase}`)) {
      hook.fn();
      hook = null;
    }
    if (opts.onLine) opts.onLine(line);
  });
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  const done = Promise.all([exited, outDone, errDone]).then(([{ code, signal }]) =>
    ({ code, signal, lines, stderr, stdout: lines.join("\n") }));
  return { pid: child.pid, child, done };
}

// Acts on the [events] lines while the station runs: espsim commands on its stdin (each reply
// must be ok) and SIGINT to the station. Returns { onLine, start, finish } for runStation.
function eventDriver(lines, sim, log, check) {
  const events = lines.map((l) => {
    const words = l.trim().replace(/@mac\((\d+)\)/g, (_, n) => {
      if (!sim.boards[Number(n)]) throw new Error(`[events] @mac(${n}): the bench has no board ${n}`);
      return sim.boards[Number(n)].mac;
    }).split(/\s+/);
    if (words[0] === "before") words.splice(1, 0, "");
    const [when, arg, kind, ...cmd] = words;
    const e = { line: l.trim(), when, kind, cmd: cmd.join(" "), done: false };
    if (when === "at") e.at = Number(arg) * 1000 * MULT;
    else if (when !== "before") {
      const [slot, what, n] = arg.split(":");
      Object.assign(e, { slot: slot === "*" ? -1 : Number(slot), what, n: Number(n || 1), seen: 0 });
    }
    return e;
  });
  const timers = [];
  let station = null;
  const replies = [];
  if (sim.child !== null)
    sim.child.stdout.on("data", (d) => {
      for (const l of String(d).split("\n")) {
        if (!l.startsWith("{")) continue;
        try {
          const o = JSON.parse(l);
          if ("ok" in o) replies.push(o);
        } catch { /* a partial line: the log has it whole */ }
      }
    });
  let sent = 0, stopped = false;
  const fire = (e, slot) => {
    if ((e.done && e.when !== "each") || (stopped && e.kind !== "stop")) return;
    e.done = true;
    log.line("runner", "out", `event: ${e.line}${slot === undefined ? "" : ` (slot ${slot})`}`);
    if (e.kind === "stop") {
      if (station) station.child.kill(e.cmd || "SIGINT");
      stopped = true;
    } else if (sim.child === null) check(false, `[events] '${e.line}': no espsim runs`);
    else {
      sent++;
      sim.child.stdin.write(e.cmd.replace(/@slot/g, String(slot)) + "\n");
    }
  };
  return {
    // The 'before' commands, answered, before the station starts.
    async before() {
      const want = events.filter((e) => e.when === "before");
      for (const e of want) fire(e);
      const until = Date.now() + 10000 * MULT;
      while (replies.length < want.length && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      // espsim has removed the port when it answers; the directory watch of a station started
      // now sees nothing of it.
    },
    start(st) {
      station = st;
      for (const e of events) if (e.when === "at") timers.push(setTimeout(() => fire(e), e.at));
    },
    onLine(line) {
      const m = line.match(/^\S+ slot (\d+) \S+: (\w+): (.*)$/);
      if (!m) return;
      for (const e of events) {
        if (!(e.when === "on" && !e.done) && e.when !== "each") continue;
        if (e.slot !== -1 && e.slot !== Number(m[1])) continue;
        if (m[2] !== e.what && !(m[2] === "phase" && m[3] === e.what)) continue;
        if (e.when === "each") fire(e, Number(m[1]));
        else if (++e.seen === e.n) fire(e);
      }
    },
    async finish() {
      for (const t of timers) clearTimeout(t);
      // Commands sent just before the station ended are answered a moment later.
      const until = Date.now() + 5000 * MULT;
      while (replies.length < sent && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      for (const e of events) check(e.done, `[events] '${e.line}' never happened`);
      check(replies.length === sent, `espsim answered ${replies.length} of ${sent} commands`);
      for (const r of replies) check(r.ok === true, `espsim refused a command: ${JSON.stringify(r)}`);
    },
  };
}

// "exit 2" or "killed by SIGSEGV", for messages.
const ended = (r) => (r.signal ? `killed by ${r.signal}` : `exit status ${r.code}`);

function findRunDir(reports) {
  const runs = fs.readdirSync(reports).filter((d) => fs.statSync(path.join(reports, d)).isDirectory());
  if (runs.length === 0) return null;
  runs.sort((a, b) => fs.statSync(path.join(reports, a)).mtimeMs - fs.statSync(path.join(reports, b)).mtimeMs);
  return path.join(reports, runs[runs.length - 1]);
}

// The device reports by slot (a continuous run's slot: its last board), and by file name.
function slotReports(runDir) {
  const bySlot = {};
  const byFile = {};
  for (const f of fs.readdirSync(runDir)) {
    if (!f.endsWith(".json") || f === "run.json") continue;
    const r = JSON.parse(fs.readFileSync(path.join(runDir, f), "utf8"));
    byFile[f] = r;
    if (!bySlot[r.slot] || String(bySlot[r.slot].end) < String(r.end)) bySlot[r.slot] = r;
  }
  Object.defineProperty(bySlot, "files", { value: byFile, enumerable: false });
  return bySlot;
}

function get(obj, key) {
  // result, phase (error.phase), code (error.code), loader, chip, retries, msg
  switch (key) {
    case "phase": return obj.error ? obj.error.phase : null;
    case "code": return obj.error ? obj.error.code : null;
    case "msg": return obj.error ? obj.error.message : "";
    default: return key.split(".").reduce((o, k) => (o == null ? o : o[k]), obj);
  }
}

// Checks the expect lines of one station (words already split; "second" removed) against its
// result: the exit status is checked by the caller.
function checkStation(words, st, sim, images, check) {
  const kind = words[0];
  if (kind === "stderr" || kind === "stdout") {
    const want = words.slice(1).join(" ");
    check(st.result[kind].includes(want), `${st.name}${kind} does not contain '${want}'`);
    return;
  }
  if (kind === "norun") {
    const runs = fs.existsSync(st.reports) ? fs.readdirSync(st.reports) : [];
    check(runs.length === 0, `${st.name}run directories were created: ${runs.join(" ")}`);
    return;
  }
  const runDir = st.runDir();
  if (runDir === null) {
    check(false, `${st.name}no run directory under ${st.reports} for '${words.join(" ")}'`);
    return;
  }
  if (!fs.existsSync(runDir)) {
    check(false, `${st.name}the run directory ${runDir} does not exist, for '${words.join(" ")}'`);
    return;
  }
  const reports = slotReports(runDir);
  if (kind === "slot") {
    const rep = reports[Number(words[1])];
    if (!rep) { check(false, `${st.name}no report for slot ${words[1]}`); return; }
    for (const kv of words.slice(2)) {
      let m;
      if ((m = kv.match(/^(\w[\w.]*)~=(.*)$/))) {
        check(String(get(rep, m[1]) || "").includes(m[2].replace(/_/g, " ")),
          `${st.name}slot ${words[1]}: ${m[1]} '${get(rep, m[1])}' does not contain '${m[2]}'`);
      } else if ((m = kv.match(/^(\w[\w.]*)>=(\d+)$/))) {
        check(Number(get(rep, m[1])) >= Number(m[2]), `${st.name}slot ${words[1]}: ${m[1]} ${get(rep, m[1])} < ${m[2]}`);
      } else if ((m = kv.match(/^(\w[\w.]*)<=(\d+)$/))) {
        check(Number(get(rep, m[1])) <= Number(m[2]), `${st.name}slot ${words[1]}: ${m[1]} ${get(rep, m[1])} > ${m[2]}`);
      } else if ((m = kv.match(/^(\w[\w.]*)=(.*)$/))) {
        check(String(get(rep, m[1])) === m[2], `${st.name}slot ${words[1]}: ${m[1]} is '${get(rep, m[1])}', expected '${m[2]}'`);
      } else {
        check(false, `slot ${words[1]}: cannot read '${kv}'`);
      }
    }
  } else if (kind === "flash") {
    const slot = Number(words[1]);
    const rep = reports[slot];
    if (!sim.boards[slot]) { check(false, `flash ${slot}: the bench has no slot ${slot}`); return; }
    if (!rep || !Array.isArray(rep.images) || rep.images.length === 0) {
      check(false, `slot ${slot}: report lists no images`);
      return;
    }
    const flash = fs.readFileSync(sim.boards[slot].flash);
    // The report names the chip as the ROM does ("ESP32-S3"); the table uses "esp32s3".
    const chip = rep.chip && rep.chip.name ? rep.chip.name.toLowerCase().replace(/[^a-z0-9]/g, "") : null;
    for (const img of rep.images) {
      const made = Object.values(images).find((i) => img.file === i.path);
      if (!made) { check(false, `slot ${slot}: the report names ${img.file}, which is no image of this case`); continue; }
      const data = fs.readFileSync(made.path);
      const got = flash.subarray(img.offset, img.offset + data.length);
      // Only a firmware image (0xE9) at the chip's bootloader offset may have bytes 2-3 patched
      // (mode/freq/size); an ESP32 image with an appended SHA-256 then carries a recomputed
      // digest, which must be the digest of what is in flash (protocol doc §9.3).
      let patched = false;
      if (data[0] === 0xe9) {
        if (!(chip in BOOTLOADER_OFFSET)) {
          check(false, `slot ${slot}: the runner does not know the bootloader offset of chip '${chip}'`);
          continue;
        }
        patched = img.offset === BOOTLOADER_OFFSET[chip];
      }
      let end = data.length;
      const digest = (buf, n) => crypto.createHash("sha256").update(buf.subarray(0, n)).digest();
      if (patched && data[23] === 1 && digest(data, end - 32).equals(data.subarray(end - 32))) {
        end -= 32;
        check(digest(got, end).equals(got.subarray(end, end + 32)),
          `slot ${slot}: the appended SHA-256 in flash does not match the flashed image`);
      }
      let diff = got.length < end ? got.length : -1;
      for (let i = 0; i < Math.min(end, got.length); i++)
        if (got[i] !== data[i] && !(patched && (i === 2 || i === 3))) { diff = i; break; }
      check(diff === -1, `slot ${slot}: flash differs from ${img.file} at +0x${diff.toString(16)}` +
        ` (image at 0x${img.offset.toString(16)}${patched ? ", the bootloader offset" : ""})`);
    }
  } else if (kind === "journal") {
    const text = fs.readFileSync(path.join(runDir, "journal.jsonl"), "utf8");
    check(text === "" || text.endsWith("\n"), `${st.name}journal does not end with a whole line`);
    const events = text.trim() === "" ? [] : text.trim().split("\n").map((l) => JSON.parse(l));
    const done = new Set(events.filter((e) => e.event === "done").map((e) => e.slot));
    if (words[1] !== "partial")
      check(done.size === sim.boards.length, `${st.name}journal has done for ${done.size} of ${sim.boards.length} slots`);
  } else if (kind === "reports") {
    const n = Object.keys(reports.files).length;
    check(n === Number(words[1]), `${st.name}${n} device reports, expected ${words[1]}`);
  } else if (kind === "runmatch") {
    const runJson = path.join(runDir, "run.json");
    if (!fs.existsSync(runJson)) { check(false, `${st.name}no run.json`); return; }
    const r = JSON.parse(fs.readFileSync(runJson, "utf8"));
    const partial = words[1] === "partial";
    const all = reports.files;
    // After a kill, the boards run.json lists; a report written just before the kill may not
    // be listed yet (its run.json rewrite comes after it), one per slot at most.
    const files = partial ? Object.fromEntries(r.slots.filter((b) => b.report_file in all).map((b) => [b.report_file, all[b.report_file]])) : all;
    if (partial) {
      const extra = Object.keys(all).length - Object.keys(files).length;
      check(extra >= 0 && extra <= sim.boards.length, `${st.name}${extra} reports are not in run.json (at most one per slot may be)`);
    }
    const counts = { passed: 0, failed: 0, interrupted: 0 };
    const countOf = { pass: "passed", fail: "failed", interrupted: "interrupted" };
    for (const rep of Object.values(files)) {
      check(rep.result in countOf, `${st.name}a report's result is '${rep.result}'`);
      if (rep.result in countOf) counts[countOf[rep.result]]++;
    }
    for (const k of Object.keys(counts))
      check(r.counts[k] === counts[k], `${st.name}run.json counts.${k} is ${r.counts[k]}, the reports say ${counts[k]}`);
    // A line's run.json lists only its latest boards (--run-json-latest) and says how many
    // earlier ones it leaves out; its counts still cover every board.
    const omitted = r.slots_omitted ?? 0;
    check(r.counts.total === Object.keys(files).length && r.slots.length === r.counts.total - omitted,
      `${st.name}run.json lists ${r.slots.length} boards (total ${r.counts.total}, ${omitted} left out), the run directory holds ${Object.keys(files).length} reports`);
    const named = new Set();
    for (const b of r.slots) {
      const rep = files[b.report_file];
      if (!rep) { check(false, `${st.name}run.json names ${b.report_file}, which is not in the run directory`); continue; }
      check(!named.has(b.report_file), `${st.name}run.json names ${b.report_file} twice`);
      named.add(b.report_file);
      check(rep.result === b.result && rep.slot === b.slot && (rep.mac ?? null) === (b.mac ?? null),
        `${st.name}run.json's ${b.report_file} (slot ${b.slot}, ${b.result}, ${b.mac}) differs from the report (slot ${rep.slot}, ${rep.result}, ${rep.mac})`);
    }
  } else if (kind === "run") {
    const runJson = path.join(runDir, "run.json");
    if (!fs.existsSync(runJson)) { check(false, `${st.name}no run.json`); return; }
    const r = JSON.parse(fs.readFileSync(runJson, "utf8"));
    for (const kv of words.slice(1)) {
      const m = kv.match(KV);
      if (!m) { check(false, `run: cannot read '${kv}'`); continue; }
      if (m[2] === ">=") check(Number(get(r, m[1])) >= Number(m[3]), `${st.name}run.json ${m[1]} is ${get(r, m[1])}, expected >= ${m[3]}`);
      else if (m[2] === "<=") check(Number(get(r, m[1])) <= Number(m[3]), `${st.name}run.json ${m[1]} is ${get(r, m[1])}, expected <= ${m[3]}`);
      else check(String(get(r, m[1])) === m[3], `${st.name}run.json ${m[1]} is '${get(r, m[1])}', expected '${m[3]}'`);
    }
  } else {
    check(false, `unknown [expect] keyword '${kind}'`);
  }
}

// Runs one case in dir with its one log; returns the failures (empty: the case passed).
async function runCase(file, dir, log) {
  const { sections, run } = parseCase(file);
  const failures = [];
  const check = (ok, what) => { if (!ok) failures.push(what); };

  // Images and the profile.
  const images = {};
  for (const line of sections.images || []) {
    const [img, chip, size, seed, banner] = line.trim().split(/\s+/);
    const out = path.join(dir, `${img}.bin`);
    const extra = banner ? ["--banner", banner.slice("banner=".length).replace(/_/g, " ")] : [];
    const r = spawnSync(MKIMAGE, ["--chip", chip, "--size", size, "--seed", seed, ...extra, "-o", out],
      { stdio: ["ignore", "pipe", "pipe"], encoding: "utf8" });
    for (const l of r.stderr.split("\n").filter((l) => l !== "")) log.line("mkimage", "err", l);
    if (r.status !== 0) throw new Error(`mkimage for ${img} ended with ${ended({ code: r.status, signal: r.signal })}`);
    const hash = r.stdout.trim().split(/\s+/)[0];
    images[img] = { path: out, sha256: hash };
  }
  const image = (n) => {
    if (!images[n]) throw new Error(`@file/@sha256(${n}): no image ${n} in [images]`);
    return images[n];
  };
  // [profile], [profile2], ...: each becomes a profile file, passed in that order.
  const profiles = [];
  for (const sec of Object.keys(sections).filter((k) => k.startsWith("profile")).sort()) {
    const text = sections[sec].join("\n")
      .replace(/@dir/g, dir)
      .replace(/@file\((\w+)\)/g, (_, n) => image(n).path)
      .replace(/@sha256\((\w+)\)/g, (_, n) => image(n).sha256);
    const p = path.join(dir, `${sec}.yaml`);
    fs.writeFileSync(p, text + "\n");
    profiles.push(p);
  }
  if (run.touch) fs.writeFileSync(path.join(dir, run.touch), "");

  const scale = run.time_scale || "0.02";
  const sim = await startSim(dir, sections.bench || null,
    run.sim_args ? run.sim_args.split(",") : [], scale, log);
  let firstPid = 0;
  const board = (n) => {
    if (!sim.boards[Number(n)]) throw new Error(`the bench has no board ${n}`);
    return sim.boards[Number(n)];
  };
  const subst = (text) => text
    .replace(/@dir/g, dir)
    .replace(/@sim/g, path.join(dir, "sim"))
    .replace(/@port\((\d+)\)/g, (_, n) => board(n).port)
    .replace(/@real\((\d+)\)/g, (_, n) => board(n).real)
    .replace(/@mac\((\d+)\)/g, (_, n) => board(n).mac)
    .replace(/@pid/g, String(firstPid));
  const portArgs = (spec) => {
    if (spec === "profile") return [];
    const list = spec === undefined ? sim.boards.map((b) => b.port) : subst(spec).split(",");
    return list.flatMap((p) => ["--port", p]);
  };
  const stations = [
    { name: "", prog: "espstation", reports: path.join(dir, "reports"), result: null },
    { name: "second: ", prog: "second", reports: path.join(dir, "reports2"), result: null },
  ];
  const baseArgs = (st) => ["--lines", "--reports", st.reports, "--timeout-scale", String(MULT)];
  let simEnd;
  try {
    for (const b of sim.boards) b.real = fs.realpathSync(b.port); // the links go with espsim
    for (const spec of run.links ? run.links.split(",") : []) {
      const [name, n] = spec.split(":");
      const link = path.join(dir, name);
      fs.mkdirSync(path.dirname(link), { recursive: true });
      fs.symlinkSync(board(n).real, link);
    }
    if (run.before === "run") {
      const r = await runStation(log, "before", ["run", ...profiles, ...baseArgs(stations[0]),
        ...portArgs()], {}).done;
      check(r.code === 0, `the flashing run before the check ended with ${ended(r)}, expected exit status 0`);
    }
    if (run.poke) {
      const [slot, off] = run.poke.split(":");
      const flash = board(slot).flash;
      const fd = fs.openSync(flash, "r+");
      const b = Buffer.alloc(1);
      fs.readSync(fd, b, 0, 1, Number(off));
      b[0] ^= 0x01;
      fs.writeSync(fd, b, 0, 1, Number(off));
      fs.closeSync(fd);
    }
    const extra = run.args ? subst(run.args).split(" ") : [];
    const command = run.command || "run";
    let second = null;
    const driver = eventDriver(sections.events || [], sim, log, check);
    await driver.before();
    const opts = { signal: run.signal, prlimit: run.prlimit, onLine: (l) => driver.onLine(l) };
    if (run.second)
      opts.onPhase = {
        phase: run.second,
        fn: () => {
          second = runStation(log, stations[1].prog, [command, ...profiles, ...baseArgs(stations[1]),
            ...portArgs(run.second_ports), ...extra], {});
        },
      };
    const first = runStation(log, stations[0].prog, [command, ...profiles, ...baseArgs(stations[0]),
      ...portArgs(run.ports), ...extra], opts);
    firstPid = first.pid;
    driver.start(first);
    stations[0].result = await first.done;
    await driver.finish();
    if (run.second) {
      check(second !== null, `no board reached ${run.second}: the second station never ran`);
      if (second !== null) stations[1].result = await second.done;
    }
  } finally {
    simEnd = await stopSim(sim);
  }
  // espsim stops on SIGTERM with status 0; anything else (a crash, a sanitizer report) fails.
  check(simEnd.code === 0 || simEnd.signal === "SIGTERM", `espsim ended with ${ended(simEnd)}`);

  // The exit status first: when it is wrong, the reports are not what the case describes.
  const result = stations[0].result;
  const wantExit = run.exit === undefined ? "0" : run.exit;
  let exitOk;
  if ((run.signal && run.signal.startsWith("SIGKILL")) || wantExit === "SIGKILL")
    exitOk = result.signal === "SIGKILL";
  else exitOk = result.signal === null && wantExit.split("|").map(Number).includes(result.code);
  check(exitOk, `espstation ended with ${ended(result)}, expected ${(run.signal && run.signal.startsWith("SIGKILL")) || wantExit === "SIGKILL" ? "to be killed by SIGKILL" : `exit status ${wantExit}`}`);
  if (stations[1].result !== null) {
    const wantSecond = run.second_exit === undefined ? 0 : Number(run.second_exit);
    const r = stations[1].result;
    const ok = r.signal === null && r.code === wantSecond;
    check(ok, `second: espstation ended with ${ended(r)}, expected exit status ${wantSecond}`);
    exitOk = exitOk && ok;
  }
  // Every report, run.json and journal line against the schemas, whatever else happened.
  const killed = (run.signal && run.signal.startsWith("SIGKILL")) || wantExit === "SIGKILL";
  const partialJournal = killed || run.prlimit !== undefined ||
    (sections.expect || []).some((l) => /^\s*(second\s+)?journal\s+partial\b/.test(l));
  for (const st of stations) {
    try {
      failures.push(...validateReportsRoot(st.reports, { partialJournal })[0].map((f) => `schema: ${f}`));
    } catch (e) {
      failures.push(`schema: ${e.message}`);
    }
  }
  if (!exitOk) {
    if ((sections.expect || []).length > 0) failures.push("[expect] not checked: the exit status is wrong");
    return failures;
  }
  // The run directory espstation named on its last line; after a SIGKILL, the newest one.
  for (const st of stations)
    st.runDir = () => {
      const named = st.result.lines.map((l) => l.match(/^reports: (.*)$/)).filter(Boolean).pop();
      if (named) return named[1];
      return fs.existsSync(st.reports) ? findRunDir(st.reports) : null;
    };
  for (const line of sections.expect || []) {
    let words = subst(line.trim()).split(/\s+/);
    let st = stations[0];
    if (words[0] === "second") {
      st = stations[1];
      words = words.slice(1);
      if (st.result === null) { check(false, `second station did not run: '${line.trim()}'`); continue; }
    }
    checkStation(words, st, sim, images, check);
  }
  return failures;
}

const files = process.argv.slice(2);
let passed = 0, failed = 0;
for (const f of files) {
  const name = path.basename(f, ".case");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `es-it-${name}-`));
  const log = openLog(path.join(dir, "case.log"));
  let failures;
  try {
    failures = await runCase(f, dir, log);
  } catch (e) {
    failures = [String(e.stack || e)];
  }
  log.close();
  if (failures.length === 0) {
    passed++;
    fs.rmSync(dir, { recursive: true, force: true });
    console.log(`ok - ${name}`);
    continue;
  }
  failed++;
  console.log(`not ok - ${name} (logs kept in ${dir}; every line in ${path.join(dir, "case.log")})`);
  for (const what of failures) console.log(`    ${what}`);
  for (const [prog, tail] of log.tails) {
    console.log(`    --- ${prog} stderr, last ${tail.length} lines${tail.length === 0 ? " (nothing)" : ""}`);
    for (const l of tail) console.log(`    | ${l}`);
  }
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
