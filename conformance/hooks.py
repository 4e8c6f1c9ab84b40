"""Schemathesis hooks for the conformance run (loaded through SCHEMATHESIS_HOOKS).

Only a workaround for a bug of CPython 3.11 (this machine's python3), not of
the server: Hypothesis names each filter by parsing the source of its lambda
with `ast.parse`, and on CPython 3.11 that call can fail at random with
`SystemError: AST constructor recursion depth mismatch` (CPython issue
gh-106905: its recursion-depth bookkeeping of the AST constructor, seen
mostly with several threads, as Schemathesis' workers are). Schemathesis then reports a "Runtime Error" for
the operation being generated, and the whole coverage phase is lost. The name
is only used in reprs, so a failing parse falls back to Hypothesis' own
"could not tell" description instead of aborting the run.
"""

from hypothesis.internal import lambda_sources

_describe = lambda_sources._lambda_description


def _describe_or_give_up(f):
    try:
        return _describe(f)
    except SystemError:
        return "lambda: <unknown>"


lambda_sources._lambda_description = _describe_or_give_up
