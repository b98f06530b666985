"""The review loop: verdicts read back from an exported workbook, the local review page, and
what reviewers' verdicts say about the detectors (precision per rule, rules often dismissed).

Verdicts and suppressions are stored by :mod:`iccaudit.store`; this stage reads workbooks,
serves the page and computes the statistics.
"""
