"""A heap for heap_capture.py: email parsing of many messages, the parsed
messages kept alive.

usage: email_parse.py [MESSAGES]   (default 3000)
Each message, generated with a fixed seed: a dozen headers (addresses,
a subject, a date, a message id, received lines) and, one in three, a
multipart/alternative body of a text and an HTML part, else a text body;
parsed by email.message_from_string with email.policy.default (the
EmailMessage objects of the modern API, their headers parsed lazily as
they are read: each message's subject and from are read once)."""
import email
import email.policy
import random
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
rng = random.Random(25)
words = ["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta", "iota", "kappa"]


def text(k):
    return " ".join(rng.choice(words) for _ in range(k))


messages = []
for i in range(n):
    hdr = ("From: %s <%s%d@example.org>\nTo: %s@example.com, %s@example.net\n"
           "Subject: %s\nDate: Mon, %d Dec 2026 05:%02d:00 +0000\nMessage-ID: <%d.%d@example.org>\n"
           "Received: from mx%d.example.org by mail.example.com; Mon, 7 Dec 2026\n"
           "Received: from host%d by mx%d.example.org; Mon, 7 Dec 2026\n"
           "X-Priority: %d\nMIME-Version: 1.0\n"
           % (text(2), rng.choice(words), i, rng.choice(words), rng.choice(words), text(6),
              1 + i % 28, i % 60, i, rng.randrange(10 ** 6), i % 7, i, i % 7, rng.randrange(5)))
    if i % 3 == 0:
        body = ("Content-Type: multipart/alternative; boundary=\"b%d\"\n\n--b%d\n"
                "Content-Type: text/plain; charset=utf-8\n\n%s\n--b%d\n"
                "Content-Type: text/html; charset=utf-8\n\n<p>%s</p>\n--b%d--\n"
                % (i, i, text(40), i, text(40), i))
    else:
        body = "Content-Type: text/plain; charset=utf-8\n\n%s\n" % text(60)
    m = email.message_from_string(hdr + body, policy=email.policy.default)
    m["subject"], m["from"]   # parsed headers, as a mail reader's list would
    messages.append(m)
del m
