"""Alembic's script directory: env.py and one module per revision under versions/. Run
through ragline.schema (`ragline db upgrade|current|history`), never an alembic.ini."""
