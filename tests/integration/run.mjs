// Integration runner: each case in tests/integration/cases/*.case is data (in the spirit of
// curl's tests/data files): the simulated bench, the profile, what to do, and what must be true
// afterwards. The runner starts espsim on a fresh temp directory, runs the real espstation
// binary against its pseudo-terminals, then checks the exit status, the reports and the
// simulator's flash files. Each case gets its own directory; logs are kept when a case fails.
//
//   node tests/integration/run.mjs CASE...        (ESPSTATION, ESPSIM, MKIMAGE: binaries)
//
// Case file: "[section]" headers, then lines.
//   [bench]    one espsim --board SPEC per line (esp8266, esp32,fault=no-download, ...); without
//              it no simulator runs (cases that must stop before any board is touched)
//   [images]   NAME CHIP SIZE SEED   images made with mkimage
//   [profile]  YAML; @file(NAME) and @sha256(NAME) expand to the image's path and hash
//              ([profile2] ... for a mixed bench: each board takes the profile of its chip)
//   [run]      command=run|verify  args=...  sim_args=...  time_scale=X  exit=N
//              before=run (flash first, then the command)  poke=SLOT:OFFSET (flip a flash byte
//              before the command)  signal=SIGINT|SIGHUP|SIGKILL@PHASE (sent when a board
//              reaches PHASE)
//              ports=A,B,...  the --port arguments instead of one per board
//              prlimit="--fsize=N ..."  run espstation under prlimit(1) with these limits
//              touch=NAME     create the empty regular file @dir/NAME first
//              second=PHASE   when a board reaches PHASE, run a second espstation on the same
//                             bench (second_ports=..., second_exit=N; reports in @dir/reports2)
//              In args, ports, second_ports and expect lines: @dir is the case's directory,
//              @sim espsim's port directory, @port(N) board N's port, @real(N) the device that
//              port links to, @pid the first espstation's process id.
//   [expect]   slot N key=value ...  (result, phase, code, loader, chip, retries>=N, x<=N,
//                                     msg~=TEXT, where '_' in TEXT stands for a space)
//              flash N                (slot N's flash holds every image, byte for byte)
//              journal [partial]      (journal.jsonl: every line is whole JSON, one done per slot)
//              reports N              (N device reports in the run directory)
//              run key=value ...      (run.json, e.g. counts.interrupted=4)
//              norun                  (no run directory was created: nothing was touched)
//              stderr TEXT / stdout TEXT   (the output contains TEXT)
//              second ...             (any of the above, for the second espstation)
//   An unknown section, [run] key or [expect] keyword fails the case, so a typo cannot delete
//   an assertion.
import { spawn, execFileSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";

const ESPSTATION = process.env.ESPSTATION;
const ESPSIM = process.env.ESPSIM;
const MKIMAGE = process.env.MKIMAGE;
const MULT = Number(process.env.ESPSTATION_TIMEOUT_MULTIPLIER || "1");

function parseCase(file) {
  const sections = {};
  let cur = null;
  for (const raw of fs.readFileSync(file, "utf8").split("\n")) {
    const m = raw.match(/^\[(\w+)\]\s*$/);
    if (m) {
      cur = m[1];
      sections[cur] = [];
      continue;
    }
    if (cur === null || (cur !== "profile" && (raw.trim() === "" || raw.trim().startsWith("#"))))
      continue;
    sections[cur].push(raw);
  }
  const known = ["bench", "images", "run", "expect"];
  for (const sec of Object.keys(sections))
    if (!known.includes(sec) && !/^profile\d*$/.test(sec)) throw new Error(`unknown section [${sec}]`);
  const run = {};
  const runKeys = ["command", "args", "sim_args", "time_scale", "exit", "before", "poke", "signal",
    "ports", "prlimit", "touch", "second", "second_ports", "second_exit"];
  for (const line of sections.run || [])
    for (const m of line.matchAll(/(\w+)=("[^"]*"|\S+)/g)) {
      if (!runKeys.includes(m[1])) throw new Error(`unknown [run] key '${m[1]}'`);
      run[m[1]] = m[2].replace(/^"|"$/g, "");
    }
  return { sections, run };
}

function startSim(dir, bench, extra, scale) {
  if (bench === null) return Promise.resolve({ child: null, boards: [] });
  const args = ["--dir", path.join(dir, "sim"), "--state", path.join(dir, "state"),
    "--time-scale", String(scale), "--exit-on-eof"];
  for (const b of bench) args.push("--board", b.trim());
  args.push(...extra);
  const log = fs.openSync(path.join(dir, "espsim.log"), "w");
  const child = spawn(ESPSIM, args, { stdio: ["pipe", "pipe", log] });
  return new Promise((resolve, reject) => {
    const boards = [];
    const rl = readline.createInterface({ input: child.stdout });
    const timer = setTimeout(() => reject(new Error("espsim did not become ready")), 20000 * MULT);
    rl.on("line", (line) => {
      const o = JSON.parse(line);
      if (o.ready) {
        clearTimeout(timer);
        resolve({ child, boards });
      } else boards.push(o);
    });
    child.on("exit", (code) => reject(new Error(`espsim exited with ${code} before ready`)));
  });
}

function stopSim(sim) {
  return new Promise((resolve) => {
    if (sim.child === null) return resolve(0);
    if (sim.child.exitCode !== null) return resolve(sim.child.exitCode);
    sim.child.removeAllListeners("exit");
    sim.child.on("exit", (code) => resolve(code));
    sim.child.kill("SIGTERM");
  });
}

// Runs espstation (under prlimit when limits are given); with signal=SIG@PHASE, sends SIG once
// any board reports PHASE; onPhase, if given, is called once when a board reports its phase.
function runStation(dir, args, opts, logName) {
  const log = path.join(dir, logName);
  fs.writeFileSync(log, "");
  const cmd = opts.prlimit ? "prlimit" : ESPSTATION;
  const argv = opts.prlimit ? [...opts.prlimit.split(" "), "--", ESPSTATION, ...args] : args;
  const child = spawn(cmd, argv, { stdio: ["ignore", "pipe", "pipe"] });
  let sig = null, phase = null, hook = opts.onPhase || null;
  if (opts.signal) [sig, phase] = opts.signal.split("@");
  const lines = [];
  let stderr = "";
  child.stderr.on("data", (d) => { stderr += d; fs.appendFileSync(log, d); });
  const rl = readline.createInterface({ input: child.stdout });
  rl.on("line", (line) => {
    fs.appendFileSync(log, line + "\n");
    lines.push(line);
    if (sig && line.includes(`phase: ${phase}`)) {
      child.kill(sig);
      sig = null;
    }
    if (hook && line.includes(`phase: ${hook.phase}`)) {
      hook.fn();
      hook = null;
    }
  });
  const done = new Promise((resolve) => child.on("close", (code, signal) =>
    resolve({ code, signal, lines, stderr, stdout: lines.join("\n") })));
  return { pid: child.pid, done };
}

function findRunDir(reports) {
  const runs = fs.readdirSync(reports).filter((d) => fs.statSync(path.join(reports, d)).isDirectory());
  if (runs.length === 0) return null;
  runs.sort((a, b) => fs.statSync(path.join(reports, a)).mtimeMs - fs.statSync(path.join(reports, b)).mtimeMs);
  return path.join(reports, runs[runs.length - 1]);
}

function slotReports(runDir) {
  const bySlot = {};
  for (const f of fs.readdirSync(runDir)) {
    if (!f.endsWith(".json") || f === "run.json") continue;
    const r = JSON.parse(fs.readFileSync(path.join(runDir, f), "utf8"));
    bySlot[r.slot] = r;
  }
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
    check(false, `${st.name}no run directory for '${words.join(" ")}'`);
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
    const flash = fs.readFileSync(sim.boards[slot].flash);
    const rep = reports[slot];
    for (const img of rep ? rep.images : []) {
      const data = fs.readFileSync(Object.values(images).find((i) => img.file === i.path).path);
      const got = flash.subarray(img.offset, img.offset + data.length);
      // Bytes 2-3 of a firmware image at the bootloader offset may be patched (mode/freq/size);
      // an ESP32 image with an appended SHA-256 then carries a recomputed digest, which must be
      // the digest of what is in flash (protocol doc §9.3).
      let end = data.length;
      const digest = (buf, n) => crypto.createHash("sha256").update(buf.subarray(0, n)).digest();
      if (data[0] === 0xe9 && data[23] === 1 && digest(data, end - 32).equals(data.subarray(end - 32))) {
        end -= 32;
        check(digest(got, end).equals(got.subarray(end, end + 32)),
          `slot ${slot}: the appended SHA-256 in flash does not match the flashed image`);
      }
      let diff = -1;
      for (let i = 0; i < end; i++)
        if (got[i] !== data[i] && !(i === 2 || i === 3)) { diff = i; break; }
      check(diff === -1, `slot ${slot}: flash differs from ${img.file} at +0x${diff.toString(16)}`);
    }
    check(rep && rep.images.length > 0, `slot ${slot}: report lists no images`);
  } else if (kind === "journal") {
    const text = fs.readFileSync(path.join(runDir, "journal.jsonl"), "utf8");
    check(text === "" || text.endsWith("\n"), `${st.name}journal does not end with a whole line`);
    const events = text.trim() === "" ? [] : text.trim().split("\n").map((l) => JSON.parse(l));
    const done = new Set(events.filter((e) => e.event === "done").map((e) => e.slot));
    if (words[1] !== "partial")
      check(done.size === sim.boards.length, `${st.name}journal has done for ${done.size} of ${sim.boards.length} slots`);
  } else if (kind === "reports") {
    check(Object.keys(reports).length === Number(words[1]),
      `${st.name}${Object.keys(reports).length} device reports, expected ${words[1]}`);
  } else if (kind === "run") {
    const runJson = path.join(runDir, "run.json");
    if (!fs.existsSync(runJson)) { check(false, `${st.name}no run.json`); return; }
    const r = JSON.parse(fs.readFileSync(runJson, "utf8"));
    for (const kv of words.slice(1)) {
      const m = kv.match(/^(\w[\w.]*)=(.*)$/);
      if (!m) { check(false, `run: cannot read '${kv}'`); continue; }
      check(String(get(r, m[1])) === m[2], `${st.name}run.json ${m[1]} is '${get(r, m[1])}', expected '${m[2]}'`);
    }
  } else {
    check(false, `unknown [expect] keyword '${kind}'`);
  }
}

async function runCase(file) {
  const name = path.basename(file, ".case");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `es-it-${name}-`));
  const { sections, run } = parseCase(file);
  const failures = [];
  const check = (ok, what) => { if (!ok) failures.push(what); };

  // Images and the profile.
  const images = {};
  for (const line of sections.images || []) {
    const [img, chip, size, seed] = line.trim().split(/\s+/);
    const out = path.join(dir, `${img}.bin`);
    const hash = execFileSync(MKIMAGE, ["--chip", chip, "--size", size, "--seed", seed, "-o", out],
      { stdio: ["ignore", "pipe", "ignore"] }).toString().trim().split(/\s+/)[0];
    images[img] = { path: out, sha256: hash };
  }
  // [profile], [profile2], ...: each becomes a profile file, passed in that order.
  const profiles = [];
  for (const sec of Object.keys(sections).filter((k) => k.startsWith("profile")).sort()) {
    const text = sections[sec].join("\n")
      .replace(/@file\((\w+)\)/g, (_, n) => images[n].path)
      .replace(/@sha256\((\w+)\)/g, (_, n) => images[n].sha256);
    const p = path.join(dir, `${sec}.yaml`);
    fs.writeFileSync(p, text + "\n");
    profiles.push(p);
  }
  if (run.touch) fs.writeFileSync(path.join(dir, run.touch), "");

  const scale = run.time_scale || "0.02";
  const sim = await startSim(dir, sections.bench || null,
    run.sim_args ? run.sim_args.split(",") : [], scale);
  for (const b of sim.boards) b.real = fs.realpathSync(b.port); // the links go with espsim
  let firstPid = 0;
  const subst = (text) => text
    .replace(/@dir/g, dir)
    .replace(/@sim/g, path.join(dir, "sim"))
    .replace(/@port\((\d+)\)/g, (_, n) => sim.boards[Number(n)].port)
    .replace(/@real\((\d+)\)/g, (_, n) => sim.boards[Number(n)].real)
    .replace(/@pid/g, String(firstPid));
  const portArgs = (spec) => {
    const list = spec === undefined ? sim.boards.map((b) => b.port) : subst(spec).split(",");
    return list.flatMap((p) => ["--port", p]);
  };
  const stations = [
    { name: "", reports: path.join(dir, "reports"), log: "espstation.log", result: null },
    { name: "second: ", reports: path.join(dir, "reports2"), log: "second.log", result: null },
  ];
  const baseArgs = (st) => ["--lines", "--reports", st.reports, "--timeout-scale", String(MULT)];
  try {
    if (run.before === "run") {
      const r = await runStation(dir, ["run", ...profiles, ...baseArgs(stations[0]), ...portArgs()],
        {}, "before.log").done;
      check(r.code === 0, `the flashing run before the check exited ${r.code}`);
    }
    if (run.poke) {
      const [slot, off] = run.poke.split(":");
      const flash = sim.boards[Number(slot)].flash;
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
    const opts = { signal: run.signal, prlimit: run.prlimit };
    if (run.second)
      opts.onPhase = {
        phase: run.second,
        fn: () => {
          second = runStation(dir, [command, ...profiles, ...baseArgs(stations[1]),
            ...portArgs(run.second_ports), ...extra], {}, stations[1].log);
        },
      };
    const first = runStation(dir, [command, ...profiles, ...baseArgs(stations[0]),
      ...portArgs(run.ports), ...extra], opts, stations[0].log);
    firstPid = first.pid;
    stations[0].result = await first.done;
    if (run.second) {
      check(second !== null, `no board reached ${run.second}: the second station never ran`);
      if (second !== null) stations[1].result = await second.done;
    }
  } finally {
    await stopSim(sim);
  }

  // Expectations.
  const result = stations[0].result;
  const wantExit = run.exit === undefined ? 0 : Number(run.exit);
  if (run.signal && run.signal.startsWith("SIGKILL"))
    check(result.signal === "SIGKILL", `espstation was not killed (exit ${result.code})`);
  else check(result.code === wantExit, `exit status ${result.code}, expected ${wantExit}`);
  if (stations[1].result !== null) {
    const wantSecond = run.second_exit === undefined ? 0 : Number(run.second_exit);
    check(stations[1].result.code === wantSecond,
      `second: exit status ${stations[1].result.code}, expected ${wantSecond}`);
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
  if (failures.length === 0) fs.rmSync(dir, { recursive: true, force: true });
  return { name, failures, dir };
}

const files = process.argv.slice(2);
let passed = 0, failed = 0;
for (const f of files) {
  let r;
  try {
    r = await runCase(f);
  } catch (e) {
    r = { name: path.basename(f), failures: [String(e.stack || e)], dir: "?" };
  }
  if (r.failures.length === 0) {
    passed++;
    console.log(`ok - ${r.name}`);
  } else {
    failed++;
    console.log(`not ok - ${r.name} (logs kept in ${r.dir})`);
    for (const f of r.failures) console.log(`    ${f}`);
  }
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
