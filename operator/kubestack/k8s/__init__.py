"""The operator's side effects on the API server, shared by every controller.

Domain packages (`compute/`, `network/`, ...) stay pure; controllers use these helpers to
read and write objects: create-or-get with strict field validation (so a manifest the schema
does not know fails loudly instead of being pruned), status patches that are skipped when
nothing changed, Events, owner references and conditions.
"""
