#!/usr/bin/env python3
"""espstation soak: thousands of board-runs on espsim with random faults, every verdict checked
against the simulated flash.

    tools/soak/soak.py [--build DIR] [--quick] [--boards-total N] [--out FILE] [--keep] [options]

Each round starts a fresh espsim with a random bench (mixed ESP8266/ESP32, a random fault per
board: none, line corruption at 1e-6/1e-5/1e-4 per byte, or any other fault kind espsim has) and
runs `espstation run` on it with one profile per chip. Some rounds SIGKILL the station at a random
moment; a few send it SIGTERM/SIGINT/SIGHUP instead. After the round every board is judged from
its report, run.json, journal.jsonl and the board's flash file:

  wrong verdict   a board reported `pass` whose flash does not hold exactly the planned bytes
                  (or whose report does not match them: MD5s, image list, MAC, chip), or a pass
                  on a board whose faults make a pass impossible (no-download, wrong-chip,
                  bad-flash inside an image, unplug, mute:sync)
  lost report     a board with no device report; after a SIGKILL, one that journal.jsonl does
                  not name either
  clean-line fail a board without any fault that failed (in a round that was not killed)

This is a benchmark-style script, not a test: it is not registered in ctest. Exit status 0 iff
there were 0 wrong verdicts and 0 lost reports. See tools/soak/README.md.
"""

import argparse
import concurrent.futures
import hashlib
import json
import os
import random
import re
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CHIPS = ("esp8266", "esp32")
BOOT_OFFSET = {"esp8266": 0x0, "esp32": 0x1000}
RATES = ("1e-06", "1e-05", "0.0001")
RATE_LABEL = {"1e-06": "1e-6", "1e-05": "1e-5", "0.0001": "1e-4", None: "none"}
MiB = 1 << 20

# The images each chip's profile flashes: (name, offset, size, mkimage seed). The ESP32 gets a
# bootloader-sized image at the bootloader offset (header patched, appended SHA-256 recomputed)
# and an application at 0x10000 (written as is).
IMAGES = {
    "esp8266": [("e8266-fw", 0x0, 320 * 1024, 11)],
    "esp32": [("e32-boot", 0x1000, 48 * 1024, 21), ("e32-app", 0x10000, 256 * 1024, 22)],
}

# Header bytes 2-3 espstation writes for `flash: {mode: dio, freq: 40m, size: detect}` (protocol
# doc §9.2): mode dio = 2; byte 3 = size code (high nibble) | frequency code (40m = 0).
HDR_MODE_DIO = 0x02
HDR_SIZE = {"esp8266": {1 * MiB: 0x20, 2 * MiB: 0x30, 4 * MiB: 0x40},
            "esp32": {1 * MiB: 0x00, 2 * MiB: 0x10, 4 * MiB: 0x20}}

# Ops for slow/mute faults: what espstation may send to a ROM or a stub.
OPS = ("sync", "read_reg", "write_reg", "mem_begin", "mem_data", "mem_end", "spi_attach",
       "spi_set_params", "change_baudrate", "flash_defl_begin", "flash_defl_data",
       "flash_defl_end", "spi_flash_md5", "flash_begin", "flash_data", "erase_flash")
# Fault kinds and their weights (per board). "corrupt:*" are the line-noise rates.
FAULT_WEIGHTS = [
    ("none", 30),
    ("corrupt:1e-06", 8), ("corrupt:1e-05", 8), ("corrupt:0.0001", 8),
    ("no-download", 3), ("sync-after", 5), ("unplug-at", 4), ("bad-flash", 4),
    ("bad-flash-report", 4), ("slow", 6), ("mute", 5), ("wrong-chip", 3), ("baud-fail", 4),
    ("lose-end", 5),
]
# With this probability a board with a non-noise fault also gets line corruption.
COMBINE_NOISE = 0.1


def log(msg):
    print(f"[soak {time.strftime('%H:%M:%S')}] {msg}", flush=True)


class SoakError(Exception):
    pass


# ---- inputs ----------------------------------------------------------------------------------


def ensure_build(build):
    """As tools/bench/bench.py: configure BUILD (Release) if it has no cache, then bring the three
    targets up to date; with a failed build but old binaries, say so and use those."""
    exes = {
        "espstation": os.path.join(build, "src", "cli", "espstation"),
        "espsim": os.path.join(build, "tools", "sim", "espsim"),
        "mkimage": os.path.join(build, "tools", "mkimage", "mkimage"),
    }
    if not os.path.exists(os.path.join(build, "CMakeCache.txt")):
        log(f"configuring {build} (Release)")
        subprocess.run(["cmake", "-S", REPO, "-B", build, "-DCMAKE_BUILD_TYPE=Release"],
                       check=True, stdout=subprocess.DEVNULL)
    log(f"building espstation, espsim and mkimage in {build}")
    r = subprocess.run(["cmake", "--build", build, "-j2", "--target", *exes.keys()],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        if not all(os.access(p, os.X_OK) for p in exes.values()):
            raise SoakError(f"the build failed: {r.stderr.strip()[-2000:]}")
        log(f"WARNING: the build failed, using the binaries already in {build}: "
            f"{r.stderr.strip()[-300:]}")
    for name, p in exes.items():
        if not os.access(p, os.X_OK):
            raise SoakError(f"{p} is missing after the build ({name})")
    return exes


def git_describe():
    try:
        head = subprocess.run(["git", "-C", REPO, "rev-parse", "--short=12", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "diff", "--quiet", "HEAD", "--", "src",
                                "tools/sim", "include"]).returncode
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def make_images(mkimage, work):
    """Every image once: {chip: [{name, offset, path, sha256, data, boot}]}."""
    out = {}
    for chip, imgs in IMAGES.items():
        out[chip] = []
        for name, offset, size, seed in imgs:
            path = os.path.join(work, f"{name}.bin")
            text = subprocess.run([mkimage, "--chip", chip, "--size", str(size), "--seed",
                                   str(seed), "-o", path], check=True, capture_output=True,
                                  text=True).stdout
            m = re.search(r"\b([0-9a-f]{64})\b", text)
            if not m:
                raise SoakError(f"mkimage printed no SHA-256: {text!r}")
            with open(path, "rb") as fh:
                data = fh.read()
            if hashlib.sha256(data).hexdigest() != m.group(1):
                raise SoakError(f"{path}: SHA-256 differs from what mkimage printed")
            out[chip].append({"name": name, "offset": offset, "path": path, "sha256": m.group(1),
                              "data": data, "boot": offset == BOOT_OFFSET[chip]})
    return out


def write_profile(path, chip, images, variant):
    lines = [f"# written by tools/soak/soak.py", f"name: soak-{chip}", f"chip: {chip}",
             "baud: 115200"]
    if variant["flash_baud"][chip] != 115200:
        lines.append(f"flash_baud: {variant['flash_baud'][chip]}")
    lines += ["flash: {mode: dio, freq: 40m, size: detect}", f"erase: {variant['erase'][chip]}",
              "images:"]
    for img in images:
        lines += [f"  - offset: {img['offset']:#x}", f"    file: {img['path']}",
                  f"    sha256: {img['sha256']}"]
    lines += ["verify: md5", "loader: stub", "reset: {before: auto, after: hard}",
              f"retries: {variant['retries']}", "reports: reports"]
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")


# ---- the random bench --------------------------------------------------------------------------


def draw_fault(rng, chip, images):
    """One board's faults: (spec items, description dict). Also decides whether a pass is
    impossible with these faults (why_impossible, or None)."""
    kinds, weights = zip(*FAULT_WEIGHTS)
    kind = rng.choices(kinds, weights)[0]
    items, rate, why = [], None, None
    imgs = images[chip]
    if kind == "none":
        pass
    elif kind.startswith("corrupt:"):
        rate = kind.split(":", 1)[1]
        items.append(kind)
    elif kind == "no-download":
        items.append(kind)
        why = "no-download: the board never enters the loader"
    elif kind == "wrong-chip":
        items.append(kind)
        why = "wrong-chip: the magic register names the other chip"
    elif kind == "baud-fail":
        items.append(kind)
    elif kind == "sync-after":
        items.append(f"sync-after:{rng.choice([0, 1, 2, 3, 4, 6, 8, 12, 20])}")
    elif kind == "unplug-at":
        # espsim unplugs once the data received reaches PCT % of blocks x block size of the
        # current write, which a short last block may never reach: whether it happened is read
        # from espsim's exit summary ("unplugged"), see sim_summary().
        items.append(f"unplug-at:{rng.choice([1, 5, 20, 50, 80, 95, 99, 100])}")
    elif kind in ("bad-flash", "bad-flash-report"):
        img = rng.choice(imgs)
        rel = rng.randrange(len(img["data"]))
        if rng.random() < 0.15:  # the header bytes the station patches: a favourite for bugs
            rel = rng.choice([0, 1, 2, 3])
        addr = img["offset"] + rel
        items.append(f"{kind}:{addr:#x}")
        why = f"{kind}:{addr:#x} is inside {img['name']} (+{rel:#x})"
    elif kind in ("slow", "mute"):
        op = rng.choice(OPS)
        if kind == "slow":
            items.append(f"slow:{op}:{rng.choice([20, 100, 500, 1500, 3000, 6000])}")
        else:
            items.append(f"mute:{op}")
            if op == "sync":
                why = "mute:sync: the board never answers SYNC"
    elif kind == "lose-end":
        items.append(f"lose-end:{rng.randint(1, 24)}")
    if kind != "none" and not kind.startswith("corrupt:") and rng.random() < COMBINE_NOISE:
        rate = rng.choice(RATES)
        items.append(f"corrupt:{rate}")
    return items, {"kind": kind, "rate": rate, "impossible": why}


def draw_round(rng, n, images, o):
    boards = []
    for slot in range(n):
        chip = rng.choice(CHIPS)
        flash = rng.choices([4 * MiB, 2 * MiB, 1 * MiB], [6, 2, 2])[0]
        items, desc = draw_fault(rng, chip, images)
        spec = ",".join([chip, f"flash={flash // MiB}MB"] + [f"fault={x}" for x in items])
        boards.append({"slot": slot, "chip": chip, "flash_size": flash, "spec": spec,
                       "faults": items, **desc})
    variant = {
        "flash_baud": {"esp8266": rng.choice([115200, 460800, 460800, 921600]),
                       "esp32": rng.choice([115200, 460800, 921600, 921600])},
        "erase": {c: ("all" if rng.random() < 0.1 else "none") for c in CHIPS},
        "retries": rng.choice([1, 3, 3, 3, 5]),
    }
    u = rng.random()
    if u < o.kill_fraction:
        variant["signal"] = "SIGKILL"
    elif u < o.kill_fraction + o.signal_fraction:
        variant["signal"] = rng.choice(["SIGTERM", "SIGINT", "SIGHUP"])
    else:
        variant["signal"] = None
    variant["signal_at"] = rng.random()  # fraction of the expected round time
    variant["sim_seed"] = rng.randrange(1, 1 << 31)
    return boards, variant


# ---- one round -------------------------------------------------------------------------------


class Espsim:
    def __init__(self, exe, d, bench_file, scale, seed):
        self.argv = [exe, "--bench", bench_file, "--dir", os.path.join(d, "sim"), "--state",
                     os.path.join(d, "state"), "--time-scale", str(scale), "--seed", str(seed),
                     "--exit-on-eof"]
        self.err_path = os.path.join(d, "espsim.stderr")
        self.err = open(self.err_path, "wb")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.err)
        self.boards = []
        buf = b""
        deadline = time.monotonic() + 30
        out = self.proc.stdout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([out], [], [], left)[0]:
                self.stop()
                raise SoakError(f"espsim did not print its ready line within 30 s: {self.tail()}")
            chunk = os.read(out.fileno(), 65536)
            if not chunk:
                self.stop()
                raise SoakError(f"espsim exited during start-up: {self.tail()}")
            buf += chunk
            done = False
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                obj = json.loads(line)
                if obj.get("ready"):
                    done = True
                elif "slot" in obj:
                    self.boards.append(obj)
            if done:
                break
        self.boards.sort(key=lambda b: b["slot"])

    def tail(self):
        if not self.err.closed:
            self.err.flush()
        with open(self.err_path, "rb") as fh:
            return fh.read()[-1500:].decode(errors="replace")

    def diagnose(self, why):
        """What a hung espsim is doing, into espsim.hang.txt next to its stderr: process state,
        CPU time and kernel wait channel from /proc, and every thread's stack (gdb, if any)."""
        pid = self.proc.pid
        out = [f"== {time.strftime('%H:%M:%S')} {why} (pid {pid})"]
        for name in ("status", "wchan", "stat", "stack"):
            try:
                with open(f"/proc/{pid}/{name}") as fh:
                    text = fh.read()
                if name == "status":
                    text = "".join(l + "\n" for l in text.splitlines()
                                   if l.split(":")[0] in ("State", "Threads", "VmRSS"))
                out.append(f"-- /proc/{pid}/{name}\n{text.strip()}")
            except OSError as e:
                out.append(f"-- /proc/{pid}/{name}: {e}")
        gdb = shutil.which("gdb")
        if gdb:
            try:
                r = subprocess.run([gdb, "-p", str(pid), "-batch", "-ex", "thread apply all bt"],
                                   capture_output=True, text=True, timeout=60)
                out.append("-- gdb\n" + r.stdout[-8000:] + r.stderr[-1000:])
            except (OSError, subprocess.TimeoutExpired) as e:
                out.append(f"-- gdb: {e}")
        with open(os.path.join(os.path.dirname(self.err_path), "espsim.hang.txt"), "a") as fh:
            fh.write("\n".join(out) + "\n")

    def summary(self):
        """{slot: the board's state at exit} from espsim's stderr summary lines
        ("espsim: slot 3 (...): frames in 5, out 7; flash written 0 bytes, 0 erases; rom, unplugged")."""
        out = {}
        with open(self.err_path, "rb") as fh:
            for line in fh.read().decode(errors="replace").splitlines():
                m = re.match(r"espsim: slot (\d+) \(.*\): (.*)$", line)
                if m:
                    out[int(m.group(1))] = m.group(2)
        return out

    def stop(self):
        """EOF on stdin: espsim syncs the flash files and exits 0. Returns its exit status."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.diagnose("no exit 30 s after stdin EOF")
            self.proc.terminate()
            try:
                code = self.proc.wait(timeout=10)
                code = f"hung at exit: still running 30 s after stdin EOF; SIGTERM ended it ({code})"
            except subprocess.TimeoutExpired:
                self.diagnose("no exit 10 s after SIGTERM")
                self.proc.kill()
                code = self.proc.wait()
                code = "hung at exit: ignored stdin EOF (30 s) and SIGTERM (10 s); SIGKILLed"
        self.proc.stdout.close()
        self.err.close()
        return code


def run_station(exe, argv, log_path, n, sig, at_s, watchdog_s):
    """Runs espstation with stdout+stderr in log_path. With sig, sends it once every slot has
    printed a line, after at_s more seconds (unless it has exited by then). Returns
    {code, signal, sent, wall_s, hung}."""
    t0 = time.monotonic()
    with open(log_path, "wb") as out:
        proc = subprocess.Popen([exe, *argv], stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    sent, hung, fire_at = None, False, None
    seen = set()
    pos = 0
    pat = re.compile(rb"slot (\d+) ")
    while True:
        try:
            code = proc.wait(timeout=0.02)
            break
        except subprocess.TimeoutExpired:
            pass
        now = time.monotonic()
        if sig and sent is None:
            if fire_at is None:
                with open(log_path, "rb") as fh:
                    fh.seek(pos)
                    chunk = fh.read()
                cut = chunk.rfind(b"\n") + 1
                pos += cut
                seen.update(int(m.group(1)) for m in pat.finditer(chunk[:cut]))
                if len(seen) >= n:
                    fire_at = now + at_s
            elif now >= fire_at:
                proc.send_signal(getattr(signal, sig))
                sent = {"signal": sig, "after_s": now - t0}
        if now - t0 > watchdog_s:
            hung = True
            proc.kill()
            code = proc.wait()
            break
    return {"code": code if code >= 0 else None, "signal": signal.Signals(-code).name
            if code < 0 else None, "sent": sent, "wall_s": time.monotonic() - t0, "hung": hung}


def load_json(path):
    with open(path) as fh:
        return json.load(fh)


def read_run(reports_dir, n, problems, killed=False):
    """The run directory's evidence: {run_dir, run_json, reports_by_slot, journal_slots,
    journal_done, journal_ok}."""
    ev = {"run_dir": None, "run_json": None, "by_slot": {}, "journal_slots": {},
          "journal_done": {}, "journal_end": False}
    runs = [os.path.join(reports_dir, x) for x in os.listdir(reports_dir)] \
        if os.path.isdir(reports_dir) else []
    runs = [r for r in runs if os.path.isdir(r)]
    if len(runs) > 1:
        problems.append(f"{len(runs)} run directories: {', '.join(map(os.path.basename, runs))}")
    if not runs:
        return ev
    run_dir = max(runs, key=os.path.getmtime)
    ev["run_dir"] = run_dir
    for name in sorted(os.listdir(run_dir)):
        p = os.path.join(run_dir, name)
        if name == "journal.jsonl":
            continue
        if name == "run.json":
            try:
                ev["run_json"] = load_json(p)
            except ValueError as e:
                problems.append(f"run.json does not parse: {e}")
            continue
        if not name.endswith(".json"):
            # A SIGKILL may land between writing a report's temporary file and renaming it.
            if not (killed and ".json.tmp." in name):
                problems.append(f"stray file in the run directory: {name}")
            continue
        try:
            rep = load_json(p)
        except ValueError as e:
            problems.append(f"report {name} does not parse: {e}")
            continue
        slot = rep.get("slot")
        if not isinstance(slot, int) or not 0 <= slot < n:
            problems.append(f"report {name} names slot {slot!r}")
            continue
        if slot in ev["by_slot"]:
            problems.append(f"two reports for slot {slot}: {ev['by_slot'][slot][0]} and {name}")
            continue
        ev["by_slot"][slot] = (name, rep)
    jpath = os.path.join(run_dir, "journal.jsonl")
    if os.path.exists(jpath):
        with open(jpath, "rb") as fh:
            text = fh.read()
        if text and not text.endswith(b"\n"):
            problems.append("journal.jsonl does not end with a whole line")
        for i, line in enumerate(text.split(b"\n")):
            if not line.strip():
                continue
            try:
                e = json.loads(line)
            except ValueError:
                problems.append(f"journal.jsonl line {i + 1} is not JSON: {line[:80]!r}")
                continue
            s = e.get("slot")
            if isinstance(s, int):
                ev["journal_slots"][s] = e
                if e.get("event") == "done":
                    ev["journal_done"][s] = e
            if e.get("event") == "run_end":
                ev["journal_end"] = True
    else:
        problems.append("no journal.jsonl")
    return ev


def check_pass(b, rep, flash, images, sim_board):
    """Why a reported pass is wrong, or None: the flash must hold exactly the planned bytes (bytes
    2-3 of the image at the bootloader offset as the profile patches them, an appended SHA-256
    recomputed over the patched image), everything else must still be erased, and the report must
    say what is in flash."""
    chip = b["chip"]
    why = []
    planned = images[chip]
    rimgs = {i.get("offset"): i for i in rep.get("images") or []}
    if sorted(rimgs) != sorted(i["offset"] for i in planned):
        why.append(f"report lists images at {sorted(rimgs)}, planned "
                   f"{[i['offset'] for i in planned]}")
    covered = []
    for img in planned:
        data, off = img["data"], img["offset"]
        got = flash[off:off + len(data)]
        covered.append((off, off + len(data)))
        end = len(data)
        skip = set()
        if img["boot"]:
            skip = {2, 3}
            want2, want3 = HDR_MODE_DIO, HDR_SIZE[chip][b["flash_size"]]  # | 40m = 0
            if got[2] != want2 or got[3] != want3:
                why.append(f"{img['name']}: header bytes 2-3 are {got[2]:02x} {got[3]:02x}, the "
                           f"profile asks for {want2:02x} {want3:02x}")
            if (chip == "esp32" and data[0] == 0xE9 and data[23] == 1
                    and hashlib.sha256(data[:-32]).digest() == data[-32:]):
                end -= 32
                if hashlib.sha256(got[:end]).digest() != got[end:end + 32]:
                    why.append(f"{img['name']}: the appended SHA-256 in flash is not the digest "
                               f"of the flashed image")
        same = (got[:2] == data[:2] and got[4:end] == data[4:end]) if skip else \
            got[:end] == data[:end]
        diff = None if same else next(i for i in range(end) if got[i] != data[i] and i not in skip)
        if diff is not None:
            ndiff = sum(1 for i in range(end) if got[i] != data[i] and i not in skip)
            why.append(f"{img['name']}: flash differs at {off + diff:#x} (+{diff:#x}): "
                       f"{got[diff]:02x} instead of {data[diff]:02x}; {ndiff} byte(s) differ")
        md5 = hashlib.md5(got).hexdigest()
        r = rimgs.get(off)
        if r is not None:
            if r.get("sha256") != img["sha256"]:
                why.append(f"{img['name']}: report sha256 {r.get('sha256')}")
            if r.get("md5_sent") != md5 or r.get("md5_read") != md5:
                why.append(f"{img['name']}: flash MD5 {md5}, report md5_sent "
                           f"{r.get('md5_sent')} md5_read {r.get('md5_read')}")
            if r.get("verified") is not True:
                why.append(f"{img['name']}: report says verified={r.get('verified')!r}")
    # Nothing outside the images: the flash file started erased (0xFF) and erase: all leaves it so.
    covered.sort()
    pos = 0
    for a, z in covered + [(len(flash), len(flash))]:
        if pos < a:
            seg = flash[pos:a]
            if seg.count(0xFF) != len(seg):
                bad = next(i for i, x in enumerate(seg) if x != 0xFF)
                why.append(f"flash outside the images is written at {pos + bad:#x}")
                break
        pos = max(pos, z)
    if rep.get("mac") != sim_board.get("mac"):
        why.append(f"report MAC {rep.get('mac')}, the board's is {sim_board.get('mac')}")
    name = ((rep.get("chip") or {}).get("name") or "").lower()
    if name != chip:
        why.append(f"report chip {name!r}, the board is {chip}")
    if b["impossible"]:
        why.append(f"a pass is impossible: {b['impossible']}")
    return "; ".join(why) or None


def run_round(idx, rng, o, exes, images, work, est_s):
    boards, variant = draw_round(rng, o.boards_per_round, images, o)
    d = os.path.join(work, f"round-{idx:05d}")
    os.makedirs(d)
    bench_file = os.path.join(d, "bench.txt")
    with open(bench_file, "w") as fh:
        fh.write("".join(b["spec"] + "\n" for b in boards))
    profiles = []
    for chip in CHIPS:
        p = os.path.join(d, f"soak-{chip}.yaml")
        write_profile(p, chip, images[chip], variant)
        profiles.append(p)
    problems = []
    sim = Espsim(exes["espsim"], d, bench_file, o.time_scale, variant["sim_seed"])
    try:
        reports = os.path.join(d, "reports")
        argv = ["run", *profiles]
        for sb in sim.boards:
            argv += ["--port", sb["port"]]
        argv += ["--timeout-scale", str(o.time_scale), "--lines", "--reports", reports]
        with open(os.path.join(d, "cmd.sh"), "w") as fh:
            q = lambda a: "'" + a.replace("'", "'\\''") + "'"
            fh.write("# espsim, then espstation, as the soak ran them\n")
            fh.write(" ".join(map(q, sim.argv)) + " &\n")
            fh.write(" ".join(map(q, [exes["espstation"], *argv])) + "\n")
        sig = variant["signal"]
        at = variant["signal_at"] * est_s * 1.2
        st = run_station(exes["espstation"], argv, os.path.join(d, "station.log"), len(boards),
                         sig, at, o.watchdog)
    finally:
        sim_code = sim.stop()
    summary = sim.summary()
    for b in boards:
        if b["kind"] == "unplug-at" and summary.get(b["slot"], "").endswith("unplugged"):
            b["impossible"] = f"{b['faults'][0]}: espsim unplugged the board during the write"
    if sim_code != 0:
        what = (f"died of {signal.Signals(-sim_code).name}" if isinstance(sim_code, int)
                and sim_code < 0 else f"exited {sim_code}")
        problems.append(f"espsim {what} (a simulator crash; stderr: "
                        f"{sim.tail()[-300:].strip() or 'empty'})")
    killed = st["sent"] is not None and st["sent"]["signal"] == "SIGKILL" and st["signal"] == "SIGKILL"
    stopped = st["sent"] is not None and not killed
    if st["hung"]:
        problems.append(f"espstation still running after {o.watchdog} s: killed (a hang)")
    elif st["signal"] and not killed:
        problems.append(f"espstation died of {st['signal']} (a crash)")
    elif st["code"] is not None and st["code"] not in (0, 1):
        problems.append(f"espstation exited {st['code']}")

    n = len(boards)
    ev = read_run(reports, n, problems, killed)
    if not killed and not st["hung"]:
        if ev["run_dir"] is None:
            problems.append("no run directory")
        elif ev["run_json"] is None:
            problems.append("no run.json")
        if ev["run_dir"] is not None and not ev["journal_end"]:
            problems.append("journal.jsonl has no run_end")
    rj = {s.get("slot"): s for s in (ev["run_json"] or {}).get("slots", [])}

    results = []
    for b, sb in zip(boards, sim.boards):
        s = b["slot"]
        r = {"round": idx, "slot": s, "chip": b["chip"], "spec": b["spec"], "kind": b["kind"],
             "rate": b["rate"], "impossible": b["impossible"], "killed": killed,
             "signalled": st["sent"]["signal"] if st["sent"] else None, "result": None,
             "phase": None, "code": None, "message": None, "wrong": None, "lost": False,
             "clean_fail": False, "notes": [], "sim": summary.get(s)}
        name_rep = ev["by_slot"].get(s)
        rep = name_rep[1] if name_rep else None
        if rep is not None:
            r["report"] = name_rep[0]
            r["result"] = rep.get("result")
            err = rep.get("error") or {}
            r["phase"], r["code"], r["message"] = err.get("phase"), err.get("code"), err.get("message")
            r["retries"] = rep.get("retries")
            r["baud"] = rep.get("baud")
            r["duration_ms"] = rep.get("duration_ms")
            if r["result"] not in ("pass", "fail", "interrupted"):
                r["notes"].append(f"report result {r['result']!r}")
        elif killed and s in ev["journal_slots"]:
            r["result"] = "killed"
            last = ev["journal_slots"][s]
            r["phase"] = last.get("phase") or last.get("event")
        else:
            r["lost"] = True
            r["result"] = "lost"
            j = ev["journal_slots"].get(s)
            r["notes"].append("no report" + (" and not in journal.jsonl" if killed else "") +
                              (f"; journal's last event: {json.dumps(j)[:200]}" if j else ""))
        rs = rj.get(s)
        if rs is not None and rep is not None:
            if rs.get("result") != rep.get("result"):
                r["notes"].append(f"run.json says {rs.get('result')}, the report "
                                  f"{rep.get('result')}")
            if rs.get("report_file") != name_rep[0]:
                r["notes"].append(f"run.json names {rs.get('report_file')}, found {name_rep[0]}")
        elif ev["run_json"] is not None and rs is None:
            r["notes"].append("run.json does not list the slot")
        jd = ev["journal_done"].get(s)
        if rep is not None and jd is not None and jd.get("result") != rep.get("result"):
            r["notes"].append(f"journal done says {jd.get('result')}, the report {rep.get('result')}")
        if rep is not None and not killed and jd is None:
            r["notes"].append("journal.jsonl has no done line")
        said_pass = r["result"] == "pass" or (rs is not None and rs.get("result") == "pass")
        if said_pass:
            with open(sb["flash"], "rb") as fh:
                flash = fh.read()
            r["wrong"] = check_pass(b, rep or {}, flash, images, sb)
        if b["kind"] == "none" and not b["rate"] and r["result"] in ("fail", "lost") \
                and not killed and not stopped:
            r["clean_fail"] = True
        results.append(r)
    if st["code"] is not None and not stopped and not st["hung"]:
        all_pass = all(r["result"] == "pass" for r in results)
        if (st["code"] == 0) != all_pass:
            problems.append(f"espstation exited {st['code']} but {sum(r['result'] == 'pass' for r in results)}"
                            f" of {n} boards passed")
    rnd = {"round": idx, "dir": d, "variant": variant, "station": st, "espsim_exit": sim_code,
           "problems": problems, "run_dir": ev["run_dir"]}
    return rnd, results


def self_test(o, exes, images, work):
    """Proves the judge before trusting it: one round of clean boards (no faults, no signal) must
    all pass with no complaint, and then, on each board's real flash file and report, every
    single-byte change the soak must catch (a patched header byte, an image byte, the appended
    SHA-256, a byte outside the images) must make check_pass() call the pass wrong."""
    clean = argparse.Namespace(**vars(o))
    clean.kill_fraction = clean.signal_fraction = 0.0
    saved = FAULT_WEIGHTS[:]
    FAULT_WEIGHTS[:] = [("none", 1)]
    try:
        rnd, res = run_round(0, random.Random(o.seed), clean, exes, images, work, 4.0)
    finally:
        FAULT_WEIGHTS[:] = saved
    bad = [r for r in res if r["result"] != "pass" or r["wrong"] or r["notes"]] + \
        [{"problems": rnd["problems"]}] * bool(rnd["problems"])
    if bad:
        raise SoakError(f"self-test: a clean round did not pass cleanly (kept in {rnd['dir']}): "
                        f"{json.dumps(bad)[:1500]}")
    sims = {}
    for r in res:
        name = r["report"]
        with open(os.path.join(rnd["run_dir"], name)) as fh:
            rep = json.load(fh)
        with open(os.path.join(rnd["dir"], "state", f"slot{r['slot']}.bin"), "rb") as fh:
            flash = fh.read()
        b = {"chip": r["chip"], "flash_size": len(flash), "impossible": None}
        sims[r["slot"]] = rep["mac"]
        for img in images[r["chip"]]:
            n = len(img["data"])
            for rel in (0, 2, 3, 4, n // 2, n - 1):
                for where in (img["offset"] + rel, img["offset"] + n):
                    if where >= len(flash):
                        continue
                    f2 = bytearray(flash)
                    f2[where] ^= 0x01
                    if not check_pass(b, rep, bytes(f2), images, {"mac": rep["mac"]}):
                        raise SoakError(f"self-test: a flipped byte at {where:#x} on slot "
                                        f"{r['slot']} ({r['chip']}) was not caught")
        f2 = bytearray(flash)
        f2[len(flash) - 1] ^= 0x01
        if not check_pass(b, rep, bytes(f2), images, {"mac": rep["mac"]}):
            raise SoakError("self-test: a byte written at the end of the flash was not caught")
    shutil.rmtree(rnd["dir"], ignore_errors=True)
    log(f"self-test: {len(res)} clean boards passed; every flipped byte was caught")


# ---- tables -----------------------------------------------------------------------------------


def table(head, rows):
    w = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    line = lambda r: "| " + " | ".join(str(x).rjust(k) for x, k in zip(r, w)) + " |"
    return "\n".join([line(head), "|" + "|".join("-" * (k + 2) for k in w) + "|"] +
                     [line(r) for r in rows])


def pct(a, b):
    return f"{100 * a / b:.1f} %" if b else "-"


def summarize(results, rounds, elapsed, o, commit, cpu):
    out = []
    p = out.append
    n = len(results)
    passes = sum(r["result"] == "pass" for r in results)
    fails = [r for r in results if r["result"] in ("fail", "interrupted")]
    killed = sum(r["result"] == "killed" for r in results)
    wrong = [r for r in results if r["wrong"]]
    lost = [r for r in results if r["lost"]]
    clean = [r for r in results if r["clean_fail"]]
    noted = [r for r in results if r["notes"] and not r["lost"]]
    probs = [(x["round"], pr) for x in rounds for pr in x["problems"]]
    nk = sum(1 for x in rounds if x["station"]["sent"] and x["station"]["sent"]["signal"] == "SIGKILL")
    ns = sum(1 for x in rounds if x["station"]["sent"] and x["station"]["sent"]["signal"] != "SIGKILL")
    p(f"espstation soak: {len(rounds)} rounds of {o.boards_per_round} boards, espsim "
      f"--time-scale {o.time_scale} (station --timeout-scale {o.time_scale}), tree {commit}, "
      f"seed {o.seed}, {elapsed / 60:.1f} min")
    p(f"rounds SIGKILLed: {nk}; rounds stopped by SIGTERM/SIGINT/SIGHUP: {ns}")
    p("")
    p(table(["board-runs", "passes", "fails", "killed (in journal)", "wrong verdicts",
             "lost reports", "clean-line fails", "report notes", "round problems"],
            [[n, passes, len(fails), killed, len(wrong), len(lost), len(clean), len(noted),
              len(probs)]]))
    if lost:
        by = {}
        for r in lost:
            k = r["signalled"] or "no signal"
            by[k] = by.get(k, 0) + 1
        p("lost reports by what the round sent the station: " +
          ", ".join(f"{k} {v}" for k, v in sorted(by.items())))
    p(f"CPU of every espsim + espstation: {cpu:.0f} s in {elapsed:.0f} s "
      f"({cpu / elapsed if elapsed else 0:.2f} CPUs; {o.jobs} round(s) at a time)")
    p("")
    phases = {}
    for r in fails:
        k = f"{r['result']}:{r['phase']}" if r["result"] != "fail" else str(r["phase"])
        phases[k] = phases.get(k, 0) + 1
    order = ["open", "reset", "sync", "detect", "identify", "stub", "baud", "attach", "flash_id",
             "plan", "erase", "write", "verify", "run"]
    keys = sorted(phases, key=lambda k: (order.index(k) if k in order else 99, k))
    p("fails by phase (error.phase of the report)")
    p(table(keys, [[phases[k] for k in keys]]) if keys else "  (none)")
    p("")
    p("line corruption (boards with no other fault, in rounds not killed or stopped)")
    rows = []
    for rate in RATES + (None,):
        sel = [r for r in results if r["rate"] == rate and r["kind"] in ("none", f"corrupt:{rate}")
               and not r["killed"] and not r["signalled"]]
        ok = sum(r["result"] == "pass" for r in sel)
        rows.append([RATE_LABEL[rate], len(sel), ok, pct(ok, len(sel))])
    p(table(["corrupt rate", "board-runs", "passes", "pass %"], rows))
    p("")
    p("by fault kind (rounds not killed or stopped; '+noise' boards excluded)")
    rows = []
    for kind, _ in FAULT_WEIGHTS:
        sel = [r for r in results if r["kind"] == kind and not r["killed"] and not r["signalled"]
               and (kind.startswith("corrupt:") or kind == "none" or not r["rate"])]
        ok = sum(r["result"] == "pass" for r in sel)
        ph = {}
        for r in sel:
            if r["result"] != "pass":
                ph[str(r["phase"])] = ph.get(str(r["phase"]), 0) + 1
        top = ", ".join(f"{k} {v}" for k, v in sorted(ph.items(), key=lambda kv: -kv[1])[:4])
        rows.append([kind, len(sel), ok, pct(ok, len(sel)), top or "-"])
    p(table(["fault", "board-runs", "passes", "pass %", "fails by phase"], rows))
    for title, lst, fmt in (
            ("WRONG VERDICTS", wrong, lambda r: r["wrong"]),
            ("LOST REPORTS", lost, lambda r: "; ".join(r["notes"])),
            ("FAILS ON A CLEAN LINE", clean, lambda r: f"{r['phase']}/{r['code']}: {r['message']}"),
            ("REPORT NOTES", noted, lambda r: "; ".join(r["notes"]))):
        if lst:
            p("")
            p(f"{title} ({len(lst)})")
            for r in lst[:40]:
                p(f"  round {r['round']} slot {r['slot']} [{r['spec']}] {r['result']}: "
                  f"{fmt(r)[:400]}")
            if len(lst) > 40:
                p(f"  ... {len(lst) - 40} more in the JSON")
    if probs:
        p("")
        p(f"ROUND PROBLEMS ({len(probs)})")
        for rd, pr in probs[:40]:
            p(f"  round {rd}: {pr[:400]}")
    return "\n".join(out), len(wrong), len(lost)


# ---- main -------------------------------------------------------------------------------------


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(REPO, "build", "release"),
                    help="CMake build directory (default build/release; configured and built "
                         "if missing)")
    ap.add_argument("--boards-total", type=int, default=10000, help="board-runs (default 10000)")
    ap.add_argument("--boards-per-round", type=int, default=16, help="boards per espsim (16)")
    ap.add_argument("--time-scale", type=float, default=0.1,
                    help="espsim --time-scale and espstation --timeout-scale (default 0.1)")
    ap.add_argument("--kill-fraction", type=float, default=0.1,
                    help="share of rounds whose station gets SIGKILL at a random moment (0.1)")
    ap.add_argument("--signal-fraction", type=float, default=0.03,
                    help="share of rounds stopped by SIGTERM/SIGINT/SIGHUP instead (0.03)")
    ap.add_argument("--jobs", type=int, default=1,
                    help="rounds run at the same time (default 1; each round uses ~0.2 CPU)")
    ap.add_argument("--seed", type=int, default=None, help="master seed (default: random)")
    ap.add_argument("--keep", action="store_true",
                    help="keep the directories of rounds with a wrong verdict, lost report, "
                         "clean-line fail or other problem (at most --keep-max)")
    ap.add_argument("--keep-max", type=int, default=30)
    ap.add_argument("--workdir", help="where round directories go (default: a fresh temp dir)")
    ap.add_argument("--watchdog", type=float, default=120,
                    help="seconds before a station run counts as hung and is killed (120)")
    ap.add_argument("--out", help="raw results as JSON (default BUILD/soak.json)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: about 200 board-runs, about 2 minutes")
    o = ap.parse_args(argv)
    if o.quick and "--boards-total" not in " ".join(argv):
        o.boards_total = 200
    if o.seed is None:
        o.seed = random.SystemRandom().randrange(1, 1 << 31)
    if o.boards_per_round < 1 or o.boards_total < 1 or o.jobs < 1:
        ap.error("--boards-total, --boards-per-round and --jobs must be at least 1")
    if not 0.02 <= o.time_scale <= 10:
        ap.error("--time-scale must be within 0.02..10")
    o.build = os.path.abspath(o.build)
    o.out = o.out or os.path.join(o.build, "soak.json")
    return o


def main(argv):
    o = parse_args(argv)
    t0 = time.monotonic()
    exes = ensure_build(o.build)
    commit = git_describe()
    if o.workdir:
        os.makedirs(o.workdir, exist_ok=True)
        work = tempfile.mkdtemp(prefix="espstation-soak-", dir=o.workdir)
    else:
        work = tempfile.mkdtemp(prefix="espstation-soak-")
    log(f"seed {o.seed}, {o.boards_total} board-runs, {o.boards_per_round} per round, "
        f"time scale {o.time_scale}, work {work}")
    images = make_images(exes["mkimage"], work)
    self_test(o, exes, images, work)
    master = random.Random(o.seed)
    results, rounds, kept = [], [], []
    durations = []
    interrupted = False
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    planned = -(-o.boards_total // o.boards_per_round)

    def finish(idx, rnd, res):
        rounds.append(rnd)
        results.extend(res)
        if not rnd["station"]["sent"]:
            durations.append(rnd["station"]["wall_s"])
        bad = [r for r in res if r["wrong"] or r["lost"] or r["clean_fail"]]
        flag = bool(bad or rnd["problems"] or any(r["notes"] for r in res))
        if flag and o.keep and len(kept) < o.keep_max:
            kept.append(rnd["dir"])
            rnd["kept"] = True
        else:
            shutil.rmtree(rnd["dir"], ignore_errors=True)
            rnd["kept"] = False
        el = time.monotonic() - t0
        wv = sum(1 for r in results if r["wrong"])
        lo = sum(1 for r in results if r["lost"])
        cf = sum(1 for r in results if r["clean_fail"])
        sent = rnd["station"]["sent"]
        tag = f" {sent['signal']} at {sent['after_s']:.1f} s" if sent else ""
        eta = el / len(results) * max(0, o.boards_total - len(results))
        log(f"round {idx}: {sum(r['result'] == 'pass' for r in res)}/{len(res)} pass in "
            f"{rnd['station']['wall_s']:.1f} s{tag}{' KEPT ' + rnd['dir'] if rnd.get('kept') else ''}"
            f" | {len(results)}/{o.boards_total} board-runs, wrong {wv}, lost {lo}, "
            f"clean-line fails {cf}, problems {sum(len(x['problems']) for x in rounds)}"
            f" | {el / 60:.1f} min, ~{eta / 60:.0f} min left")
        for r in bad:
            log(f"  !! round {idx} slot {r['slot']} [{r['spec']}] {r['result']} "
                f"{r['phase']}/{r['code']}: "
                f"{(r['wrong'] or '; '.join(r['notes']) or r['message'] or '')[:300]}")
        for pr in rnd["problems"]:
            log(f"  !! round {idx}: {pr[:300]}")

    # Rounds run o.jobs at a time (threads: each round mostly waits on its two children). Every
    # round's randomness comes from the master seed in round order, whatever finishes first.
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=o.jobs)
    running = {}
    idx = 0
    setup_errors = 0
    try:
        while idx < planned or running:
            while idx < planned and len(running) < o.jobs:
                idx += 1
                rng = random.Random(master.getrandbits(64))
                est = sorted(durations)[len(durations) // 2] if durations else 4.0
                fut = pool.submit(run_round, idx, rng, o, exes, images, work, est)
                running[fut] = idx
            done, _ = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
            for fut in done:
                i = running.pop(fut)
                try:
                    rnd, res = fut.result()
                except Exception as e:  # noqa: BLE001 - a round's failure must not end the soak
                    if not isinstance(e, SoakError):
                        e = SoakError(f"the soak itself failed in this round: "
                                      f"{type(e).__name__}: {e}")
                    log(f"round {i}: {e}")
                    rounds.append({"round": i, "dir": None, "problems": [str(e)],
                                   "station": {"sent": None}, "variant": None})
                    setup_errors += 1
                    if setup_errors > 5:
                        raise
                    planned += 1  # make up for it
                    continue
                finish(i, rnd, res)
    except KeyboardInterrupt:
        interrupted = True
        log("interrupted: waiting for the rounds under way, then summarizing")
        for fut in list(running):
            try:
                finish(running[fut], *fut.result())
            except (SoakError, KeyboardInterrupt):
                pass
    pool.shutdown(wait=True)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime
    rounds.sort(key=lambda x: x["round"])
    results.sort(key=lambda r: (r["round"], r["slot"]))
    elapsed = time.monotonic() - t0
    text, nwrong, nlost = summarize(results, rounds, elapsed, o, commit, cpu)
    print()
    print(text)
    print()
    with open(o.out, "w") as fh:
        json.dump({"command": [sys.argv[0], *argv], "commit": commit, "seed": o.seed,
                   "elapsed_s": elapsed, "options": {k: v for k, v in vars(o).items()},
                   "wrong_verdicts": nwrong, "lost_reports": nlost, "interrupted": interrupted,
                   "rounds": rounds, "boards": results, "table": text}, fh, indent=1)
    print(f"soak ran {elapsed / 60:.1f} min; raw results: {o.out}")
    if kept:
        print("round directories kept (each has bench.txt, cmd.sh, the profiles, station.log, "
              "reports/ and state/):\n  " + "\n  ".join(kept))
    else:
        shutil.rmtree(work, ignore_errors=True)
    ok = nwrong == 0 and nlost == 0 and not interrupted
    print(f"{'PASS' if ok else 'FAIL'}: {nwrong} wrong verdicts, {nlost} lost reports")
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except SoakError as e:
        print(f"soak: {e}", file=sys.stderr)
        sys.exit(1)
