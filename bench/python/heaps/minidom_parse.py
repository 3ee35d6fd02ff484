"""A heap for heap_capture.py: xml.dom.minidom of a large document, kept
alive. Every node's parentNode, ownerDocument and sibling links make real
cycles.

usage: minidom_parse.py [ITEMS]   (default 6000)
The document, generated with a fixed seed: a catalog of ITEMS items, each
with attributes, a title, a price, 0-4 tags and a description paragraph
with inline markup."""
import random
import sys
import xml.dom.minidom

n = int(sys.argv[1]) if len(sys.argv) > 1 else 6000
rng = random.Random(25)
words = ["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta", "iota", "kappa"]
parts = ["<catalog>"]
for i in range(n):
    tags = "".join("<tag>%s</tag>" % rng.choice(words) for _ in range(rng.randrange(5)))
    parts.append('<item id="i%d" kind="%s"><title>%s %d</title><price cur="EUR">%.2f</price>'
                 "%s<desc>The <b>%s</b> item, <i>%s</i> and more.</desc></item>"
                 % (i, rng.choice(words), rng.choice(words), i, rng.random() * 100, tags,
                    rng.choice(words), rng.choice(words)))
parts.append("</catalog>")
text = "".join(parts)
del parts
dom = xml.dom.minidom.parseString(text)   # the heap: the DOM tree
del text
