"""Middleware shipped with cqrs_kit, one module per concern.

Each module imports the library it integrates (structlog, SQLAlchemy), so import them from
their modules: ``from cqrs_kit.middleware.logging import LoggingMiddleware``.
"""
