// A deterministic stand-in for a MicroPython firmware image: an ESP image header, then segments
// that look like the real thing to a compressor -- machine code (skewed random bytes), interned
// strings and error messages, and pointer / lookup tables. zlib level 9 (what esptool-js uses)
// shrinks it to about 0.6-0.7 of its size, like a real 1 MiB MicroPython build.

const WORDS = (
  'self None True False def class return import from lambda yield async await print len range ' +
  'object type int float str bytes bytearray list tuple dict set frozenset memoryview machine Pin ' +
  'UART SPI I2C PWM ADC RTC Timer WDT network WLAN socket select time sleep_ms ticks_ms ticks_diff ' +
  'os uos stat listdir mount umount flashbc esp esp32 neopixel framebuf micropython const heap ' +
  'gc collect mem_free mem_alloc sys stdin stdout stderr exit argv path modules implementation ' +
  'TypeError ValueError OSError KeyError IndexError AttributeError RuntimeError MemoryError ' +
  'StopIteration NotImplementedError ZeroDivisionError __init__ __name__ __main__ __class__ ' +
  'append extend insert remove pop clear copy count index reverse sort keys values items get'
).split(' ');

const MESSAGES = [
  "can't convert %s to int",
  'object of type %q has no len()',
  'function takes %d positional arguments but %d were given',
  'unsupported types for %q: %q, %q',
  "'%q' object isn't callable",
  'memory allocation failed, allocating %u bytes',
  'maximum recursion depth exceeded',
  'name %q is not defined',
  'local variable referenced before assignment',
  'invalid syntax for integer with base %d',
  'Traceback (most recent call last):',
  'MicroPython v1.22.0 on 2024-01-01; ESP module with ESP8266',
  'Type "help()" for more information.',
];

/** mulberry32: small, fast, deterministic. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function fillCode(out, off, len, rnd) {
  // Xtensa-ish code: 2/3-byte instructions, many opcodes common, operands random.
  const common = [0x06, 0x0c, 0x1c, 0x20, 0x22, 0x26, 0x28, 0x2d, 0x32, 0x36, 0x41, 0x82, 0xa2, 0xc0, 0xe0, 0xf0];
  for (let i = 0; i < len; i++) {
    const r = rnd();
    out[off + i] = r < 0.5 ? common[Math.floor(rnd() * common.length)] : Math.floor(rnd() * 256);
  }
}

function fillText(out, off, len, rnd) {
  let i = 0;
  while (i < len) {
    const s =
      rnd() < 0.25
        ? MESSAGES[Math.floor(rnd() * MESSAGES.length)]
        : WORDS[Math.floor(rnd() * WORDS.length)] + (rnd() < 0.3 ? String(Math.floor(rnd() * 1000)) : '');
    for (let k = 0; k < s.length && i < len; k++) out[off + i++] = s.charCodeAt(k);
    if (i < len) out[off + i++] = 0;
  }
}

function fillTables(out, off, len, rnd) {
  // Pointer tables into IROM/DRAM with small random strides, and qstr hash/length pairs.
  let p = 0x40200000 + Math.floor(rnd() * 0x10000) * 4;
  for (let i = 0; i + 4 <= len; i += 4) {
    if (rnd() < 0.5) {
      p += 4 * (1 + Math.floor(rnd() * 24));
      out[off + i] = p & 0xff;
      out[off + i + 1] = (p >>> 8) & 0xff;
      out[off + i + 2] = (p >>> 16) & 0xff;
      out[off + i + 3] = (p >>> 24) & 0xff;
    } else {
      out[off + i] = Math.floor(rnd() * 256);
      out[off + i + 1] = Math.floor(rnd() * 256);
      out[off + i + 2] = 1 + Math.floor(rnd() * 20);
      out[off + i + 3] = 0;
    }
  }
}

/**
 * Build the image.
 * @param {object} opts
 * @param {number} opts.size total bytes (multiple of 4)
 * @param {number} [opts.seed] PRNG seed: same seed, same bytes
 * @param {'esp8266'|'esp32'} [opts.chip] only changes the header's shape
 * @returns {Uint8Array}
 */
export function makeFirmwareImage({ size, seed = 1, chip = 'esp32' }) {
  const out = new Uint8Array(size).fill(0xff);
  const rnd = prng(seed);
  // Header: magic, 4 segments, DIO, 4 MB / 40 MHz (as esptool would leave it with "keep").
  out.set([0xe9, 0x04, 0x02, chip === 'esp8266' ? 0x40 : 0x20], 0);
  out.set([0x04, 0x10, 0x10, 0x40], 4); // entry point
  let off = chip === 'esp8266' ? 8 : 24;
  if (chip !== 'esp8266') out.set([0xee, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 8);
  // Segments until the end: code, strings, tables, in MicroPython-like proportions.
  const kinds = [
    [fillCode, 0.52],
    [fillText, 0.3],
    [fillTables, 0.18],
  ];
  while (off < size) {
    const r = rnd();
    let acc = 0;
    let fill = fillCode;
    for (const [f, w] of kinds) {
      acc += w;
      if (r < acc) {
        fill = f;
        break;
      }
    }
    const len = Math.min(size - off, 512 + Math.floor(rnd() * 8192)) & ~3 || size - off;
    fill(out, off, len, rnd);
    off += len;
  }
  return out;
}
