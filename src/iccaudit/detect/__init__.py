"""Detection: the rule engine (:mod:`.rules`) and the outlier models (:mod:`.models`).

Rules, one module per step:

- :mod:`.rules.ruleset`: the pack (which files are rules, the folders a run uses, load all);
  :mod:`.rules.yamldoc` safe YAML with locations; :mod:`.rules.model` the rule as pydantic;
  :mod:`.rules.validators` one validator class per concern, every error of a file collected;
  :mod:`.rules.errors` the stable codes.
- :mod:`.rules.compiler`: the sqlglot allow-list check of every expression and the assembly of
  the rule's query as a tree.
- :mod:`.rules.runner`: runs the rules set-at-a-time on the sandbox; :mod:`.rules.messages`
  their messages; :mod:`.rules.ruletests` the in-file tests; :mod:`.rules.commands`
  ``iccaudit rules list|validate|test|explain``; :mod:`.rules.pytest_plugin` pytest collects
  every rule's in-file tests.

Models: PyOD detectors fitted per peer group (:mod:`.models`).

Heavy modules (duckdb, pandas) are imported inside functions, so loading rules stays fast.
"""
