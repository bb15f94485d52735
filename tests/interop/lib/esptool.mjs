// Loads one of the pinned esptool-js packages from npm/node_modules (installed by
// tools/setup-deps.sh) and fails loudly, with what to do, when it is missing or not the pinned
// version. Two packages, two flasher-stub families:
//   esptool-js         0.7.0  esp-flasher-stub builds (what espstation itself uploads)
//   esptool-js-legacy  0.6.1  (npm:esptool-js@0.6.1) the legacy GPL esptool stubs
// The loaded module's exports are returned with a `pkg` record: which package, which stub family
// at which load address, and what the client can and cannot do (flow.mjs adapts to it).

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const REPO_DIR = fileURLToPath(new URL('../../../', import.meta.url));
export const NPM_DIR = process.env.ESPSTATION_NPM_DIR || path.join(REPO_DIR, 'npm');

/**
 * name: the directory in npm/node_modules (the alias in npm/package.json).
 * entry: the ESM file to import. 0.6.1's lib/ cannot be imported by Node (extensionless relative
 *   imports such as "./util", JSON stubs imported without `with {type: "json"}`), so its own
 *   self-contained bundle.js is used: the same code and the same stub JSON (checked below).
 * stub: the family and its text_start per chip -- the addresses espsim recognises.
 * inPlaceBaud: the client uses the port's optional setBaudRate() (0.7.0); 0.6.1 always closes
 *   and reopens the port on a baud change, as a browser must.
 * probesAfterBaud: changeBaud() checks the stub still answers and falls back to the ROM rate
 *   (0.7.0); 0.6.1 neither checks nor falls back.
 * atomicReset: ClassicReset changes DTR and RTS in one setSignals() call (0.7.0); 0.6.1 sets them
 *   one at a time (setDTR, then setRTS, which re-sends DTR), as esptool.py does.
 */
export const PACKAGES = {
  'esptool-js': {
    name: 'esptool-js',
    version: '0.7.0',
    entry: 'lib/index.js',
    stub: { family: 'esp-flasher-stub', textStart: { esp8266: 0x4010c500, esp32: 0x400a8000 } },
    inPlaceBaud: true,
    probesAfterBaud: true,
    atomicReset: true,
  },
  'esptool-js-legacy': {
    name: 'esptool-js-legacy',
    version: '0.6.1',
    entry: 'bundle.js',
    stubJsonFiles: {
      esp8266: 'lib/targets/stub_flasher/stub_flasher_8266.json',
      esp32: 'lib/targets/stub_flasher/stub_flasher_32.json',
    },
    stub: { family: 'legacy esptool stub', textStart: { esp8266: 0x4010d000, esp32: 0x400be000 } },
    inPlaceBaud: false,
    probesAfterBaud: false,
    atomicReset: false,
  },
};

// The first is the default of every caller that does not say (transport test, timings).
export const PACKAGE_NAMES = Object.keys(PACKAGES);

function packageInfo(name) {
  const info = PACKAGES[name];
  if (!info) throw new Error(`unknown esptool-js package "${name}"; known: ${PACKAGE_NAMES.join(', ')}`);
  return { ...info, dir: path.join(NPM_DIR, 'node_modules', name), label: `esptool-js ${info.version}` };
}

export function esptoolJsVersion(name = 'esptool-js') {
  const pkgPath = path.join(packageInfo(name).dir, 'package.json');
  if (!fs.existsSync(pkgPath)) {
    throw new Error(
      `${name} is not installed (${pkgPath} is missing): run tools/setup-deps.sh ` +
        `(it runs "npm ci --prefix npm" from npm/package-lock.json)`,
    );
  }
  return JSON.parse(fs.readFileSync(pkgPath, 'utf8')).version;
}

/**
 * Import the package's ESM entry point; throws with a setup hint if absent or not pinned.
 * @param {string} [name] a key of PACKAGES
 * @returns {Promise<object>} the module's exports plus `pkg` (PACKAGES[name], dir, label)
 */
export async function loadEsptool(name = 'esptool-js') {
  const pkg = packageInfo(name);
  const version = esptoolJsVersion(name);
  if (version !== pkg.version) {
    throw new Error(
      `npm/node_modules/${name} is esptool-js ${version}, the project pins ${pkg.version}: ` +
        `run tools/setup-deps.sh (npm ci --prefix npm) to reinstall from the lockfile`,
    );
  }
  const mod = await import(pathToFileURL(path.join(pkg.dir, pkg.entry)).href);
  return { ...mod, pkg };
}

const CHIP_NAMES = { esp8266: 'ESP8266', esp32: 'ESP32' };

/**
 * The stub the package uploads for this chip, checked to be of the package's family: its text
 * segment starts at the family's load address (and, for a bundle, it is the package's own JSON).
 * @returns {Promise<{family: string, textStart: number, entry: number, textLen: number}>}
 */
export async function stubOf(esptool, chip) {
  const { pkg } = esptool;
  const stub = await esptool.getStubJsonByChipName(CHIP_NAMES[chip]);
  if (!stub) throw new Error(`${pkg.label} has no flasher stub for ${chip}`);
  const want = pkg.stub.textStart[chip];
  if (stub.text_start !== want) {
    throw new Error(
      `${pkg.label} uploads its ${chip} stub at 0x${stub.text_start.toString(16)}, ` +
        `not the ${pkg.stub.family}'s 0x${want.toString(16)}`,
    );
  }
  const file = pkg.stubJsonFiles?.[chip];
  if (file) {
    const json = JSON.parse(fs.readFileSync(path.join(pkg.dir, file), 'utf8'));
    for (const k of ['text', 'data', 'text_start', 'data_start', 'entry']) {
      if (json[k] !== stub[k]) {
        throw new Error(`${pkg.label} ${pkg.entry}: the ${chip} stub's ${k} differs from ${file}`);
      }
    }
  }
  return { family: pkg.stub.family, textStart: stub.text_start, entry: stub.entry, textLen: stub.decodedText.length };
}
