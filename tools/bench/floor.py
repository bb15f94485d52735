#!/usr/bin/env python3
"""A factory floor publishing to one PostgreSQL server, measured (issue 14, item 6).

    tools/bench/floor.py [BUILD_DIR] [--stations 20] [--boards 64] [--repeat 3] [--out FILE]

It starts a throwaway PostgreSQL 15 (tests/pg/pg-server) and `espstation db init`, then runs
the floor --repeat times each way, alternating, every station at once each time: N stations, each with its own espsim of M
boards (half ESP8266, half ESP32, MACs distinct across the floor), first without publishing (the
baseline), then with `--publish URL --station floor-K`. It prints:

- the stations' own CPU per board, with and without publishing, and the difference (the
  publisher's cost: target under 5 % extra per board);
- the insert latency the stations saw (journal "published" lines: from the record's creation in
  the outbox to the database's confirmation), median / 95th percentile / max;
- the time from a board's report on disk (its file's mtime) to its row in the database
  (boards.inserted_at, the insert's start on the server, same clock): target within 1 s;
- that every report arrived exactly once.

CPU figures are exact per process (tools/bench/rusage.c under wait4), so espsim's CPU is never
counted as the station's. On a 2-core machine the floor's 2 x N processes share two cores: the
latencies are those of a loaded host, which is the pessimistic side. This is a benchmark, not a
test: it asserts nothing about timing; exit status 1 only when a board or a record went missing.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import (REPO, BenchError, Child, Espsim, build_launcher, ensure_build,  # noqa: E402
                   log, make_image, write_profile)

PG_SERVER = os.path.join(REPO, "tests", "pg", "pg-server")
CHIPS = ("esp8266", "esp32")


def pct(values, q):
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


class Floor:
    def __init__(self, o, exes, work):
        self.o = o
        self.exes = exes
        self.work = work
        self.profiles = []
        self.runs = 0
        for chip in CHIPS:
            img = os.path.join(work, f"{chip}.bin")
            sha = make_image(exes["mkimage"], chip, img, size=o.image_kib * 1024, seed=7)
            prof = os.path.join(work, f"{chip}.yaml")
            # Two retries, as a floor's profile would have: on two cores shared by the whole
            # floor, espsim is sometimes starved past a SYNC timeout.
            write_profile(prof, chip, 921600, img, sha, retries=2, writer="floor")
            self.profiles.append(prof)

    def run(self, label, url):
        """Every station at once; returns per-station records."""
        self.runs += 1
        chips = [CHIPS[i % 2] for i in range(self.o.boards)]
        stations = []
        try:
            for k in range(self.o.stations):
                d = os.path.join(self.work, label, f"station-{k:02d}")
                os.makedirs(d)
                # A seed per station and phase: MACs differ across the floor and between phases.
                seed = 100000 * (1 if url else 2) + 1000 * self.runs + k
                sims = Espsim(self.exes["espsim"], chips, d, seed=seed,
                              time_scale=self.o.time_scale)
                stations.append({"k": k, "dir": d, "sim": sims})
            log(f"{label}: {len(stations)} espsim ready, starting the stations")
            for s in stations:
                argv = [self.exes["espstation"], "run", *self.profiles]
                for b in s["sim"].boards:
                    argv += ["--port", b["port"]]
                s["station"] = f"floor-{s['k']:02d}"
                argv += ["--lines", "--reports", os.path.join(s["dir"], "reports"),
                         "--station", s["station"]]
                if url:
                    argv += ["--publish", url]
                env = {k: v for k, v in os.environ.items() if k != "ESPSTATION_PUBLISH"}
                s["log"] = open(os.path.join(s["dir"], "espstation.log"), "wb")
                s["child"] = Child(argv, stdin=subprocess.DEVNULL, stdout=s["log"],
                                   stderr=subprocess.STDOUT, env=env)
            for s in stations:
                s["proc"] = s["child"].wait()
                s["log"].close()
        finally:
            for s in stations:
                s["espsim"] = s["sim"].stop()
        for s in stations:
            self.read(s)
        return stations

    @staticmethod
    def read(s):
        root = os.path.join(s["dir"], "reports")
        runs = [os.path.join(root, x) for x in os.listdir(root)
                if os.path.exists(os.path.join(root, x, "run.json"))]
        if len(runs) != 1:
            raise BenchError(f"{s['dir']}: expected one run directory, found {runs}")
        s["run_dir"] = runs[0]
        s["run_id"] = os.path.basename(runs[0])
        with open(os.path.join(runs[0], "run.json")) as f:
            run = json.load(f)
        s["passed"] = run["counts"]["passed"]
        s["boards"] = len(run["slots"])
        s["mtime"] = {}
        for slot in run["slots"]:
            if slot.get("report_file"):
                p = os.path.join(runs[0], slot["report_file"])
                s["mtime"][slot["slot"]] = os.stat(p).st_mtime
        s["published_ms"] = []
        for name in sorted(os.listdir(runs[0])):
            if not (name.startswith("journal") and name.endswith(".jsonl")):
                continue
            with open(os.path.join(runs[0], name)) as f:
                for line in f:
                    ev = json.loads(line)
                    if ev.get("event") == "published" and "latency_ms" in ev:
                        s["published_ms"].append(ev["latency_ms"])


def psql(url, sql):
    r = subprocess.run(["psql", url, "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1",
                        "-c", sql], capture_output=True, text=True)
    if r.returncode != 0:
        raise BenchError(f"psql: {r.stderr.strip()}")
    return [line.split("\t") for line in r.stdout.splitlines() if line]


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("build", nargs="?", default=os.path.join(REPO, "build", "release"))
    ap.add_argument("--stations", type=int, default=20)
    ap.add_argument("--boards", type=int, default=64, help="boards per station")
    ap.add_argument("--image-kib", type=int, default=256, help="image size per board (KiB)")
    ap.add_argument("--time-scale", type=float, default=1.0, help="espsim --time-scale")
    ap.add_argument("--repeat", type=int, default=3,
                    help="baseline and publishing floors, alternated, this many times each")
    ap.add_argument("--out", help="JSON output (default BUILD/floor.json)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    return ap.parse_args(argv)


def main(argv):
    o = parse_args(argv)
    exes = ensure_build(os.path.abspath(o.build))
    # Under /tmp: the server runs as an unprivileged user when we are root, and must reach it.
    work = tempfile.mkdtemp(prefix="espstation-floor.")
    os.chmod(work, 0o755)
    Child.launcher = build_launcher(work)
    Child.ru_dir = work
    pgdir = os.path.join(work, "pg")
    failures = []
    try:
        url = subprocess.run([PG_SERVER, "start", pgdir], check=True, capture_output=True,
                             text=True).stdout.strip()
        r = subprocess.run([exes["espstation"], "db", "init", url], capture_output=True, text=True)
        if r.returncode != 0:
            raise BenchError(f"db init: {r.stdout}{r.stderr}")
        floor = Floor(o, exes, work)
        log(f"{o.stations} stations x {o.boards} boards, {o.image_kib} KiB images, "
            f"time scale {o.time_scale}")
        # Baseline and publishing floors alternate, --repeat times: the host's own noise (a
        # shared VM) moves a floor's CPU by several per cent from one run to the next.
        bases, pubs, pub_wall = [], [], 0.0
        for rep in range(o.repeat):
            t0 = time.monotonic()
            bases.append(floor.run(f"baseline-{rep}", None))
            log(f"baseline {rep + 1}/{o.repeat} done in {time.monotonic() - t0:.1f} s")
            t0 = time.monotonic()
            pubs.append(floor.run(f"publish-{rep}", url))
            pub_wall = time.monotonic() - t0
            log(f"publishing floor {rep + 1}/{o.repeat} done in {pub_wall:.1f} s")
        base = [s for b in bases for s in b]
        pub = [s for b in pubs for s in b]

        # Rows against reports: every report once, and its delay to the database.
        rows = psql(url, "select station, run_id, (report->>'slot')::int, "
                         "extract(epoch from inserted_at), record_key from boards")
        keys = [r[4] for r in rows]
        by = {(r[0], r[1], int(r[2])): float(r[3]) for r in rows}
        visible, missing = [], 0
        for s in pub:
            for slot, mtime in s["mtime"].items():
                t = by.get((s["station"], s["run_id"], slot))
                if t is None:
                    missing += 1
                else:
                    visible.append((t - mtime) * 1000)
        reports = sum(len(s["mtime"]) for s in pub)
        boards = sum(s["boards"] for s in pub)
        if missing or len(keys) != len(set(keys)) or len(rows) != reports:
            failures.append(f"{missing} reports without a row, {len(rows)} rows for {reports} "
                            f"reports, {len(keys) - len(set(keys))} keys twice")
        for phase in (base, pub):
            for s in phase:
                if s["proc"]["code"] != 0 or s["passed"] != s["boards"]:
                    failures.append(f"{s['dir']}: exit {s['proc']['code']}, "
                                    f"{s['passed']}/{s['boards']} passed")

        def cpu_per_board(phase):
            return sum(s["proc"]["cpu_s"] for s in phase) / max(1, sum(s["boards"] for s in phase))

        pairs = [100 * (cpu_per_board(p) - cpu_per_board(b)) / cpu_per_board(b)
                 for b, p in zip(bases, pubs)]

        def split(phase):
            n = max(1, sum(s["boards"] for s in phase))
            return (sum(s["proc"]["user_s"] for s in phase) / n,
                    sum(s["proc"]["sys_s"] for s in phase) / n)

        cpu_a, cpu_b = cpu_per_board(base), cpu_per_board(pub)
        (ua, sa), (ub, sb) = split(base), split(pub)
        lat = [x for s in pub for x in s["published_ms"]]
        result = {
            "stations": o.stations, "boards_per_station": o.boards, "image_kib": o.image_kib,
            "time_scale": o.time_scale, "boards": boards, "rows": len(rows),
            "publish_wall_s": pub_wall,
            "cpu_per_board_s": {"baseline": cpu_a, "publish": cpu_b},
            "user_sys_per_board_s": {"baseline": [ua, sa], "publish": [ub, sb]},
            "extra_cpu_pct": 100 * (cpu_b - cpu_a) / cpu_a if cpu_a > 0 else None,
            "extra_cpu_pct_per_pair": pairs,
            "insert_latency_ms": {"n": len(lat), "median": pct(lat, 0.5), "p95": pct(lat, 0.95),
                                  "max": max(lat) if lat else None},
            "visible_ms": {"n": len(visible), "median": pct(visible, 0.5),
                           "p95": pct(visible, 0.95), "max": max(visible) if visible else None,
                           "within_1s": sum(1 for v in visible if v <= 1000)},
            "failures": failures,
        }

        def ms(x):
            return "-" if x is None else f"{x:.0f}"

        v, il = result["visible_ms"], result["insert_latency_ms"]
        print(f"\nfloor: {o.stations} stations x {o.boards} boards, {o.repeat} times each way "
              f"({boards} boards published, "
              f"{len(rows)} rows), {o.image_kib} KiB images, espsim time scale {o.time_scale}, "
              f"{os.cpu_count()} CPUs")
        print("| measure | value | target |")
        print("|---|---|---|")
        print(f"| station CPU per board, not publishing (user + sys) | {cpu_a * 1000:.2f} ms "
              f"({ua * 1000:.2f} + {sa * 1000:.2f}) | |")
        print(f"| station CPU per board, publishing (user + sys) | {cpu_b * 1000:.2f} ms "
              f"({ub * 1000:.2f} + {sb * 1000:.2f}) | |")
        extra = result["extra_cpu_pct"]
        each = ", ".join(f"{x:+.1f}" for x in pairs)
        print(f"| extra CPU per board (each pair: {each} %) | "
              f"{'-' if extra is None else f'{extra:+.1f} %'} | < 5 % |")
        print(f"| insert latency (outbox record to confirmed), median / p95 / max | "
              f"{ms(il['median'])} / {ms(il['p95'])} / {ms(il['max'])} ms (n={il['n']}) | |")
        print(f"| report on disk to row in the database, median / p95 / max | "
              f"{ms(v['median'])} / {ms(v['p95'])} / {ms(v['max'])} ms | < 1000 ms |")
        print(f"| rows within 1 s of their report | {v['within_1s']} of {v['n']} | all |")
        print(f"| reports delivered exactly once | {'yes' if not failures else 'NO'} | yes |")
        for f in failures:
            print(f"FAILURE: {f}")
        out = o.out or os.path.join(os.path.abspath(o.build), "floor.json")
        with open(out, "w") as fh:
            json.dump(result, fh, indent=1)
        print(f"raw figures: {out}")
        return 1 if failures else 0
    finally:
        subprocess.run([PG_SERVER, "stop", pgdir], capture_output=True)
        if o.keep or failures:
            print(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except BenchError as e:
        print(f"floor: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
