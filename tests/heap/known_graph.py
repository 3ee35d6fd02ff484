"""A small known graph for tests/heap_load.sh: heap_capture.py captures the
interpreter's heap with this alive, cycles included (a ring of instances, a
list that holds itself, a dict whose value refers back to it). On the way
it drops 3000 pairs of instances that refer to each other, so that CPython's
collector runs and finds them (the file's "mutation" rates are not zero)."""


class Node:
    def __init__(self, v):
        self.v = v
        self.next = None


ring = [Node(1000 + i) for i in range(50)]
for i, n in enumerate(ring):
    n.next = ring[(i + 1) % len(ring)]
me = [1.5, "two", (3, "four", 5.25)]
me.append(me)
back = {"name": "back", 7: [2 ** 70, b"bytes"], (1, 2): None}
back["self"] = [back]

for i in range(3000):   # cyclic garbage: a pair of Nodes, dropped
    a, b = Node(i), Node(-i)
    a.next, b.next = b, a
del a, b
