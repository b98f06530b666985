"""Detection: the rule engine (rules side) and the outlier models.

Rules side, one module per step:

- :mod:`iccaudit.detect.rules.ruleset`: rule files (pydantic), safe YAML loading with locations,
  errors collected over the whole pack, :func:`~iccaudit.detect.rules.ruleset.resolve_rule_dirs`.
- :mod:`iccaudit.detect.rules.compiler`: the sqlglot allow-list check of every expression and the
  assembly of the rule's query as a tree.
- :mod:`iccaudit.detect.rules.runner`: runs the rules set-at-a-time on the sandbox, and the in-file
  rule tests.
- :mod:`iccaudit.detect.rules.commands`: ``iccaudit rules list|validate|test|explain``.
- :mod:`iccaudit.detect.rules.pytest_plugin`: pytest collects every rule's in-file tests.

Heavy modules (duckdb, pandas) are imported inside functions, so loading rules stays fast.
"""
