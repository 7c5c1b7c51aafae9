from tests.databases import postgres_database

__all__ = ["postgres_database"]
