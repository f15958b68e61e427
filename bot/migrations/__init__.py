"""Alembic migrations of the store's tables (``bot.store``), applied at start-up by
``bot.migrate.upgrade`` or ``portpal db upgrade``."""
