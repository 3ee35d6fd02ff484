"""Corpus program, multithreaded: two producer threads build small object
graphs (dicts, lists, strs) and put them on a queue; two consumer threads
take them, read them and drop them, so most objects are freed by a thread
other than the one that made them. Usage: threads_queue.py [ITEMS]"""
import queue
import sys
import threading

items = int(sys.argv[1]) if len(sys.argv) > 1 else 60000
q = queue.Queue(maxsize=256)


def produce(seed):
    for i in range(items):
        q.put({"id": i, "seed": seed, "name": "item-%d-%d" % (seed, i),
               "parts": [str(j) * (1 + j % 5) for j in range(i % 12)],
               "pair": (i, float(i) / 3)})
    q.put(None)


def consume(out):
    total = 0
    while (x := q.get()) is not None:
        total += len(x["name"]) + sum(len(p) for p in x["parts"])
    out.append(total)


done = []
threads = [threading.Thread(target=produce, args=(s,)) for s in (1, 2)]
threads += [threading.Thread(target=consume, args=(done,)) for _ in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(sum(done))
