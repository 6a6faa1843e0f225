#!/usr/bin/env python3
"""Summarises a MatmulPool trace (java -Dmoestream.pool.trace=FILE ... bench): per decode token the
jobs, the time in jobs and between them (the caller's serial work), how long the caller waited for
the worker's last chunk, the worker's join latency and the jobs it missed; then per job position in a
token the median duration with and without the worker. Usage: pool-timeline.py FILE [TOKENS]
(the last TOKENS decode steps of the trace; the bench's memory-read jobs after them are skipped)."""
import statistics as st
import sys

rows = [list(map(int, l.split(','))) for l in open(sys.argv[1]).read().splitlines()[1:]]
tokens = int(sys.argv[2]) if len(sys.argv) > 2 else 128
end = len(rows)
while end > 0 and rows[end - 1][7] == 32:  # InferenceBenchmark.memoryReadGBs: threads * 16 chunks
    end -= 1
# a decode step's jobs: the pattern repeats every token; find its period from the task counts
counts = [r[7] for r in rows[:end]]
period = next(p for p in range(1, 400) if counts[end - 3 * p:end - 2 * p] == counts[end - 2 * p:end - p] == counts[end - p:end])
rows = rows[end - tokens * period:end]
n = len(rows)
med = lambda xs: st.median(xs) if xs else float('nan')
us = 1e3
span = (rows[-1][2] - rows[0][0]) / us
in_jobs = sum(r[2] - r[0] for r in rows) / us
wait = sum(r[2] - r[1] for r in rows) / us
worker = sum(r[5] - r[4] for r in rows if r[4]) / us
missed = sum(1 for r in rows if r[4] == 0)
late = sorted((r[4] - r[0]) / us for r in rows if r[4])
print(f"{tokens} tokens, {period} jobs per token: {span / tokens:.0f} us per token; in jobs {in_jobs / tokens:.0f}, "
      f"between jobs {(span - in_jobs) / tokens:.0f}; caller waiting for the worker's last chunk {wait / tokens:.0f}; "
      f"worker busy {worker / tokens:.0f}, idle {(span - worker) / tokens:.0f}")
print(f"worker missed {missed} of {n} jobs; join latency us p50 {late[len(late) // 2]:.1f} p90 {late[int(len(late) * .9)]:.1f} "
      f"p99 {late[int(len(late) * .99)]:.1f}")
both = [r for r in rows if r[4]]
skew = sorted(abs(r[1] - r[5]) / us for r in both)
print(f"jobs with the worker: one thread idle at the end for p50 {skew[len(skew) // 2]:.1f} us, mean {sum(skew) / len(skew):.1f} us "
      f"({sum(skew) / tokens:.0f} us per token)")
print("pos tasks  dur_alone(n)  dur_with_worker(n)  speedup  gap_after  worker_late")
for p in range(period):
    rs = rows[p::period]
    alone = [(r[2] - r[0]) / us for r in rs if r[4] == 0]
    both = [(r[2] - r[0]) / us for r in rs if r[4]]
    gap = [(rows[i + 1][0] - rows[i][2]) / us for i in range(p, n - 1, period)]
    lat = [(r[4] - r[0]) / us for r in rs if r[4]]
    print(f"{p:3d} {rs[0][7]:5d}  {med(alone):7.0f} ({len(alone):3d})  {med(both):7.0f} ({len(both):3d})  "
          f"{med(alone) / med(both):5.2f}  {med(gap):7.1f}  {med(lat):6.1f}")
