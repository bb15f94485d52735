// The integration runner's own test: it must fail each deliberately wrong case below, with the
// failure it names and the case's directory kept and named in its output, and pass the one right
// case (so that "fails" cannot simply mean "always fails"). Each case is written to a temporary
// directory and run as `node run.mjs CASE` in its own process, as ctest runs the real ones.
//
//   node tests/integration/selftest.mjs          (ESPSTATION, ESPSIM, MKIMAGE: binaries)
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const RUNNER = path.join(path.dirname(fileURLToPath(import.meta.url)), "run.mjs");

// A bench, an image and a profile espstation refuses (exit 2) before touching a board: fast.
const refused = `[bench]
esp8266
[images]
app esp8266 65536 1
[profile]
chip: esp8266
images:
  - offset: 0x0
    file: @file(app)
    sha256: @sha256(app)
`;
// One ESP32 whose flash stores byte 2 of the image at 0x10000 wrong, with verify: none so the
// station passes: only the runner's flash check can see it, and bytes 2-3 are patched only at
// the bootloader offset (0x1000 on an ESP32), so it must.
const byte2 = `[bench]
esp32,fault=bad-flash:0x10002
[images]
app esp32 65536 3
[profile]
chip: esp32
verify: none
images:
  - offset: 0x10000
    file: @file(app)
    sha256: @sha256(app)
[run]
exit=0
[expect]
slot 0 result=pass
flash 0
`;

const cases = [
  { name: "right", pass: true,
    text: refused + "[run]\nexit=2 args=\"--timeout-scale nan\"\n[expect]\nstderr --timeout-scale 'nan'\nnorun\n" },
  { name: "unknown-expect-word", want: "unknown [expect] keyword 'slott'",
    text: refused + "[run]\nexit=2\n[expect]\nslott 0 result=pass\n" },
  { name: "expect-word-left-over", want: "'journal' takes nothing or 'partial', got 'partially'",
    text: refused + "[run]\nexit=2\n[expect]\njournal partially\n" },
  { name: "expect-slot-checks-nothing", want: "'slot 0' checks nothing",
    text: refused + "[run]\nexit=2\n[expect]\nslot 0\n" },
  { name: "run-item-not-kv", want: "[run] item 'exit' is not KEY=VALUE",
    text: refused + "[run]\nexit 2\n" },
  { name: "run-unknown-key", want: "unknown [run] key 'exits'",
    text: refused + "[run]\nexits=2\n" },
  { name: "text-before-section", want: "'esp8266' comes before the first [section]",
    text: "esp8266\n" + refused },
  { name: "unknown-section", want: "unknown section [expects]",
    text: refused + "[run]\nexit=2\n[expects]\nnorun\n" },
  { name: "wrong-exit-status", want: "espstation ended with exit status 2, expected exit status 0",
    stderr: "--- espstation stderr", text: refused + "[run]\nexit=0 args=\"--timeout-scale nan\"\n" },
  { name: "exit-before-reports", want: "[expect] not checked: the exit status is wrong",
    text: refused + "[run]\nexit=0 args=\"--timeout-scale nan\"\n[expect]\nslot 0 result=pass\n" },
  { name: "no-run-directory", want: "no run directory under",
    text: refused + "[run]\nexit=2 args=\"--timeout-scale nan\"\n[expect]\nslot 0 result=pass\n" },
  { name: "byte-2-off-the-bootloader-offset", want: "slot 0: flash differs from", text: byte2 },
  { name: "event-unknown-when", want: "an event starts with 'before', 'at', 'on' or 'each', got 'when'",
    text: refused + "[run]\nexit=2\n[events]\nwhen 0:pass stop\n" },
  { name: "event-unknown-action", want: "the action is 'sim COMMAND...' or 'stop', got 'halt'",
    text: refused + "[run]\nexit=2\n[events]\non 0:pass halt\n" },
  { name: "event-never-happened", want: "[events] 'on 0:pass stop' never happened",
    text: refused + "[run]\nexit=2 args=\"--timeout-scale nan\"\n[events]\non 0:pass stop\n" },
  { name: "event-command-refused", want: "espsim refused a command",
    text: refused + "[run]\nexit=2 args=\"--timeout-scale nan\"\n[events]\nbefore sim unplug 7\n" },
];

const top = fs.mkdtempSync(path.join(os.tmpdir(), "es-it-selftest-"));
let bad = 0;
for (const c of cases) {
  const file = path.join(top, `${c.name}.case`);
  fs.writeFileSync(file, c.text);
  const r = spawnSync(process.execPath, [RUNNER, file], { encoding: "utf8", timeout: 120000 });
  const out = r.stdout + r.stderr;
  const kept = out.match(/logs kept in (\S+);/);
  const problems = [];
  if (c.pass) {
    if (r.status !== 0) problems.push(`exit ${r.status}, expected 0`);
    if (!out.includes(`ok - ${c.name}`)) problems.push(`no 'ok - ${c.name}'`);
  } else {
    if (r.status !== 1) problems.push(`exit ${r.status}, expected 1`);
    if (!out.includes(`not ok - ${c.name}`)) problems.push(`no 'not ok - ${c.name}'`);
    if (!out.includes(c.want)) problems.push(`no '${c.want}'`);
    if (c.stderr && !out.includes(c.stderr)) problems.push(`no '${c.stderr}'`);
    if (out.includes("ENOENT")) problems.push("an ENOENT instead of a clear failure");
    if (!kept || !fs.existsSync(path.join(kept[1], "case.log")))
      problems.push("the output names no kept directory holding case.log");
  }
  if (kept) fs.rmSync(kept[1], { recursive: true, force: true });
  if (problems.length === 0) {
    console.log(`ok - ${c.name}`);
  } else {
    bad++;
    console.log(`not ok - ${c.name}: ${problems.join("; ")}`);
    for (const l of out.split("\n")) console.log(`    | ${l}`);
  }
}
fs.rmSync(top, { recursive: true, force: true });
console.log(`${cases.length - bad} of ${cases.length} runner checks passed`);
process.exit(bad === 0 ? 0 : 1);
