// Checks espstation's files against the JSON Schemas in schema/ (draft 2020-12) with ajv, the
// validator pinned in npm/package.json: device reports, run.json and every journal line of a run
// directory, and profiles (YAML, read into JSON with the pinned js-yaml). The schemas forbid
// keys they do not name (additionalProperties: false), so a field added to a report without the
// schema fails here. tests/integration/run.mjs calls validateReportsRoot after every case.
//
//   node tests/schema/validate.mjs run DIR...        every run directory under each reports DIR
//   node tests/schema/validate.mjs profiles FILE...  profiles, which must be valid
//   node tests/schema/validate.mjs selftest          what the schemas must refuse, and that their
//                                                    word lists match the C sources
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const NPM_DIR = process.env.ESPSTATION_NPM_DIR || path.join(REPO, "npm");
const SCHEMA_DIR = path.join(REPO, "schema");
const KINDS = ["report", "run", "journal", "profile"];

function npmRequire(name) {
  const require = createRequire(path.join(NPM_DIR, "package.json"));
  try {
    return require(name);
  } catch (e) {
    throw new Error(`cannot load ${name} from ${NPM_DIR}/node_modules (${e.code || e.message}); ` +
      "run tools/setup-deps.sh (npm ci --prefix npm)");
  }
}

let validators = null;

// One compiled validator per schema, made once. strict mode: a schema keyword ajv does not know
// (a typo in the schema) is an error, not a silent no-op.
export function schemas() {
  if (validators) return validators;
  const Ajv2020 = npmRequire("ajv/dist/2020").default;
  const ajv = new Ajv2020({ strict: true, strictRequired: false, allErrors: true, allowUnionTypes: true });
  validators = {};
  for (const kind of KINDS) {
    const schema = JSON.parse(fs.readFileSync(path.join(SCHEMA_DIR, `${kind}.schema.json`), "utf8"));
    validators[kind] = { id: schema.$id, check: ajv.compile(schema) };
  }
  return validators;
}

// Problems with value as a `kind`, each "what: path message", or [] when valid.
export function check(kind, value, what) {
  const v = schemas()[kind];
  if (v.check(value)) return [];
  return v.check.errors.map((e) => {
    const extra = e.params && e.params.additionalProperty ? ` '${e.params.additionalProperty}'` : "";
    return `${what}: ${e.instancePath || "/"} ${e.message}${extra}`;
  });
}

function readJson(file, failures) {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    failures.push(`${file}: not JSON (${e.message})`);
    return undefined;
  }
}

// Every device report, run.json and journal file in one run directory. A journal may end in a
// partial line only when partialJournal says so (a killed station, a file size limit).
export function validateRunDir(dir, { partialJournal = false } = {}) {
  const failures = [];
  for (const name of fs.readdirSync(dir).sort()) {
    const file = path.join(dir, name);
    if (name.startsWith(".") || !fs.statSync(file).isFile()) continue;
    if (name === "run.json") {
      const v = readJson(file, failures);
      if (v !== undefined) {
        failures.push(...check("run", v, file));
        if (v.$schema !== schemas().run.id) failures.push(`${file}: $schema is not ${schemas().run.id}`);
      }
    } else if (name.endsWith(".json")) {
      const v = readJson(file, failures);
      if (v !== undefined) failures.push(...check("report", v, file));
    } else if (/^journal(\.\d+)?\.jsonl$/.test(name)) {
      const lines = fs.readFileSync(file, "utf8").split("\n");
      const last = lines.pop(); // "" when the file ends in a newline
      if (last !== "" && !partialJournal) failures.push(`${file}: the last line has no newline`);
      lines.forEach((text, i) => {
        let v;
        try {
          v = JSON.parse(text);
        } catch (e) {
          failures.push(`${file}:${i + 1}: not JSON (${e.message})`);
          return;
        }
        failures.push(...check("journal", v, `${file}:${i + 1}`));
      });
    }
  }
  return failures;
}

// Every run directory in a reports directory (none when it does not exist: a case that stopped
// before any board was touched). Returns [failures, number of run directories].
export function validateReportsRoot(root, opts = {}) {
  if (!fs.existsSync(root)) return [[], 0];
  const failures = [];
  let runs = 0;
  for (const name of fs.readdirSync(root).sort()) {
    const dir = path.join(root, name);
    if (!fs.statSync(dir).isDirectory()) continue;
    runs++;
    failures.push(...validateRunDir(dir, opts));
  }
  return [failures, runs];
}

// A profile file as JSON: YAML 1.2's core schema, as the profile's own rules read numbers.
export function profileJson(file) {
  const yaml = npmRequire("js-yaml");
  return yaml.load(fs.readFileSync(file, "utf8"), { schema: yaml.CORE_SCHEMA, filename: file });
}

// The words a schema lists must be the ones the C code writes: error names (include/es/err.h)
// and phase names (include/es/session.h). A code or phase added in C without the schema fails.
function sourceWordsMatch() {
  const failures = [];
  const words = (file, re) => [...fs.readFileSync(path.join(REPO, file), "utf8").matchAll(re)].map((m) => m[1]);
  const codes = words("include/es/err.h", /^\s+X\(\w+,\s*"(\w+)",/gm).filter((c) => c !== "ok");
  const phases = words("include/es/session.h", /X\(\w+,\s*"(\w+)"\)/g);
  const read = (kind) => JSON.parse(fs.readFileSync(path.join(SCHEMA_DIR, `${kind}.schema.json`), "utf8"));
  const same = (a, b, what) => {
    const x = [...a].sort().join(" "), y = [...b].sort().join(" ");
    if (x !== y) failures.push(`${what}: the schema lists [${x}], the C sources [${y}]`);
  };
  const report = read("report"), journal = read("journal");
  same(report.properties.error.anyOf[0].properties.code.enum, codes, "report error.code");
  same(journal.$defs.done.properties.error.enum, codes, "journal done.error");
  same(Object.keys(report.properties.timings_ms.properties).filter((p) => p !== "unknown"), phases,
    "report timings_ms");
  same(journal.$defs.phase.properties.phase.enum, phases, "journal phase");
  return failures;
}

// What the schemas must refuse: each case changes one thing in a valid document.
function selftest() {
  const failures = [...sourceWordsMatch()];
  const fixtures = path.join(REPO, "tests/schema/fixtures");
  const base = {};
  for (const kind of ["report", "run"]) {
    base[kind] = JSON.parse(fs.readFileSync(path.join(fixtures, `${kind}.json`), "utf8"));
    failures.push(...check(kind, base[kind], `fixtures/${kind}.json`));
  }
  const journal = fs.readFileSync(path.join(fixtures, "journal.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
  journal.forEach((l, i) => failures.push(...check("journal", l, `fixtures/journal.jsonl:${i + 1}`)));
  const profile = profileJson(path.join(REPO, "tests/profiles/good/full.yaml"));
  failures.push(...check("profile", profile, "tests/profiles/good/full.yaml"));

  const clone = (v) => JSON.parse(JSON.stringify(v));
  const must = [
    ["report", "an extra top-level field", (r) => { r.new_field = 1; }],
    ["report", "an extra field in an image", (r) => { r.images[0].crc32 = "00000000"; }],
    ["report", "an extra field in wire", (r) => { r.wire.rts_toggles = 3; }],
    ["report", "a missing key", (r) => { delete r.baud; }],
    ["report", "an unknown result", (r) => { r.result = "ok"; }],
    ["report", "a pass with an error", (r) => { r.error = { phase: "sync", code: "no_sync", message: "x", rom_status: null }; }],
    ["report", "an unknown error code", (r) => { r.result = "fail"; r.error = { phase: "sync", code: "no_such_code", message: "x", rom_status: null }; }],
    ["report", "an upper-case MAC", (r) => { r.mac = "24:0A:C4:12:34:56"; }],
    ["report", "an unknown phase in timings_ms", (r) => { r.timings_ms.warp = 3; }],
    ["report", "another $schema", (r) => { r.$schema = "urn:espstation:schema:report:2"; }],
    ["run", "an extra field", (r) => { r.line = "A"; }],
    ["run", "an extra field in a slot", (r) => { r.slots[0].retries = 1; }],
    ["run", "an extra count", (r) => { r.counts.skipped = 0; }],
    ["journal", "an extra field on a done line", (l) => { l[4].reason = "x"; }],
    ["journal", "an unknown event", (l) => { l[1].event = "teleport"; }],
    ["journal", "a run-level line with a slot", (l) => { l[0].slot = 0; }],
    ["profile", "an unknown top-level key", (p) => { p.speed = 1; }],
    ["profile", "an unknown flash key", (p) => { p.flash.speed = "80m"; }],
    ["profile", "an unaligned offset", (p) => { p.images[0].offset = 0x1001; }],
    ["profile", "an offset past 16 MiB", (p) => { p.images[0].offset = 0x1000000; }],
    ["profile", "a baud out of range", (p) => { p.baud = 5000001; }],
    ["profile", "no images", (p) => { delete p.images; }],
    ["profile", "a short sha256", (p) => { p.images[0].sha256 = "abc"; }],
    ["profile", "a word not in the list", (p) => { p.erase = "some"; }],
    ["profile", "a reply without send", (p) => { p.boot_check = { expect: "x", reply: "42" }; }],
    ["profile", "a boot check with reset.after none", (p) => { p.boot_check = { expect: "x" }; }],
  ];
  for (const [kind, what, change] of must) {
    if (kind === "journal") {
      const lines = clone(journal);
      change(lines);
      if (lines.every((l, i) => check("journal", l, String(i)).length === 0))
        failures.push(`journal: ${what} was accepted`);
      continue;
    }
    const v = clone(kind === "profile" ? profile : base[kind]);
    change(v);
    if (check(kind, v, kind).length === 0) failures.push(`${kind}: ${what} was accepted`);
  }
  return failures;
}

function main(argv) {
  const [mode, ...args] = argv;
  let failures = [];
  let count = 0;
  if (mode === "run") {
    for (const root of args) {
      const [f, n] = validateReportsRoot(root);
      failures.push(...f);
      count += n;
    }
    if (count === 0) failures.push(`no run directory under ${args.join(", ")}`);
  } else if (mode === "profiles") {
    for (const file of args) {
      failures.push(...check("profile", profileJson(file), file));
      count++;
    }
  } else if (mode === "selftest") {
    failures = selftest();
    count = 1;
  } else {
    console.error("usage: validate.mjs run DIR... | profiles FILE... | selftest");
    return 2;
  }
  for (const f of failures) console.log(`not ok: ${f}`);
  console.log(failures.length === 0 ? `ok: ${mode}, ${count} checked` : `${failures.length} problems`);
  return failures.length === 0 ? 0 : 1;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url))
  process.exitCode = main(process.argv.slice(2));
