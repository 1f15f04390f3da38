#!/usr/bin/env python3
"""Summarises a fuzz campaign (fuzz/campaign.sh).

python3 fuzz/report.py                     per target: chunks, CPU, executions, coverage curve
python3 fuzz/report.py --row T START CODE LOG   appends a libFuzzer log's row to campaign.tsv
"""

import pathlib
import re
import sys

TSV = pathlib.Path(__file__).resolve().parent / "artifacts" / "logs" / "campaign.tsv"
STATUS = re.compile(r"^#(\d+)\s+\S+\s+cov: (\d+) ft: (\d+) corp: (\d+)/")
TIME = re.compile(r"^time: ([\d.]+) wall ([\d.]+) user ([\d.]+) sys")
COLUMNS = ["target", "started", "wall_s", "cpu_s", "execs", "edges", "features", "units", "exit"]
EXECS = re.compile(r"^stat::number_of_executed_units: (\d+)")


def row(target: str, started: str, code: str, log: str) -> str:
    wall = cpu = 0.0
    execs = edges = features = units = 0
    for line in pathlib.Path(log).read_text(errors="replace").splitlines():
        if m := STATUS.match(line):
            execs, edges, features, units = map(int, m.groups())
        elif m := TIME.match(line):
            wall, cpu = float(m[1]), float(m[2]) + float(m[3])
        elif m := EXECS.match(line):
            execs = int(m[1])
    fields = [target, started, f"{wall:.0f}", f"{cpu:.0f}", execs, edges, features, units, code]
    return "\t".join(map(str, fields))


def summary() -> None:
    rows = [line.split("\t") for line in TSV.read_text().splitlines()[1:] if line]
    for target in dict.fromkeys(r[0] for r in rows):
        mine = [r for r in rows if r[0] == target]
        cpu = sum(float(r[3]) for r in mine)
        execs = sum(int(r[4]) for r in mine)
        curve = " ".join(r[5] for r in mine)
        failed = [r for r in mine if r[8] != "0"]
        print(
            f"{target}: {len(mine)} chunks, {cpu / 60:.1f} CPU-min, {execs:,} execs, "
            f"edges after each chunk: {curve}; features {mine[-1][6]}, corpus {mine[-1][7]} units"
            + (f"; {len(failed)} chunk(s) stopped on a finding" if failed else "; 0 findings")
        )


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--row":
        new = not TSV.exists()
        with TSV.open("a") as out:
            out.write(("\t".join(COLUMNS) + "\n" if new else "") + row(*sys.argv[2:]) + "\n")
    else:
        summary()
