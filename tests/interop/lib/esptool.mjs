// Loads the pinned esptool-js from npm/node_modules (installed by tools/setup-deps.sh) and fails
// loudly, with what to do, when it is missing or not the pinned version.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const REPO_DIR = fileURLToPath(new URL('../../../', import.meta.url));
export const NPM_DIR = process.env.ESPSTATION_NPM_DIR || path.join(REPO_DIR, 'npm');
export const ESPTOOL_JS_DIR = path.join(NPM_DIR, 'node_modules', 'esptool-js');
export const PINNED_VERSION = '0.7.0';

export function esptoolJsVersion() {
  const pkgPath = path.join(ESPTOOL_JS_DIR, 'package.json');
  if (!fs.existsSync(pkgPath)) {
    throw new Error(
      `esptool-js is not installed (${pkgPath} is missing): run tools/setup-deps.sh ` +
        `(it runs "npm ci --prefix npm" from npm/package-lock.json)`,
    );
  }
  return JSON.parse(fs.readFileSync(pkgPath, 'utf8')).version;
}

/** Import esptool-js's ESM entry point; throws with a setup hint if absent or not pinned. */
export async function loadEsptool() {
  const version = esptoolJsVersion();
  if (version !== PINNED_VERSION) {
    throw new Error(
      `npm/node_modules has esptool-js ${version}, the project pins ${PINNED_VERSION}: ` +
        `run tools/setup-deps.sh (npm ci --prefix npm) to reinstall from the lockfile`,
    );
  }
  return import(pathToFileURL(path.join(ESPTOOL_JS_DIR, 'lib', 'index.js')).href);
}
