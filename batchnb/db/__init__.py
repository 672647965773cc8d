"""The database layer: models, engine and migrations."""

from batchnb.db.engine import Database
from batchnb.db.models import Base, utcnow

__all__ = ["Base", "Database", "utcnow"]
