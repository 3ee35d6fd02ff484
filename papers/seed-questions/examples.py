#!/usr/bin/python3
"""papers/seed-questions: the seed documents' examples in CPython 3.11, the
twin of examples.c (the same ids, one JSON line each: {"id", "value"}).

A reference count here is sys.getrefcount(x) - 1: getrefcount's argument
is a reference of its own. Values the seeds typed as literals at the
prompt are built at run time (int("1000"), "".join(...)) where a literal
would differ: the compiler folds equal constants of one code object into
one object, so `a = 1000; b = 1000` in a script gives `a is b`, unlike two
prompt lines; and a constant in co_consts holds a reference of its own.
The literal forms are printed too (ids ending in _literal), to show it.
usage: examples.py
"""
import copy
import gc
import json
import sys
import weakref


def emit(id_, value):
    print(json.dumps({"id": id_, "value": value}))


def rc(x):
    return sys.getrefcount(x) - 2   # getrefcount's argument, and rc()'s own


def identity():
    a, b = int("123"), int("123")
    emit("small_int_123_is", a is b)
    a, b = int("1000"), int("1000")
    emit("large_int_1000_is", a is b)
    a = 1000
    b = 1000
    emit("large_int_1000_is_literal", a is b)
    a, b = int("256"), int("256")
    emit("int_256_is", a is b)
    a, b = int("257"), int("257")
    emit("int_257_is", a is b)
    a, b = int("-5"), int("-5")
    emit("int_minus5_is", a is b)
    a, b = int("-6"), int("-6")
    emit("int_minus6_is", a is b)
    a, b = "".join(["n"]), "".join(["n"])
    emit("one_char_str_is", a is b)
    a = "python"
    b = "python"
    emit("interned_str_python_is", a is b)
    a, b = "".join(["py", "thon"]), "".join(["pyt", "hon"])
    emit("built_str_python_is", a is b)
    emit("built_str_interned_is", sys.intern(a) is sys.intern(b))
    a = b = "nima"
    emit("alias_is", a is b)
    b = "hehe"
    emit("rebound_is", a is b)


def refcounts():
    x = int("300")
    emit("rc_x_300", rc(x))
    y = x
    emit("rc_after_y_eq_x", rc(x))
    z = [x, y]
    emit("rc_after_z_list", rc(x))
    del z
    emit("rc_after_del_z", rc(x))
    del x
    emit("rc_after_del_x", rc(y))
    x = 300   # the literal: co_consts holds one more
    emit("rc_x_300_literal", rc(x))
    gc.collect()   # what interpreter start-up left, so that the count below is the example's
    a = []
    b = []
    a.append(b)
    emit("diy_rc_a", rc(a))
    emit("diy_rc_b", rc(b))
    del a
    del b
    emit("diy_collect_after_del", gc.collect())
    a = [10, 10, 11]
    b = a
    emit("container_rc_list", rc(a))
    emit("container_items_0_1_is", a[0] is a[1])


class Node:
    def __init__(self, va):
        self.va = va

    def next(self, next):
        self.next = next


def node_ring():
    mid = Node("root")
    left = Node("left")
    right = Node("right")
    mid.next(left)
    left.next(right)
    right.next(left)
    wm, wl = weakref.ref(mid), weakref.ref(left)
    gc.collect()
    gc.disable()
    del mid, left, right
    emit("ring_mid_freed_by_refcount", wm() is None)
    emit("ring_left_alive_after_del", wl() is not None)
    emit("ring_collect_found", gc.collect())
    emit("ring_left_freed_by_collector", wl() is None)
    gc.enable()


deleting = 0


class Expensive(object):
    def __del__(self):
        global deleting
        deleting += 1


class Parent(object):
    def __init__(self):
        self.children = [Child(self)]


class Child(object):
    def __init__(self, parent):
        self.parent = weakref.proxy(parent)


def weakrefs():
    obj = Expensive()
    before = rc(obj)
    r = weakref.ref(obj)
    emit("weakref_not_counted", rc(obj) == before)
    del obj
    emit("weakref_del_finalizer_ran", deleting)
    emit("weakref_dead_after_del", r() is None)
    parent = Parent()
    parent.name = name = "p"
    child = parent.children[0]
    emit("proxy_forwards_attribute", child.parent.name is name)
    wp = weakref.ref(parent)
    gc.disable()
    del parent
    emit("proxy_parent_freed_without_collector", wp() is None)
    try:
        child.parent.name
        dead = False
    except ReferenceError:
        dead = True
    emit("proxy_dead_raises_reference_error", dead)
    gc.enable()


def copies():
    a = [10, [10, 11]]
    inner = a[1]
    b = copy.copy(a)
    d = copy.deepcopy(a)
    emit("copy_outer_is", b is a)
    emit("copy_item0_is", b[0] is a[0])
    emit("copy_inner_is", b[1] is inner)
    emit("copy_inner_rc", rc(inner))
    emit("deepcopy_outer_is", d is a)
    emit("deepcopy_item0_is", d[0] is a[0])
    emit("deepcopy_inner_is", d[1] is inner)
    emit("deepcopy_inner_items_is", d[1][0] is inner[0] and d[1][1] is inner[1])
    emit("deepcopy_inner_rc", rc(inner))
    emit("deepcopy_equal", int(a == d))
    l = []
    l.append(l)
    lc = copy.deepcopy(l)
    emit("deepcopy_cycle_is_copy_cycle", lc is not l and lc[0] is lc)


def thresholds():
    t = gc.get_threshold()
    emit("gc_threshold0", t[0])
    emit("gc_threshold1", t[1])
    emit("gc_threshold2", t[2])


def main():
    if len(sys.argv) > 1:
        sys.exit("usage: examples.py   (no arguments)")
    identity()
    refcounts()
    node_ring()
    weakrefs()
    copies()
    thresholds()


if __name__ == "__main__":
    main()
