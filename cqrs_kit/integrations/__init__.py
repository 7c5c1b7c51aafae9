"""Integrations with third-party libraries, one module per library.

Each module imports its library, so import the module you use (for example
:mod:`cqrs_kit.integrations.dependency_injector`); ``import cqrs_kit`` imports none of them.
"""
