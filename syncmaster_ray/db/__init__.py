"""SyncMaster's tables (never altered), our own table, credentials and every query.

Imports: settings, errors, spec, SQLAlchemy. Never Ray, Spark or onETL.
"""
