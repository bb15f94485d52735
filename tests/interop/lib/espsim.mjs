// Start espsim, read its per-board JSON lines up to {"ready":true}, and stop it cleanly.

import fs from 'node:fs';

import { JsonLinesChild } from './jsonlines.mjs';

/**
 * @param {object} o
 * @param {string} o.bin path of the espsim executable
 * @param {string[]} o.boards one SPEC per board, e.g. ['esp8266', 'esp32,flash=4MB']
 * @param {string} o.stateDir flash files go here (kept after exit)
 * @param {number} o.timeScale --time-scale
 * @param {number} [o.seed]
 * @param {boolean} [o.tcp] also listen on TCP (free ports)
 * @param {boolean} [o.verbose] pass -v and copy espsim's stderr to ours
 * @returns {Promise<{child: JsonLinesChild, boards: object[], ready: object, stop: Function}>}
 */
export async function startEspsim(o) {
  if (!o.bin) {
    throw new Error('no espsim executable: set ESPSIM=/path/to/espsim (the CMake test passes $<TARGET_FILE:espsim>)');
  }
  if (!fs.existsSync(o.bin)) throw new Error(`ESPSIM=${o.bin} does not exist; build the espsim target first`);
  const args = [];
  for (const spec of o.boards) args.push('--board', spec);
  args.push('--state', o.stateDir, '--time-scale', String(o.timeScale), '--seed', String(o.seed ?? 1));
  if (o.tcp) args.push('--tcp', '0');
  args.push('--exit-on-eof');
  if (o.verbose) args.push('-v');
  const child = new JsonLinesChild(o.bin, args, { echoStderr: !!o.verbose });
  let ready;
  try {
    ready = await child.next((x) => x.ready === true, 20000, 'the {"ready":true} line');
  } catch (err) {
    await child.stop({ signal: 'SIGTERM' });
    throw new Error(`espsim ${args.join(' ')}: ${err.message}`);
  }
  const boards = child.objects.filter((x) => Number.isInteger(x.slot)).sort((a, b) => a.slot - b.slot);
  if (boards.length !== o.boards.length || ready.boards !== o.boards.length) {
    await child.stop({ signal: 'SIGTERM' });
    throw new Error(
      `espsim announced ${boards.length} boards (ready says ${ready.boards}), asked for ${o.boards.length}: ` +
        JSON.stringify(child.objects),
    );
  }
  return {
    child,
    boards,
    ready,
    args,
    /** SIGTERM, then wait; resolves with {code, signal}. */
    stop: () => child.stop({ signal: 'SIGTERM' }),
  };
}
