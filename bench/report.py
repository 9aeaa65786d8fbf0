"""report.py: turn the log of a tools/bench.sh run into what a reader and a
later run can use.

    python3 bench/report.py LOG OUTDIR

LOG is what tools/bench.sh wrote (build-bench/bench.log): the benchmarks'
own lines, each benchmark between `# bench NAME pin=CPUS` and
`# bench-NAME: S s`, and the `machine ...` lines of machine_cost before
and after. It writes into OUTDIR:

  bench.jsonl        one JSON object per figure: name, bench, unit, awith,
                     peers {peer: value}, ratios {peer: ratio} (above 1:
                     awith faster or smaller), better ("lower"/"higher"),
                     config (the benchmark's `config` lines: the peers'
                     pool size, reset, keep-alive, warm or cold), notes
                     (its other lines), pin (the CPUs it ran on), machine
                     (syscall_ns, page_fault_ns, mmap_ns, load1 before and
                     after the run), date, commit;
  bench-report.md    the same as a table, the losses listed first;
  bench-ratios.svg   a chart of every ratio on a log scale (gnuplot), 1 is
                     level: bars left of it are where awith loses.

A figure line is `NAME awith=V PEER=V ... [ratio_PEER=R ...] [(text)]`;
one without ratio tokens gets them computed from its unit: names ending
in _per_s, _rps, _mibs are rates (higher is better, ratio = awith/peer),
the rest are costs (ratio = peer/awith). Standard library only."""
import json
import os
import re
import shutil
import subprocess
import sys

RATE_SUFFIXES = ("_per_s", "_rps", "_mibs")


def num(v):
    try:
        return float(v)
    except ValueError:
        return None


def parse(log):
    runinfo, machine, figures = {}, [], []
    bench, pin, config, notes, start = None, "none", [], [], 0
    for raw in open(log, encoding="utf-8", errors="replace"):
        line = raw.rstrip("\n")
        m = re.match(r"# run (.*)", line)
        if m:
            runinfo.update(dict(kv.split("=", 1) for kv in m.group(1).split() if "=" in kv))
            continue
        m = re.match(r"# bench (\S+) pin=(\S+)", line)
        if m:
            bench, pin, config, notes, start = m.group(1), m.group(2), [], [], len(figures)
            continue
        m = re.match(r"# bench-(\S+): (\d+) s", line)
        if m:
            for f in figures[start:]:  # a benchmark's config and notes go to all its figures
                f["config"] = config[:]
                f["notes"] = notes[:]
            continue
        if not line or line.startswith("#"):
            continue
        if line.startswith("machine "):
            machine.append({k: num(v) for k, v in
                            (t.split("=", 1) for t in line.split()[1:] if "=" in t)})
            continue
        if line.startswith("config "):
            config.append(line[len("config "):])
            continue
        text = ""
        m = re.match(r"([^(]*)\((.*)\)\s*$", line)
        if m:
            line, text = m.group(1), m.group(2)
        toks = line.split()
        kv = dict(t.split("=", 1) for t in toks[1:] if "=" in t)
        if "awith" not in kv:
            notes.append(raw.strip())
            continue
        name = toks[0]
        rate = name.endswith(RATE_SUFFIXES)
        awith = num(kv.pop("awith"))
        ratios = {k[6:]: num(v) for k, v in kv.items() if k.startswith("ratio_")}
        peers = {k: num(v) for k, v in kv.items() if not k.startswith("ratio_")}
        if not ratios and awith:
            for p, v in peers.items():
                if v:
                    ratios[p] = awith / v if rate else v / awith
        figures.append({"name": name, "bench": bench, "pin": pin,
                        "unit": name.rsplit("_", 1)[-1] if "_" in name else "",
                        "better": "higher" if rate else "lower",
                        "awith": awith, "peers": peers,
                        "ratios": {k: v for k, v in ratios.items() if v is not None},
                        "text": text, "config": [], "notes": []})
    return runinfo, machine, figures


def fmt(v):
    if v is None:
        return "n/a"
    if v >= 100:
        return f"{v:,.0f}"
    return f"{v:.3g}"


def svg(figures, outdir):
    gp = shutil.which("gnuplot")
    if not gp:
        print("report: gnuplot missing (tools/deps.sh bench installs gnuplot-nox): no chart",
              file=sys.stderr)
        return None
    rows = [(f"{f['name']} vs {p}", r) for f in figures for p, r in f["ratios"].items() if r and r > 0]
    if not rows:
        return None
    dat = os.path.join(outdir, "bench-ratios.dat")
    with open(dat, "w") as d:
        for i, (label, r) in enumerate(reversed(rows)):
            lo, hi = min(1.0, r), max(1.0, r)
            d.write(f'{i} {r:.6g} {lo:.6g} {hi:.6g} {0x2e8b57 if r >= 1 else 0xc0392b} "{label}"\n')
    out = os.path.join(outdir, "bench-ratios.svg")
    h = 120 + 16 * len(rows)
    lo = min([0.05] + [r / 3 for _, r in rows])  # room for a loss's label left of its bar
    hi = max([1000] + [r * 3 for _, r in rows])
    script = f"""
set terminal svg size 900,{h} dynamic font "sans,10" background rgb "white"
set output "{out}"
set title "awith against its peers, same run: ratio (above 1: awith faster or smaller)"
set logscale x 10
set xrange [{lo:.3g}:{hi:.3g}]
set yrange [-1:{len(rows)}]
set grid xtics
set ytics nomirror scale 0
set key off
set termoption noenhanced
set arrow from 1, graph 0 to 1, graph 1 nohead lc rgb "black" lw 1.5
plot "{dat}" using 2:1:3:4:($1-0.35):($1+0.35):5:ytic(6) with boxxyerror fs solid 0.8 lc rgb variable, \\
     "" using ($2 >= 1 ? $2 : 1/0):1:(sprintf(" %.3g", $2)) with labels left font "sans,8", \\
     "" using ($2 < 1 ? $2 : 1/0):1:(sprintf("%.3g ", $2)) with labels right font "sans,8"
"""
    r = subprocess.run([gp], input=script, text=True, capture_output=True)
    if r.returncode != 0:
        print("report: gnuplot failed:\n" + r.stderr, file=sys.stderr)
        return None
    os.unlink(dat)
    return out


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: report.py LOG OUTDIR")
    log, outdir = sys.argv[1], sys.argv[2]
    runinfo, machine, figures = parse(log)
    mach = {}
    for when, m in zip(("before", "after"), machine):
        for k, v in m.items():
            mach[f"{k}_{when}"] = v
    with open(os.path.join(outdir, "bench.jsonl"), "w") as j:
        for f in figures:
            rec = dict(f, machine=mach, date=runinfo.get("date"), commit=runinfo.get("commit"))
            j.write(json.dumps(rec, sort_keys=False) + "\n")
    chart = svg(figures, outdir)
    md = [f"# awith benchmarks, {runinfo.get('date', '?')} ({runinfo.get('commit', '?')})", ""]
    md.append(f"Machine: {runinfo.get('cpus', '?')} CPU(s), " + ", ".join(
        f"{k} {fmt(v)}" for k, v in mach.items()) + ".")
    md.append(f"Pinning: {runinfo.get('pin', '?')}. Every value is a median (see each benchmark's "
              "config); ratio above 1: awith faster or smaller.")
    md.append("")
    if chart:
        md += [f"![ratios]({os.path.basename(chart)})", ""]
    losses = [(f, p, r) for f in figures for p, r in f["ratios"].items() if r < 1]
    md.append(f"## Where awith loses ({len(losses)} of "
              f"{sum(len(f['ratios']) for f in figures)} comparisons)")
    md.append("")
    for f, p, r in losses:
        md.append(f"- {f['name']} vs {p}: {r:.3g}x (awith {fmt(f['awith'])}, {p} {fmt(f['peers'].get(p))})")
    md += ["", "## Every figure", "", "| figure | awith | peers | ratios | pin |", "|---|---|---|---|---|"]
    for f in figures:
        peers = ", ".join(f"{p} {fmt(v)}" for p, v in f["peers"].items())
        ratios = ", ".join(f"{p} {r:.3g}x" for p, r in f["ratios"].items())
        md.append(f"| {f['name']} | {fmt(f['awith'])} | {peers} | {ratios} | {f['pin']} |")
    md += ["", "## Configuration of each comparison", ""]
    seen = set()
    for f in figures:
        if f["bench"] in seen:
            continue
        seen.add(f["bench"])
        md.append(f"- **{f['bench']}** (pin {f['pin']}): " + ("; ".join(f["config"]) or "(none stated)"))
        for n in f["notes"]:
            md.append(f"  - `{n}`")
    with open(os.path.join(outdir, "bench-report.md"), "w") as r:
        r.write("\n".join(md) + "\n")
    print(f"report: {len(figures)} figures -> {outdir}/bench.jsonl, bench-report.md"
          + (", bench-ratios.svg" if chart else ""))


if __name__ == "__main__":
    main()
