"""Orchestration: one run of ``score`` or ``rescore``, wiring every stage."""
