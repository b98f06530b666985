"""The rule engine: rule files, the expression checker and compiler, the runner, the CLI."""
