"""A heap for heap_capture.py: a unittest run's heap at its end.

usage: unittest_run.py [MODULE ...]   (default test.test_json test.test_email
test.test_ast, the standard library's own tests: Debian's
libpython3.11-testsuite)
unittest.main(exit=False) runs them quietly; what the run leaves alive (the
test modules, their fixtures, the result with its failures and errors, the
caches the tests filled) is the heap."""
import io
import sys
import unittest

mods = sys.argv[1:] or ["test.test_json", "test.test_email", "test.test_ast"]
stream = io.StringIO()
run = unittest.main(module=None, argv=["unittest"] + mods, exit=False,
                    testRunner=unittest.TextTestRunner(stream=stream, verbosity=0))
result = run.result
