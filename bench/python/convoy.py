#!/usr/bin/python3
"""CPython's convoy effect (bpo-7946): an I/O thread's response time beside a
CPU-bound thread, the twin of heaplab's convoy workload.

usage: convoy.py [--switch-interval-us N] [--tasks N] [--cpu-threads N] [--smoke]
  --switch-interval-us N  sys.setswitchinterval(N / 1e6) (default 5000)
  --tasks N               I/O tasks (default 200, heaplab's scale=1)
  --cpu-threads N         CPU-bound threads beside the I/O thread (default 1;
                          0 measures the I/O path alone)
  --smoke                 10 tasks

The I/O thread sleeps 1 ms (time.sleep: the GIL released, as heaplab's
I/O thread around its nanosleep), wakes, runs a short task (TASK_STEPS steps
of arithmetic, a few microseconds) and again. CPython 3.11 sleeps with
clock_nanosleep to an absolute deadline, so the deadline (the clock before
the call, plus 1 ms) is when the thread is due to run again; per task:
  wait_ns     the deadline to time.sleep() returning, which it does once
              the thread has the GIL back: timer slack and wake-up, plus
              the wait for the GIL (heaplab's extra.wait_ns, which starts at
              the wake-up: --cpu-threads=0 measures the part before it)
  latency_ns  the deadline to the end of the task: the response time
              (heaplab's latency_ns)
The CPU-bound threads run arithmetic until the I/O thread is done; their
steps per second (a step: one multiply-add of the loop), summed, is
cpu_steps_per_s. Prints one JSON line.
"""
import argparse
import json
import platform
import sys
import threading
import time

TASK_STEPS = 100          # a few microseconds of CPython bytecode, as heaplab's task
CPU_CHUNK = 1000
SLEEP_S = 0.001

def percentiles(xs):
    xs = sorted(xs)
    if not xs:
        return {"count": 0}

    def q(p):
        return xs[min(len(xs) - 1, int(p * len(xs)))]
    return {"count": len(xs), "p50": q(0.50), "p90": q(0.90), "p99": q(0.99),
            "p999": q(0.999), "max": xs[-1], "total": sum(xs)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--switch-interval-us", type=int, default=5000)
    ap.add_argument("--tasks", type=int, default=200)
    ap.add_argument("--cpu-threads", type=int, default=1)
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args()
    tasks = 10 if a.smoke else a.tasks
    sys.setswitchinterval(a.switch_interval_us / 1e6)

    stop = False
    wait_ns, latency_ns = [], []
    cpu = []                                 # (steps, ns) per CPU thread
    started = threading.Barrier(a.cpu_threads + 1)

    def cpu_thread():
        x, steps = 12345, 0
        started.wait()
        t0 = time.monotonic_ns()
        while not stop:
            for _ in range(CPU_CHUNK):
                x = (x * 1103515245 + 12345) & 0xFFFFFFFF
            steps += CPU_CHUNK
        cpu.append((steps, time.monotonic_ns() - t0))

    threads = [threading.Thread(target=cpu_thread) for _ in range(a.cpu_threads)]
    for t in threads:
        t.start()
    started.wait()
    t_start = time.monotonic_ns()
    x = 42
    sleep_ns = int(SLEEP_S * 1e9)
    for _ in range(tasks):
        ev = time.monotonic_ns() + sleep_ns
        time.sleep(SLEEP_S)
        got = time.monotonic_ns()
        for _ in range(TASK_STEPS):
            x = (x * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
        done = time.monotonic_ns()
        wait_ns.append(got - ev)
        latency_ns.append(done - ev)
    elapsed = time.monotonic_ns() - t_start
    stop = True
    for t in threads:
        t.join()
    print(json.dumps({
        "workload": "convoy", "runtime": "cpython",
        "python": platform.python_version(),
        "switch_interval_us": a.switch_interval_us,
        "cpu_threads": a.cpu_threads,
        "ops": tasks, "elapsed_s": elapsed / 1e9,
        "latency_ns": percentiles(latency_ns),
        "wait_ns": percentiles(wait_ns),
        "cpu_steps": sum(s for s, _ in cpu),
        "cpu_steps_per_s": sum(s * 1e9 / ns for s, ns in cpu if ns),
    }))


if __name__ == "__main__":
    main()
