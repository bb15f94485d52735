#!/usr/bin/env python3
"""espstation's speed, measured against espsim at real time and side by side with esptool-js.

    tools/bench/bench.py [BUILD_DIR] [--quick] [--out FILE] [options]

Everything runs in one go at --time-scale 1 (real line and flash times) and ends with a table and
PASS/FAIL lines against the targets of issue 6; the raw numbers go to a JSON file. See
tools/bench/README.md for what each figure means and how it is measured.

Every program it measures (espstation, espsim, each esptool-js peer) is a direct child of this
script, so os.wait4() gives each one's exact CPU time (ru_utime + ru_stime) and peak RSS
(ru_maxrss, KiB on Linux). espsim is started by the bench itself for every run with a fresh flash
state, so espstation's CPU never includes the simulator's. This is a benchmark, not a test: it is
not registered in ctest and asserts nothing about timing; its exit status is 0 when every run
flashed and verified every board (whatever the targets say), 1 when a run failed.
"""

import argparse
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
import zlib

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PEER = os.path.join(REPO, "tools", "bench", "peer.mjs")
MODEL_H = os.path.join(REPO, "tools", "sim", "model.h")
DEFLATE_H = os.path.join(REPO, "include", "es", "deflate.h")

CHIPS = ("esp8266", "esp32")
ADDRESS = {"esp8266": 0x0, "esp32": 0x1000}
ROM_BAUD = 115200
IMAGE_SIZE = 1 << 20
SECTOR = 4096
BLOCK = 64 * 1024

# The targets of issue 6.
T_LINE_BUSY = 0.95
T_SCALING = 1.10
T_CPU_RATIO = 20.0
T_RSS_KIB = 16 * 1024


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


class BenchError(Exception):
    pass


# ---- children, measured with wait4 ---------------------------------------------------------


class Child:
    """A child process measured exactly: it runs under the rusage launcher (tools/bench/rusage.c),
    which reports the program's own ru_utime, ru_stime and ru_maxrss from wait4(), and this
    script's own os.wait4() on the launcher gives the wall time and a CPU cross-check. (ru_maxrss
    of a program spawned straight from Python would include Python's RSS: see rusage.c.)"""

    launcher = None  # path of the built launcher, set by main()
    ru_dir = None  # where the launcher writes its JSON, set by main()
    counter = 0

    def __init__(self, argv, **kw):
        Child.counter += 1
        self.argv = argv
        self.ru_path = os.path.join(Child.ru_dir, f"rusage-{Child.counter}.json")
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen([Child.launcher, self.ru_path, *argv], **kw)
        self.pid = self.proc.pid
        self.result = None

    def wait(self):
        """Blocks until the child exits; returns {wall_s, user_s, sys_s, cpu_s, maxrss_kib, code}."""
        if self.result is None:
            _, status, ru = os.wait4(self.pid, 0)
            t1 = time.monotonic()
            code = os.waitstatus_to_exitcode(status)
            self.proc.returncode = code  # reaped here: keep Popen from waiting again
            try:
                with open(self.ru_path) as fh:
                    inner = json.load(fh)
            except (OSError, ValueError) as e:
                raise BenchError(f"{self.argv[0]}: no usage from the launcher ({e}), exit {code}")
            self.result = {
                "wall_s": t1 - self.t0,
                "end": t1,
                "user_s": inner["user_s"],
                "sys_s": inner["sys_s"],
                "cpu_s": inner["user_s"] + inner["sys_s"],
                "maxrss_kib": inner["maxrss_kib"],
                "code": inner["code"],
                "outer_cpu_s": ru.ru_utime + ru.ru_stime,  # launcher + program, for checking
            }
        return self.result


class Espsim:
    """One espsim for one run: boards in the given order, real time unless time_scale says
    otherwise, stdin tied to us."""

    def __init__(self, exe, chips, workdir, seed, time_scale=1):
        args = [exe]
        for c in chips:
            args += ["--board", c]
        args += ["--time-scale", str(time_scale), "--seed", str(seed), "--exit-on-eof"]
        self.stderr_path = os.path.join(workdir, "espsim.stderr")
        self.stderr = open(self.stderr_path, "wb")
        self.child = Child(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr)
        self.boards = []
        buf = b""
        deadline = time.monotonic() + 30
        ready = None
        out = self.child.proc.stdout
        while ready is None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([out], [], [], left)[0]:
                self.stop()
                raise BenchError(f"espsim did not print its ready line within 30 s: {self.tail()}")
            chunk = os.read(out.fileno(), 65536)
            if not chunk:
                self.stop()
                raise BenchError(f"espsim exited during start-up: {self.tail()}")
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                obj = json.loads(line)
                if obj.get("ready"):
                    ready = obj
                elif "slot" in obj:
                    self.boards.append(obj)
        if len(self.boards) != len(chips):
            self.stop()
            raise BenchError(f"espsim announced {len(self.boards)} boards, asked for {len(chips)}")
        self.boards.sort(key=lambda b: b["slot"])

    def tail(self):
        self.stderr.flush()
        with open(self.stderr_path, "rb") as f:
            return f.read()[-2000:].decode(errors="replace")

    def stop(self):
        """EOF on stdin makes espsim exit cleanly; returns its rusage."""
        try:
            self.child.proc.stdin.close()
        except OSError:
            pass
        r = self.child.wait()
        self.child.proc.stdout.close()
        self.stderr.close()
        return r


# ---- inputs ----------------------------------------------------------------------------------


def ensure_build(build):
    exes = {
        "espstation": os.path.join(build, "src", "cli", "espstation"),
        "espsim": os.path.join(build, "tools", "sim", "espsim"),
        "mkimage": os.path.join(build, "tools", "mkimage", "mkimage"),
    }
    if not os.path.exists(os.path.join(build, "CMakeCache.txt")):
        log(f"configuring {build} (Release)")
        subprocess.run(["cmake", "-S", REPO, "-B", build, "-DCMAKE_BUILD_TYPE=Release"],
                       check=True, stdout=subprocess.DEVNULL)
    # Always bring the three targets up to date (a no-op when they are), so the bench measures
    # the tree as it is; if that fails but old binaries exist, say so and measure those.
    log(f"building espstation, espsim and mkimage in {build}")
    r = subprocess.run(["cmake", "--build", build, "-j2", "--target", *exes.keys()],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        if not all(os.access(p, os.X_OK) for p in exes.values()):
            raise BenchError(f"the build failed: {r.stderr.strip()[-2000:]}")
        log(f"WARNING: the build failed, measuring the binaries already in {build}: "
            f"{r.stderr.strip()[-300:]}")
    for name, p in exes.items():
        if not os.access(p, os.X_OK):
            raise BenchError(f"{p} is missing after the build ({name})")
    return exes


def git_describe():
    """The commit measured, with '-dirty' when tracked files differ from it."""
    try:
        head = subprocess.run(["git", "-C", REPO, "rev-parse", "--short=12", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "diff", "--quiet", "HEAD", "--"]).returncode
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def build_launcher(work):
    """Compiles tools/bench/rusage.c (the exact-rusage launcher) into the work directory."""
    exe = os.path.join(work, "rusage")
    cc = os.environ.get("CC", "cc")
    r = subprocess.run([cc, "-O2", "-std=c11", "-Wall", "-Wextra", "-o", exe,
                        os.path.join(REPO, "tools", "bench", "rusage.c")],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise BenchError(f"{cc} could not build tools/bench/rusage.c: {r.stderr.strip()}")
    return exe


def make_image(mkimage, chip, path, size=IMAGE_SIZE, seed=1):
    out = subprocess.run([mkimage, "--chip", chip, "--size", str(size), "--seed", str(seed), "-o",
                          path], check=True, capture_output=True, text=True).stdout
    m = re.search(r"\b([0-9a-f]{64})\b", out)
    if not m:
        raise BenchError(f"mkimage printed no SHA-256: {out!r}")
    return m.group(1)


def write_profile(path, chip, baud, image, sha256, retries=0, writer="bench"):
    flash_baud = f"flash_baud: {baud}\n" if baud != ROM_BAUD else ""
    with open(path, "w") as f:
        f.write(f"""# written by tools/bench/{writer}.py
name: {writer}-{chip}
chip: {chip}
baud: {ROM_BAUD}
{flash_baud}flash:
  mode: dio
  freq: 40m
  size: detect
erase: none
images:
  - offset: {ADDRESS[chip]:#x}
    file: {image}
    sha256: {sha256}
verify: md5
loader: stub
reset:
  before: auto
  after: hard
retries: {retries}
reports: reports
""")


def model_costs():
    """The flash timing constants of espsim's model (tools/sim/model.h), in seconds."""
    want = {"SIM_T_ERASE_SECTOR_NS": None, "SIM_T_ERASE_BLOCK_NS": None,
            "SIM_T_PROGRAM_KIB_NS": None, "SIM_T_MD5_MIB_NS": None, "SIM_T_CMD_NS": None}
    with open(MODEL_H) as f:
        for line in f:
            m = re.match(r"#define\s+(SIM_T_\w+)\s+\((\d+)ull\s*\*\s*(\d+)\)", line)
            if m and m.group(1) in want:
                want[m.group(1)] = int(m.group(2)) * int(m.group(3)) / 1e9
    if None in want.values():
        raise BenchError(f"could not read the flash costs from {MODEL_H}: {want}")
    return want


def flash_model_seconds(costs, offset, size):
    """Board time the model spends erasing and programming [offset, offset+size) with the stub's
    just-in-time erase: a 64 KiB block erase where the region still to erase starts on a block
    boundary and covers it, else 4 KiB sectors. The same arithmetic as sim_write_data() in
    tools/sim/board.c (the rule, not its code)."""
    start = offset // SECTOR * SECTOR
    end = (offset + size + SECTOR - 1) // SECTOR * SECTOR
    erase = 0.0
    a = start
    while a < end:
        if a % BLOCK == 0 and end - a >= BLOCK:
            erase += costs["SIM_T_ERASE_BLOCK_NS"]
            a += BLOCK
        else:
            erase += costs["SIM_T_ERASE_SECTOR_NS"]
            a += SECTOR
    program = size / 1024 * costs["SIM_T_PROGRAM_KIB_NS"]
    return erase, program


def slip_len(data):
    return len(data) + data.count(0xC0) + data.count(0xDB) + 2


def deflate_like_espstation(raw):
    """The zlib stream espstation sends (src/image/deflate.c): level 9, default window and memory
    level, with a full flush every IMAGE_DEFLATE_CHUNK bytes (include/es/deflate.h) so that a
    write can restart there."""
    chunk = 64 * 1024
    with open(DEFLATE_H) as fh:
        m = re.search(r"#define\s+IMAGE_DEFLATE_CHUNK\s+\((\d+)u\s*\*\s*(\d+)u\)", fh.read())
    if m:
        chunk = int(m.group(1)) * int(m.group(2))
    c = zlib.compressobj(9)
    out = []
    for off in range(0, len(raw), chunk):
        out.append(c.compress(raw[off:off + chunk]))
        out.append(c.flush() if off + chunk >= len(raw) else c.flush(zlib.Z_FULL_FLUSH))
    return b"".join(out)


def model_write_bound(costs, image_path, offset, baud, block=0x4000):
    """The shortest write phase espsim's flash model allows for this image at this baud with the
    stub espstation ships, and what it implies per block. A small event simulation of
    esp-flasher-stub as tools/sim/stub_model.c and board.c model it (protocol doc §10.2): ONE
    frame buffer, and a data block is answered only after it is decompressed, erased just in time
    and programmed; until then the stub reads nothing more (bytes beyond its 128-byte UART FIFO
    would be lost), so the host keeps ONE block in flight. Per block k, in board time:

        the host sends block k            line time of its SLIP frame (24 header bytes + data)
        the stub handles it               SIM_T_CMD_NS + just-in-time erase + program
                                          (decompression itself costs nothing in the model)
        the stub replies                  line time of the 12-byte reply frame
        the host sends block k+1          at once: the host adds nothing in the bound

    The write phase of espstation's report also holds the FLASH_DEFL_BEGIN round trip before the
    blocks (the stub erases nothing there) and one READ_REG round trip after them, so they are
    simulated too. The erase follows sim_write_data(): a 64 KiB block erase where the region
    still to erase starts on a 64 KiB boundary and covers it, else 4 KiB sectors, issued before
    the bytes that need them are programmed.

    The stream is compressed as espstation compresses it (deflate_like_espstation) but from the
    unpatched image (its header patch changes a few bytes, so the size is an estimate;
    `tx_bytes` can be checked against the report's `wire.write_tx_bytes`).

    Returns write_s (the bound), line_s and tx_bytes (host->board), line_busy, zsize, blocks,
    and per block (means): proc_s (command + erase + program), reply_s (reply line time) and
    idle_s = (write_s - line_s) / blocks: the host->board line idle the single-buffer stub
    imposes per block (processing + reply; the BEGIN and READ_REG round trips spread over the
    blocks add well under 0.1 ms to it)."""
    with open(image_path, "rb") as fh:
        raw = fh.read()
    z = deflate_like_espstation(raw)
    inflate = zlib.decompressobj()
    sec_s = 10 / baud
    cmd = costs["SIM_T_CMD_NS"]
    reply_s = 12 * sec_s  # C0 + 8 header + 2 status bytes + C0 (value 0: nothing to escape)
    end_region = (offset + len(raw) + SECTOR - 1) // SECTOR * SECTOR
    erase_next, ptr = offset // SECTOR * SECTOR, offset
    # FLASH_DEFL_BEGIN: 8 header + 16 data bytes; answered after the command time.
    tx_total = slip_len(b"\0" * 24)
    t = tx_total * sec_s + cmd + reply_s
    blocks, proc_total = 0, 0.0
    for j in range(0, len(z), block):
        chunk = z[j:j + block]
        n_raw = len(inflate.decompress(chunk))
        if j + block >= len(z):
            n_raw += len(inflate.flush())
        tx = slip_len(b"\0" * 24) + slip_len(chunk) - 2  # 8 + 16 header bytes, one frame
        tx_total += tx
        t += tx * sec_s  # the block is on the line
        cost = cmd
        end = ptr + n_raw
        while erase_next < end_region and erase_next < end:
            if erase_next % BLOCK == 0 and end_region - erase_next >= BLOCK:
                cost += costs["SIM_T_ERASE_BLOCK_NS"]
                erase_next += BLOCK
            else:
                cost += costs["SIM_T_ERASE_SECTOR_NS"]
                erase_next += SECTOR
        cost += n_raw / 1024 * costs["SIM_T_PROGRAM_KIB_NS"]
        ptr = end
        proc_total += cost
        blocks += 1
        t += cost + reply_s  # handled, then answered; only then may the next block go out
    # READ_REG (8 header + 4 data bytes), answered once the last block is in flash.
    rr = slip_len(b"\0" * 12)
    tx_total += rr
    t += rr * sec_s + cmd + reply_s
    line_s = tx_total * sec_s
    return {"write_s": t, "line_s": line_s, "tx_bytes": tx_total, "line_busy": line_s / t,
            "zsize": len(z), "blocks": blocks, "proc_s": proc_total / blocks, "reply_s": reply_s,
            "idle_s": (t - line_s) / blocks}


def station_env(extra):
    """espstation's environment: the bench's, without a measurement switch the caller did not
    ask for (an ESPSTATION_ROM_BAUD left in the shell would change every run), plus extra."""
    env = {k: v for k, v in os.environ.items() if k != "ESPSTATION_ROM_BAUD"}
    env.update(extra or {})
    return env


# ---- the two clients -------------------------------------------------------------------------


class Bench:
    def __init__(self, opts, exes, work):
        self.o = opts
        self.exes = exes
        self.work = work
        self.images = {}
        self.runs = []
        self.seq = 0
        self.failures = []
        self.baseline = {}

    def newdir(self, label):
        self.seq += 1
        d = os.path.join(self.work, f"{self.seq:02d}-{label}")
        os.makedirs(d)
        return d

    def profiles(self, d, chips, baud):
        paths = []
        for chip in sorted(set(chips), key=CHIPS.index):
            p = os.path.join(d, f"{chip}-{baud}.yaml")
            img = self.images[chip]
            write_profile(p, chip, baud, img["path"], img["sha256"])
            paths.append(p)
        return paths

    def station(self, label, chips, baud, env=None):
        """espstation run on a fresh espsim with these boards; returns the run record. env: extra
        environment variables for espstation (the measurement switch ESPSTATION_ROM_BAUD)."""
        d = self.newdir(f"station-{label}")
        profiles = self.profiles(d, chips, baud)
        sim = Espsim(self.exes["espsim"], chips, d, seed=self.seq)
        rec = {"client": "espstation", "label": label, "n": len(chips), "chips": list(chips),
               "baud": baud, "env": env or {}, "loadavg": {"start": os.getloadavg()}}
        try:
            argv = [self.exes["espstation"], "run", *profiles]
            for b in sim.boards:
                argv += ["--port", b["port"]]
            argv += ["--lines", "--reports", os.path.join(d, "reports")]
            with open(os.path.join(d, "espstation.log"), "wb") as out:
                child = Child(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                              env=station_env(env))
                rec["proc"] = child.wait()
        finally:
            rec["espsim"] = sim.stop()
        rec["boards"] = self.read_reports(d, rec)
        return self.finish(rec, d)

    def read_reports(self, d, rec):
        runs = [os.path.join(d, "reports", x) for x in os.listdir(os.path.join(d, "reports"))]
        runs = [r for r in runs if os.path.exists(os.path.join(r, "run.json"))]
        if len(runs) != 1:
            raise BenchError(f"{d}: expected one espstation run directory, found {runs}")
        with open(os.path.join(runs[0], "run.json")) as f:
            run = json.load(f)
        rec["run_json"] = {"duration_ms": run.get("duration_ms"), "counts": run.get("counts")}
        boards = []
        for slot in run["slots"]:
            b = {"slot": slot["slot"], "result": slot["result"], "error": slot.get("error")}
            if slot.get("report_file"):
                with open(os.path.join(runs[0], slot["report_file"])) as f:
                    rep = json.load(f)
                t = rep["timings_ms"]
                upto = 0
                for phase, ms in t.items():  # reports keep the phase order
                    upto += ms or 0
                    if phase == "verify":
                        break
                write_s = (t.get("write") or 0) / 1000
                size = sum(i["size"] for i in rep["images"])
                b.update({
                    "chip": rep["chip"]["name"].lower() if rep.get("chip") else None,
                    "baud": rep["baud"], "loader": rep["loader"], "timings_ms": t,
                    "wire": rep["wire"], "retries": rep.get("retries"), "image_bytes": size,
                    "write_s": write_s,
                    "open_to_verified_s": upto / 1000,
                })
                self.derive(b, rep["wire"]["write_tx_bytes"])
            boards.append(b)
        return boards

    @staticmethod
    def derive(b, write_tx):
        """Rate and line use of one board's write phase."""
        w = b["write_s"]
        b["write_tx_bytes"] = write_tx
        b["rate_kbit_s"] = b["image_bytes"] * 8 / w / 1000 if w > 0 else None
        b["line_busy"] = write_tx / (b["baud"] / 10 * w) if w > 0 and write_tx else None

    def peer(self, label, chips, baud):
        """One esptool-js process per board, all at once, on a fresh espsim."""
        d = self.newdir(f"peer-{label}")
        sim = Espsim(self.exes["espsim"], chips, d, seed=self.seq)
        rec = {"client": "esptool-js", "label": label, "n": len(chips), "chips": list(chips),
               "baud": baud, "loadavg": {"start": os.getloadavg()}}
        try:
            kids = []
            t0 = time.monotonic()
            for b in sim.boards:
                argv = [self.o.node, PEER, "--port", b["port"], "--ctl", b["ctl"], "--baud",
                        str(baud), "--image", self.images[b["chip"]]["path"], "--address",
                        str(ADDRESS[b["chip"]])]
                err = open(os.path.join(d, f"peer{b['slot']}.stderr"), "wb")
                kids.append((b, Child(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=err), err))
            boards = []
            for b, child, err in kids:
                r = child.wait()
                err.close()
                text = child.proc.stdout.read().decode(errors="replace")
                child.proc.stdout.close()
                out = {"ok": False, "error": f"no JSON line: {text[-500:]!r}"}
                for line in reversed(text.splitlines()):  # esptool-js may print after it
                    if line.startswith("{"):
                        try:
                            out = json.loads(line)
                            break
                        except ValueError:
                            pass
                pb = {"slot": b["slot"], "chip": b["chip"], "baud": baud, "proc": r,
                      "result": "pass" if out.get("ok") and r["code"] == 0 else "fail",
                      "error": out.get("error"), "peer": out}
                t = out.get("t_ms", {})
                if pb["result"] == "pass":
                    pb["image_bytes"] = out["image_size"]
                    pb["write_s"] = (t["verify_begin"] - t["write_begin"]) / 1000
                    pb["open_to_verified_s"] = t["verified"] / 1000
                    self.derive(pb, out["write_tx_bytes"])
                boards.append(pb)
            t1 = max(c.result["end"] for _, c, _ in kids)
            procs = [c.result for _, c, _ in kids]
            rec["proc"] = {
                "wall_s": t1 - t0,
                "cpu_s": sum(p["cpu_s"] for p in procs),
                "user_s": sum(p["user_s"] for p in procs),
                "sys_s": sum(p["sys_s"] for p in procs),
                "maxrss_kib": sum(p["maxrss_kib"] for p in procs),  # sum of the peaks
                "maxrss_kib_max": max(p["maxrss_kib"] for p in procs),
                "code": max(p["code"] for p in procs),
            }
            rec["boards"] = boards
        finally:
            rec["espsim"] = sim.stop()
        return self.finish(rec, d)

    def finish(self, rec, d):
        rec["dir"] = d
        rec["loadavg"]["end"] = os.getloadavg()
        ok = [b for b in rec["boards"] if b["result"] == "pass"]
        rec["passed"] = len(ok)
        wall = rec["proc"]["wall_s"]
        rec["espsim_cpu_share"] = rec["espsim"]["cpu_s"] / wall if wall > 0 else None
        if ok:
            rec["open_to_verified_max_s"] = max(b["open_to_verified_s"] for b in ok)
            rec["open_to_verified_mean_s"] = sum(b["open_to_verified_s"] for b in ok) / len(ok)
        if len(ok) != rec["n"] or rec["proc"]["code"] != 0:
            bad = [f"slot {b['slot']}: {b.get('error')}" for b in rec["boards"]
                   if b["result"] != "pass"]
            msg = (f"{rec['client']} {rec['label']}: {len(ok)} of {rec['n']} boards passed, exit "
                   f"{rec['proc']['code']}; {'; '.join(bad[:3])} (files in {d})")
            self.failures.append(msg)
            log("FAILED: " + msg)
        else:
            log(f"{rec['client']} {rec['label']}: {rec['n']} board(s) in {wall:.2f} s, "
                f"cpu {rec['proc']['cpu_s']:.2f} s, espsim cpu {rec['espsim']['cpu_s']:.2f} s")
        self.runs.append(rec)
        return rec


def baseline_rss(espstation, bench):
    """Peak RSS of espstation doing no flashing: `--version` (the process and its libraries) and
    `check` of both profiles (plus loading, hashing and checking the two images)."""
    d = bench.newdir("baseline")
    profiles = bench.profiles(d, list(CHIPS), 921600)
    out = {}
    for name, argv in (("version", [espstation, "--version"]),
                       ("check", [espstation, "check", *profiles])):
        r = Child(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                  stderr=subprocess.DEVNULL).wait()
        out[name] = r["maxrss_kib"]
    return out


# ---- the report ------------------------------------------------------------------------------


def table(head, rows):
    w = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    line = lambda r: "| " + " | ".join(str(x).rjust(n) for x, n in zip(r, w)) + " |"
    return "\n".join([line(head), "|" + "|".join("-" * (n + 2) for n in w) + "|"] +
                     [line(r) for r in rows])


def f(x, fmt="{:.2f}"):
    return "-" if x is None else fmt.format(x)


def pct(x):
    return "-" if x is None else f"{100 * x:.1f} %"


def board_of(rec):
    ok = [b for b in rec["boards"] if b["result"] == "pass"]
    return ok[0] if ok else None


def baud_cell(b, baud):
    """The baud of a row, with the rate the board ended up at when it fell back."""
    got = b.get("baud")
    return str(baud) if got in (None, baud) else f"{baud}->{got}"


def report(bench, per_board, scaling, peer_board, peer_many, rom_keep, costs, o):
    out = []
    p = lambda s="": out.append(s)
    p(f"espstation bench: espsim --time-scale 1, {IMAGE_SIZE >> 20} MiB MicroPython-like image "
      f"(mkimage seed 1), ESP8266 @0x0, ESP32 @0x1000, dio/40m/detect, erase none, verify md5")
    p(f"tree {o.commit}; machine: {os.cpu_count()} CPUs; espsim started per run by the bench "
      f"(fresh flash); stub: esp-flasher-stub (one frame buffer, one block in flight)")
    p()
    p("1. Per board (one board, one espsim; open->verified = sum of timings_ms up to and "
      "including verify; esptool-js: port created -> MD5 verified; model bound: see 1a)")
    rows = []
    for chip in CHIPS:
        for baud in o.bauds:
            for client, recs in (("espstation", per_board), ("esptool-js", peer_board)):
                rec = recs.get((chip, baud))
                if rec is None:
                    continue
                b = board_of(rec)
                if b is None:
                    rows.append([chip, baud, client, "FAILED"] + ["-"] * 8)
                    continue
                bound = b.get("model_bound")
                rows.append([chip, baud_cell(b, baud), client, f(b["write_s"]),
                             f(b["rate_kbit_s"], "{:.0f}"), pct(b["line_busy"]),
                             f(b["open_to_verified_s"]), f(bound and bound["write_s"]),
                             f(rec["proc"]["wall_s"]), f(rec["proc"]["cpu_s"], "{:.3f}"),
                             f(rec["proc"]["maxrss_kib"] / 1024, "{:.1f}"),
                             pct(rec["espsim_cpu_share"])])
    p(table(["chip", "baud", "client", "write s", "kbit/s", "line busy", "open->verified s",
             "model bound write s", "process wall s", "CPU s", "peak RSS MiB", "espsim CPU"],
            rows))
    for chip in CHIPS:
        for baud in o.bauds:
            rec = per_board.get((chip, baud))
            b = rec and board_of(rec)
            if b and any((b.get("retries") or {}).values()):
                p(f"   note: espstation {chip} @{baud} retried: {b['retries']}")
    p()
    p("1a. espsim's flash model (tools/sim/model.h) vs the line, for the espstation runs. 'bound':")
    p("   the shortest write the model allows with the single-buffer stub and one block in flight")
    p("   (send a block, the stub decompresses, erases and programs it, then replies; then the")
    p("   next block: simulated by the bench from the image, see model_write_bound)")
    rows = []
    for chip in CHIPS:
        erase, program = flash_model_seconds(costs, ADDRESS[chip], IMAGE_SIZE)
        for baud in o.bauds:
            rec = per_board.get((chip, baud))
            b = rec and board_of(rec)
            if not b:
                continue
            bound = b["model_bound"]
            line = b["write_tx_bytes"] / (b["baud"] / 10)
            rows.append([chip, baud_cell(b, baud), b["write_tx_bytes"], bound["tx_bytes"],
                         f(line), f(erase), f(program), f(erase + program),
                         f(bound["write_s"]), pct(bound["line_busy"]), f(b["write_s"]),
                         pct(b["line_busy"]), f(b["write_s"] - bound["write_s"])])
    p(table(["chip", "baud", "tx bytes", "model tx bytes", "line s", "erase s", "program s",
             "flash s", "bound write s", "bound busy", "write s", "busy", "over bound s"], rows))
    p()
    p("1b. Line idle per data block (host->board line carrying nothing), espstation runs. model:")
    p("   what the single-buffer stub imposes = handling (command + erase + program) + its reply")
    p("   on the line, mean per block (bound write - bound line) / blocks; measured: (write s -")
    p("   line s of the bytes sent) / blocks; host gap = measured - model: what the host, its")
    p("   pty and espsim's scheduling add between a reply and the next block")
    rows = []
    for chip in CHIPS:
        for baud in o.bauds:
            rec = per_board.get((chip, baud))
            b = rec and board_of(rec)
            if not b or "idle" not in b:
                continue
            i = b["idle"]
            rows.append([chip, baud_cell(b, baud), i["blocks"], f(i["model_proc_s"] * 1e3),
                         f(i["model_reply_s"] * 1e3, "{:.3f}"), f(i["model_idle_s"] * 1e3),
                         f(i["measured_idle_s"] * 1e3), f(i["host_gap_s"] * 1e3),
                         f(i["host_gap_s"] * i["blocks"], "{:.3f}")])
    p(table(["chip", "baud", "blocks", "model handling ms/block", "model reply ms",
             "model idle ms/block", "measured idle ms/block", "host gap ms/block",
             "host gap s total"], rows))
    p()
    p("1c. Speed candidates, each measured (gain = time saved)")
    rows = []
    for baud, krec in sorted(rom_keep.items()):
        rec = per_board.get(("esp32", baud))
        a, k = rec and board_of(rec), board_of(krec)
        if not (a and k):
            rows.append([baud, "FAILED"] + ["-"] * 7)
            continue
        ta, tk = a["timings_ms"], k["timings_ms"]
        rows.append([baud_cell(a, baud), f(k["open_to_verified_s"]), f(a["open_to_verified_s"]),
                     f(k["open_to_verified_s"] - a["open_to_verified_s"]),
                     f((tk.get("stub") or 0) / 1e3), f((ta.get("stub") or 0) / 1e3),
                     f((tk.get("baud") or 0) / 1e3), f((ta.get("baud") or 0) / 1e3),
                     f(k["write_s"] - a["write_s"])])
    if rows:
        p("   (a) ESP32: raise the rate in the ROM before the stub upload (default) vs upload at "
          "115200")
        p("       (ESPSTATION_ROM_BAUD=keep); one board each")
        p(table(["flash_baud", "open->verified keep s", "raised s", "gain s", "stub phase keep s",
                 "raised s", "baud phase keep s", "raised s", "write keep - raised s"], rows))
    lo, hi = 921600, 2000000
    rows = []
    for chip in CHIPS:
        rl, rh = per_board.get((chip, lo)), per_board.get((chip, hi))
        bl, bh = rl and board_of(rl), rh and board_of(rh)
        if not (bl and bh):
            continue
        rows.append([chip, f(bl["write_s"]), f(bh["write_s"]), f(bl["write_s"] - bh["write_s"]),
                     f(bl["open_to_verified_s"]), f(bh["open_to_verified_s"]),
                     f(bl["open_to_verified_s"] - bh["open_to_verified_s"]),
                     f(bl["model_bound"]["write_s"] - bh["model_bound"]["write_s"])])
    if rows:
        p(f"   (b) flash_baud {hi} vs {lo}, one board")
        p(table(["chip", f"write @{lo} s", f"@{hi} s", "gain s", f"open->verified @{lo} s",
                 f"@{hi} s", "gain s", "model bound gain s"], rows))
    rows = []
    for chip in CHIPS:
        row = [chip]
        for baud in o.bauds:
            rec = per_board.get((chip, baud))
            b = rec and board_of(rec)
            i = b and b.get("idle")
            row.append("-" if not i else f"{i['host_gap_s'] * 1e3:.1f} ms x {i['blocks']} = "
                       f"{i['host_gap_s'] * i['blocks']:.2f} s ({pct(i['host_gap_s'] * i['blocks'] / b['write_s'])})")
        rows.append(row)
    p("   (c) host gap per block (1b): at most what a host that sent the next block the moment")
    p("       the reply ended could save (share of the write phase)")
    p(table(["chip", *[f"@{bd}" for bd in o.bauds]], rows))
    p()

    def single_base(baud):
        one = [per_board.get((c, baud)) for c in CHIPS]
        if all(r and r["passed"] == r["n"] for r in one):
            return max(r["proc"]["wall_s"] for r in one)
        return None

    for k, sbaud in enumerate(o.scale_bauds):
        base = single_base(sbaud)
        p(f"2{'abcdefgh'[k]}. Scaling at {sbaud} baud, half ESP8266 + half ESP32 (N=1: the slower "
          f"of the two single-board runs above, {f(base)} s); wall = espstation process start to "
          f"exit")
        rows = []
        for n, rec in sorted(scaling.get(sbaud, {}).items()):
            wall = rec["proc"]["wall_s"]
            rows.append([n, f"{rec['passed']}/{rec['n']}", f(wall),
                         f(wall / base, "{:.3f}") if base else "-",
                         f(rec.get("open_to_verified_mean_s")), f(rec.get("open_to_verified_max_s")),
                         f(rec["proc"]["cpu_s"], "{:.3f}"), f(rec["proc"]["cpu_s"] / n, "{:.4f}"),
                         f(rec["proc"]["maxrss_kib"] / 1024, "{:.1f}"), f(rec["espsim"]["cpu_s"]),
                         pct(rec["espsim_cpu_share"])])
        p(table(["N", "passed", "wall s", "ratio to N=1", "open->verified mean s", "max s",
                 "station CPU s", "CPU s/board", "station peak RSS MiB", "espsim CPU s",
                 "espsim CPU/wall"], rows))
        p()
    base = single_base(o.scale_baud)
    scaling = scaling.get(o.scale_baud, {})  # the peer and the targets: at scale_baud

    if bench.baseline:
        p(f"   espstation peak RSS doing no flashing: --version "
          f"{bench.baseline['version'] / 1024:.1f} MiB, check of both profiles "
          f"{bench.baseline['check'] / 1024:.1f} MiB")
        p()
    p("3./4. esptool-js 0.7.0 peer: one node process per board, all started at once, same espsim "
      "bench (CPU and RSS: sums over the peer processes)")
    rows = []
    pairs = []
    for (chip, baud), prec in sorted(peer_board.items(), key=lambda kv: (CHIPS.index(kv[0][0]), kv[0][1])):
        pairs.append((f"1 {chip} @{baud}", per_board.get((chip, baud)), prec))
    for n, prec in sorted(peer_many.items()):
        pairs.append((f"{n} mixed @{o.scale_baud}", scaling.get(n), prec))
    for name, srec, prec in pairs:
        if srec is None:
            continue
        sw, pw = srec["proc"]["wall_s"], prec["proc"]["wall_s"]
        sc, pc = srec["proc"]["cpu_s"], prec["proc"]["cpu_s"]
        sm, pm = srec["proc"]["maxrss_kib"], prec["proc"]["maxrss_kib"]
        rows.append([name, f"{srec['passed']}/{srec['n']}", f"{prec['passed']}/{prec['n']}",
                     f(srec.get("open_to_verified_max_s")), f(prec.get("open_to_verified_max_s")),
                     f(sw), f(pw), f(pw / sw, "{:.2f}x"), f(sc, "{:.3f}"), f(pc),
                     f(pc / sc, "{:.0f}x") if sc > 0 else "-", f(sm / 1024, "{:.1f}"),
                     f(pm / 1024, "{:.0f}"), f(pm / sm, "{:.0f}x"),
                     pct(prec["espsim_cpu_share"])])
    p(table(["run", "station ok", "peer ok", "station open->verified max s", "peer max s",
             "station wall s", "peer wall s", "time ratio", "station CPU s", "peer CPU s",
             "CPU ratio", "station RSS MiB", "peer RSS MiB", "memory ratio", "espsim CPU (peer run)"],
            rows))

    for _, _, prec in pairs:
        for b in prec["boards"]:
            if b["result"] != "pass":
                p(f"   esptool-js failed: {prec['label']} slot {b['slot']} ({b['chip']}): "
                  f"{str(b.get('error'))[:160]}")
    p()
    p("Targets")
    res = []

    def target(name, ok, measured, limit=None):
        res.append(ok)
        p(f"  {'PASS' if ok else 'FAIL'}  {name}: {measured}")
        if not ok and limit:
            p(f"        limit: {limit}")

    for chip in CHIPS:
        s, q = per_board.get((chip, 921600)), peer_board.get((chip, 921600))
        sb, qb = s and board_of(s), q and board_of(q)
        if not (sb and qb):
            p(f"  n/a   per-board time {chip} @921600 vs esptool-js: a run is missing or failed")
            continue
        a, b = sb["open_to_verified_s"], qb["open_to_verified_s"]
        worst = max(((k, sb["timings_ms"][k]) for k in sb["timings_ms"]), key=lambda kv: kv[1] or 0)
        target(f"per-board time {chip} @921600 no slower than esptool-js",
               a <= b, f"espstation {a:.2f} s, esptool-js {b:.2f} s (open->verified)",
               f"espstation's longest phase is {worst[0]} ({worst[1]} ms)")
    busy = [(board_of(r)["line_busy"], k) for k, r in per_board.items() if board_of(r)]
    if busy:
        low, (chip, baud) = min(busy)
        erase, program = flash_model_seconds(costs, ADDRESS[chip], IMAGE_SIZE)
        b = board_of(per_board[(chip, baud)])
        line = b["write_tx_bytes"] / (b["baud"] / 10)
        bound = b["model_bound"]
        first = (BLOCK - ADDRESS[chip] % BLOCK) % BLOCK
        why = (f"espsim's flash model itself caps {chip} @{baud} at {pct(bound['line_busy'])} "
               f"(bound {bound['write_s']:.2f} s, measured {b['write_s']:.2f} s): the stub "
               f"espstation ships answers a block only after erasing and programming it, so the "
               f"line idles {bound['idle_s'] * 1e3:.0f} ms per block ({bound['blocks']} blocks: "
               f"erase {erase:.2f} s + program {program:.2f} s) on top of {line:.2f} s of line")
        if first:
            why += (f"; the image starts {first // 1024} KiB before a 64 KiB boundary, so its "
                    f"first {first // SECTOR} sectors are erased one by one "
                    f"({first // SECTOR * costs['SIM_T_ERASE_SECTOR_NS']:.2f} s instead of one "
                    f"{costs['SIM_T_ERASE_BLOCK_NS']:.2f} s block erase)")
        target("line >= 95 % busy during write (every chip and baud)", low >= T_LINE_BUSY,
               "lowest " + pct(low) + f" ({chip} @{baud}); " +
               ", ".join(f"{c}@{bd} {pct(v)}" for v, (c, bd) in sorted(busy, key=lambda x: x[1])),
               why)
    if scaling and base:
        n = max(scaling)
        rec = scaling[n]
        ratio = rec["proc"]["wall_s"] / base
        load = (rec["proc"]["cpu_s"] + rec["espsim"]["cpu_s"]) / rec["proc"]["wall_s"]
        target(f"{n} boards within 10 % of one board's time", ratio <= T_SCALING and
               rec["passed"] == n, f"{rec['proc']['wall_s']:.2f} s vs {base:.2f} s = {ratio:.3f}",
               f"slowest board open->verified {f(rec.get('open_to_verified_max_s'))} s vs one board "
               f"{max(board_of(per_board[(c, o.scale_baud)])['open_to_verified_s'] for c in CHIPS):.2f} s; "
               f"station + espsim used {load:.2f} of {os.cpu_count()} CPUs")
    if peer_many:
        n = max(peer_many)
        s, q = scaling.get(n), peer_many[n]
        if s:
            sc, qc = s["proc"]["cpu_s"] / n, q["proc"]["cpu_s"] / n
            target(f"station CPU >= 20x lower per board than esptool-js (N={n})",
                   qc >= T_CPU_RATIO * sc, f"espstation {sc:.4f} s/board, esptool-js {qc:.3f} "
                   f"s/board = {qc / sc:.0f}x (esptool-js boards passed: {q['passed']}/{n})", "station CPU per board is dominated by "
                   "the fixed start-up cost when N is small")
    if scaling:
        ns = sorted(scaling)
        n = ns[-1]
        rss = scaling[n]["proc"]["maxrss_kib"]
        if len(ns) > 1:
            m = ns[-2]
            slope = (rss - scaling[m]["proc"]["maxrss_kib"]) / (n - m)
            per = f"{slope:.0f} KiB per board between N={m} and N={n}"
        else:
            per = "one board count only"
        target(f"espstation peak RSS < 16 MiB for {n} boards", rss < T_RSS_KIB,
               f"{rss / 1024:.1f} MiB ({per})",
               f"`espstation --version` peaks at {bench.baseline['version'] / 1024:.1f} MiB "
               f"(process + libraries), `check` of the two profiles (both 1 MiB images loaded and "
               f"hashed) at {bench.baseline['check'] / 1024:.1f} MiB; the rest is the run: "
               f"compressed images, per-board state and buffers ({per})")
    return "\n".join(out), res


# ---- main ------------------------------------------------------------------------------------


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("build", nargs="?", default=os.path.join(REPO, "build", "release"),
                    help="CMake build directory (default build/release; built if missing)")
    ap.add_argument("--quick", action="store_true",
                    help="reduced matrix: 921600 and 2000000 per board, N = 8 at 921600, peer "
                    "per board and at N = 8")
    ap.add_argument("--out", help="JSON file for the raw numbers (default BUILD/bench.json)")
    ap.add_argument("--bauds", help="per-board bauds (default 115200,460800,921600,2000000)")
    ap.add_argument("--counts", help="board counts for scaling (default 8,16,32,64; '' for none)")
    ap.add_argument("--scale-bauds",
                    help="bauds of the scaling runs (default 921600,2000000; quick: 921600); the "
                    "peer and the targets use 921600 (else the first)")
    ap.add_argument("--rom-keep-bauds",
                    help="per-board ESP32 bauds also run with ESPSTATION_ROM_BAUD=keep (default "
                    "921600,2000000, where in --bauds; '' for none)")
    ap.add_argument("--peer-bauds", help="per-board bauds for esptool-js (default: --bauds)")
    ap.add_argument("--peer-counts",
                    help="board counts for the parallel esptool-js runs (default 32,64; quick: 8)")
    ap.add_argument("--no-peer", action="store_true", help="skip esptool-js")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--node", default=shutil.which("node") or "node")
    o = ap.parse_args(argv)
    ints = lambda s: [int(x) for x in s.split(",") if x]
    o.bauds = (ints(o.bauds) if o.bauds else
               ([921600, 2000000] if o.quick else [115200, 460800, 921600, 2000000]))
    o.counts = ints(o.counts) if o.counts is not None else ([8] if o.quick else [8, 16, 32, 64])
    o.scale_bauds = (ints(o.scale_bauds) if o.scale_bauds else
                     ([921600] if o.quick else [921600, 2000000]))
    o.scale_baud = 921600 if 921600 in o.scale_bauds else o.scale_bauds[0]
    o.peer_bauds = ints(o.peer_bauds) if o.peer_bauds is not None else list(o.bauds)
    o.peer_counts = (ints(o.peer_counts) if o.peer_counts is not None
                     else ([8] if o.quick else [32, 64]))
    if o.no_peer:
        o.peer_bauds, o.peer_counts = [], []
    if not o.counts and not o.peer_counts:
        o.scale_bauds = []
    elif not o.counts:
        o.scale_bauds = [o.scale_baud]
    for b in o.scale_bauds:  # N = 1 of the scaling table
        if b not in o.bauds:
            o.bauds.append(b)
    o.rom_keep_bauds = [b for b in (ints(o.rom_keep_bauds) if o.rom_keep_bauds is not None
                                    else [921600, 2000000]) if b in o.bauds]
    o.build = os.path.abspath(o.build)
    o.out = o.out or os.path.join(o.build, "bench.json")
    return o


def add_model(costs, bench, rec):
    """The model bound (model_write_bound) and the line idle per block of every board that
    passed in a per-board espstation run, at the rate the board really used."""
    for b in rec["boards"]:
        if b["result"] != "pass" or not b.get("write_s"):
            continue
        bound = model_write_bound(costs, bench.images[b["chip"]]["path"], ADDRESS[b["chip"]],
                                  b["baud"])
        b["model_bound"] = bound
        measured = (b["write_s"] - b["write_tx_bytes"] * 10 / b["baud"]) / bound["blocks"]
        b["idle"] = {"blocks": bound["blocks"], "model_proc_s": bound["proc_s"],
                     "model_reply_s": bound["reply_s"], "model_idle_s": bound["idle_s"],
                     "measured_idle_s": measured, "host_gap_s": measured - bound["idle_s"]}


def summary(per_board, rom_keep, scaling, o):
    """The derived figures of the tables, keyed for a reader of the JSON (times in s)."""
    per, keep = [], []
    for (chip, baud), rec in sorted(per_board.items(), key=lambda kv: (CHIPS.index(kv[0][0]),
                                                                          kv[0][1])):
        b = board_of(rec)
        if not b:
            per.append({"chip": chip, "baud": baud, "passed": False})
            continue
        per.append({"chip": chip, "baud": baud, "passed": True, "final_baud": b["baud"],
                    "write_s": b["write_s"], "rate_kbit_s": b["rate_kbit_s"],
                    "line_busy": b["line_busy"], "open_to_verified_s": b["open_to_verified_s"],
                    "model_bound_write_s": b["model_bound"]["write_s"],
                    "model_bound_line_busy": b["model_bound"]["line_busy"], "idle": b["idle"],
                    "timings_ms": b["timings_ms"]})
    for baud, krec in sorted(rom_keep.items()):
        a, k = board_of(per_board[("esp32", baud)]), board_of(krec)
        keep.append({"baud": baud, "passed": bool(a and k)})
        if a and k:
            keep[-1].update({
                "open_to_verified_s": {"raised": a["open_to_verified_s"],
                                       "keep": k["open_to_verified_s"]},
                "stub_s": {"raised": (a["timings_ms"].get("stub") or 0) / 1e3,
                           "keep": (k["timings_ms"].get("stub") or 0) / 1e3},
                "baud_s": {"raised": (a["timings_ms"].get("baud") or 0) / 1e3,
                           "keep": (k["timings_ms"].get("baud") or 0) / 1e3},
                "gain_s": k["open_to_verified_s"] - a["open_to_verified_s"]})
    walls = {str(sb): {str(n): r["proc"]["wall_s"] for n, r in sorted(runs.items())}
             for sb, runs in scaling.items()}
    return {"per_board": per, "rom_raise": keep, "scaling_wall_s": walls,
            "scale_baud": o.scale_baud}


def mixed(n):
    return [CHIPS[i % 2] for i in range(n)]


def main(argv):
    o = parse_args(argv)
    t_start = time.monotonic()
    exes = ensure_build(o.build)
    o.commit = git_describe()
    if not o.no_peer:
        if not os.path.exists(os.path.join(REPO, "npm", "node_modules", "esptool-js")):
            raise BenchError("esptool-js is not installed: run tools/setup-deps.sh (or pass --no-peer)")
    costs = model_costs()
    work = tempfile.mkdtemp(prefix="espstation-bench-")
    Child.ru_dir = work
    Child.launcher = build_launcher(work)
    bench = Bench(o, exes, work)
    per_board, peer_board, scaling, peer_many, rom_keep = {}, {}, {}, {}, {}
    try:
        for chip in CHIPS:
            path = os.path.join(work, f"{chip}.bin")
            bench.images[chip] = {"path": path, "sha256": make_image(exes["mkimage"], chip, path)}
        for chip in CHIPS:
            for baud in o.bauds:
                rec = bench.station(f"{chip}-{baud}", [chip], baud)
                per_board[(chip, baud)] = rec
                add_model(costs, bench, rec)
                if chip == "esp32" and baud in o.rom_keep_bauds:
                    # Right after the default run, so both see the same machine load.
                    rec = bench.station(f"{chip}-{baud}-romkeep", [chip], baud,
                                        env={"ESPSTATION_ROM_BAUD": "keep"})
                    rom_keep[baud] = rec
                    add_model(costs, bench, rec)
                if baud in o.peer_bauds:
                    peer_board[(chip, baud)] = bench.peer(f"{chip}-{baud}", [chip], baud)
        bench.baseline = baseline_rss(exes["espstation"], bench)
        for sbaud in o.scale_bauds:
            runs = scaling.setdefault(sbaud, {})
            counts = list(o.counts)
            if sbaud == o.scale_baud:
                counts += [n for n in o.peer_counts if n not in counts]
            for n in counts:
                runs[n] = bench.station(f"n{n}-{sbaud}", mixed(n), sbaud)
        for n in o.peer_counts:
            peer_many[n] = bench.peer(f"n{n}-{o.scale_baud}", mixed(n), o.scale_baud)
        text, results = report(bench, per_board, scaling, peer_board, peer_many, rom_keep, costs,
                               o)
        elapsed = time.monotonic() - t_start
        print()
        print(text)
        print()
        print(f"bench ran {elapsed:.0f} s; {sum(results)} of {len(results)} targets met; "
              f"raw numbers: {o.out}")
        if bench.failures:
            print("runs that failed:\n  " + "\n  ".join(bench.failures))
        with open(o.out, "w") as fh:
            json.dump({"command": [sys.argv[0], *argv], "commit": o.commit, "elapsed_s": elapsed,
                       "cpus": os.cpu_count(), "image_size": IMAGE_SIZE, "model": costs,
                       "targets_met": sum(results), "targets": len(results),
                       "failures": bench.failures,
                       "summary": summary(per_board, rom_keep, scaling, o),
                       "runs": bench.runs, "table": text},
                      fh, indent=1)
        return 1 if bench.failures else 0
    finally:
        if o.keep or bench.failures:
            print(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
