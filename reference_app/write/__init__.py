"""The write side: commands in, normalized rows and events out, in one transaction.

Read it in order: ``domain`` (ids, status machine, errors), ``messages`` (commands and
events), ``schema`` (tables), ``tokens``, ``handlers`` (one function per command). Handlers
write with SQLAlchemy Core through the unit of work and record the events that feed every
projection.
"""
