#!/usr/bin/env python3
"""Writes the small images tests/unit/test_profile.c loads (protocol doc §9.1 layout).

Run from anywhere: python3 gen.py. The outputs are committed; rerun only to change them.
  esp8266-app.bin  a valid ESP8266 firmware image (dio, 40m, 1MB in its header), 2 segments
  esp32-app.bin    a valid ESP32 firmware image (chip id 0, SHA-256 appended)
  esp32c3-app.bin  a valid ESP32-family image whose header names chip id 5 (ESP32-C3)
  blob.bin         6 KiB of data that is not a firmware image (byte 0 is 0x00)
  broken-e9.bin    starts with 0xE9 but its one segment runs past the end of the file
"""
import hashlib
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def data(seed, n):
    """Deterministic bytes that look like code: a tiny LCG."""
    out = bytearray()
    x = seed
    while len(out) < n:
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF
        out.append((x >> 16) & 0xFF)
    return bytes(out)


def image(segments, mode, size_freq, entry, ext=None, digest=False):
    out = bytearray(struct.pack("<BBBBI", 0xE9, len(segments), mode, size_freq, entry))
    if ext is not None:
        out += ext
    checksum = 0xEF
    for addr, payload in segments:
        assert len(payload) % 4 == 0
        out += struct.pack("<II", addr, len(payload)) + payload
        for b in payload:
            checksum ^= b
    while len(out) % 16 != 15:
        out.append(0)
    out.append(checksum)
    if digest:
        out += hashlib.sha256(out).digest()
    return bytes(out)


def esp32_ext(chip_id, digest):
    # WP pin 0xEE, drive strengths 0, chip id, old min rev 0, min rev 0, max rev 0xFFFF (any),
    # 4 reserved bytes, hash appended.
    return struct.pack("<B3sHBHH4sB", 0xEE, b"\0\0\0", chip_id, 0, 0, 0xFFFF, b"\0" * 4,
                       1 if digest else 0)


def write(name, content):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(content)
    print(f"{hashlib.sha256(content).hexdigest()}  {name} ({len(content)} bytes)")


def main():
    # ESP8266: mode dio (2), size 1MB (0x20) | freq 40m (0x0); IRAM and DRAM segments.
    write("esp8266-app.bin",
          image([(0x40100000, data(1, 3072)), (0x3FFE8000, data(2, 512))], 2, 0x20,
                0x40100004))
    # ESP32: mode dio, size 4MB (0x20) | 40m; DROM, IRAM; chip id 0 = ESP32.
    write("esp32-app.bin",
          image([(0x3F400020, data(3, 2048)), (0x40080000, data(4, 1536))], 2, 0x20,
                0x40080404, esp32_ext(0, True), True))
    # The same layout built for ESP32-C3 (chip id 5).
    write("esp32c3-app.bin",
          image([(0x3C000020, data(5, 2048)), (0x40380000, data(6, 1024))], 2, 0x20,
                0x40380080, esp32_ext(5, True), True))
    write("blob.bin", bytes([0x00, 0x01, 0x02, 0x03]) + data(7, 6 * 1024 - 4))
    broken = bytearray(struct.pack("<BBBBI", 0xE9, 1, 2, 0x20, 0x40100004))
    broken += struct.pack("<II", 0x40100000, 0x10000) + data(8, 256)
    write("broken-e9.bin", bytes(broken))


if __name__ == "__main__":
    main()
